"""Glass-to-glass latency core: speech onsets in audio, mouth openings in video, paired into latencies.

Pure functions on time series (seconds on ONE clock, whatever clock the caller measured with):
`level_series` turns PCM into an RMS level series in dB; `speech_onsets` finds where the level
rises out of a silence; `mouth_openings` finds where a mouth-aperture series rises out of a
closed stretch; `pair_latencies` matches each onset to the first opening after it; `measure`
does all of it and summarises. The browser page, the stream tests and `s2t bench` all use these;
nothing else computes glass-to-glass latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SILENCE_DB = -100.0  # level given to digital silence


@dataclass(frozen=True, slots=True)
class G2GResult:
    """Onset and opening times (s), one latency per onset (ms; NaN when no opening followed)."""

    onsets: np.ndarray
    openings: np.ndarray
    latencies_ms: np.ndarray

    def summary(self) -> dict[str, float | int]:
        ok = self.latencies_ms[np.isfinite(self.latencies_ms)]
        pct = {f"p{q}": float(np.percentile(ok, q)) if ok.size else math.nan for q in (50, 95)}
        return {
            "onsets": int(self.onsets.size),
            "openings": int(self.openings.size),
            "paired": int(ok.size),
            "missed": int(self.latencies_ms.size - ok.size),
            "mean_ms": float(ok.mean()) if ok.size else math.nan,
            "min_ms": float(ok.min()) if ok.size else math.nan,
            "max_ms": float(ok.max()) if ok.size else math.nan,
            **pct,
        }


def _series(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(times, np.float64).reshape(-1)
    v = np.asarray(values, np.float64).reshape(-1)
    if t.shape != v.shape:
        raise ValueError(f"times and values differ in length: {t.size} vs {v.size}")
    if t.size > 1 and np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
    ok = np.isfinite(t) & np.isfinite(v)
    return t[ok], v[ok]


def level_series(samples: np.ndarray, sample_rate: int, t0: float = 0.0, hop_s: float = 0.005) -> tuple[np.ndarray, np.ndarray]:
    """RMS level in dBFS of consecutive `hop_s` blocks of mono PCM; times are each block's start."""
    x = np.asarray(samples, np.float64).reshape(-1)
    hop = max(1, int(round(hop_s * sample_rate)))
    n = x.size // hop
    if n == 0:
        return np.zeros(0), np.zeros(0)
    rms = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1))
    db = np.where(rms > 0, 20.0 * np.log10(np.maximum(rms, 1e-12)), SILENCE_DB)
    return t0 + np.arange(n) * hop / sample_rate, np.maximum(db, SILENCE_DB)


def rising_edges(times: np.ndarray, above: np.ndarray, min_below_s: float, min_above_s: float) -> np.ndarray:
    """Times where `above` turns True after >= `min_below_s` of False and then stays True >= `min_above_s`.

    A series that starts True has no edge there (what came before is unknown).
    """
    t = np.asarray(times, np.float64)
    a = np.asarray(above, bool)
    if t.size < 2:
        return np.zeros(0)
    d = np.diff(a.astype(np.int8))
    rises = np.flatnonzero(d == 1) + 1
    falls = np.flatnonzero(d == -1) + 1
    if rises.size == 0:
        return np.zeros(0)
    k = np.searchsorted(falls, rises)  # falls before each rise: falls[:k]
    below_from = np.where(k > 0, t[falls[np.maximum(k - 1, 0)]] if falls.size else t[0], t[0])
    step = float(np.median(np.diff(t)))
    end = t[-1] + step
    above_until = np.where(k < falls.size, t[falls[np.minimum(k, max(falls.size - 1, 0))]] if falls.size else end, end)
    keep = (t[rises] - below_from >= min_below_s) & (above_until - t[rises] >= min_above_s)
    return t[rises[keep]]


def speech_onsets(
    times: np.ndarray,
    level_db: np.ndarray,
    threshold_db: float | None = None,
    min_silence_s: float = 0.3,
    min_active_s: float = 0.05,
) -> np.ndarray:
    """Speech onsets (s) in a level series: rises above threshold after >= `min_silence_s` below it.

    The default threshold is halfway (in dB) between the noise floor (10th percentile) and the
    speech level (95th percentile).
    """
    t, v = _series(times, level_db)
    if t.size < 2:
        return np.zeros(0)
    if threshold_db is None:
        lo, hi = np.percentile(v, [10.0, 95.0])
        if hi - lo < 6.0:  # no contrast: no speech against silence in this series
            return np.zeros(0)
        threshold_db = float(lo + 0.5 * (hi - lo))
    return rising_edges(t, v > threshold_db, min_silence_s, min_active_s)


def mouth_openings(
    times: np.ndarray,
    aperture: np.ndarray,
    frac: float = 0.35,
    min_closed_s: float = 0.2,
    min_open_s: float = 0.0,
) -> np.ndarray:
    """Times (s) where a mouth-aperture series opens: crosses lo + frac*(hi - lo) after a closed stretch.

    lo/hi are the 10th/95th percentiles of the series, so the threshold adapts to the face.
    """
    t, v = _series(times, aperture)
    if t.size < 2:
        return np.zeros(0)
    lo, hi = np.percentile(v, [10.0, 95.0])
    if hi - lo <= 1e-6:
        return np.zeros(0)
    return rising_edges(t, v > lo + frac * (hi - lo), min_closed_s, min_open_s)


def pair_latencies(onsets: np.ndarray, openings: np.ndarray, max_s: float = 1.0, min_s: float = -0.1) -> np.ndarray:
    """Latency (ms) from each onset to the first opening in [onset + min_s, onset + max_s]; NaN if none."""
    on = np.sort(np.asarray(onsets, np.float64))
    op = np.sort(np.asarray(openings, np.float64))
    if on.size == 0:
        return np.zeros(0)
    if op.size == 0:
        return np.full(on.size, np.nan)
    j = np.searchsorted(op, on + min_s, side="left")
    cand = op[np.minimum(j, op.size - 1)]
    lat = cand - on
    ok = (j < op.size) & (lat <= max_s)
    return np.where(ok, lat * 1e3, np.nan)


def measure(
    audio_times: np.ndarray,
    audio_level_db: np.ndarray,
    frame_times: np.ndarray,
    apertures: np.ndarray,
    max_s: float = 1.0,
    min_s: float = -0.1,
) -> G2GResult:
    """Onsets in the audio level series, openings in the aperture series, and their pairing."""
    on = speech_onsets(audio_times, audio_level_db)
    op = mouth_openings(frame_times, apertures)
    return G2GResult(on, op, pair_latencies(on, op, max_s, min_s))
