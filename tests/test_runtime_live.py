"""The engine with today's real stages (baseline motion + reference renderer), the face model cache, a 30 s soak."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.config import EngineConfig
from engine.errors import NoFaceError
from engine.runtime import Engine
from engine.runtime.stages import FaceModelCache
from runtime_fakes import assert_no_leaks, collect, feed_realtime, frames_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def _portrait() -> np.ndarray:
    from engine.assets import asset_path
    from engine.face.image import load_image

    return load_image(asset_path("portrait.png"))


@pytest.mark.timeout(60)
def test_face_model_cache_fits_once_then_loads(tmp_path: Path) -> None:
    img = _portrait()
    first = FaceModelCache(tmp_path)
    a = first.get(img, 128)
    assert (first.fits, first.hits) == (1, 0) and len(list(tmp_path.glob("face-*.npz"))) == 1
    second = FaceModelCache(tmp_path)  # a restarted worker
    t0 = time.perf_counter()
    b = second.get(img, 128)
    assert (second.fits, second.hits) == (0, 1)
    assert time.perf_counter() - t0 < 0.5, "loading must be far cheaper than fitting"
    assert np.array_equal(a.crop, b.crop) and np.allclose(a.neutral, b.neutral) and np.allclose(a.basis, b.basis)
    assert FaceModelCache.key(img, 128) != FaceModelCache.key(img, 256) != FaceModelCache.key(img[::-1], 256)
    next(tmp_path.glob("face-*.npz")).write_bytes(b"not a zip")  # a damaged entry is refitted
    third = FaceModelCache(tmp_path)
    third.get(img, 128)
    assert third.fits == 1
    with pytest.raises(NoFaceError):
        FaceModelCache(tmp_path).get(np.full((200, 200, 3), 127, np.uint8), 128)


async def _kill_and_time(eng: Engine, victim: str) -> float:
    """Kill `victim` mid-speech; seconds from the kill to the first fresh frame after the outage."""
    role = "motion" if victim == "motion" else "render"
    await frames_until(eng, lambda: eng.stats()["spares"][role]["ready"], 60.0)
    old = eng.worker_pids()[victim]
    os.kill(old, signal.SIGKILL)
    t_kill = time.monotonic()
    after = await collect(eng, 2.5)
    gaps = np.diff([t_kill] + [t for t, _ in after])
    assert gaps.max() < 0.5, f"frames keep coming during the failover (max gap {gaps.max():.2f} s)"
    first_rep = next((t for t, f in after if f.repeated), t_kill)
    back = [t for t, f in after if not f.repeated and t >= first_rep]
    assert back, f"no fresh frame after killing {victim}"
    assert eng.worker_pids()[victim] != old
    return back[0] - t_kill


@pytest.mark.timeout(120)
async def test_real_stages_speak_and_survive_render_and_motion_kills() -> None:
    from live_harness import load_speech

    speech = load_speech(None)[: 16000 * 12]
    eng = Engine(EngineConfig())
    await eng.start()
    feeder: asyncio.Task[None] | None = None
    try:
        # speak once the spares are up (they start after the first workers, and compete for CPU)
        await frames_until(eng, lambda: all(w["ready"] for w in eng.stats()["spares"].values()), 60.0)
        feeder = asyncio.create_task(feed_realtime(eng, speech))
        got = await collect(eng, 2.5)
        fresh = [f for _, f in got if not f.repeated]
        assert len(fresh) >= 15, "fresh frames flow (62 at full rate; a busy CI box and the ladder may halve that)"
        assert all(f.image.shape == (256, 256, 3) for f in fresh)
        jaw = np.array([f.coeffs[0] for f in fresh])
        assert jaw.max() - jaw.min() > 0.1, "speech must move the jaw"
        assert np.abs(fresh[-1].image.astype(int) - fresh[-10].image.astype(int)).mean() > 0.2
        with pytest.raises(NoFaceError):
            await eng.set_portrait(np.full((200, 200, 3), 127, np.uint8))
        # a warm spare takes over: fresh frames within 2 s (typically a few frames)
        assert await _kill_and_time(eng, "render-0") < 2.0
        assert await _kill_and_time(eng, "motion") < 2.0
        s = eng.stats()
        assert s["counts"]["failovers"] == 2 and s["counts"]["restarts"] == 2
    finally:
        if feeder is not None:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
        await eng.close()
    await assert_no_leaks()


@pytest.mark.timeout(120)
def test_soak_30s_generous_bounds() -> None:
    import soak

    r = soak.soak(EngineConfig(), 30.0)
    # Bounds for a noisy 2-core CI box; each still fails on a real fault: a blocked hub (long gaps),
    # a restart (restarts), a leak (RSS), a drifting clock or A/V pairing (drift), a stuck ladder.
    assert r["frames"] >= 0.9 * 25 * 30, "paced output"
    assert r["stalls"] <= 0.01 * r["frames"] and r["max_gap_ms"] < 1000, (r["stalls"], r["max_gap_ms"])
    assert r["clock_drift_frames"] <= 2.0, "output timestamps follow the wall clock"
    assert r["av_drift_frames_last10s"] <= 1.0
    assert r["rss_growth"] <= 0.25
    assert r["fresh_fraction"] >= 0.3, "at worst the ladder's lowest level (a third of frames) is rendered"
    assert r["e2e_ms"]["p95"] < 400
    assert r["restarts"] == 0
