"""LEARNINGS' lip-sync conv, replicated as written and scored leave-one-speaker-out beside the shipped jaw.

LEARNINGS reports r ~0.48 on unseen speakers for a dilated 1D conv over 80-bin log-mel (100 Hz, about
+-320 ms of context) trained ~3 minutes on the real clips (per-clip z-scored mouth aperture, MSE + (1 - r) on
3 s segments, speed/EQ/noise augmentation, SpecAugment). This script trains that net once per speaker fold
(every clip of the speaker held out) and scores the held-out clips as motion_loso.py does: Pearson r per clip
at lag 0 and at the best lag within +-4 frames, mean over clips. Offline conveniences a stream cannot have are
kept in its favour: per-clip mel mean removal and GroupNorm over the whole clip. `--lookahead -1` gives the net
context on both sides; `--lookahead L` makes it causal with L video frames of lookahead (the runtime's L).
Research only: nothing here ships.

    .venv/bin/python benchmarks/lipsync_conv_replication.py --json out/lipsync_rep.json --seconds 90 --lookahead -1
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

log = logging.getLogger("lipsync_conv_replication")


def load_clips(corpus: str, real: str) -> list[dict[str, Any]]:
    """The fitted real clips: per-clip mean-removed log-mel (100 Hz) and z-scored mouth opening (25 fps)."""
    from engine.audio.features import log_mel
    from engine.motion.train import load_corpus, mouth_of

    c = load_corpus(corpus, real, 0, ("train",), keep_audio=True, align_real=False)
    clips = []
    for u in c.real:
        m = mouth_of(u).astype(np.float32)
        mel = log_mel(u.audio).astype(np.float32)  # type: ignore[arg-type]
        t = min(len(m), len(mel) // 4)
        mel, m = mel[: 4 * t], m[:t]
        clips.append({"speaker": u.split, "clip": u.voice, "mel": mel - mel.mean(0, keepdims=True),
                      "z": (m - m.mean()) / (m.std() + 1e-6)})
    return clips


def build_net(lookahead: int, channels: int = 128, dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2, 4, 8)) -> Any:
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Net(nn.Module):
        """(B, 80, N) log-mel -> (B, N // 4) mouth opening per video frame; residual dilated k3 convs."""

        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Conv1d(80, channels, 3, padding=1)
            self.convs = nn.ModuleList([nn.Conv1d(channels, channels, 3, dilation=d) for d in dilations])
            self.norms = nn.ModuleList([nn.GroupNorm(1, channels) for _ in dilations])
            self.drop = nn.Dropout(0.1)
            self.out = nn.Conv1d(channels, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = F.gelu(self.inp(x))
            for conv, norm, d in zip(self.convs, self.norms, dilations):
                pad = (d, d) if lookahead < 0 else (2 * d, 0)
                h = h + self.drop(F.gelu(norm(conv(F.pad(h, pad)))))
            y = self.out(h)[:, 0]
            if lookahead > 0:  # causal: output frame t sees `lookahead` video frames ahead
                y = F.pad(y[:, 4 * lookahead:], (0, 4 * lookahead))
            b, n = y.shape
            return y[:, : n // 4 * 4].reshape(b, n // 4, 4).mean(-1)

    return Net()


def batch(train: list[dict[str, Any]], rng: np.random.Generator, scale: float, size: int = 16,
          frames: int = 75) -> tuple[Any, Any]:
    """3 s segments with speed 0.88-1.12 (mel and target warped together), EQ tilt, noise, SpecAugment."""
    import torch

    xs, ys = [], []
    for _ in range(size):
        cl = train[int(rng.integers(len(train)))]
        n = min(int(round(frames * rng.uniform(0.88, 1.12))), len(cl["z"]) - 2)
        t0 = int(rng.integers(0, len(cl["z"]) - n))
        mel, z = cl["mel"][4 * t0 : 4 * (t0 + n)], cl["z"][t0 : t0 + n]
        mi, zi = np.linspace(0, len(mel) - 1, 4 * frames), np.linspace(0, len(z) - 1, frames)
        mel = np.stack([np.interp(mi, np.arange(len(mel)), mel[:, k]) for k in range(80)], 1) / scale
        mel = mel + rng.uniform(-0.5, 0.5) * np.linspace(-1, 1, 80)[None] + rng.normal(0, 0.05, mel.shape)
        for _ in range(2):
            f = int(rng.integers(0, 10)); f0 = int(rng.integers(0, 80 - f)); mel[:, f0 : f0 + f] = 0
            w = int(rng.integers(0, 20)); w0 = int(rng.integers(0, len(mel) - w)); mel[w0 : w0 + w] = 0
        xs.append(mel.T)
        ys.append(np.interp(zi, np.arange(len(z)), z))
    return torch.tensor(np.stack(xs), dtype=torch.float32), torch.tensor(np.stack(ys), dtype=torch.float32)


def run(clips: list[dict[str, Any]], seconds: float, lookahead: int, max_folds: int = 0) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from engine.metrics import best_lag_pearson, pearson

    scale = float(np.concatenate([c["mel"] for c in clips]).std())
    speakers = sorted({c["speaker"] for c in clips})[: max_folds or None]
    per_clip: dict[str, dict[str, float]] = {}
    for k, spk in enumerate(speakers):
        train = [c for c in clips if c["speaker"] != spk]
        torch.manual_seed(k)
        rng = np.random.default_rng(k)
        net = build_net(lookahead)
        opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-2)
        t0, steps = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            x, y = batch(train, rng, scale)
            p = net(x)
            pc, yc = p - p.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
            r = (pc * yc).sum(1) / (pc.norm(dim=1) * yc.norm(dim=1) + 1e-6)
            loss = F.mse_loss(p, y) + (1 - r).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        net.eval()
        for c in (c for c in clips if c["speaker"] == spk):
            with torch.no_grad():
                pred = net(torch.tensor((c["mel"] / scale).T[None], dtype=torch.float32))[0].numpy()
            z = c["z"][: len(pred)]
            best, lag = best_lag_pearson(pred, z, 4)
            per_clip[c["clip"]] = {"lag0": round(float(pearson(pred, z)), 4), "best_lag4": round(float(best), 4),
                                   "lag": int(lag), "steps": steps}
            log.info("fold %s: %s r %.3f, best %.3f (lag %d), %d steps", spk, c["clip"], per_clip[c["clip"]]["lag0"],
                     best, lag, steps)
    return {"per_clip": per_clip, "mean_lag0": round(float(np.mean([v["lag0"] for v in per_clip.values()])), 4),
            "mean_best_lag4": round(float(np.mean([v["best_lag4"] for v in per_clip.values()])), 4),
            "folds": len(speakers), "clips": len(per_clip), "seconds_per_fold": seconds, "lookahead": lookahead}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True)
    p.add_argument("--corpus", default="out/corpus")
    p.add_argument("--real", default="out/fit_talking")
    p.add_argument("--seconds", type=float, default=90.0, help="training wall time per fold")
    p.add_argument("--lookahead", type=int, default=-1, help="-1: context on both sides; L >= 0: causal, L frames ahead")
    p.add_argument("--max-folds", type=int, default=0, help="only the first N speaker folds (0: all)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    res = run(load_clips(a.corpus, a.real), a.seconds, a.lookahead, a.max_folds)
    Path(a.json).write_text(json.dumps(res, indent=1))
    log.info("mean over %d clips: lag 0 %.3f, best lag %.3f", res["clips"], res["mean_lag0"], res["mean_best_lag4"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
