"""Style-E audio encoder training: the mouth learns from real clips, synthetic speech only labels what real clips cannot.

Recipe (LEARNINGS.md "Lip sync from audio"): the real clips' mouth opening — the tracked inner-lip gap / IOD
that `s2t data fit` stores as `aperture` (fitted jawOpen for older fits without it) — z-scored per clip
(scales differ per speaker), loss MSE + (1 - Pearson r) over 3 s segments; augmentation: speed (time warp of
the log-mel and the target together), gain, spectral tilt (EQ), additive noise, SpecAugment. Synthetic
espeak-ng utterances train only the other 13 mouth channels (MSE, synthetic scale): their pseudo-jaw is
not mixed into the jaw target (it did not help lip sync). After training, the jaw output is mapped to the
synthetic coefficient scale by matching its mean/spread on synthetic training utterances (`mouth_scale`,
`mouth_bias` buffers), so the encoder's output stays the named 14 mouth channels + energy.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from engine.motion.audio_encoder import N_MOUTH, AudioEncoder, AudioEncoderConfig, pad_mel

if TYPE_CHECKING:
    from engine.motion.train import Corpus, TrainConfig, Utt

log = logging.getLogger(__name__)
SEGMENT = 75  # frames per training segment (3 s at 25 fps)
SPEED = (0.88, 1.12)  # time-warp factors (speed augmentation)
MIN_JAW_STD = 1e-3  # a clip (or segment) whose fitted jaw barely moves carries no lip-sync signal


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row Pearson r over the last axis."""
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + 1e-6)


