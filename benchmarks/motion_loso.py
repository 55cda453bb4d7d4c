"""Real-speaker lip sync, leave-speakers-out: per fold and lookahead L, train the Style-E audio encoder without the
fold's speakers; score the predicted mouth opening against the real one (the tracked inner-lip gap / IOD that
`s2t data fit` stores as `aperture`; `--target jaw`: the fitted jawOpen) on them, beside the envelope and ridge
baselines against the same target. Writes JSON and the fold encoders (out/…/enc_L{L}_f{k}.npz) that
motion_quality.py swaps into the full Style-E.

    nice -n 19 .venv/bin/python benchmarks/motion_loso.py --json out/style_e/loso.json --out out/style_e/loso
    # --folds 11: one speaker per fold (true leave-one-speaker-out over the 11 speakers of data/talking)

The fold encoders follow the shipped recipe (engine/motion/audio_train.py: real jaw, per-clip z-score,
MSE + (1 - r), augmentation; synthetic speech for the other 13 mouth channels only), `--steps` each.

Folds group speakers round-robin (a speaker's clips are always in one fold): no score comes from a speaker
the model trained on. `--seeds N` trains N encoders per fold and scores their mean (a seed ensemble).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.metrics import best_lag_pearson
from engine.metrics import pearson as corr

log = logging.getLogger("motion_loso")


def best_lag_corr(x: np.ndarray, y: np.ndarray, max_lag: int = 4) -> float:
    return best_lag_pearson(x, y, max_lag)[0]


def ridge_features(mel: np.ndarray, radius: int = 8) -> np.ndarray:
    """(T, 320) -> (T, 80 * (2 radius + 1)): sub-frame-averaged mel over ±radius frames."""
    m = mel.reshape(len(mel), 4, 80).mean(1)
    p = np.pad(m, ((radius, radius), (0, 0)), mode="edge")
    return np.concatenate([p[i : i + len(m)] for i in range(2 * radius + 1)], 1)


TARGETS = {"aperture": "the tracked inner-lip gap / inter-ocular distance (face-mesh landmarks 13-14 over 33-263, "
                         "`aperture` in the fit, LEARNINGS' measure)",
           "jaw": "the fitted jawOpen coefficient"}


def target_agreement(reals: list, real_dir: Path) -> dict[str, dict[str, float]]:  # noqa: ANN001
    """Per clip: how the candidate mouth-opening measures agree (lag 0) and the envelope's best-lag r with each."""
    from engine.audio.features import rms_envelope

    out = {}
    for u in reals:
        with np.load(real_dir / f"{u.voice}.npz", allow_pickle=False) as z:
            mesh = z["mesh_aperture"][: len(u.coeffs)] if "mesh_aperture" in z.files else None
        ap, jaw = (u.mouth if u.mouth is not None else np.full(len(u.coeffs), np.nan)), u.coeffs[:, 0]
        e = rms_envelope(u.audio)[: len(jaw)]  # type: ignore[arg-type]
        row = {"aperture_vs_jaw": corr(ap, jaw), "envelope_vs_aperture_best_lag4": best_lag_corr(e, ap),
               "envelope_vs_jaw_best_lag4": best_lag_corr(e, jaw), "jaw_std": float(jaw.std())}
        if mesh is not None:
            row |= {"aperture_vs_mesh_gap": corr(ap, mesh), "mesh_gap_vs_jaw": corr(mesh, jaw),
                    "envelope_vs_mesh_gap_best_lag4": best_lag_corr(e, mesh)}
        out[u.voice] = {k: round(float(v), 4) for k, v in row.items()}
    return out


