"""Latency budget: rolling latency windows and a controller that walks a quality ladder (pure logic).

The ladder is data: each `QualityLevel` names the knobs a level sets (render scale and chunk size
today; diffusion steps and refinement are carried for Style-E/Style-A and ignored by stages that
have no such knob). Level 0 is the best quality. The controller steps down (higher index) when the
windowed p95 end-to-end latency or the late-drop rate breaks the budget, and climbs back one level
only after a sustained stretch of slack (hysteresis), never faster than its hold times.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from engine.clock import Clock


@dataclass(frozen=True, slots=True)
class QualityLevel:
    """One rung of the ladder. `render_scale` multiplies the session render size."""

    name: str
    render_scale: float = 1.0
    chunk_frames: int = 1
    steps: int = 4  # diffusion sampling steps (Style-E); stages without a sampler ignore it
    refine: bool = True  # Style-A refinement network on/off; ignored by the reference renderer

    def render_size(self, size: int) -> int:
        """Render side for a session of side `size`, a multiple of 8 and at least 64."""
        return max(64, int(round(size * self.render_scale / 8.0)) * 8)


DEFAULT_LADDER: tuple[QualityLevel, ...] = (
    QualityLevel("full", 1.0, 1, 4, True),
    QualityLevel("fewer-steps", 1.0, 1, 2, True),
    QualityLevel("no-refine", 0.75, 1, 1, False),
    QualityLevel("small", 0.5, 2, 1, False),
)


class RollingWindow:
    """(time, value) samples kept for `window_s` seconds of the injected clock; percentiles on demand."""

    def __init__(self, clock: Clock, window_s: float = 1.0, maxlen: int = 4096) -> None:
        self.clock = clock
        self.window_s = window_s
        self._items: deque[tuple[float, float]] = deque(maxlen=maxlen)

    def add(self, value: float) -> None:
        self._items.append((self.clock.now(), float(value)))

    def _trim(self) -> None:
        horizon = self.clock.now() - self.window_s
        while self._items and self._items[0][0] <= horizon:
            self._items.popleft()

    def values(self) -> np.ndarray:
        self._trim()
        return np.fromiter((v for _, v in self._items), np.float64, len(self._items))

    def __len__(self) -> int:
        self._trim()
        return len(self._items)

    def percentiles(self, qs: tuple[float, ...] = (50.0, 95.0, 99.0)) -> tuple[float, ...]:
        """Percentiles of the window; NaN when it is empty."""
        v = self.values()
        if v.size == 0:
            return tuple(float("nan") for _ in qs)
        return tuple(float(x) for x in np.percentile(v, qs))


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    """Thresholds of the controller, as fractions of the budget and seconds on its clock."""

    down_above: float = 1.0  # step down when p95 > budget * down_above
    up_below: float = 0.75  # climb when p95 < budget * up_below ...
    up_after_s: float = 3.0  # ... continuously for this long
    hold_s: float = 1.0  # minimum time between two moves
    max_drop_rate: float = 0.2  # late drops per observed frame that also force a step down
    min_samples: int = 8  # do not judge a window with fewer observations


class BudgetController:
    """Holds an end-to-end p95 budget by moving along `ladder`; call `observe*` then `update()`."""

    def __init__(
        self,
        budget_ms: float,
        clock: Clock,
        ladder: tuple[QualityLevel, ...] = DEFAULT_LADDER,
        policy: BudgetPolicy = BudgetPolicy(),
        window_s: float = 1.0,
    ) -> None:
        if budget_ms <= 0:
            raise ValueError("budget_ms must be positive")
        if not ladder:
            raise ValueError("the quality ladder needs at least one level")
        self.budget_ms = float(budget_ms)
        self.clock = clock
        self.ladder = ladder
        self.policy = policy
        self.level = 0
        self.moves = 0
        self._e2e = RollingWindow(clock, window_s)
        self._drops = RollingWindow(clock, window_s)
        self._last_move = -float("inf")
        self._slack_since: float | None = None

    @property
    def current(self) -> QualityLevel:
        return self.ladder[self.level]

    def observe(self, e2e_ms: float) -> None:
        """One fresh frame's end-to-end latency."""
        self._e2e.add(e2e_ms)

    def observe_drop(self) -> None:
        """One frame dropped because it was late or a stage was saturated."""
        self._drops.add(1.0)

    def p95(self) -> float:
        return self._e2e.percentiles((95.0,))[0]

    def update(self) -> int:
        """Re-evaluate and possibly move one level; returns the (new) level index."""
        now = self.clock.now()
        n = len(self._e2e)
        drops = len(self._drops)
        if n + drops < self.policy.min_samples:
            self._slack_since = None
            return self.level
        p95 = self.p95() if n else float("inf")
        over = p95 > self.budget_ms * self.policy.down_above
        too_many_drops = drops > self.policy.max_drop_rate * (n + drops)
        if over or too_many_drops:
            self._slack_since = None
            if self.level < len(self.ladder) - 1 and now - self._last_move >= self.policy.hold_s:
                self._move(+1, now)
            return self.level
        if p95 < self.budget_ms * self.policy.up_below and drops == 0:
            if self._slack_since is None:
                self._slack_since = now
            slack_for = now - self._slack_since
            if self.level > 0 and slack_for >= self.policy.up_after_s and now - self._last_move >= self.policy.hold_s:
                self._move(-1, now)
                self._slack_since = now
        else:
            self._slack_since = None
        return self.level

    def _move(self, step: int, now: float) -> None:
        self.level += step
        self.moves += 1
        self._last_move = now
        # Latencies measured at the old level no longer describe the new one.
        self._e2e = RollingWindow(self.clock, self._e2e.window_s)
        self._drops = RollingWindow(self.clock, self._drops.window_s)
