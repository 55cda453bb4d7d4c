"""Core types: message codec round trips without copies, MotionSpec layout, TOML configs, clock/pacer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from engine.clock import ManualClock, Pacer, video_pts
from engine.config import EngineConfig, load_config
from engine.errors import InputError
from engine.messages import AudioChunk, Control, MotionChunk, VideoFrame, decode, encode
from engine.spec import DEFAULT_SPEC, MotionSpec


def test_messages_round_trip_zero_copy() -> None:
    img = np.arange(256 * 256 * 3, dtype=np.uint8).reshape(256, 256, 3)
    frame = VideoFrame("s1", 7, video_pts(7, 25), 12.5, img, np.ones(640, np.float32), timings=(("render", 3.5),))
    parts = encode(frame)
    assert isinstance(parts[1], memoryview) and parts[1].obj is not None  # the image's own memory
    got = decode(parts)
    assert isinstance(got, VideoFrame) and got.seq == 7 and got.pts == 25200 and got.timings == (("render", 3.5),)
    np.testing.assert_array_equal(got.image, img)
    assert np.shares_memory(got.image, img)  # decoded straight over the buffer
    m = MotionChunk("s1", 1, 0, 1.0, DEFAULT_SPEC.neutral(3), 25.0, DEFAULT_SPEC.key, np.array([1, 0, 1], bool))
    got_m = decode([bytes(p) for p in encode(m)])
    assert isinstance(got_m, MotionChunk) and got_m.coeffs.shape == (3, DEFAULT_SPEC.dim)
    np.testing.assert_array_equal(got_m.speech, [True, False, True])
    a = AudioChunk("s", 0, 0, 0.0, np.zeros(320, np.float32))
    assert decode(encode(a)).samples.shape == (320,)
    c = Control("s", 0, "set_emotion", text="calm but slightly amused")
    assert decode(encode(c)).text == "calm but slightly amused"


def test_decode_rejects_garbage() -> None:
    import msgpack

    with pytest.raises(ValueError):
        decode([msgpack.packb({"kind": "nope", "fields": {}, "arrays": []})])
    with pytest.raises(ValueError):
        decode([])
    with pytest.raises(ValueError):
        Control("s", 0, "format_disk")


def test_motion_spec_layout() -> None:
    s = DEFAULT_SPEC
    assert s.dim == 34 and s.n_expression == 28
    assert s.names[s.index("jawOpen")] == "jawOpen" and s.index("scale") == 33
    assert s.neutral(2)[:, s.index("scale")].tolist() == [1.0, 1.0]
    with pytest.raises(KeyError, match="mouthOpen"):
        s.index("mouthOpen")
    assert MotionSpec.from_dict(s.to_dict()) == s and MotionSpec.from_dict(s.to_dict()).key == s.key
    x = s.clip(np.full((1, 34), 2.0, np.float32))
    assert x[0, :28].max() == 1.0 and x[0, 28] == 2.0


def test_config_from_toml(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('fps = 30\n[runtime]\nbudget_ms = 120\n[render]\nsize = 512\n')
    cfg = load_config(p)
    assert cfg.fps == 30.0 and cfg.runtime.budget_ms == 120.0 and cfg.render.size == 512
    assert load_config() == EngineConfig()
    p.write_text("[runtime]\nbudgett_ms = 1\n")
    with pytest.raises(InputError, match="budgett_ms"):
        load_config(p)
    p.write_text('[render]\nsize = "big"\n')
    with pytest.raises(InputError, match="render.size"):
        load_config(p)
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "none.toml")


async def test_pacer_paces_on_injected_clock() -> None:
    clock = ManualClock()
    pacer = Pacer(25, clock)
    assert await pacer.wait() == 0
    clock.advance(0.04)
    assert await pacer.wait() == 1
    clock.advance(0.2)  # fell behind by 5 frames: skip ahead, count the misses, no burst
    idx = await pacer.wait()
    assert idx == 6 and pacer.missed == 4
    # ahead of schedule: it sleeps (real asyncio sleep of the difference)
    t = asyncio.get_running_loop().time()
    await pacer.wait()
    assert asyncio.get_running_loop().time() - t >= 0.03


def test_best_lag_pearson_finds_the_shift_and_skips_nans() -> None:
    from engine.metrics import best_lag_pearson, pearson

    rng = np.random.default_rng(1)
    y = rng.standard_normal(300).cumsum()
    x = np.roll(y, 3)  # x[t] = y[t - 3]: x[t] matches y[t + lag] at lag = -3
    x[::17] = np.nan
    r, lag = best_lag_pearson(x, y, max_lag=4)
    assert lag == -3 and r == pytest.approx(1.0)
    assert best_lag_pearson(x, y, max_lag=2)[1] != -3  # outside the window it cannot be found
    assert pearson(np.ones(5), np.arange(5.0)) == 0.0
    assert best_lag_pearson(np.ones(20), np.arange(20.0)) == (-np.inf, 0)