def baselines(reals: list, folds: list[list[str]], train_sets: list[list]) -> dict[str, object]:  # noqa: ANN001
    """Envelope and ridge (±8 frames of mel -> z-scored mouth opening, trained on the fold) on each held-out clip."""
    from engine.audio.features import rms_envelope
    from engine.motion.train import mouth_of

    env, env0, ridge, ridge_lag = {}, {}, {}, {}
    for k, held in enumerate(folds):
        tr = train_sets[k]
        x = np.concatenate([ridge_features(u.mel.astype(np.float32)) for u in tr])
        y = np.concatenate([(m - m.mean()) / (m.std() + 1e-6) for m in map(mouth_of, tr)])
        mu, sd = x.mean(0), x.std(0) + 1e-6
        xs = (x - mu) / sd
        w = np.linalg.solve(xs.T @ xs + 1e3 * np.eye(xs.shape[1]), xs.T @ y)
        for u in reals:
            if u.split in held:
                m = mouth_of(u)
                pr = ((ridge_features(u.mel.astype(np.float32)) - mu) / sd) @ w
                ridge[u.voice] = corr(pr, m)
                ridge_lag[u.voice] = best_lag_corr(pr, m)
                e = rms_envelope(u.audio)[: len(m)]  # type: ignore[arg-type]
                env[u.voice] = best_lag_corr(e, m[: len(e)])
                env0[u.voice] = corr(e, m[: len(e)])
    mean = lambda d: round(float(np.mean(list(d.values()))), 4)  # noqa: E731
    return {"envelope_baseline_mean": mean(env), "envelope_baseline_mean_lag0": mean(env0),
            "ridge_baseline_mean": mean(ridge), "ridge_baseline_mean_best_lag4": mean(ridge_lag),
            "per_clip_baselines": {c: {"envelope": round(env[c], 4), "envelope_lag0": round(env0[c], 4),
                                       "ridge": round(ridge[c], 4), "ridge_best_lag4": round(ridge_lag[c], 4)}
                                   for c in sorted(env)}}


