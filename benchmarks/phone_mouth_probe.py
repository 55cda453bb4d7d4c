"""A phone recogniser as the mouth's audio front end, measured against the shipped encoder (research only).

Question: is the held-out synthesizer (flite) jaw score low because the audio encoder's acoustics do not carry
over to new voices, and would a speaker-independent phonetic front end help real speakers too? pocketsphinx's
bundled US-English acoustic model (trained by CMU on far more speech than our ~150 s of real clips) decodes
phones in allphone mode, streamed in 40 ms pieces; the partial segmentation known L frames after a frame is
turned into mouth channels by the corpus's own phone -> viseme -> coarticulation map (engine.data.visemes,
the map the synthetic ground truth was made with). No parameter of it is fitted to our data. Scored:
- flite test voices (never trained on): its jawOpen against the pseudo-jaw, offline and streamed with
  L = 0, 2, 4, 8 frames of lookahead, the same utterances motion_quality.py scores;
- real clips: its jaw against the tracked mouth opening (lag 0 and best lag within +-4), and its lip shapes
  against the fitted lip channels beside the shipped encoder's;
- real clips, leave-one-speaker-out ridge (the shipped linear jaw head's recipe, ridge strength by inner
  leave-one-speaker-out): mel window alone, one-hot phones (the L = 2 stream's, 4 frames back) alone, both.
Nothing here ships; the runtime has no pocketsphinx in its path.

    .venv/bin/python benchmarks/phone_mouth_probe.py --json benchmarks/results/phone_mouth_probe.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

log = logging.getLogger("phone_mouth_probe")
CHUNK = 640  # samples per video frame (16 kHz, 25 fps)
WINDOW_S = 2.0  # phones that ended longer ago than this no longer shape the current frame (coarticulation ~0.3 s)


class PhoneStream:
    """The runtime's decoder (engine.audio.phones), with every partial segmentation kept, so that one decoding
    pass scores several lookaheads."""

    def __init__(self) -> None:
        from engine.audio.phones import decoder

        self.dec = decoder()

    def run(self, audio: np.ndarray, frames: int) -> tuple[list[list[tuple[str, float, float]]], float]:
        """Segmentations known after each of `frames` + 9 pieces (silence past the end), and ms per piece."""
        from engine.audio.phones import best_segments

        x = np.asarray(audio, np.float32) + np.random.default_rng(0).normal(0, 1e-4, len(audio)).astype(np.float32)
        pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
        pcm = np.concatenate([pcm, np.zeros(10 * CHUNK, "<i2")])
        hist, t = [], 0.0
        self.dec.start_utt()
        for i in range(frames + 9):
            t0 = time.perf_counter()
            self.dec.process_raw(pcm[i * CHUNK : (i + 1) * CHUNK].tobytes(), full_utt=False)
            hist.append(best_segments(self.dec))
            t += time.perf_counter() - t0
        self.dec.end_utt()
        return hist, 1e3 * t / max(frames + 9, 1)

    def offline(self, audio: np.ndarray) -> list[tuple[str, float, float]]:
        """The whole utterance decoded at once (the best path knows the future)."""
        from engine.audio.phones import best_segments

        x = np.asarray(audio, np.float32) + np.random.default_rng(0).normal(0, 1e-4, len(audio)).astype(np.float32)
        self.dec.start_utt()
        self.dec.process_raw((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes(), full_utt=True)
        self.dec.end_utt()
        return best_segments(self.dec)

    @staticmethod
    def mouth(segs: list[tuple[str, float, float]], frames: int) -> np.ndarray:
        from engine.audio.phones import phone_mouth

        return phone_mouth(segs, frames)

    def streamed(self, hist: list[list[tuple[str, float, float]]], frames: int, lookahead: int) -> np.ndarray:
        """(frames, 28): frame f from the segmentation known after frame f + lookahead arrived."""
        out = np.zeros((frames, 28), np.float32)
        for f in range(frames):
            lo = max(0.0, (f + 1) * 0.04 - WINDOW_S)
            segs = [(w, b - lo, e - lo) for w, b, e in hist[min(f + lookahead, len(hist) - 1)] if e > lo]
            if segs:
                out[f] = self.mouth(segs, int(round(((f + 1) * 0.04 - lo) / 0.04)))[-1]
        return out


def flite_scores(ps: PhoneStream, corpus: str, shards: int, per_voice: int, looks: list[int]) -> dict[str, Any]:
    """Phone-track jawOpen vs the flite pseudo-jaw, per voice: offline and streamed per lookahead."""
    from engine.metrics import pearson
    from engine.motion.train import load_corpus

    by_voice: dict[str, list[Any]] = {}
    for u in load_corpus(corpus, None, shards, ("test",), keep_audio=True).synth:
        if len(u.coeffs) >= 40:
            by_voice.setdefault(u.voice, []).append(u)
    rows: dict[str, dict[str, list[float]]] = {}
    ms: list[float] = []
    for v in sorted(by_voice):
        r: dict[str, list[float]] = {"offline": [], **{f"L{k}": [] for k in looks}}
        for u in by_voice[v][:per_voice]:
            n, gt = len(u.coeffs), u.coeffs[:, 0]
            r["offline"].append(pearson(ps.mouth(ps.offline(u.audio), n)[:, 0], gt))
            hist, t = ps.run(u.audio, n)
            ms.append(t)
            for k in looks:
                r[f"L{k}"].append(pearson(ps.streamed(hist, n, k)[:, 0], gt))
        rows[v] = r
        log.info("%s: %s", v, {k: round(float(np.mean(x)), 3) for k, x in r.items()})
    keys = list(next(iter(rows.values())))
    return {"per_voice": {v: {k: round(float(np.mean(x)), 4) for k, x in r.items()} for v, r in rows.items()},
            "mean": {k: round(float(np.mean([np.mean(r[k]) for r in rows.values()])), 4) for k in keys},
            "utterances": sum(len(r["offline"]) for r in rows.values()),
            "decode_ms_per_40ms_median": round(float(np.median(ms)), 3)}


def _tracked_mouth(tr: Any, audio: np.ndarray, n: int) -> np.ndarray:
    """(n, 14) mouth channels from the streaming tracker as the runtime reads them (K = 2, L = 2)."""
    tr.reset()
    a = np.pad(audio, (0, (n + 4) * CHUNK))[: (n + 4) * CHUNK]
    out = []
    for f in range(0, n + 2, 2):
        tr.push(a[f * CHUNK : (f + 2) * CHUNK])
        out.append(tr.mouth(f - 2, 2)[:, :14])
    return np.concatenate(out)[2 : 2 + n]


def _training_mouths(corpus: str, shards: int, utterances: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(streamed phone mouth (n, 14), ground-truth mouth (n, 14)) of `utterances` espeak-ng training utterances."""
    from engine.audio.phones import PhoneTracker
    from engine.motion.train import load_corpus

    synth = load_corpus(corpus, None, shards, ("train",), keep_audio=True).synth
    tr = PhoneTracker()
    pick = np.random.default_rng(seed).permutation(len(synth))[:utterances]
    return [(_tracked_mouth(tr, synth[int(i)].audio, len(synth[int(i)].coeffs)), synth[int(i)].coeffs[:, :14])
            for i in pick]


