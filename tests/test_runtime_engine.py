"""The live engine with cheap stand-in stages: flow, A/V pairing, idle, barge-in, bad input, slow
consumers, killed and hung workers, CURVE over tcp. Each test fails on leaked sockets/tasks/processes."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any, AsyncIterator

import numpy as np
import pytest
import zmq

from engine.errors import AudioError, InputError, NoFaceError, NotAvailableError
from engine.runtime import Engine
from runtime_fakes import assert_no_leaks, collect, fake_config, feed_realtime

pytestmark = pytest.mark.timeout(60)
SR = 16000


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    eng = Engine(fake_config())
    await eng.start()
    try:
        yield eng
    finally:
        await eng.close()
        await assert_no_leaks()


def pattern(seconds: float) -> np.ndarray:
    """Loud/quiet alternating every 200 ms: each frame's RMS says which part of the audio it is."""
    t = np.arange(int(seconds * SR)) / SR
    env = np.where((t // 0.2) % 2 == 0, 0.6, 0.15)
    return (env * np.sign(np.sin(2 * np.pi * 220 * t))).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


async def test_idle_then_speech_frames_paced_and_in_sync(engine: Engine) -> None:
    idle = await collect(engine, 1.0)
    assert len(idle) >= 20, "no audio pushed: the engine must keep producing frames"
    assert all(f.audio.size == 640 and not f.audio.any() for _, f in idle)
    feeder = asyncio.create_task(feed_realtime(engine, pattern(3.0)))
    got = await collect(engine, 3.0)
    await feeder
    assert 70 <= len(got) <= 80, f"25 fps for 3 s, got {len(got)}"
    gaps = np.diff([t for t, _ in got])
    assert np.median(gaps) == pytest.approx(0.04, abs=0.005)
    spoken = [f for _, f in got if f.audio.any()]
    fresh = [f for f in spoken if not f.repeated]
    assert len(spoken) >= 60 and len(fresh) >= 0.85 * len(spoken)
    for f in fresh:  # the image was rendered from exactly the audio it plays with
        assert int(f.image[0, 0, 0]) == pytest.approx(rms(f.audio) * 255, abs=1.5)
        assert f.image.shape == (256, 256, 3) and f.image.dtype == np.uint8
    s = engine.stats()
    assert s["e2e_ms"]["p95"] < 150 and s["level"] == 0
    assert set(s["stages"]) >= {"buffer", "motion", "render", "transport"}
    assert abs(s["av_offset_ms"]) < 40


async def test_burst_is_played_in_real_time_and_interrupt_cuts_it(engine: Engine) -> None:
    loud = np.full(10 * SR, 0.5, np.float32)  # ten seconds at once
    engine.push_audio(loud)
    got = await collect(engine, 1.0)
    assert 20 <= len(got) <= 30, "a burst plays at the session rate, not faster"
    assert sum(bool(f.audio.any()) for _, f in got[5:]) >= len(got) - 8
    assert engine.stats()["queues"]["input_samples"] > 7 * SR
    engine.interrupt()
    t_int = time.monotonic()
    after = await collect(engine, 1.0)
    first_silent = next(t for t, f in after if not f.audio.any())
    assert first_silent - t_int <= 0.045, "interrupt takes effect within one frame interval"
    assert not any(f.audio.any() for _, f in after[1:])
    assert engine.stats()["queues"]["input_samples"] == 0
    assert all(int(f.image.max()) == 0 for _, f in after[-10:]), "back to idle motion after barge-in"


async def test_bad_input_is_refused_or_repaired_and_stream_continues(engine: Engine) -> None:
    x = pattern(0.5)
    x[100:200] = np.nan
    x[300:400] = 7.0
    engine.push_audio(x)  # NaN and clipped: repaired, counted
    engine.push_audio(np.zeros((2400, 1), np.float32), sample_rate=48000)  # resampled
    engine.push_audio(np.zeros(0, np.float32))  # empty: nothing
    with pytest.raises(AudioError, match="sample rate"):
        engine.push_audio(np.zeros(100, np.float32), sample_rate=1000)
    with pytest.raises(AudioError, match="dtype"):
        engine.push_audio(np.zeros(100, np.int64))
    with pytest.raises(InputError, match="empty"):
        await engine.set_emotion("   ")
    await engine.set_emotion("calm but slightly amused")
    with pytest.raises(NoFaceError):
        await engine.set_portrait(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(InputError, match="34"):
        await engine.set_style_reference(np.zeros((10, 3), np.float32))
    with pytest.raises(NotAvailableError):
        await engine.set_style_reference("clip.mp4")
    await engine.set_style_reference(np.zeros((20, 34), np.float32))
    await engine.set_art_style(np.full((32, 32, 3), 200, np.uint8))
    with pytest.raises(AudioError, match="backlog"):
        engine.push_audio(np.zeros(40 * SR, np.float32))
    got = await collect(engine, 1.0)
    assert len(got) >= 20 and all(np.isfinite(f.audio).all() for _, f in got)
    s = engine.stats()
    assert s["counts"]["sanitized_pushes"] == 1 and s["counts"]["resampled_pushes"] == 1
    assert all(w["ready"] for w in s["workers"].values())


async def test_slow_consumer_drops_frames_instead_of_queueing(engine: Engine) -> None:
    feeder = asyncio.create_task(feed_realtime(engine, pattern(3.0)))
    frames = engine.frames()
    ages = []
    for _ in range(15):  # 5 fps for 3 s
        f = await anext(frames)
        ages.append(time.monotonic() - f.capture_time)
        await asyncio.sleep(0.2)
    await frames.aclose()  # type: ignore[attr-defined]
    await feeder
    s = engine.stats()
    assert s["dropped_by"]["output"] >= 40, "frames the reader cannot take are dropped and counted"
    assert s["queues"]["output"] <= 2
    assert max(ages[3:]) < 0.5, "latency stays bounded for a slow reader"


async def _outage(engine: Engine, victim: str, sig: int) -> None:
    feeder = asyncio.create_task(feed_realtime(engine, pattern(8.0)))
    await collect(engine, 1.0)
    old = engine.worker_pids()[victim]
    os.kill(old, sig)
    t_kill = time.monotonic()
    got = await collect(engine, 6.0)
    feeder.cancel()
    await asyncio.gather(feeder, return_exceptions=True)
    gaps = np.diff([t_kill] + [t for t, _ in got])
    assert gaps.max() < 0.2, "frames keep coming while the worker restarts"
    repeated = [t for t, f in got if f.repeated]
    assert len(repeated) >= 3, "the outage is bridged by repeating the last frame"
    resumed = [t for t, f in got if not f.repeated and t > repeated[0]]
    assert resumed and resumed[0] - t_kill < 4.0, "fresh frames resume within a few seconds"
    assert sum(not f.repeated for t, f in got if t > resumed[0]) >= 0.8 * sum(1 for t, _ in got if t > resumed[0])
    assert engine.worker_pids()[victim] != old
    assert engine.stats()["workers"][victim]["restarts"] == 1


async def test_killed_render_worker_is_restarted(engine: Engine) -> None:
    await _outage(engine, "render-0", signal.SIGKILL)


async def test_killed_motion_worker_is_restarted(engine: Engine) -> None:
    await _outage(engine, "motion", signal.SIGKILL)


async def test_hung_render_worker_is_killed_and_restarted(engine: Engine) -> None:
    await _outage(engine, "render-0", signal.SIGSTOP)


async def test_tcp_with_curve_keys_and_two_renderers() -> None:
    sp, ss = zmq.curve_keypair()
    cp, cs = zmq.curve_keypair()
    cfg = fake_config(transport="tcp", render_workers=2, curve_server_public=sp.decode(),
                      curve_server_secret=ss.decode(), curve_client_public=cp.decode(), curve_client_secret=cs.decode())
    eng = Engine(cfg)
    await eng.start()
    try:
        feeder = asyncio.create_task(feed_realtime(eng, pattern(1.5)))
        got = await collect(eng, 1.5)
        await feeder
        assert sum(not f.repeated for _, f in got) >= 25
        s = eng.stats()
        assert s["workers"]["render-0"]["ready"] and s["workers"]["render-1"]["ready"]
    finally:
        await eng.close()
    await assert_no_leaks()


async def test_bad_stage_name_and_double_close() -> None:
    from engine.config import EngineConfig, MotionConfig

    with pytest.raises(NotAvailableError, match="no motion stage"):
        Engine(EngineConfig(motion=MotionConfig(kind="nope")))
    eng = Engine(fake_config())
    with pytest.raises(InputError, match="not running"):
        eng.push_audio(np.zeros(10, np.float32))
    await eng.close()
    await eng.close()
    await assert_no_leaks()


def test_stats_shape_without_start() -> None:
    s: dict[str, Any] = Engine(fake_config()).stats()
    assert {"fps", "e2e_ms", "stages", "dropped", "repeated", "level", "queues"} <= set(s)