def folds_of(speakers: list[str], k: int) -> list[list[str]]:
    uniq = sorted(set(speakers))
    return [uniq[i::k] for i in range(k)]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True)
    p.add_argument("--out", default="out/style_e/loso", help="where fold encoders are written")
    p.add_argument("--corpus", default="out/corpus")
    p.add_argument("--real", default="out/fit_talking")
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--lookaheads", default="4,0,2,8")
    p.add_argument("--seconds", type=float, default=120.0, help="training wall-time cap per (fold, L)")
    p.add_argument("--steps", type=int, default=300, help="training steps per (fold, L) (the shipped recipe's count)")
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--real-share", type=float, default=0.75, help="real share of encoder batches (rest: synthetic)")
    p.add_argument("--channels", type=int, default=128, help="audio encoder width")
    p.add_argument("--lead", type=int, default=0, help="jaw lead training clips are aligned to (-1: their median; "
                   "-2: not aligned)")
    p.add_argument("--target", choices=("aperture", "jaw"), default="aperture",
                   help="real mouth opening trained on and scored: tracked lip gap (fit `aperture`) or fitted jawOpen")
    p.add_argument("--seeds", type=int, default=1, help="encoders per (fold, L) averaged (a seed ensemble)")
    p.add_argument("--synth-shards", type=int, default=4, help="corpus shards whose flite test utterances score the "
                   "fold encoders on held-out synthesizer voices (0: skip)")
    p.add_argument("--per-voice", type=int, default=12, help="flite test utterances per voice")
    p.add_argument("--max-folds", type=int, default=0, help="only the first N folds (quick experiments)")
    a = p.parse_args(argv)
    import torch

    from engine.motion.audio_train import encode_audio, train_audio_encoder
    from engine.motion.train import TrainConfig, align_reals, load_corpus, mouth_of, state_arrays

    torch.set_num_threads(1)
    full = load_corpus(a.corpus, a.real, a.shards, ("train",), keep_audio=True)
    reals = full.real  # unaligned: scoring uses the real clips' timing as it is
    if a.target == "jaw":
        for u in reals:
            u.mouth = None
    elif any(u.mouth is None for u in reals):
        raise SystemExit(f"{a.real} has no `aperture` in every clip: refit it with `s2t data fit`")
    folds = folds_of([u.split for u in reals], a.folds)
    res: dict[str, object] = {"folds": folds, "clips": len(reals), "train_seconds_cap_per_fold": a.seconds,
                              "train_steps_per_fold": a.steps, "seeds_per_fold": a.seeds, "target": a.target,
                              "real_share": a.real_share, "dropout": a.dropout, "channels": a.channels,
                              "lead": a.lead}
    res["target_agreement"] = target_agreement(reals, Path(a.real))
    train_sets, leads = [], []
    for held in folds:  # the training clips of a fold are aligned among themselves only (no held-out timing)
        tr = [u for u in reals if u.split not in held]
        tr, lead = (tr, None) if a.lead < -1 else align_reals(tr, None if a.lead < 0 else a.lead)
        train_sets.append(tr)
        leads.append(lead)
    res["train_jaw_lead_per_fold"] = leads
    res |= baselines(reals, folds, train_sets)
    res["scoring"] = (f"Pearson r per held-out clip, mean over clips, of the predicted mouth opening (the encoder's "
                      f"jawOpen output) against the real clip's mouth opening: {TARGETS[a.target]}. 'best_lag4' "
                      "takes the best lag within ±4 frames, the protocol LEARNINGS uses for the envelope baseline; the "
                      "plain numbers are lag 0. Baselines score against the same target: RMS envelope, and a ridge "
                      "regression on ±8 frames of mel trained on the fold's training clips. A fold's training clips "
                      "are aligned to the lead train_jaw_lead_per_fold (align_reals, among themselves only; null: "
                      "not aligned); held-out clips are scored as recorded.")
    mouth_of_clip = {u.voice: mouth_of(u) for u in reals}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    table: dict[str, dict[str, float]] = {}
    flite: list = []
    if a.synth_shards:  # the utterances motion_quality.py scores (test split: flite voices, never trained on)
        by_voice: dict[str, list] = {}
        for u in load_corpus(a.corpus, None, a.synth_shards, ("test",)).synth:
            if len(u.coeffs) >= 40:
                by_voice.setdefault(u.voice, []).append(u)
        flite = [u for v in sorted(by_voice) for u in by_voice[v][: a.per_voice]]
    for look in (int(s) for s in a.lookaheads.split(",")):
        synth_r: list[float] = []
        per_clip: dict[str, float] = {}
        per_clip_lag: dict[str, float] = {}
        for k, held in enumerate(folds):
            if a.max_folds and k >= a.max_folds:
                break
            t0 = time.perf_counter()
            sub = type(full)(full.synth, train_sets[k], full.text_emb, full.text_label, full.text_held,
                             full.text_primary, full.texts)
            cfg = TrainConfig(lookahead=look, seed=k, audio_dropout=a.dropout, real_share=a.real_share,
                              audio_channels=a.channels)
            encs = []
            for s in range(a.seeds):
                encs.append(train_audio_encoder(sub, replace(cfg, seed=k + 100 * s), look, a.steps, a.seconds))
                np.savez(out / f"enc_L{look}_f{k}{f'_s{s}' if s else ''}.npz", **state_arrays("audio", encs[-1]))
            pred_of = lambda u: np.mean([encode_audio(e, u)[:, 0] for e in encs], 0)  # noqa: E731
            for u in reals:
                if u.split in held:
                    pred, tgt = pred_of(u), mouth_of_clip[u.voice]
                    per_clip[u.voice] = corr(pred, tgt)
                    per_clip_lag[u.voice] = best_lag_corr(pred, tgt)
            synth_r += [corr(pred_of(u), u.coeffs[:, 0]) for u in flite]
            log.info("L=%d fold %d (%s) done in %.0f s", look, k, held, time.perf_counter() - t0)
        table[str(look)] = {"mean": round(float(np.mean(list(per_clip.values()))), 4),
                            "mean_best_lag4": round(float(np.mean(list(per_clip_lag.values()))), 4),
                            "per_clip": {c: round(v, 4) for c, v in sorted(per_clip.items())},
                            "per_clip_best_lag4": {c: round(v, 4) for c, v in sorted(per_clip_lag.items())},
                            "flite_jaw_corr": round(float(np.mean(synth_r)), 4) if synth_r else None,
                            "flite_utterances": len(flite)}
        res["encoder_mouth_corr_by_lookahead"] = table
        Path(a.json).write_text(json.dumps(res, indent=1))
    log.info("%s", json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
