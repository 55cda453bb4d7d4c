"""Style-E quality benchmark: held-out synthesizer mouth/emotion/style, real-speaker LOSO lip sync, distillation,
chunk seams, chunk speed, bad input. Writes JSON.

    nice -n 19 .venv/bin/python benchmarks/motion_quality.py --json out/style_e/motion_quality.json

Synthetic scores use the corpus test split (flite voices, never trained on) and held-out paraphrased
prompts. Real scores are leave-speakers-out: for each fold an audio encoder is trained without the fold's
speakers and swapped into the shipped Style-E (its interface is named mouth channels, so the swap is
exact); envelope and ridge baselines are computed on the same folds.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import S2TError
from engine.metrics import pearson as corr
from engine.motion.amplitude import running_deviation
from motion_loso import best_lag_corr

log = logging.getLogger("motion_quality")


def style_features(c: np.ndarray) -> np.ndarray:
    """Talking-style descriptors of a coefficient clip: level and spread of channels and of their velocities."""
    v = np.diff(c, axis=0)
    return np.concatenate([c.mean(0), c.std(0), np.abs(v).mean(0), v.std(0)])


USER_PROMPTS = Path(__file__).parent / "prompts" / "user_typed.toml"


def user_prompt_accuracy(text: Any) -> dict[str, Any]:
    """The text encoder on prompts written the way users type them (benchmarks/prompts/user_typed.toml): an
    "ordinary prompts" check beside the held-out paraphrase pool, scored like it (text_train.evaluate)."""
    import tomllib

    from engine.data.texts import Description
    from engine.motion.text_train import evaluate

    with open(USER_PROMPTS, "rb") as f:
        ds = [Description(t, e, "none" if e == "neutral" else "medium")
              for e, v in tomllib.load(f).items() for t in v["prompts"]]
    r = evaluate(text, ds)
    return {"emotion_text_acc_user_prompts": r["acc"], "emotion_text_acc_user_prompts_per_emotion": r["per_emotion"],
            "user_prompts": len(ds)}


def denoised_mouth_corr(out: np.ndarray, truth: np.ndarray, min_std: float = 1e-3) -> float:
    """Mean Pearson r over the mouth channels the denoiser shapes (1..N_MOUTH-1; jawOpen is the encoder's alone)
    that move in the ground truth."""
    from engine.motion.audio_encoder import N_MOUTH

    rs = [corr(out[:, ch], truth[:, ch]) for ch in range(1, N_MOUTH) if truth[:, ch].std() > min_std]
    return float(np.mean(rs)) if rs else 0.0


def motion_detail(out: np.ndarray, truth: np.ndarray, min_std: float = 1e-3) -> float:
    """Mean over channels that move in the ground truth of std(frame-to-frame velocity) out / truth: 1 keeps the
    ground truth's detail, below 1 is smoothed toward a mean."""
    vo, vt = np.diff(out, axis=0), np.diff(truth, axis=0)
    keep = vt.std(0) > min_std
    return float(np.mean(vo.std(0)[keep] / vt.std(0)[keep])) if keep.any() else 0.0


# channel groups of DEFAULT_SPEC for the dynamic-amplitude measure
AMPLITUDE_GROUPS: dict[str, tuple[int, int]] = {"mouth_1_13": (1, 14), "brows": (14, 19), "blinks": (19, 21),
                                                "eyes_cheek_nose": (21, 28), "head_pose": (28, 34)}


def wilson95(hits: int, n: int) -> list[float]:
    """95 % Wilson score interval of a proportion hits / n (how far an accuracy on n utterances can move by chance)."""
    if n <= 0:
        return [0.0, 1.0]
    z, p = 1.959964, hits / n
    mid, half = (p + z * z / (2 * n)), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [round(float((mid - half) / (1 + z * z / n)), 4), round(float((mid + half) / (1 + z * z / n)), 4)]


def dynamic_amplitude(outs: list[np.ndarray], truths: list[np.ndarray]) -> dict[str, float]:
    """Per channel group: std of the output's running deviation / the ground truth's (mean over the group's
    channels that move). 1 = as lively as the ground truth; below 1 = stiffer."""
    do = np.concatenate([running_deviation(o) for o in outs])
    dt = np.concatenate([running_deviation(t) for t in truths])
    res = {}
    for name, (lo, hi) in AMPLITUDE_GROUPS.items():
        sd_t = dt[:, lo:hi].std(0)
        keep = sd_t > 1e-4
        res[name] = round(float(np.mean(do[:, lo:hi].std(0)[keep] / sd_t[keep])), 3) if keep.any() else -1.0
    return res


def emotion_features(c: np.ndarray) -> np.ndarray:
    return np.concatenate([c[:, :28].mean(0), np.percentile(c[:, :28], 90, axis=0)])


class Logistic:
    """Multinomial logistic regression on standardised features (numpy, full-batch gradient descent)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, classes: int, steps: int = 600, l2: float = 1e-3) -> None:
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-6
        z = (x - self.mu) / self.sd
        self.w = np.zeros((z.shape[1], classes))
        self.b = np.zeros(classes)
        onehot = np.eye(classes)[y]
        for _ in range(steps):
            p = self._p(z)
            g = (p - onehot) / len(z)
            self.w -= 0.5 * (z.T @ g + l2 * self.w)
            self.b -= 0.5 * g.sum(0)

    def _p(self, z: np.ndarray) -> np.ndarray:
        s = z @ self.w + self.b
        e = np.exp(s - s.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._p((x - self.mu) / self.sd).argmax(1)


def synthetic(model, corpus_dir: str, shards: int, per_voice: int, seed: int,  # noqa: ANN001
              guidance: tuple[float, ...] = (), distill: bool = True, distill_every: int = 3, *,
              phone_weight: float) -> dict[str, object]:
    from engine.data.styles import STYLE_NAMES
    from engine.motion.stream import StreamConfig
    from engine.motion.style_e import StyleEMotion
    from engine.data.emotions import primary_of
    from engine.motion.train import load_corpus

    c = load_corpus(corpus_dir, None, shards, ("train", "test"), keep_audio=True)
    rng = np.random.default_rng(seed)
    train = [u for u in c.synth if u.split == "train" and len(u.coeffs) >= 40]
    test = [u for u in c.synth if u.split == "test" and len(u.coeffs) >= 40]
    by_voice: dict[str, list] = {}
    for u in test:
        by_voice.setdefault(u.voice, []).append(u)
    test = [u for v in sorted(by_voice) for u in by_voice[v][:per_voice]]
    emo_clf = Logistic(np.stack([emotion_features(u.coeffs) for u in train]), np.array([u.emotion for u in train]), 8)
    sty_clf = Logistic(np.stack([style_features(u.coeffs) for u in train]), np.array([u.style for u in train]),
                       len(STYLE_NAMES))
    held = np.flatnonzero(c.text_held)
    trainpool = np.flatnonzero(~c.text_held)
    res: dict[str, object] = {"test_utterances": len(test), "train_utterances_for_classifiers": len(train)}
    gt_emo = emo_clf.predict(np.stack([emotion_features(u.coeffs) for u in test]))
    gt_sty = sty_clf.predict(np.stack([style_features(u.coeffs) for u in test]))
    res["emotion_acc_ground_truth"] = float(np.mean(gt_emo == [u.emotion for u in test]))
    res["style_acc_ground_truth"] = float(np.mean(gt_sty == [u.style for u in test]))
    styles_pool: dict[int, list] = {}
    for u in test:
        styles_pool.setdefault(u.style, []).append(u)
    mouth: dict[str, list[float]] = {}
    shapes: dict[str, list[float]] = {}  # the lip shapes (mouth channels 1..13) of the output
    mouth_variants: dict[str, list[float]] = {"teacher": [], "student2": [], "teacher_2step": [], "student1": [],
                                              "student4": []}
    denoised_variants: dict[str, list[float]] = {k: [] for k in mouth_variants}
    fidelity: dict[str, list[float]] = {k: [] for k in mouth_variants if k != "teacher"}  # r with the teacher's sample
    detail: dict[str, list[float]] = {k: [] for k in mouth_variants}
    emo_pred, emo_oracle, sty_pred, text_pred = [], [], [], []
    main_outs: list[np.ndarray] = []
    t_steps = int(model.meta["teacher_steps"])
    runs: list[tuple[str, str | None, np.ndarray]] = []  # (held-out prompt, training-vocabulary prompt, style) per utt.
    for i, u in enumerate(test):
        audio = u.audio
        same = held[c.text_label[held] == c.text_label[u.text_id]] if u.text_id >= 0 else held[:0]
        prompt = c.texts[int(same[rng.integers(len(same))])] if len(same) else c.texts[u.text_id]
        code = model.emotion_code(prompt)
        text_pred.append(int(primary_of(code[None])[0]))
        refs = [r for r in styles_pool[u.style] if r is not u and r.voice != u.voice] or styles_pool[u.style]
        ref = refs[int(rng.integers(len(refs)))].coeffs
        style = model.style(ref)  # code + motion spread: the stream matches the reference's amplitude
        cfg = StreamConfig(chunk=8, steps=2, seed=seed + i, phone_weight=phone_weight)
        out = StyleEMotion(model, cfg, prompt, style, 25.0).generate(audio)[: len(u.coeffs)]
        main_outs.append(out)
        r = corr(out[:, 0], u.coeffs[: len(out), 0])
        mouth.setdefault(u.voice, []).append(r)
        shapes.setdefault(u.voice, []).append(denoised_mouth_corr(out, u.coeffs[: len(out)]))
        emo_pred.append(int(emo_clf.predict(emotion_features(out)[None])[0]))
        seen = trainpool[c.text_label[trainpool] == c.text_label[u.text_id]] if u.text_id >= 0 else trainpool[:0]
        p2 = None
        if len(seen):  # the same label described in the training vocabulary: isolates the text encoder's share
            p2 = c.texts[int(seen[rng.integers(len(seen))])]
            o2 = StyleEMotion(model, cfg, p2, style, 25.0).generate(audio)[: len(u.coeffs)]
            emo_oracle.append((int(emo_clf.predict(emotion_features(o2)[None])[0]), u.emotion))
        runs.append((prompt, p2, style))
        sty_pred.append(int(sty_clf.predict(style_features(out)[None])[0]))
        if distill and i % distill_every == 0:  # distillation: same inputs, same noise seed, several samplers
            outs: dict[str, np.ndarray] = {}
            for name, steps in (("teacher", t_steps), ("student2", 2), ("teacher_2step", -2), ("student1", 1),
                                ("student4", 4)):
                # the denoiser alone: the phones' share of the mouth is the same for every sampler
                m = StyleEMotion(model, replace(cfg, steps=abs(steps), teacher=steps < 0, phone_weight=0.0), prompt,
                                 style, 25.0)
                o = outs[name] = m.generate(audio)[: len(u.coeffs)]
                mouth_variants[name].append(corr(o[:, 0], u.coeffs[: len(o), 0]))
                denoised_variants[name].append(denoised_mouth_corr(o, u.coeffs[: len(o)]))
                detail[name].append(motion_detail(o, u.coeffs[: len(o)]))
                if name != "teacher":  # what distillation is for: the teacher's sample, in fewer steps
                    fidelity[name].append(denoised_mouth_corr(o, outs["teacher"]))
        if i % 20 == 0:
            log.info("synthetic %d/%d", i, len(test))
    emo_true = np.array([u.emotion for u in test])
    res["mouth_corr_synth_per_voice"] = {v: round(float(np.mean(r)), 4) for v, r in sorted(mouth.items())}
    res["mouth_corr_synth"] = round(float(np.mean([x for r in mouth.values() for x in r])), 4)
    res["mouth_shapes_corr_synth_per_voice"] = {v: round(float(np.mean(r)), 4) for v, r in sorted(shapes.items())}
    res["mouth_shapes_corr_synth"] = round(float(np.mean([x for r in shapes.values() for x in r])), 4)
    res["mouth_shapes_note"] = ("output's lip shapes: mean Pearson r over mouth channels 1..13 that move in the ground "
                                "truth (denoised_mouth_corr), flite test voices")
    res["emotion_acc_heldout"] = round(float(np.mean(np.array(emo_pred) == emo_true)), 4)
    res["emotion_text_acc_heldout"] = round(float(np.mean(np.array(text_pred) == emo_true)), 4)
    pool = primary_of(model.text.encode_batch([c.texts[int(i)] for i in held]))  # the whole held-out pool, full encoder
    res["emotion_text_acc_heldout_pool"] = round(float(np.mean(pool == c.text_primary[held])), 4)
    res["heldout_pool_texts"] = len(held)
    res.update(user_prompt_accuracy(model.text))
    res["emotion_acc_training_vocabulary_prompts"] = round(float(np.mean([a == b for a, b in emo_oracle])), 4)
    res["style_acc"] = round(float(np.mean(np.array(sty_pred) == [u.style for u in test])), 4)
    hits = {"style": int(np.sum(np.array(sty_pred) == [u.style for u in test])),
            "emotion": int(np.sum(np.array(emo_pred) == emo_true))}
    res["acc_ci95"] = {k: wilson95(v, len(test)) for k, v in hits.items()}  # chance's reach on this many utterances
    res["style_confusion"] = {  # per true style: how its test utterances were read (which styles are confused)
        STYLE_NAMES[s]: {STYLE_NAMES[int(p)]: int(n) for p, n in zip(*np.unique(
            [q for q, u in zip(sty_pred, test) if u.style == s], return_counts=True))}
        for s in sorted({u.style for u in test})}
    res["dynamic_amplitude"] = dynamic_amplitude(main_outs, [u.coeffs[: len(o)] for u, o in zip(test, main_outs)])
    res["dynamic_amplitude_note"] = ("2-step student, per channel group: std of each channel minus its running mean "
                                     "(~1 s), output / ground truth (1 = as lively; below 1 = stiffer)")
    if distill:
        # jawOpen comes from the audio encoder alone (vae.ENCODER_ONLY), so it is the same for every sampler; the
        # comparison that tests distillation is on the mouth channels the denoiser shapes (denoised_mouth_corr)
        res["distill_jaw_corr"] = {k: round(float(np.mean(v)), 4) for k, v in mouth_variants.items() if v}
        res["distill_mouth_corr"] = {k: round(float(np.mean(v)), 4) for k, v in denoised_variants.items() if v}
        res["distill_mouth_channels"] = "mean Pearson r over mouth channels 1..13 (jawOpen excluded) that move in the ground truth"
        res["distill_fidelity_to_teacher"] = {k: round(float(np.mean(v)), 4) for k, v in fidelity.items() if v}
        res["distill_fidelity_note"] = ("mean r over mouth channels 1..13 between each sampler's output and the "
                                        f"{t_steps}-step teacher's (same inputs, same noise seed)")
        res["distill_motion_detail"] = {k: round(float(np.mean(v)), 4) for k, v in detail.items() if v}
        res["distill_motion_detail_note"] = ("velocity std of the output / of the ground truth, mean over channels "
                                             "that move (1 = the ground truth's detail; below 1 = smoothed)")
        res["distill_utterances"] = len(mouth_variants["teacher"])
        dm = res["distill_mouth_corr"]
        res["teacher_vs_2step_corr_drop"] = round(dm["teacher"] - dm["student2"], 4)  # type: ignore[index]
        res["student2_minus_teacher_2step"] = round(dm["student2"] - dm["teacher_2step"], 4)  # type: ignore[index]
    if guidance:
        res["by_guidance"] = guidance_sweep(model, emo_clf, test, runs, guidance, seed, phone_weight)
    return res


def guidance_sweep(model, emo_clf: Logistic, test: list, runs: list, guidance: tuple[float, ...],  # noqa: ANN001
                   seed: int, phone_weight: float) -> dict[str, dict[str, float]]:
    """Emotion accuracy (held-out and training-vocabulary prompts) and jawOpen corr per guidance strength w,
    2-step student, same utterances, prompts, style codes and noise seeds as the main pass."""
    from engine.motion.stream import StreamConfig
    from engine.motion.style_e import StyleEMotion

    out: dict[str, dict[str, float]] = {}
    for w in guidance:
        held, train, mouth = [], [], []
        for i, (u, (prompt, p2, style)) in enumerate(zip(test, runs)):
            cfg = StreamConfig(chunk=8, steps=2, guidance=w, seed=seed + i, phone_weight=phone_weight)
            o = StyleEMotion(model, cfg, prompt, style, 25.0).generate(u.audio)[: len(u.coeffs)]
            held.append(int(emo_clf.predict(emotion_features(o)[None])[0]) == u.emotion)
            mouth.append(corr(o[:, 0], u.coeffs[: len(o), 0]))
            if p2 is not None:
                o2 = StyleEMotion(model, cfg, p2, style, 25.0).generate(u.audio)[: len(u.coeffs)]
                train.append(int(emo_clf.predict(emotion_features(o2)[None])[0]) == u.emotion)
        out[str(w)] = {"emotion_acc_heldout": round(float(np.mean(held)), 4),
                       "emotion_acc_training_vocabulary_prompts": round(float(np.mean(train)), 4) if train else -1.0,
                       "mouth_corr_synth": round(float(np.mean(mouth)), 4)}
        log.info("guidance %.2f: %s", w, out[str(w)])
    return out


def speed_and_seams(model, seconds: float, seed: int, phone_weight: float) -> dict[str, object]:  # noqa: ANN001
    from engine.audio.ingest import decode_audio
    from engine.assets import asset_path
    from engine.motion.stream import StreamConfig

    x = decode_audio(asset_path("demo_speech.wav"))
    reps = int(np.ceil(seconds * 16000 / len(x)))
    audio = np.tile(x, reps)[: int(seconds * 16000)]
    frames = audio[: len(audio) // 640 * 640].reshape(-1, 640)
    s = model.stream(StreamConfig(chunk=2, steps=2, seed=seed, phone_weight=phone_weight))
    times, outs = [], []
    for i in range(0, len(frames) - 1, 2):
        t = time.perf_counter()
        outs.append(s.step(frames[i : i + 2]))
        times.append(time.perf_counter() - t)
    c = np.concatenate(outs)
    std = model.coef_std
    v = np.linalg.norm(np.diff(c, axis=0) / std, axis=1)  # v[j]: frame j -> j+1
    boundary = (np.arange(len(v)) % 2) == 1  # j = 2i+1 -> 2i+2 crosses a chunk seam
    tms = np.array(times[20:]) * 1e3
    return {"chunk_ms_2step_cpu": round(float(np.median(tms)), 3), "chunk_ms_2step_cpu_p95": round(float(np.percentile(tms, 95)), 3),
            "chunk_K": 2, "seam_boundaries": int(boundary.sum()),
            "seam_p99_velocity_ratio": round(float(np.percentile(v[boundary], 99) / np.percentile(v[~boundary], 99)), 4),
            "seam_p99_boundary": round(float(np.percentile(v[boundary], 99)), 5),
            "seam_p99_inside": round(float(np.percentile(v[~boundary], 99)), 5)}


class TorchGraph:
    """Torch modules behind the stream's Graph protocol (a fold's audio encoder, or the mean of a fold's seed
    ensemble, swapped into Style-E)."""

    def __init__(self, *modules) -> None:  # noqa: ANN002
        self.modules = modules

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        import torch

        with torch.no_grad():
            x = torch.from_numpy(inputs["mel"])
            return [torch.stack([m(x) for m in self.modules]).mean(0).numpy()]


def real_loso(model, loso_json: str, loso_dir: str, real: str, seed: int, phone_weight: float) -> dict[str, object]:  # noqa: ANN001
    """Full Style-E (shipped denoiser + a fold encoder that never heard the speaker) on each real clip."""
    import dataclasses

    from engine.motion.stream import StreamConfig
    from engine.motion.style_e import StyleEMotion
    from engine.motion.train import load_encoder

    info = json.loads(Path(loso_json).read_text())
    card = json.loads((Path(real) / "card.json").read_text())
    target = info.get("target", "jaw")  # older motion_loso.py JSONs scored the fitted jawOpen
    out: dict[str, object] = {}
    for look in [int(x) for x in info.get("encoder_mouth_corr_by_lookahead", {})]:
        per: dict[str, float] = {}
        per_lag: dict[str, float] = {}
        for k, held in enumerate(info["folds"]):
            f = Path(loso_dir) / f"enc_L{look}_f{k}.npz"
            if not f.is_file():
                continue
            encs = []
            seeds = [Path(loso_dir) / f"enc_L{look}_f{k}_s{s}.npz" for s in range(1, info.get("seeds_per_fold", 1))]
            for fs in [f, *seeds]:
                with np.load(fs, allow_pickle=False) as z:
                    encs.append(load_encoder({n: z[n] for n in z.files}, "audio", look))
            graphs = dataclasses.replace(model.graphs, audio=TorchGraph(*encs), lookahead=look)
            m = dataclasses.replace(model, graphs=graphs)
            for clip in card["clips"]:
                if clip["speaker"] not in held:
                    continue
                with np.load(Path(real) / f"{clip['clip']}.npz", allow_pickle=False) as z:
                    audio = z["audio"].astype(np.float32) / 32767.0
                    mouth = np.nan_to_num(z["aperture"]) if target == "aperture" else z["coeffs"][:, 0]
                gen = StyleEMotion(m, StreamConfig(chunk=8, steps=2, seed=seed, phone_weight=phone_weight), "neutral",
                                   None, 25.0).generate(audio)
                n = min(len(gen), len(mouth))  # the output's mouth opening is its jawOpen channel
                per[clip["clip"]] = corr(gen[:n, 0], mouth[:n])
                per_lag[clip["clip"]] = best_lag_corr(gen[:n, 0], mouth[:n])
        if per:
            out[str(look)] = {"mean": round(float(np.mean(list(per.values()))), 4),
                              "mean_best_lag4": round(float(np.mean(list(per_lag.values()))), 4),
                              "per_clip": {c: round(v, 4) for c, v in sorted(per.items())},
                              "per_clip_best_lag4": {c: round(v, 4) for c, v in sorted(per_lag.items())}}
    return out


def bad_inputs(model) -> dict[str, str]:  # noqa: ANN001
    out = {}
    for name, fn in (("prompt_10000_chars", lambda: model.emotion_code("happy " * 1667)),
                     ("prompt_empty", lambda: model.emotion_code("")),
                     ("prompt_non_english", lambda: model.emotion_code("très heureux et un peu surpris")),
                     ("style_clip_one_frame", lambda: model.style_code(np.zeros((1, 34), np.float32)))):
        try:
            r = fn()
            out[name] = f"accepted: emotion code argmax {int(np.argmax(r))}" if len(r) == 8 else "accepted"
        except S2TError as e:
            out[name] = f"refused: {e}"
    return out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True, metavar="OUT")
    p.add_argument("--weights", default=None, help="Style-E weights folder (default: shipped)")
    p.add_argument("--corpus", default="out/corpus")
    p.add_argument("--real", default="out/fit_talking")
    p.add_argument("--shards", type=int, default=4, help="corpus shards to read test utterances from")
    p.add_argument("--per-voice", type=int, default=12)
    p.add_argument("--seam-seconds", type=float, default=410.0)
    p.add_argument("--loso", default=None, help="JSON written by benchmarks/motion_loso.py (real-speaker folds)")
    p.add_argument("--loso-dir", default="out/style_e/loso", help="the fold encoders motion_loso.py wrote")
    p.add_argument("--skip-synthetic", action="store_true")
    p.add_argument("--loso-only", action="store_true", help="only the real-speaker LOSO part (needs --loso)")
    p.add_argument("--guidance", type=float, nargs="*", default=[], metavar="W",
                   help="also score emotion accuracy and mouth corr at these guidance strengths (2-step student)")
    p.add_argument("--skip-distill", action="store_true", help="skip the teacher/student mouth comparison")
    p.add_argument("--distill-every", type=int, default=3, help="compare samplers on every N-th test utterance")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--phone-weight", type=float, default=None, help="StreamConfig.phone_weight for every stream "
                   "but the distillation comparison (default: the runtime's)")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from engine.motion.stream import PHONE_WEIGHT
    from engine.motion.style_e import load_model

    phones = PHONE_WEIGHT if a.phone_weight is None else a.phone_weight

    model = load_model(a.weights)
    res: dict[str, object] = {"weights": str(a.weights or "shipped"), "lookahead": model.graphs.lookahead,
                              "phone_weight": phones}
    if not a.loso_only:
        res |= speed_and_seams(model, a.seam_seconds, a.seed, phones)
        res["bad_input"] = bad_inputs(model)
    if not a.skip_synthetic and not a.loso_only:
        res |= synthetic(model, a.corpus, a.shards, a.per_voice, a.seed, tuple(a.guidance), not a.skip_distill,
                         a.distill_every, phone_weight=phones)
    if a.loso and Path(a.loso).is_file():
        info = json.loads(Path(a.loso).read_text())
        table = real_loso(model, a.loso, a.loso_dir, a.real, a.seed, phones)
        res["real_loso"] = {k: info[k] for k in ("folds", "clips", "target", "scoring", "envelope_baseline_mean",
                                                  "envelope_baseline_mean_lag0", "ridge_baseline_mean",
                                                  "ridge_baseline_mean_best_lag4", "per_clip_baselines",
                                                  "target_agreement", "encoder_mouth_corr_by_lookahead") if k in info}
        res["real_loso"]["style_e_mouth_corr_by_lookahead"] = table  # type: ignore[index]
        shipped = table.get(str(model.graphs.lookahead))
        if shipped:
            res["mouth_corr_real"] = shipped["mean"]  # type: ignore[index]
            res["mouth_corr_real_best_lag4"] = shipped["mean_best_lag4"]  # type: ignore[index]
            res["mouth_corr_real_lookahead"] = model.graphs.lookahead
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1))
    log.info("%s", json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
