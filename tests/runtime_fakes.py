"""Cheap motion/render stages for runtime tests: real protocol implementations without mediapipe.

FakeMotion writes the frame's RMS loudness into jawOpen; FakeRender paints the whole frame with
that value (x255), so a test can check that each output frame's image matches the audio it plays.
FakeRender refuses an all-black portrait with NoFaceError, like the real renderer refuses a faceless one.
"""

from __future__ import annotations

import numpy as np

from engine.config import EngineConfig
from engine.errors import NoFaceError
from engine.runtime.budget import QualityLevel
from engine.spec import DEFAULT_SPEC, MotionSpec


class FakeMotion:
    spec: MotionSpec = DEFAULT_SPEC

    def __init__(self, cfg: EngineConfig) -> None:
        self.emotion = cfg.motion.emotion

    def set_emotion(self, text: str) -> None:
        self.emotion = text

    def set_style_reference(self, coeffs: np.ndarray) -> None:
        self.style = coeffs

    def set_quality(self, level: QualityLevel) -> None:
        self.level = level

    def step_chunk(self, frames: np.ndarray, speech: np.ndarray) -> np.ndarray:
        out = self.spec.neutral(len(frames))
        out[:, 0] = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
        return out

    def reset(self) -> None:
        return None


class LookaheadMotion(FakeMotion):
    """Like FakeMotion, but with Style-E's interface for lookahead: input frames [n-K, n) give the rows of
    frames [n-K-L, n-L) (`latency_frames` L = 2; neutral rows before the first frame)."""

    latency_frames = 2

    def __init__(self, cfg: EngineConfig) -> None:
        super().__init__(cfg)
        self._held: list[np.ndarray] = []

    def step_chunk(self, frames: np.ndarray, speech: np.ndarray) -> np.ndarray:
        self._held.extend(super().step_chunk(frames, speech))
        out = []
        for _ in range(len(frames)):
            out.append(self._held.pop(0) if len(self._held) > self.latency_frames else self.spec.neutral(1)[0])
        return np.stack(out)

    def reset(self) -> None:
        self._held.clear()


class FakeRender:
    def __init__(self, cfg: EngineConfig) -> None:
        self.size = cfg.render.size

    def set_portrait(self, image: np.ndarray | None) -> None:
        if image is not None and int(image.max()) == 0:
            raise NoFaceError("no face found in the portrait")

    def set_art_style(self, image: np.ndarray | None) -> None:
        self.art = image

    def set_size(self, size: int) -> None:
        self.size = size

    def set_quality(self, level: QualityLevel) -> None:
        self.size = level.render_size(256)

    def render(self, coeffs: np.ndarray) -> np.ndarray:
        v = int(np.clip(round(float(coeffs[0]) * 255), 0, 255))
        return np.full((self.size, self.size, 3), v, np.uint8)


class SlowRender(FakeRender):
    """A healthy but slow renderer (0.5 s a frame): it answers, so it must never be taken for hung."""

    def render(self, coeffs: np.ndarray) -> np.ndarray:
        import time

        time.sleep(0.5)  # stands for 0.5 s of compute
        return super().render(coeffs)


def make_slow_render(cfg: EngineConfig) -> SlowRender:
    return SlowRender(cfg)


def make_motion(cfg: EngineConfig) -> FakeMotion:
    return FakeMotion(cfg)


def make_lookahead_motion(cfg: EngineConfig) -> LookaheadMotion:
    return LookaheadMotion(cfg)


def make_render(cfg: EngineConfig) -> FakeRender:
    return FakeRender(cfg)


# ---------------------------------------------------------------- shared test helpers
import asyncio  # noqa: E402
import multiprocessing  # noqa: E402
import time  # noqa: E402
from typing import Any, AsyncIterator  # noqa: E402

from engine.config import MotionConfig, RenderConfig, RuntimeConfig  # noqa: E402
from engine.messages import VideoFrame  # noqa: E402


def fake_config(render: str = "runtime_fakes:make_render", motion: str = "runtime_fakes:make_motion",
                **runtime: Any) -> EngineConfig:
    return EngineConfig(
        motion=MotionConfig(kind=motion),
        render=RenderConfig(kind=render),
        runtime=RuntimeConfig(**runtime),
    )


async def frames_until(engine: Any, cond: Any, timeout_s: float) -> int:
    """Read frames until `cond()` holds (checked at every frame); returns frames read. Fails on timeout."""
    frames: AsyncIterator[VideoFrame] = engine.frames()
    n = 0
    try:
        async with asyncio.timeout(timeout_s):
            while not cond():
                await anext(frames)
                n += 1
    finally:
        await frames.aclose()  # type: ignore[attr-defined]
    return n


async def assert_no_leaks() -> None:
    """Every socket closed, every child reaped, no task left behind (call after engine.close())."""
    from engine.runtime import transport

    assert transport.open_sockets() == [], "leaked zmq sockets"
    assert multiprocessing.active_children() == [], "leaked worker processes"
    me = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    assert left == [], f"leaked asyncio tasks: {left}"


async def feed_realtime(engine: Any, audio: np.ndarray, piece: int = 320) -> None:
    """Push `audio` in 20 ms pieces at real-time pace with honest capture times."""
    t0 = time.monotonic()
    for i in range(len(audio) // piece):
        due = t0 + (i + 1) * piece / 16000
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        engine.push_audio(audio[i * piece : (i + 1) * piece], capture_time=t0 + i * piece / 16000)


async def collect(engine: Any, seconds: float) -> list[tuple[float, VideoFrame]]:
    """(arrival time, frame) for every frame the engine hands out during `seconds`."""
    out: list[tuple[float, VideoFrame]] = []
    end = time.monotonic() + seconds
    frames: AsyncIterator[VideoFrame] = engine.frames()
    while time.monotonic() < end:
        try:
            f = await asyncio.wait_for(anext(frames), max(0.01, end - time.monotonic()))
        except TimeoutError:
            break
        out.append((time.monotonic(), f))
    await frames.aclose()  # type: ignore[attr-defined]
    return out
