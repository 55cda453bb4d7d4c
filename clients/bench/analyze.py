"""Turns a session Recording into figures: latency, glass-to-glass (face and marker), fps, jitter, system.

Glass-to-glass uses clients/g2g.py only: speech onsets of the audio as sent, paired with the first
mouth opening the face tracker finds on the received frames (`face`), and with the first rise of the
timing marker (`marker`, where the endpoint stamps it; in-process the level of each frame's own
audio). `marker_xcorr_ms` is the lag that best aligns the sent audio's loudness with the marker
series (every speech edge contributes, so it is the most precise single number).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from clients import g2g
from clients.bench.scenario import Scenario
from clients.bench.session import Recording

BARGE_QUIET_HOLD_S = 0.25  # quiet this long after a barge-in = stopped (scenario pauses are >= 0.35 s)
SMOOTH_HOPS = 8  # 8 x 5 ms = one 40 ms frame of audio, what the marker of one frame summarises


def pct(values: np.ndarray | list[float], qs: tuple[int, ...] = (50, 95, 99)) -> dict[str, float]:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return {f"p{q}": float(np.percentile(v, q)) if v.size else math.nan for q in qs}


def _g2g(at: np.ndarray, adb: np.ndarray, ft: np.ndarray, values: np.ndarray) -> dict[str, Any]:
    ok = np.isfinite(values)
    res = g2g.measure(at, adb, ft[ok], values[ok])
    return {**res.summary(), "latencies_ms": [None if not np.isfinite(v) else round(float(v), 1) for v in res.latencies_ms],
            "onsets_s": res.onsets.tolist(), "openings_s": res.openings.tolist()}


def marker_lag(at: np.ndarray, adb: np.ndarray, ft: np.ndarray, markers: np.ndarray) -> tuple[float, float]:
    """Lag (ms) and r between the sent audio's 40 ms loudness and the received marker series."""
    ok = np.isfinite(markers)
    if at.size < SMOOTH_HOPS or ok.sum() < 10:
        return math.nan, math.nan
    expected = g2g.marker_value(g2g.smooth_level_db(adb, SMOOTH_HOPS))
    return g2g.lag_by_xcorr(at[: expected.size], expected, ft[ok], markers[ok])


def frame_timing(ft: np.ndarray, fps: float) -> dict[str, float]:
    """Received fps and jitter (inter-arrival spread) of frame arrival times."""
    if ft.size < 3:
        return {"fps": 0.0, "jitter_ms": math.nan, "gap_p95_ms": math.nan, "max_gap_ms": math.nan, "stalls": 0}
    gaps = np.diff(ft) * 1e3
    return {
        "fps": float((ft.size - 1) / (ft[-1] - ft[0])),
        "jitter_ms": float(np.std(gaps)),
        "gap_p95_ms": float(np.percentile(gaps, 95)),
        "max_gap_ms": float(gaps.max()),
        "stalls": int(np.sum(gaps > 3e3 / fps)),
    }