def jaw_calibration(corpus: str, shards: int, utterances: int, seed: int = 0) -> dict[str, Any]:
    """Mean/spread matching of the streamed (L = 2) phone jaw to the synthetic jawOpen on espeak-ng training
    utterances: the map calibrate_jaw gives the encoder's jaw, so both share one scale (engine.audio.phones
    JAW_SCALE / JAW_BIAS). Also their correlation there: espeak-ng's formant voices are hard for the recogniser."""
    from engine.metrics import pearson

    pairs = _training_mouths(corpus, shards, utterances, seed)
    p, g = np.concatenate([ph[:, 0] for ph, _ in pairs]), np.concatenate([gt[:, 0] for _, gt in pairs])
    scale = float(g.std() / p.std())
    return {"utterances": len(pairs), "frames": len(p), "scale": round(scale, 4),
            "bias": round(float(g.mean() - scale * p.mean()), 4), "r_espeak_train": round(pearson(p, g), 4)}


def lip_calibration(corpus: str, shards: int, utterances: int, seed: int = 0) -> dict[str, Any]:
    """Gain per mouth channel (engine.audio.phones LIP_GAIN): the synthetic ground truth's motion within an
    utterance (deviation from a ~1 s running mean) over the streamed (L = 2) phones' motion, on espeak-ng training
    utterances. Within-utterance motion, not the whole spread: the corpus's spread of smile and upper lip includes
    emotion, which phones do not hear."""
    from engine.motion.amplitude import running_deviation

    pairs = _training_mouths(corpus, shards, utterances, seed)
    ph = np.concatenate([running_deviation(p) for p, _ in pairs]).std(0)
    gt = np.concatenate([running_deviation(g) for _, g in pairs]).std(0)
    gain = np.where(ph > 1e-6, gt / np.maximum(ph, 1e-6), 0.0)
    return {"utterances": len(pairs), "gain": [round(float(x), 3) for x in gain]}


