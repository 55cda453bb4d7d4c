"""Glass-to-glass latency core: speech onsets in audio, mouth openings in video, paired into latencies.

Pure functions on time series (seconds on ONE clock, whatever clock the caller measured with):
`level_series` turns PCM into an RMS level series in dB; `speech_onsets` finds where the level
rises out of a silence; `mouth_openings` finds where a mouth-aperture series rises out of a
closed stretch; `pair_latencies` matches each onset to the first opening after it; `quiet_after` times how long a
series takes to go (and stay) quiet after an event such as a barge-in; `measure`
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


def _between(v: np.ndarray, frac: float) -> float | None:
    """lo + frac * (hi - lo), lo/hi the series' 10th/95th percentiles (the threshold adapts to the face or the
    signal); None when the series is flat."""
    lo, hi = np.percentile(v, [10.0, 95.0])
    return None if hi - lo <= 1e-6 else float(lo + frac * (hi - lo))


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
    line = _between(v, frac) if t.size >= 2 else None
    if line is None:
        return np.zeros(0)
    return rising_edges(t, v > line, min_closed_s, min_open_s)


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


def quiet_after(
    events: np.ndarray,
    times: np.ndarray,
    level: np.ndarray,
    hold_s: float = 0.25,
    max_s: float = 1.0,
) -> np.ndarray:
    """Latency (ms) from each event to the first moment the level series goes quiet *and stays quiet*.

    Quiet is below halfway between the series' 10th and 95th percentiles; it must last `hold_s` (a
    gap between two words is not the stream stopping). Quiet already under way at the event counts
    from the event (0 ms). NaN when no such stretch starts within `max_s`, or the series ends first.
    """
    ev = np.sort(np.asarray(events, np.float64).reshape(-1))
    t, v = _series(times, level)
    if ev.size == 0:
        return np.zeros(0)
    line = _between(v, 0.5) if t.size >= 2 else None
    if line is None:
        return np.full(ev.size, np.nan)
    quiet = v < line
    d = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)  # runs quiet[starts[k]:ends[k]]
    step = float(np.median(np.diff(t)))
    run_from = t[starts]
    run_to = np.where(ends < t.size, t[np.minimum(ends, t.size - 1)], t[-1] + step)  # first loud frame, or series end
    out = np.full(ev.size, np.nan)
    for i, e in enumerate(ev):
        begin = np.maximum(run_from, e)
        ok = (run_to > e) & (run_to - begin >= hold_s) & (begin - e <= max_s)
        if ok.any():
            out[i] = (begin[ok][0] - e) * 1e3
    return out


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


# ---------------------------------------------------------------------- timing marker
# An endpoint that supports it stamps a small square in the bottom-right corner of each frame whose
# grey level encodes the loudness of the audio that plays with that frame (`marker_value`). The
# receiver reads it back (`read_marker`) and treats the series like a mouth-aperture series: it
# rises when speech reaches the video, independently of any face tracker. Off unless asked for.
MARKER_PX = 16  # one 16x16 macroblock: survives VP8/H.264 well
MARKER_FLOOR_DB = -70.0
MARKER_RANGE_DB = 60.0


def block_level_db(samples: np.ndarray) -> float:
    """RMS level (dBFS) of one block of PCM; SILENCE_DB for empty or silent blocks."""
    x = np.asarray(samples, np.float64).reshape(-1)
    if x.size == 0:
        return SILENCE_DB
    rms = float(np.sqrt(np.mean(x * x)))
    return max(SILENCE_DB, 20.0 * math.log10(rms)) if rms > 0 else SILENCE_DB


def marker_value(level_db: float | np.ndarray) -> np.ndarray:
    """Grey level 0..255 for an audio level: MARKER_FLOOR_DB -> 0, +MARKER_RANGE_DB above it -> 255."""
    v = (np.asarray(level_db, np.float64) - MARKER_FLOOR_DB) / MARKER_RANGE_DB
    return np.clip(v, 0.0, 1.0) * 255.0


def stamp_marker(image: np.ndarray, value: float, px: int = MARKER_PX) -> np.ndarray:
    """A copy of an (H, W, 3) uint8 image with a `px` square of grey `value` in its bottom-right corner."""
    out = np.array(image, np.uint8, copy=True)
    if out.ndim != 3 or out.shape[0] < px or out.shape[1] < px:
        raise ValueError(f"image too small for a {px}px marker: {out.shape}")
    out[-px:, -px:, :] = np.uint8(np.clip(round(float(value)), 0, 255))
    return out


def read_marker(image: np.ndarray, px: int = MARKER_PX) -> float:
    """The marker's grey level in an (H, W, 3) image (mean of its inner half, away from codec edges)."""
    img = np.asarray(image)
    q = px // 4
    return float(img[-px + q : img.shape[0] - q, -px + q : img.shape[1] - q].mean())


def lag_by_xcorr(
    times_a: np.ndarray,
    values_a: np.ndarray,
    times_b: np.ndarray,
    values_b: np.ndarray,
    max_lag_s: float = 1.0,
    step_s: float = 0.005,
) -> tuple[float, float]:
    """Delay (ms) of series b behind series a that maximises their Pearson correlation, and that r.

    Both are linearly interpolated onto a `step_s` grid over their common span; lags 0..max_lag_s,
    the peak refined between grid steps by a parabola through its neighbours.
    Returns (NaN, NaN) when the series do not overlap enough or are flat.
    """
    ta, va = _series(times_a, values_a)
    tb, vb = _series(times_b, values_b)
    if ta.size < 2 or tb.size < 2:
        return math.nan, math.nan
    lags = np.arange(0.0, max_lag_s + step_s / 2, step_s)
    lo, hi = max(ta[0], tb[0] - lags[0]), min(ta[-1], tb[-1] - lags[-1])
    if hi - lo < 10 * step_s:
        return math.nan, math.nan
    grid = np.arange(lo, hi, step_s)
    a = np.interp(grid, ta, va)
    b = np.interp(grid[None, :] + lags[:, None], tb, vb)  # (lags, grid)
    a = a - a.mean()
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum() * (b * b).sum(axis=1))
    if not np.any(den > 0):
        return math.nan, math.nan
    r = np.where(den > 0, (b @ a) / np.where(den > 0, den, 1.0), -np.inf)
    k = int(np.argmax(r))
    lag = float(lags[k])
    if 0 < k < lags.size - 1 and np.all(np.isfinite(r[k - 1 : k + 2])):  # parabolic peak: sub-step lag
        den2 = r[k - 1] - 2 * r[k] + r[k + 1]
        if den2 < 0:
            lag += float(np.clip(0.5 * (r[k - 1] - r[k + 1]) / den2, -0.5, 0.5)) * step_s
    return lag * 1e3, float(r[k])


def smooth_level_db(level_db: np.ndarray, hops: int) -> np.ndarray:
    """Level series averaged in power over `hops` consecutive blocks ('valid' part: n - hops + 1 values)."""
    p = 10.0 ** (np.asarray(level_db, np.float64) / 10.0)
    hops = max(1, min(int(hops), p.size)) if p.size else 1
    m = np.convolve(p, np.ones(hops) / hops, mode="valid")
    return np.maximum(10.0 * np.log10(np.maximum(m, 1e-12)), SILENCE_DB)