def analyze(rec: Recording, s: Scenario, apertures: np.ndarray | None = None) -> dict[str, Any]:
    """Figures for one session (JSON-ready), plus `series` for the plots."""
    at, adb = rec.audio_level()
    ft = np.asarray(rec.frame_times, np.float64)
    markers = np.asarray(rec.markers, np.float64)
    steady = ft > rec.started + s.warmup_s
    out: dict[str, Any] = {"label": rec.label, "audio_sent_s": len(rec.chunk_times) * 0.02, "frames": int(ft.size),
                           "barge_ins": rec.barge_ins, **frame_timing(ft[steady], s.fps)}
    if rec.fresh:
        out["fresh_fraction"] = float(np.mean(rec.fresh))
    if rec.delivered_ms:
        out["delivered_ms"] = pct(rec.delivered_ms)
    g: dict[str, Any] = {}
    if apertures is not None and np.isfinite(apertures).sum() >= 10:
        it = np.asarray(rec.image_times, np.float64)
        g["face"] = _g2g(at, adb, it, apertures)
        g["face"]["frames_with_face"] = int(np.isfinite(apertures).sum())
    if np.isfinite(markers).sum() >= 10:
        g["marker"] = _g2g(at, adb, ft, markers)
        lag, r = marker_lag(at, adb, ft, markers)
        g["marker_xcorr_ms"], g["marker_xcorr_r"] = lag, r
    if rec.barge_in_times and np.isfinite(markers).sum() >= 10:
        # the marker is low while the frames' audio is quiet: barge-in -> the frames go quiet and stay so
        # (a short gap between words just before or after the barge-in is not the stream stopping)
        lat = g2g.quiet_after(np.asarray(rec.barge_in_times), ft, markers, hold_s=BARGE_QUIET_HOLD_S, max_s=1.0)
        g["barge_in_stop_ms"] = {**pct(lat, (50, 95)), "count": int(lat.size), "stopped": int(np.isfinite(lat).sum())}
    if rec.legs:
        g["legs_ms"] = dict(rec.legs)
    out["glass_to_glass"] = g
    fs = rec.final_stats or {}
    if fs:
        out["e2e_ms"] = fs.get("e2e_ms_session", {})
        out["stages_ms"] = fs.get("stages_session", {})
        out["dropped"] = int(fs.get("dropped", 0))
        out["dropped_by"] = fs.get("dropped_by", {})
        out["repeated"] = int(fs.get("repeated", 0))
        out["av_offset_ms"] = float(fs.get("av_offset_ms_session", math.nan))
        out["level_final"] = fs.get("level_name", fs.get("level"))
        out["render_size_final"] = fs.get("render_size")
    per_s = [x for x in rec.stats if x.get("t", 0) > s.warmup_s]
    if per_s:
        levels = [x.get("level", 0) for x in rec.stats]
        out["ladder_changes"] = int(sum(a != b for a, b in zip(levels, levels[1:])))
        p95s = np.asarray([x["e2e_ms"]["p95"] for x in per_s if "e2e_ms" in x], np.float64)
        out["e2e_p95_steady_ms"] = float(np.nanmean(p95s)) if np.isfinite(p95s).any() else math.nan
        sizes = np.asarray([int(x.get("render_size", s.resolution)) for x in per_s])
        out["render_size_min"] = int(sizes.min())
        out["full_size_fraction"] = float(np.mean(sizes >= s.resolution))  # seconds rendered at full size
    sysm = rec.system
    if sysm:
        arr = {k: np.asarray([x.get(k, math.nan) for x in sysm], np.float64)
               for k in ("cpu_pct", "rss_mb", "system_cpu_pct", "load1", "gpu_pct", "gpu_mem_mb")}
        out["cpu_pct"] = {"mean": float(np.nanmean(arr["cpu_pct"])), "max": float(np.nanmax(arr["cpu_pct"]))}
        out["system_cpu_pct_mean"] = float(np.nanmean(arr["system_cpu_pct"]))
        out["load1_mean"] = float(np.nanmean(arr["load1"]))
        out["rss_mb"] = {"start": float(arr["rss_mb"][0]), "max": float(np.nanmax(arr["rss_mb"]))}
        if np.isfinite(arr["gpu_pct"]).any():
            out["gpu"] = {"util_pct_mean": float(np.nanmean(arr["gpu_pct"])), "mem_mb_max": float(np.nanmax(arr["gpu_mem_mb"]))}
    out["series"] = _series(rec, at, adb, ft, markers, apertures)
    return out


def _series(rec: Recording, at: np.ndarray, adb: np.ndarray, ft: np.ndarray, markers: np.ndarray,
            apertures: np.ndarray | None) -> dict[str, Any]:
    """Plot data, times relative to the session start, thinned to keep the JSON small."""
    t0 = rec.started

    def r(x: np.ndarray, nd: int = 3) -> list[float | None]:
        return [None if not np.isfinite(v) else round(float(v), nd) for v in x]

    step = max(1, at.size // 2000)
    return {
        "audio": {"t": r(at[::step] - t0), "db": r(adb[::step], 1)},
        "onsets": r(g2g.speech_onsets(at, adb) - t0),
        "frames": {"t": r(ft - t0), "marker": r(markers, 1)},
        "aperture": {"t": r(np.asarray(rec.image_times) - t0), "v": r(apertures, 4)} if apertures is not None else None,
        "per_second": [{"t": round(x["t"], 2), "e2e_p95": x.get("e2e_ms", {}).get("p95"), "fps": x.get("fps"),
                        "level": x.get("level")} for x in rec.stats],
        "system": [{k: round(v, 2) for k, v in x.items()} for x in rec.system],
    }