def real_lip_blend(corpus: str, real: str, weights: str, blend: tuple[float, ...] = (0.0, 0.2, 0.8)
                   ) -> dict[str, Any]:
    """Real clips: the lip shapes the stream gives (the shipped encoder's lip channels, which never trained on a
    real clip, plus `phone_weight` of the phones' within-utterance motion, as engine.motion.stream does) against
    the fitted lip channels, mean r over channels that move, per weight."""
    from engine.audio.phones import PhoneTracker, lip_shift
    from engine.metrics import pearson
    from engine.motion.amplitude import running_deviation
    from engine.motion.audio_train import encode_audio
    from engine.motion.train import load_corpus, load_modules

    enc = load_modules(Path(weights) / "style_e.npz").audio
    tr = PhoneTracker()
    rows: dict[float, list[float]] = {w: [] for w in blend}
    for u in load_corpus(corpus, real, 0, ("train",), keep_audio=True).real:
        e = encode_audio(enc, u)
        n = min(len(e), len(u.coeffs))
        e = e[:n, :14].astype(np.float64)
        moved = lip_shift(running_deviation(_tracked_mouth(tr, u.audio, n)), running_deviation(e))
        chans = [c for c in range(1, 14) if u.coeffs[:n, c].std() > 1e-3 and c not in (6, 7)]
        for w in blend:
            out = e + w * moved
            rows[w].append(float(np.mean([pearson(out[:, c], u.coeffs[:n, c]) for c in chans])))
    return {"clips": len(rows[blend[0]]), "channels": "mouth channels 1..13 that move in the fit, frowns left out",
            "lip_shapes_r0_by_phone_weight": {str(w): round(float(np.mean(v)), 4) for w, v in rows.items()}}