def augment_mel(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Log-mel augmentation in place of audio augmentation: gain, spectral tilt, additive noise, SpecAugment."""
    b = x.shape[0]
    v = x.view(b, x.shape[1], 4, 80)
    gain = (torch.rand(b, 1, 1, 1, generator=g) - 0.5) * 2.8
    tilt = (torch.rand(b, 1, 1, 1, generator=g) - 0.5) * torch.linspace(-1.5, 1.5, 80)
    noise = torch.log(torch.tensor(1e-5)) + torch.rand(b, 1, 1, 1, generator=g) * 6.0
    v = torch.logaddexp(v + gain + tilt, noise.expand_as(v))
    f0 = torch.randint(0, 70, (b,), generator=g)
    fw = torch.randint(0, 10, (b,), generator=g)
    bins = torch.arange(80)
    fmask = (bins[None] >= f0[:, None]) & (bins[None] < (f0 + fw)[:, None])
    v = torch.where(fmask[:, None, None, :], v.mean(), v)
    t0 = torch.randint(0, max(1, v.shape[1] - 4), (b,), generator=g)  # time mask: up to 3 frames (120 ms)
    tw = torch.randint(0, 4, (b,), generator=g)
    frames = torch.arange(v.shape[1])
    tmask = (frames[None] >= t0[:, None]) & (frames[None] < (t0 + tw)[:, None])
    v = torch.where(tmask[:, :, None, None], v.mean(), v)
    return v.reshape_as(x)


def _lerp_rows(a: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Rows of `a` at fractional positions (linear interpolation, clamped to the ends)."""
    pos = np.clip(pos, 0, len(a) - 1)
    i0 = np.minimum(pos.astype(np.int64), len(a) - 2) if len(a) > 1 else np.zeros(len(pos), np.int64)
    fr = (pos - i0)[:, None] if len(a) > 1 else np.zeros((len(pos), 1))
    return a[i0] * (1 - fr) + a[np.minimum(i0 + 1, len(a) - 1)] * fr


def warped_segment(sub: np.ndarray, target: np.ndarray, start: float, speed: float, seg: int, past: int,
                   look: int) -> tuple[np.ndarray, np.ndarray]:
    """A time-warped training window: padded sub-frame mel `sub` (4 (T + past + look), 80) and per-frame targets
    (T, C) -> mel (seg + past + look, 320) and targets (seg, C) read at `start + i * speed` (frames)."""
    w = seg + past + look
    mel = _lerp_rows(sub, 4 * start + np.arange(4 * w) * speed).reshape(w, 320)  # sub-frame positions
    y = _lerp_rows(target, start + (past + np.arange(seg)) * speed - past)
    return mel.astype(np.float32), y.astype(np.float32)


def _zjaw(u: "Utt") -> np.ndarray | None:
    """The jaw target of a real clip, z-scored: its tracked mouth opening (fit `aperture`) when stored, else jawOpen."""
    from engine.motion.train import mouth_of

    j = mouth_of(u)
    sd = float(j.std())
    return ((j - j.mean()) / sd)[:, None].astype(np.float32) if sd > MIN_JAW_STD else None


def train_audio_encoder(c: "Corpus", cfg: "TrainConfig", lookahead: int, steps: int, seconds: float,
                        seg: int = SEGMENT) -> AudioEncoder:
    """Jaw from real clips' mouth opening (per-clip z-score, MSE + (1 - r)); the other 13 mouth channels from
    synthetic MSE."""
    from engine.motion.train import Progress

    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    enc = AudioEncoder(AudioEncoderConfig(channels=cfg.audio_channels, lookahead=lookahead, dropout=cfg.audio_dropout))
    real = [(u, z) for u in c.real if (z := _zjaw(u)) is not None and len(u.coeffs) >= seg // 2]
    if not real:
        raise ValueError("no real clips with a moving jaw: the mouth cannot learn lip sync")
    synth = [u for u in c.synth if u.split == "train" and len(u.coeffs) >= seg * SPEED[1] + 1]
    allmel = np.concatenate([u.mel[::7] for u in synth[:300]] + [u.mel for u, _ in real]).astype(np.float32)
    enc.mel_mean.fill_(float(allmel.mean()))
    enc.mel_std.fill_(float(allmel.std()))
    past, look = enc.cfg.past, enc.cfg.lookahead
    sub = lambda u: pad_mel(u.mel.reshape(-1, 4, 80), past, look).reshape(-1, 80)  # noqa: E731
    real_sub = [sub(u) for u, _ in real]
    synth_sub = [sub(u) for u in synth]
    real_w = np.array([len(u.coeffs) for u, _ in real], np.float64)
    n_real = cfg.batch if not synth else max(1, int(round(cfg.batch * cfg.real_share)))
    opt = torch.optim.AdamW(enc.parameters(), 2e-3, weight_decay=1e-2)
    prog = Progress(opt, 2e-3, steps, seconds)
    enc.train()
    t0 = time.perf_counter()
    step = 0
    while prog.step(step):
        xs, yr, ys = [], [], []
        for i in range(cfg.batch):
            sp = float(rng.uniform(*SPEED))
            if i < n_real:
                k = int(rng.choice(len(real), p=real_w / real_w.sum()))
                (u, z), s_, tgt = real[k], real_sub[k], real[k][1]
            else:
                k = int(rng.integers(len(synth)))
                u, s_, tgt = synth[k], synth_sub[k], synth[k].coeffs[:, :N_MOUTH]
            span = max(len(u.coeffs) - seg * sp, 0.0)
            x, y = warped_segment(s_, tgt, float(rng.uniform(0, span)), sp, seg, past, look)
            xs.append(x)
            (yr if i < n_real else ys).append(y)
        x = augment_mel(torch.from_numpy(np.stack(xs)), g)
        raw = enc.raw(x)
        jr, yj = raw[:n_real, :, 0], torch.from_numpy(np.stack(yr))[..., 0]
        ok = (yj.std(-1) > 0.05).float()  # z units: segments where the mouth moves
        loss_r = ((1 - pearson(jr, yj)) * ok).sum() / ok.sum().clamp(min=1)
        loss_jaw = ((jr - yj) ** 2).mean()
        if ys:
            pred_s, true_s = raw[n_real:, :, 1:N_MOUTH], torch.from_numpy(np.stack(ys))[..., 1:]
            loss_syn = ((pred_s - true_s) ** 2).mean() * 10.0
            if cfg.synth_velocity > 0:  # frame-to-frame change as in the target: no jitter the target does not have
                dv = torch.diff(pred_s, dim=1) - torch.diff(true_s, dim=1)
                loss_syn = loss_syn + cfg.synth_velocity * 10.0 * (dv ** 2).mean()
        else:
            loss_syn = raw.sum() * 0
        loss = loss_jaw + loss_r + loss_syn
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(enc.parameters(), 1.0)
        opt.step()
        if step % 250 == 0:
            log.info("audio L=%d step %d jaw mse %.3f 1-r %.3f synth %.4f (%.0f s)", lookahead, step, loss_jaw.item(),
                     loss_r.item(), loss_syn.item(), time.perf_counter() - t0)
        step += 1
    log.info("audio encoder L=%d: %d steps in %.0f s", lookahead, step, time.perf_counter() - t0)
    enc.eval()
    if cfg.linear_jaw:
        enc.jaw_fit = fit_linear_jaw(enc, real)
    calibrate_jaw(enc, synth[:400])
    return enc


RIDGE_GRID = (1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6)  # ridge strengths tried (features standardised, ~4k frames)
RIDGE_DEFAULT = 1e5  # used when there are too few speakers to cross-validate


@torch.no_grad()
def _jaw_windows(enc: AudioEncoder, u: "Utt") -> np.ndarray:
    """(T, 80 * taps) raw (unstandardised) jaw-head input windows of an utterance, in the head's tap order."""
    x = torch.from_numpy(pad_mel(u.mel.reshape(-1, 4, 80), enc.cfg.past, enc.cfg.lookahead))[None]
    f = enc.jaw_frames((x - enc.mel_mean) / enc.mel_std)[0].numpy().T  # (T + taps - 1, 80)
    taps = enc.jaw_lin.kernel_size[0]
    return np.stack([f[k : k + len(f) - taps + 1] for k in range(taps)], 2).reshape(len(f) - taps + 1, -1)


@torch.no_grad()
def fit_linear_jaw(enc: AudioEncoder, real: list[tuple["Utt", np.ndarray]],
                   grid: tuple[float, ...] = RIDGE_GRID) -> dict[str, object]:
    """Fit the encoder's linear jaw head (ridge regression, z-scored mouth opening of the real clips) and switch
    the encoder to it. The ridge strength is chosen by leave-one-speaker-out over the training speakers (mean
    per-clip Pearson r of the held-out speaker's clips)."""
    wins = [_jaw_windows(enc, u) for u, _ in real]
    frames = np.concatenate(wins).reshape(-1, 80, enc.jaw_lin.kernel_size[0])
    mu, sd = frames.mean((0, 2)), frames.std((0, 2)) + 1e-6
    norm = lambda w: ((w.reshape(len(w), 80, -1) - mu[:, None]) / sd[:, None]).reshape(len(w), -1)  # noqa: E731
    xs = [norm(w).astype(np.float64) for w in wins]
    ys = [z[: len(x), 0].astype(np.float64) for x, (_, z) in zip(xs, real)]
    grams = [(x.T @ x, x.T @ y) for x, y in zip(xs, ys)]
    eye = np.eye(xs[0].shape[1])
    speakers = sorted({u.split for u, _ in real})
    scores: dict[float, list[float]] = {lam: [] for lam in grid}
    if len(speakers) >= 3:
        for s in speakers:
            tr = [g for g, (u, _) in zip(grams, real) if u.split != s]
            gram, rhs = sum(g for g, _ in tr), sum(b for _, b in tr)
            for lam in grid:
                w = np.linalg.solve(gram + lam * eye, rhs)
                scores[lam] += [float(np.corrcoef(x @ w, y)[0, 1]) for x, y, (u, _) in zip(xs, ys, real)
                                if u.split == s and y.std() > 0]
        mean = {lam: float(np.mean(v)) for lam, v in scores.items()}
        lam = max(grid, key=mean.__getitem__)
    else:
        mean, lam = {}, RIDGE_DEFAULT
    w = np.linalg.solve(sum(g for g, _ in grams) + lam * eye, sum(b for _, b in grams))
    enc.jaw_lin.weight.copy_(torch.from_numpy(w.reshape(1, 80, -1)))
    enc.jaw_lin.bias.zero_()
    enc.jaw_mu.copy_(torch.from_numpy(mu))
    enc.jaw_sd.copy_(torch.from_numpy(sd))
    enc.linear_jaw.fill_(1.0)
    log.info("linear jaw: ridge %.0e (leave-one-speaker-out r by strength: %s)", lam,
             {f"{k:.0e}": round(v, 3) for k, v in mean.items()})
    return {"ridge": lam, "speakers": len(speakers), "cv_r": {f"{k:.0e}": round(v, 4) for k, v in mean.items()}}


@torch.no_grad()
def encode_audio(enc: AudioEncoder, u: "Utt") -> np.ndarray:
    """(T, 15) encoder output for a whole utterance (silence-padded at both ends)."""
    x = torch.from_numpy(pad_mel(u.mel.reshape(-1, 4, 80), enc.cfg.past, enc.cfg.lookahead))[None]
    return enc(x)[0].numpy()


@torch.no_grad()
def calibrate_jaw(enc: AudioEncoder, synth: list["Utt"]) -> None:
    """Map the z-unit jaw output onto the synthetic jawOpen scale (mean/spread matching on `synth`)."""
    enc.mouth_scale.fill_(1.0)
    enc.mouth_bias.zero_()
    if not synth:
        return
    pred = np.concatenate([encode_audio(enc, u)[:, 0] for u in synth])
    gt = np.concatenate([u.coeffs[:, 0] for u in synth])
    scale = float(gt.std() / max(pred.std(), 1e-6))
    enc.mouth_scale[0] = scale
    enc.mouth_bias[0] = float(gt.mean() - scale * pred.mean())
    log.info("jaw calibration: scale %.4f bias %.4f", scale, float(enc.mouth_bias[0]))
