"""An engine wrapper for measuring endpoints: timing marker on outgoing frames, optional injected video delay.

`MeasuredEngine` has the engine's public API; only `frames()` differs: each frame can carry the
glass-to-glass timing marker (clients/g2g.py: a corner square whose grey level is the loudness of
the audio that plays with the frame) and can be held back by a fixed delay (the harness's
self-check: a copy of our endpoint known to be exactly that much slower). Both are off by default;
`s2t serve --timing-marker` and the bench's own server turn them on through `measured_factory`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import replace
from typing import Any, AsyncIterator, Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from clients import g2g
from engine.config import EngineConfig
from engine.messages import VideoFrame


class MeasuredEngine:
    """Delegates to `inner`; `frames()` stamps the marker and/or delays each frame by `delay_ms`."""

    def __init__(self, inner: Any, marker: bool = False, delay_ms: float = 0.0, trace: bool = False) -> None:
        if delay_ms < 0:
            raise ValueError("delay_ms must be >= 0")
        self.inner = inner
        self.marker = marker
        self.delay_s = delay_ms / 1e3
        self.trace = trace
        # with `trace`: (capture time, level dB) per audio push; (time out, marker value) per frame out
        self.pushes: list[tuple[float, float]] = []
        self.emits: list[tuple[float, float]] = []

    def __getattr__(self, name: str) -> Any:  # start, close, stats, set_*, interrupt, ...
        return getattr(self.inner, name)

    def push_audio(self, pcm: Any, capture_time: float | None = None, sample_rate: int = 16000) -> None:
        self.inner.push_audio(pcm, capture_time=capture_time, sample_rate=sample_rate)
        if self.trace:
            t = time.monotonic() if capture_time is None else capture_time
            self.pushes.append((t, g2g.block_level_db(pcm)))

    def _mark(self, f: VideoFrame) -> VideoFrame:
        if not self.marker:
            return f
        return replace(f, image=g2g.stamp_marker(f.image, float(g2g.marker_value(g2g.block_level_db(f.audio)))))

    def _out(self, f: VideoFrame) -> VideoFrame:
        if self.trace:
            self.emits.append((time.monotonic(), float(g2g.marker_value(g2g.block_level_db(f.audio)))))
        return f

    async def frames(self) -> AsyncIterator[VideoFrame]:
        if self.delay_s <= 0:
            async for f in self.inner.frames():
                yield self._out(self._mark(f))
            return
        line: deque[tuple[float, VideoFrame]] = deque(maxlen=1024)
        arrived = asyncio.Event()
        done = False

        async def fill() -> None:
            nonlocal done
            try:
                async for f in self.inner.frames():
                    line.append((time.monotonic() + self.delay_s, self._mark(f)))
                    arrived.set()
            finally:
                done = True
                arrived.set()

        task = asyncio.create_task(fill(), name="s2t-bench-delay")
        try:
            while True:
                if not line:
                    if done:
                        return
                    arrived.clear()
                    await arrived.wait()
                    continue
                due, f = line[0]
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # a delay line: hold each frame until its due time
                line.popleft()
                yield self._out(f)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def measured_factory(marker: bool = True, delay_ms: float = 0.0, trace: bool = False) -> Callable[[EngineConfig, str], Any]:
    """An engine factory for `clients.webrtc.server.create_app` that wraps each engine in MeasuredEngine."""

    def factory(cfg: EngineConfig, session: str) -> Any:
        from engine.runtime import Engine

        return MeasuredEngine(Engine(cfg, session=session), marker=marker, delay_ms=delay_ms, trace=trace)

    return factory



class DelayedTrack(MediaStreamTrack):
    """Wraps an aiortc track so each frame comes out `delay_ms` after the inner track produced it.

    A pump task reads the inner track as fast as it produces (its pacing is kept) into a delay line;
    `recv()` hands each frame out at its due time. Used for the WHEP viewers of `s2t serve` when
    `ServeConfig.whep_video_delay_ms` is set: the harness's self-check watches one live session
    directly and through this delayed copy at once.
    """

    def __init__(self, inner: MediaStreamTrack, delay_ms: float) -> None:
        super().__init__()
        self.kind = inner.kind
        self.inner = inner
        self.delay_s = delay_ms / 1e3
        self.line: deque[tuple[float, Any]] = deque(maxlen=1024)
        self.arrived = asyncio.Event()
        self.done = False
        self.pump: asyncio.Task[None] | None = None

    async def _pump(self) -> None:
        try:
            while True:
                f = await self.inner.recv()
                self.line.append((time.monotonic() + self.delay_s, f))
                self.arrived.set()
        except MediaStreamError:
            pass
        finally:
            self.done = True
            self.arrived.set()

    async def recv(self) -> Any:
        if self.pump is None:
            self.pump = asyncio.create_task(self._pump(), name="s2t-delayed-track")
        while not self.line:
            if self.done or self.readyState != "live":
                raise MediaStreamError
            self.arrived.clear()
            await self.arrived.wait()
        due, f = self.line[0]
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # the delay line: hold each frame until its due time
        self.line.popleft()
        return f

    def stop(self) -> None:
        super().stop()
        if self.pump is not None:
            self.pump.cancel()
        self.inner.stop()
