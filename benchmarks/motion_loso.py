"""Real-speaker lip sync, leave-speakers-out: per fold and lookahead L, train the Style-E audio encoder without the
fold's speakers; score jawOpen correlation on them beside the envelope and ridge baselines. Writes JSON and
the fold encoders (out/…/enc_L{L}_f{k}.npz) that motion_quality.py swaps into the full Style-E.

    nice -n 19 .venv/bin/python benchmarks/motion_loso.py --json out/style_e/loso.json --out out/style_e/loso

The fold encoders follow the shipped recipe (engine/motion/audio_train.py: real jaw, per-clip z-score,
MSE + (1 - r), augmentation; synthetic speech for the other 13 mouth channels only), `--steps` each.

Folds group speakers round-robin (a speaker's clips are always in one fold): no score comes from a speaker
the model trained on.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
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
    p.add_argument("--lead", type=int, default=0, help="jaw lead training clips are aligned to (-1: their median)")
    p.add_argument("--synth-shards", type=int, default=4, help="corpus shards whose flite test utterances score the "
                   "fold encoders on held-out synthesizer voices (0: skip)")
    p.add_argument("--per-voice", type=int, default=12, help="flite test utterances per voice")
    p.add_argument("--max-folds", type=int, default=0, help="only the first N folds (quick experiments)")
    a = p.parse_args(argv)
    import torch

    from engine.audio.features import rms_envelope
    from engine.motion.audio_train import encode_audio, train_audio_encoder
    from engine.motion.train import TrainConfig, align_reals, load_corpus, state_arrays

    torch.set_num_threads(1)
    full = load_corpus(a.corpus, a.real, a.shards, ("train",), keep_audio=True)
    reals = full.real  # unaligned: scoring uses the fitted coefficients as they are
    folds = folds_of([u.split for u in reals], a.folds)
    res: dict[str, object] = {"folds": folds, "clips": len(reals), "train_seconds_cap_per_fold": a.seconds,
                              "train_steps_per_fold": a.steps,
                              "real_share": a.real_share, "dropout": a.dropout,
                              "channels": a.channels}
    train_sets, leads = [], []
    for held in folds:  # the training clips of a fold are aligned among themselves only (no held-out timing)
        tr, lead = align_reals([u for u in reals if u.split not in held], None if a.lead < 0 else a.lead)
        train_sets.append(tr)
        leads.append(lead)
    res["train_jaw_lead_per_fold"] = leads
    env, ridge, ridge_lag = {}, {}, {}
    for k, held in enumerate(folds):
        tr = train_sets[k]
        x = np.concatenate([ridge_features(u.mel.astype(np.float32)) for u in tr])
        y = np.concatenate([(u.coeffs[:, 0] - u.coeffs[:, 0].mean()) / (u.coeffs[:, 0].std() + 1e-6) for u in tr])
        mu, sd = x.mean(0), x.std(0) + 1e-6
        xs = (x - mu) / sd
        w = np.linalg.solve(xs.T @ xs + 1e3 * np.eye(xs.shape[1]), xs.T @ y)
        for u in reals:
            if u.split in held:
                pr = ((ridge_features(u.mel.astype(np.float32)) - mu) / sd) @ w
                ridge[u.voice] = corr(pr, u.coeffs[:, 0])
                ridge_lag[u.voice] = best_lag_corr(pr, u.coeffs[:, 0])
                e = rms_envelope(u.audio)[: len(u.coeffs)]  # type: ignore[arg-type]
                env[u.voice] = best_lag_corr(e, u.coeffs[: len(e), 0])
    res["envelope_baseline_mean"] = round(float(np.mean(list(env.values()))), 4)
    res["ridge_baseline_mean"] = round(float(np.mean(list(ridge.values()))), 4)
    res["ridge_baseline_mean_best_lag4"] = round(float(np.mean(list(ridge_lag.values()))), 4)
    res["scoring"] = ("Pearson r of jawOpen (predicted vs fitted) per held-out clip, mean over clips; 'best_lag4' "
                      "takes the best lag within ±4 frames, the protocol LEARNINGS uses for the envelope baseline "
                      "(envelope_baseline_mean is best-lag). A fold's training clips are aligned to the jaw lead "
                      "train_jaw_lead_per_fold (align_reals, among themselves only); held-out clips are scored as fitted.")
    res["per_clip_baselines"] = {c: {"envelope": round(env[c], 4), "ridge": round(ridge[c], 4)} for c in sorted(env)}
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
            enc = train_audio_encoder(sub, cfg, look, a.steps, a.seconds)
            np.savez(out / f"enc_L{look}_f{k}.npz", **state_arrays("audio", enc))
            for u in reals:
                if u.split in held:
                    pred = encode_audio(enc, u)[:, 0]
                    per_clip[u.voice] = corr(pred, u.coeffs[:, 0])
                    per_clip_lag[u.voice] = best_lag_corr(pred, u.coeffs[:, 0])
            synth_r += [corr(encode_audio(enc, u)[:, 0], u.coeffs[:, 0]) for u in flite]
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