def real_scores(ps: PhoneStream, corpus: str, real: str, weights: str, looks: list[int]) -> dict[str, Any]:
    """Real clips: phone jaw vs the tracked opening; lip shapes vs the fitted channels; LOSO ridge feature sets."""
    from engine.metrics import best_lag_pearson, pearson
    from engine.motion.audio_encoder import N_MOUTH
    from engine.motion.audio_train import _jaw_windows, encode_audio
    from engine.motion.train import align_reals, load_corpus, load_modules, mouth_of
    from engine.spec import DEFAULT_SPEC

    enc = load_modules(Path(weights) / "style_e.npz").audio
    reals = load_corpus(corpus, real, 0, ("train",), keep_audio=True).real
    aligned, _ = align_reals(reals, 0)  # the linear head's training targets: jaw in step with the envelope
    jaw: dict[str, dict[str, list[float]]] = {k: {"r0": [], "best_lag4": []} for k in ["offline", *[f"L{k}" for k in looks]]}
    shapes: dict[str, dict[str, list[float]]] = {}
    feats: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    names: dict[str, int] = {}
    for u, ua in zip(reals, aligned):
        tgt = mouth_of(u)
        mw = _jaw_windows(enc, u)
        n = min(len(tgt), len(mw), len(u.coeffs))
        hist, _ = ps.run(u.audio, n)
        tracks = {"offline": ps.mouth(ps.offline(u.audio), n), **{f"L{k}": ps.streamed(hist, n, k) for k in looks}}
        for k, tr in tracks.items():
            jaw[k]["r0"].append(pearson(tr[:, 0], tgt[:n]))
            jaw[k]["best_lag4"].append(best_lag_pearson(tr[:, 0], tgt[:n], 4)[0])
        e = encode_audio(enc, u)[:n]
        for c in range(1, N_MOUTH):
            g = u.coeffs[:n, c]
            if g.std() > 1e-3:
                s = shapes.setdefault(DEFAULT_SPEC.expression[c], {"encoder": [], "phones_L2": []})
                s["encoder"].append(pearson(e[:, c], g))
                s["phones_L2"].append(pearson(tracks["L2"][:, c] if 2 in looks else tracks["offline"][:, c], g))
        ids = np.full((n, 7), -1)  # phone identity at frames f-4 .. f+2, as known after frame f+2 arrived
        for f in range(n):
            lab = np.full((f + 3) * 4 + 4, -1)
            for w, b, e_ in hist[min(f + 2, len(hist) - 1)]:
                lab[int(round(b * 100)) : int(round(e_ * 100))] = names.setdefault(w, len(names))
            for j, g_ in enumerate(range(f - 4, f + 3)):
                if g_ >= 0 and g_ * 4 + 2 < len(lab):
                    ids[f, j] = lab[g_ * 4 + 2]
        feats.append((u.split, mw[:n], ids, tgt[:n], mouth_of(ua)[:n]))
        log.info("real clip %s done", u.voice)
    ridge = {kind: loso_ridge(feats, len(names), kind) for kind in ("mel", "phones", "mel+phones")}
    mean = lambda d: {k: round(float(np.mean(v)), 4) for k, v in d.items()}  # noqa: E731
    return {"clips": len(reals), "jaw_vs_aperture": {k: mean(v) for k, v in jaw.items()},
            "lip_shapes_vs_fitted_r0": {c: mean(v) | {"clips": len(v["encoder"])} for c, v in shapes.items()},
            "loso_ridge_jaw": ridge}


