"""Load-time audio augmentation: additive noise, synthetic room reverb, gain, and band-limiting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt

SR = 16_000


@dataclass(frozen=True, slots=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation (applied independently, in this order)."""

    p_gain: float = 0.8
    gain_db: tuple[float, float] = (-12.0, 6.0)
    p_reverb: float = 0.3
    rt60_s: tuple[float, float] = (0.15, 0.7)
    p_bandlimit: float = 0.3
    low_hz: tuple[float, float] = (80.0, 400.0)
    high_hz: tuple[float, float] = (2800.0, 7000.0)
    p_noise: float = 0.5
    snr_db: tuple[float, float] = (5.0, 35.0)


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White, pink-ish or brown-ish noise, unit RMS."""
    kind = int(rng.integers(3))
    x = rng.standard_normal(n)
    if kind:
        spec = np.fft.rfft(x)
        f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
        x = np.fft.irfft(spec / f ** (0.5 * kind), n)
    return (x / (np.sqrt(np.mean(x * x)) + 1e-12)).astype(np.float32)


def room_impulse(rng: np.random.Generator, rt60: float) -> np.ndarray:
    """Exponentially decaying noise tail with a direct path: a cheap synthetic room response."""
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    h = rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * 0.3
    h[0] = 1.0
    return (h / np.sqrt(np.sum(h * h))).astype(np.float32)


def augment(samples: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """A perturbed copy of `samples` (float32 16 kHz mono, same length)."""
    x = np.asarray(samples, np.float32).copy()
    n = len(x)
    if n == 0:
        return x
    if rng.random() < cfg.p_reverb:
        x = fftconvolve(x, room_impulse(rng, float(rng.uniform(*cfg.rt60_s))))[:n].astype(np.float32)
    if rng.random() < cfg.p_bandlimit:
        lo, hi = float(rng.uniform(*cfg.low_hz)), float(rng.uniform(*cfg.high_hz))
        x = sosfilt(butter(4, [lo, min(hi, SR / 2 - 100)], btype="band", fs=SR, output="sos"), x).astype(np.float32)
    if rng.random() < cfg.p_noise:
        rms = float(np.sqrt(np.mean(x * x)))
        if rms > 0:
            snr = float(rng.uniform(*cfg.snr_db))
            x = x + _noise(rng, n) * rms * 10 ** (-snr / 20)
    if rng.random() < cfg.p_gain:
        x = x * 10 ** (float(rng.uniform(*cfg.gain_db)) / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)
