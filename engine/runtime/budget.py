"""Latency budget: rolling latency windows and a controller that walks a quality ladder (pure logic).

The ladder is data: each `QualityLevel` names the knobs a level sets. Level 0 is the best quality.
The controller steps down (higher index) when the windowed p95 end-to-end latency or the late-drop
rate breaks the budget, and climbs back one level only after a sustained stretch of slack
(hysteresis: p95 below 60 % of the budget and no drops for `up_after_s`). A level that had to be
left again soon after climbing into it waits twice as long before the next try (up to
`max_up_after_s`), so the controller cannot oscillate between two levels.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from engine.clock import Clock


@dataclass(frozen=True, slots=True)
class QualityLevel:
    """One rung of the ladder.

    render_scale: multiplies the session render size (a stage whose cost does not depend on size,
        like the reference renderer, ignores it; the hub scales frames back to the session size).
    chunk_frames: audio frames per motion step (K). Larger chunks amortise a batched sampler's
        per-call cost but add K-1 frames of latency, so the default ladder keeps K = 1.
    steps: diffusion sampling steps (Style-E); stages without a sampler ignore it.
    refine: Style-A refinement network on/off; ignored by the reference renderer.
    render_rate: fraction of frames rendered (1.0 all; 0.5 every other frame, the skipped ones
        repeat the previous image while their audio plays on). Cuts render cost for every stage.
    """

    name: str
    render_scale: float = 1.0
    chunk_frames: int = 1
    steps: int = 4
    refine: bool = True
    render_rate: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.render_rate <= 1.0:
            raise ValueError(f"render_rate must be in (0, 1], got {self.render_rate}")
        if self.chunk_frames < 1:
            raise ValueError("chunk_frames must be >= 1")

    def render_size(self, size: int) -> int:
        """Render side for a session of side `size`, a multiple of 8 and at least 64."""
        return max(64, int(round(size * self.render_scale / 8.0)) * 8)

    def renders(self, index: int) -> bool:
        """Whether frame `index` is rendered at this level (evenly spread, `render_rate` of them)."""
        if self.render_rate >= 1.0:
            return True
        r = self.render_rate
        return math.floor((index + 1) * r + 1e-9) > math.floor(index * r + 1e-9)


# What each level does with today's stages (baseline motion + reference renderer): only
# `render_rate` changes their cost (the reference renderer costs ~17 ms a frame at 256, 192 or
# 128 px alike, and the baseline motion well under 1 ms), so every step down renders fewer
# frames. Style-E/Style-A also take fewer sampling steps, drop refinement and render smaller.
DEFAULT_LADDER: tuple[QualityLevel, ...] = (
    QualityLevel("full", render_scale=1.0, steps=4, refine=True, render_rate=1.0),  # 25 fps rendered
    QualityLevel("lean", render_scale=0.75, steps=2, refine=False, render_rate=0.8),  # 20 fps rendered
    QualityLevel("half-rate", render_scale=0.5, steps=1, refine=False, render_rate=0.5),  # 12.5 fps
    QualityLevel("third-rate", render_scale=0.5, steps=1, refine=False, render_rate=1 / 3),  # 8.3 fps
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
    up_below: float = 0.6  # climb when p95 < budget * up_below and nothing was dropped ...
    up_after_s: float = 3.0  # ... continuously for this long
    hold_s: float = 1.0  # minimum time between two moves
    max_drop_rate: float = 0.2  # late drops per observed frame that also force a step down
    min_samples: int = 8  # do not judge a window with fewer observations
    warmup_s: float = 3.0  # ignore the first seconds (workers warm up, first frames are slow)
    failed_climb_s: float = 30.0  # leaving a level this soon after climbing into it is a failed climb ...
    max_up_after_s: float = 300.0  # ... which doubles that level's slack wait, up to this


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
        self._started = clock.now()
        self._last_move = -float("inf")
        self._slack_since: float | None = None
        self._entered_at = self._started  # when the current level was entered
        self._climbed_in = False  # whether the current level was entered by climbing
        self._up_after = [policy.up_after_s] * len(ladder)  # slack wait before climbing INTO level i

    @property
    def current(self) -> QualityLevel:
        return self.ladder[self.level]

    def restart_warmup(self) -> None:
        """Start the warm-up period now (the engine calls this when its workers are up)."""
        self._started = self._entered_at = self.clock.now()

    def up_wait(self, level: int) -> float:
        """Seconds of continuous slack needed before climbing into `level` (grows after failed climbs)."""
        return self._up_after[level]

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
        pol = self.policy
        n = len(self._e2e)
        drops = len(self._drops)
        if now - self._started < pol.warmup_s or n + drops < pol.min_samples:
            self._slack_since = None
            return self.level
        p95 = self.p95() if n else float("inf")
        over = p95 > self.budget_ms * pol.down_above
        too_many_drops = drops > pol.max_drop_rate * (n + drops)
        if over or too_many_drops:
            self._slack_since = None
            if self.level < len(self.ladder) - 1 and now - self._last_move >= pol.hold_s:
                if self._climbed_in and now - self._entered_at < pol.failed_climb_s:
                    self._up_after[self.level] = min(2.0 * self._up_after[self.level], pol.max_up_after_s)
                self._move(+1, now)
            return self.level
        if self._climbed_in and now - self._entered_at >= pol.failed_climb_s:
            self._up_after[self.level] = pol.up_after_s  # the climb held: forgive earlier failures
        if p95 < self.budget_ms * pol.up_below and drops == 0:
            if self._slack_since is None:
                self._slack_since = now
            if (
                self.level > 0
                and now - self._slack_since >= self._up_after[self.level - 1]
                and now - self._last_move >= pol.hold_s
            ):
                self._move(-1, now)
                self._slack_since = None
        else:
            self._slack_since = None
        return self.level

    def _move(self, step: int, now: float) -> None:
        self.level += step
        self.moves += 1
        self._last_move = now
        self._entered_at = now
        self._climbed_in = step < 0
        # Latencies measured at the old level no longer describe the new one.
        self._e2e = RollingWindow(self.clock, self._e2e.window_s)
        self._drops = RollingWindow(self.clock, self._drops.window_s)