def loso_ridge(feats: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]], phones: int,
               kind: str, grid: tuple[float, ...] = (1e2, 1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6)) -> dict[str, Any]:
    """Leave-one-speaker-out ridge to the z-scored aligned opening; strength by inner leave-one-speaker-out."""
    from engine.metrics import best_lag_pearson, pearson

    def x_of(mw: np.ndarray, ids: np.ndarray) -> np.ndarray:
        oh = np.zeros((len(ids), ids.shape[1], phones + 1))
        oh[np.arange(len(ids))[:, None], np.arange(ids.shape[1])[None], ids] = 1.0
        ph = oh[:, :, :phones].reshape(len(ids), -1)
        return {"mel": mw, "phones": ph, "mel+phones": np.concatenate([mw, ph], 1)}[kind]

    xs = [x_of(mw, ids).astype(np.float64) for _, mw, ids, _, _ in feats]
    allx = np.concatenate(xs)
    mu, sd = allx.mean(0), allx.std(0) + 1e-6
    xs = [(x - mu) / sd for x in xs]
    ys = [(y - y.mean()) / (y.std() + 1e-9) for *_, y in feats]
    grams = [(x.T @ x, x.T @ y) for x, y in zip(xs, ys)]
    eye = np.eye(xs[0].shape[1])
    spk = [f[0] for f in feats]

    def fit(idx: list[int], lam: float) -> np.ndarray:
        return np.linalg.solve(sum(grams[i][0] for i in idx) + lam * eye, sum(grams[i][1] for i in idx))

    r0, rb, lams = [], [], []
    for s in sorted(set(spk)):
        tr = [i for i in range(len(feats)) if spk[i] != s]
        inner = {}
        for lam in grid:
            sc = []
            for s2 in sorted({spk[i] for i in tr}):
                w = fit([i for i in tr if spk[i] != s2], lam)
                sc += [pearson(xs[i] @ w, ys[i]) for i in tr if spk[i] == s2]
            inner[lam] = float(np.mean(sc))
        lam = max(inner, key=inner.__getitem__)
        lams.append(lam)
        w = fit(tr, lam)
        for i in range(len(feats)):
            if spk[i] == s:
                p = xs[i] @ w
                r0.append(pearson(p, feats[i][3]))
                rb.append(best_lag_pearson(p, feats[i][3], 4)[0])
    return {"r0": round(float(np.mean(r0)), 4), "best_lag4": round(float(np.mean(rb)), 4), "ridge_per_fold": lams}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True)
    p.add_argument("--corpus", default="out/corpus")
    p.add_argument("--real", default="out/fit_talking")
    p.add_argument("--weights", default="engine/motion/weights")
    p.add_argument("--shards", type=int, default=4, help="corpus shards whose flite test utterances are scored")
    p.add_argument("--per-voice", type=int, default=12)
    p.add_argument("--lookaheads", default="0,2,4,8")
    p.add_argument("--calibration-utterances", type=int, default=400, help="espeak-ng training utterances the "
                   "phone jaw's scale is matched on")
    p.add_argument("--lips-only", action="store_true", help="only the lip parts (lip_calibration, real_lip_blend), "
                   "merged into an existing --json")
    a = p.parse_args(argv)
    if a.lips_only:
        out = Path(a.json)
        res = json.loads(out.read_text()) if out.is_file() else {}
        res["lip_calibration"] = lip_calibration(a.corpus, 2, 200)
        res["real_lip_blend"] = real_lip_blend(a.corpus, a.real, a.weights)
        res["lips_command"] = " ".join(["benchmarks/phone_mouth_probe.py", *(argv or sys.argv[1:])])
        out.write_text(json.dumps(res, indent=1))
        log.info("lip gains %s; real lips %s", res["lip_calibration"]["gain"], res["real_lip_blend"])
        return 0
    looks = [int(x) for x in a.lookaheads.split(",")]
    ps = PhoneStream()
    t0 = time.perf_counter()
    res: dict[str, Any] = {"command": " ".join(["benchmarks/phone_mouth_probe.py", *(argv or sys.argv[1:])]),
                           "front_end": "pocketsphinx 5 allphone (bundled en-us acoustic model and phone LM), 40 ms "
                                        "pieces; phones -> engine.data.visemes.mouth_track; nothing fitted"}
    res["jaw_calibration"] = jaw_calibration(a.corpus, 2, a.calibration_utterances)
    res["flite_jaw"] = flite_scores(ps, a.corpus, a.shards, a.per_voice, looks)
    shipped = REPO / "benchmarks" / "results" / "motion_quality.json"
    if shipped.is_file():
        q = json.loads(shipped.read_text())
        res["flite_jaw"]["shipped_style_e"] = {"per_voice": q.get("mouth_corr_synth_per_voice"),
                                               "mean": q.get("mouth_corr_synth")}
    res["real"] = real_scores(ps, a.corpus, a.real, a.weights, looks)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1))
    log.info("flite %s; real jaw %s; ridge %s", res["flite_jaw"]["mean"], res["real"]["jaw_vs_aperture"],
             {k: (v["r0"], v["best_lag4"]) for k, v in res["real"]["loso_ridge_jaw"].items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
