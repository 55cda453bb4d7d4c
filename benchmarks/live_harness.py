"""Shared harness for the live benchmarks: run an Engine on a looped speech file pushed in real time.

Pushes 20 ms pieces at real-time pace with honest capture times, reads every frame, samples
`engine.stats()` once a second, and summarises latency, stage shares, drops, repeats, A/V offset,
stalls, clock drift and the RSS of the hub plus its workers.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import EngineConfig

log = logging.getLogger("bench")
SR = 16000
PIECE = 320  # 20 ms


def load_speech(path: str | None) -> np.ndarray:
    from engine.audio.ingest import decode_audio

    if path is None:
        from engine.assets import asset_path

        path = str(asset_path("demo_speech.wav"))
    return decode_audio(path)


def rss_mb() -> float:
    """Resident memory of this process and its children (the workers), MiB."""
    import psutil

    me = psutil.Process()
    total = me.memory_info().rss
    for c in me.children(recursive=True):
        try:
            total += c.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


# prompts for --emotion-every: each new to the encoder (a full encoder pass + dictionary look-ups), cycled
PROMPT_CHANGES = ("she sounds quite gobsmacked after hearing the news", "mostly sniffy, partly chipper",
                  "a deeply crestfallen voice at the end of a long day", "utterly seething and red in the face",
                  "calm but slightly amused", "petrified, whispering in the dark", "jubilant and beaming",
                  "impassive, like reading a timetable")


async def run_live(cfg: EngineConfig, seconds: float, speech: np.ndarray, warmup_s: float = 2.0,
                   emotion_every: float | None = None) -> dict[str, Any]:
    """One live session: speech pushed in real time for `seconds`; with `emotion_every`, a new emotion prompt
    (PROMPT_CHANGES, cycled) every that many seconds, as a user retyping it would."""
    from engine.runtime import Engine

    import os

    load_start = os.getloadavg()[0]
    eng = Engine(cfg)
    t_start = time.monotonic()
    await eng.start()
    startup_s = time.monotonic() - t_start
    # Speak once the failover spares are up too (they start after the first workers).
    frames = eng.frames()
    async with asyncio.timeout(120):
        while not all(w["ready"] for w in eng.stats()["spares"].values()):
            await anext(frames)
    await frames.aclose()  # type: ignore[attr-defined]
    spares_s = time.monotonic() - t_start
    n_pieces = int(seconds * SR / PIECE)
    loop_audio = np.resize(speech.astype(np.float32), n_pieces * PIECE)
    per_second: list[dict[str, Any]] = []
    arrivals: list[float] = []
    pts_s: list[float] = []
    repeated_flags: list[bool] = []
    rss: list[tuple[float, float]] = []

    async def feed() -> None:
        t0 = time.monotonic()
        for i in range(n_pieces):
            delay = t0 + (i + 1) * PIECE / SR - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            eng.push_audio(loop_audio[i * PIECE : (i + 1) * PIECE], capture_time=t0 + i * PIECE / SR)

    async def sample() -> None:
        nxt = time.monotonic()
        while True:
            nxt += 1.0
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            s = eng.stats()
            s["t"] = time.monotonic() - t0_run
            per_second.append(s)
            rss.append((s["t"], rss_mb()))

    async def consume() -> None:
        async for f in eng.frames():
            arrivals.append(time.monotonic())
            pts_s.append(f.pts / 90000.0)
            repeated_flags.append(f.repeated)

    prompt_changes: list[float] = []

    async def retype() -> None:
        i = 0
        while emotion_every:
            await asyncio.sleep(emotion_every)
            await eng.set_emotion(PROMPT_CHANGES[i % len(PROMPT_CHANGES)])
            prompt_changes.append(time.monotonic() - t0_run)
            i += 1

    gc_pauses: list[tuple[float, int, float]] = []  # (s after the run began, generation, ms), the hub's process
    gc_began: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_began[0] = time.perf_counter()
        else:
            gc_pauses.append((time.monotonic() - t0_run, int(info["generation"]),
                              (time.perf_counter() - gc_began[0]) * 1e3))

    t0_run = time.monotonic()
    gc.callbacks.append(on_gc)
    tasks = [asyncio.create_task(c) for c in (consume(), sample(), retype())]
    try:
        await feed()
        final = eng.stats()
    finally:
        gc.callbacks.remove(on_gc)
        await eng.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.monotonic() - t0_run
    arr = np.asarray(arrivals)
    steady = arr[arr > arr[0] + warmup_s] if arr.size else arr
    gaps = np.diff(arr) if arr.size > 1 else np.zeros(0)
    fps = float((steady.size - 1) / (steady[-1] - steady[0])) if steady.size > 2 else 0.0
    frame_s = 1.0 / cfg.fps
    # Output clock vs wall clock: how far the frames' timestamps moved against their arrival times
    # between the first and the last 10 s (medians, so one late read does not count; ticks the
    # pacer skipped when starved advance the timestamps too, so they are not drift).
    lag = arr - np.asarray(pts_s)
    k = max(1, min(int(10 * cfg.fps), lag.size // 3))
    clock_drift = float(abs(np.median(lag[-k:]) - np.median(lag[:k])) / frame_s) if lag.size > 2 else float("nan")
    rss_after_warm = [m for t, m in rss if t >= min(10.0, seconds / 3)]
    av_windows = [s["av_offset_ms_p50"] for s in per_second[-10:]]  # systematic offset, not glitches
    return {
        "seconds": seconds,
        "startup_s": startup_s,
        "startup_with_spares_s": spares_s,
        "fps": fps,
        "frames": int(arr.size),
        "fresh_fraction": float(1 - np.mean(repeated_flags)) if repeated_flags else 0.0,
        "e2e_ms": final["e2e_ms_session"],
        "stages": final["stages_session"],
        "dropped": int(final["dropped"]),
        "dropped_by": final["dropped_by"],
        "repeated": int(final["repeated"]),
        "underruns": int(final["underruns"]),
        "av_offset_ms": final["av_offset_ms_session"],  # mean age of the shown image vs its audio (repeats count)
        "av_drift_frames_last10s": float(max(np.abs(av_windows)) / (frame_s * 1e3)) if av_windows else 0.0,
        "clock_drift_frames": clock_drift,
        "stalls": int(np.sum(gaps > 3 * frame_s)),
        "ticks_missed": int(final["counts"]["ticks_missed"]),
        "failovers": int(final["counts"]["failovers"]),
        "skipped_ladder": int(final["counts"]["skipped_ladder"]),
        "level_time_s": {str(lv): float(sum(1 for s in per_second if s["level"] == lv)) for lv in
                         sorted({s["level"] for s in per_second})},
        "max_gap_ms": float(gaps.max() * 1e3) if gaps.size else 0.0,
        # when each stall ended, in seconds after the first frame (a stall during warm-up reads < warmup_s)
        "stall_at_s": [round(float(arr[i + 1] - arr[0]), 3) for i in np.flatnonzero(gaps > 3 * frame_s)],
        # the hub's garbage collector: pauses per generation, and the long ones with when they ended (beside stall_at_s)
        "gc_pauses": {str(g): {"count": sum(1 for _, q, _ in gc_pauses if q == g),
                               "max_ms": round(max((m for _, q, m in gc_pauses if q == g), default=0.0), 2)}
                      for g in (0, 1, 2)},
        "gc_pauses_over_20ms": [(round(t, 2), g, round(m, 1)) for t, g, m in gc_pauses if m > 20.0],
        "playout_delay_ms": final["playout_delay_ms"],
        "level_final": final["level"],
        "ladder_moves": int(sum(1 for a, b in zip(per_second, per_second[1:]) if a["level"] != b["level"])),
        "restarts": int(final["counts"]["restarts"]),
        "rss_mb_start": rss_after_warm[0] if rss_after_warm else float("nan"),
        "rss_mb_end": rss_after_warm[-1] if rss_after_warm else float("nan"),
        "rss_growth": (rss_after_warm[-1] / rss_after_warm[0] - 1) if len(rss_after_warm) > 1 else 0.0,
        "elapsed_s": elapsed,
        "emotion_prompt_changes_s": [round(t, 2) for t in prompt_changes],
        "dropped_cumulative_per_second": [int(s["dropped"]) for s in per_second],
        "load_avg_1m_start": load_start,  # other processes on the machine (2 cores here)
        "load_avg_1m_end": os.getloadavg()[0],
        "per_second": [
            {"t": s["t"], "e2e_p95": s["e2e_ms"]["p95"], "fps": s["fps"], "level": s["level"],
             "stages_p50": {k: v["p50"] for k, v in s["stages"].items()}, "queues": s["queues"]}
            for s in per_second
        ],
    }


def plot(result: dict[str, Any], png: Path, title: str) -> None:
    """Per-second stage breakdown (stacked p50) with the end-to-end p95 on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["per_second"] if r["stages_p50"]]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    if rows:
        t = np.array([r["t"] for r in rows])
        names = ["buffer", "motion", "render", "transport"]
        bottom = np.zeros(len(rows))
        for n in names:
            v = np.nan_to_num(np.array([r["stages_p50"].get(n, 0.0) for r in rows]))
            ax.bar(t, v, bottom=bottom, width=0.9, label=f"{n} (p50)")
            bottom += v
        ax.plot(t, [r["e2e_p95"] for r in rows], "k.-", label="end-to-end p95")
    ax.axhline(150, color="r", ls="--", lw=1, label="budget 150 ms")
    ax.set_xlabel("session time (s)")
    ax.set_ylabel("ms")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def write_json(result: dict[str, Any], out: str | None) -> None:
    text = json.dumps(result, indent=2, default=float)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
