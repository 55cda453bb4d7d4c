"""One monotonic clock for the whole engine, plus pts/time-base helpers (video 1/90000, audio 1/rate)."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction
from typing import Protocol

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE)
AUDIO_RATE = 16_000
AUDIO_TIME_BASE = Fraction(1, AUDIO_RATE)


class Clock(Protocol):
    """Monotonic seconds. Injected everywhere pacing or latency is measured; never wall time."""

    def now(self) -> float: ...


class MonotonicClock:
    """The real clock: `time.monotonic()`."""

    def now(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock tests advance by hand."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = start

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        self._t += seconds


def video_pts(frame_index: int, fps: float) -> int:
    """pts on the 90 kHz grid of frame `frame_index` at `fps`."""
    return round(frame_index * VIDEO_CLOCK_RATE / fps)


def pts_to_seconds(pts: int, time_base: Fraction) -> float:
    return float(pts * time_base)


class Pacer:
    """Paces a frame loop at `fps` on an injected clock, sleeping only the difference (aiortc style).

    `wait()` returns the frame index due now; when the loop falls behind by more than one frame it
    skips ahead and reports how many ticks were missed instead of bursting to catch up.
    """

    def __init__(self, fps: float, clock: Clock | None = None) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.fps = fps
        self.clock = clock or MonotonicClock()
        self._start: float | None = None
        self._index = -1
        self.missed = 0

    @property
    def interval(self) -> float:
        return 1.0 / self.fps

    def deadline(self, index: int) -> float:
        assert self._start is not None
        return self._start + index * self.interval

    async def wait(self) -> int:
        now = self.clock.now()
        if self._start is None:
            self._start = now
            self._index = 0
            return 0
        nxt = self._index + 1
        due = self.deadline(nxt)
        if now - due > self.interval:
            behind = int((now - due) / self.interval)
            self.missed += behind
            nxt += behind
            due = self.deadline(nxt)
        if due > now:
            await asyncio.sleep(due - now)
        self._index = nxt
        return nxt
