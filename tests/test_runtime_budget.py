"""Budget controller, rolling windows, audio timeline and playout: pure logic on a ManualClock."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.clock import ManualClock
from engine.errors import AudioError
from engine.runtime.budget import DEFAULT_LADDER, BudgetController, BudgetPolicy, QualityLevel, RollingWindow
from engine.runtime.timeline import AudioTimeline, Playout

FPS = 25.0
DT = 1.0 / FPS


def feed(ctrl: BudgetController, clock: ManualClock, ms: float, seconds: float) -> list[int]:
    levels = []
    for _ in range(int(seconds * FPS)):
        clock.advance(DT)
        ctrl.observe(ms)
        levels.append(ctrl.update())
    return levels


def test_rolling_window_percentiles_and_expiry() -> None:
    clock = ManualClock()
    w = RollingWindow(clock, window_s=1.0)
    for v in range(1, 101):
        w.add(v)
    p50, p95, p99 = w.percentiles()
    assert p50 == pytest.approx(50.5) and p95 == pytest.approx(95.05) and p99 == pytest.approx(99.01)
    clock.advance(1.5)
    assert len(w) == 0 and math.isnan(w.percentiles((95.0,))[0])


def test_controller_steps_down_over_budget_and_back_up_with_hysteresis() -> None:
    clock = ManualClock()
    ctrl = BudgetController(150.0, clock, DEFAULT_LADDER, BudgetPolicy(hold_s=1.0, up_after_s=3.0, warmup_s=0.0))
    assert feed(ctrl, clock, 80.0, 2.0)[-1] == 0  # inside budget: stays at full quality
    levels = feed(ctrl, clock, 200.0, 2.5)
    assert levels[-1] >= 2, "two seconds over budget must step down at least twice"
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:])), "one level at a time"
    first_down = levels.index(1)
    assert levels[first_down : first_down + int(FPS * 0.9)].count(1) >= int(FPS * 0.9) - 1, "hold time respected"
    low = ctrl.level
    # 120 ms is inside the budget but not below 60% of it (90 ms): no climbing (hysteresis band).
    assert feed(ctrl, clock, 120.0, 10.0)[-1] == low
    up = feed(ctrl, clock, 40.0, 4.5)  # 1 s for the window to forget 120 ms, then 3 s of slack
    assert up[-1] == low - 1, "climbs back exactly one level"
    assert up.index(low - 1) >= int(3.0 * FPS), "not before three seconds of slack"
    assert feed(ctrl, clock, 40.0, 15.0)[-1] == 0


def test_controller_warmup_and_drop_rate() -> None:
    clock = ManualClock()
    ctrl = BudgetController(150.0, clock, policy=BudgetPolicy(warmup_s=3.0))
    assert max(feed(ctrl, clock, 900.0, 2.9)) == 0, "the warm-up (slow first frames) is not judged"
    assert feed(ctrl, clock, 900.0, 0.5)[-1] == 1
    clock2 = ManualClock()
    ctrl2 = BudgetController(150.0, clock2, policy=BudgetPolicy(warmup_s=0.0))
    clock2.advance(0.1)
    for _ in range(3):
        ctrl2.observe(900.0)
    assert ctrl2.update() == 0, "three samples are too few to judge"
    for _ in range(25):
        clock2.advance(DT)
        ctrl2.observe(50.0)
        ctrl2.observe_drop()
    assert ctrl2.update() == 1, "latency fine but half the frames dropped: step down"
    assert ctrl2.current == DEFAULT_LADDER[1]


def _plant(ctrl: BudgetController, clock: ManualClock, cost: list[float], seconds: float) -> list[int]:
    """A system whose latency depends on the level the controller picked (updated once a second)."""
    levels = []
    for k in range(int(seconds * FPS)):
        clock.advance(DT)
        ctrl.observe(cost[ctrl.level])
        if k % int(FPS) == 0:
            ctrl.update()
        levels.append(ctrl.level)
    return levels


def test_controller_does_not_oscillate_between_a_too_slow_and_a_fast_level() -> None:
    clock = ManualClock()
    pol = BudgetPolicy(warmup_s=0.0, up_after_s=3.0, failed_climb_s=30.0, max_up_after_s=300.0)
    ctrl = BudgetController(150.0, clock, DEFAULT_LADDER, pol)
    # level 0 breaks the budget (170 ms), level 1 has plenty of slack (60 ms): a naive controller
    # would go down and up every few seconds for ever.
    levels = np.array(_plant(ctrl, clock, [170.0, 60.0, 50.0, 40.0], 900.0))
    assert levels.max() == 1, "never further down than needed"
    climbs = np.flatnonzero(np.diff(levels) < 0) / FPS  # times of the (failed) probes of level 0
    assert 4 <= len(climbs) <= 9, climbs
    gaps = np.diff(climbs)
    assert np.all(gaps[1:] >= 1.5 * gaps[:-1] - 3.0), f"each failed climb waits about twice as long: {gaps}"
    assert gaps[-1] >= 250.0, "up to the 300 s cap"
    assert np.sum(np.diff(levels[-int(300 * FPS):]) != 0) <= 2, "the probing dies out: at most one in the last 5 min"
    assert np.mean(levels[-int(300 * FPS):] == 1) >= 0.99, "settles on the level that fits"
    assert ctrl.up_wait(0) == pol.max_up_after_s, "each failed climb doubled the wait, up to the cap"


def test_controller_forgives_failed_climbs_once_a_level_holds() -> None:
    clock = ManualClock()
    pol = BudgetPolicy(warmup_s=0.0, up_after_s=3.0, failed_climb_s=20.0)
    ctrl = BudgetController(150.0, clock, DEFAULT_LADDER, pol)
    cost = [170.0, 60.0, 50.0, 40.0]
    _plant(ctrl, clock, cost, 40.0)
    assert ctrl.up_wait(0) > pol.up_after_s, "the failed climbs made level 0 wait longer"
    cost[0] = 70.0  # the load went away: level 0 now fits
    levels = _plant(ctrl, clock, cost, 200.0)
    assert levels[-1] == 0
    assert ctrl.up_wait(0) == pol.up_after_s, "a climb that held resets the wait"


def test_quality_levels_render_fewer_frames_down_the_ladder() -> None:
    def rendered(level: QualityLevel) -> int:
        return sum(level.renders(i) for i in range(300))

    assert [rendered(q) for q in DEFAULT_LADDER] == [300, 240, 150, 100]
    half = DEFAULT_LADDER[2]
    assert [half.renders(i) for i in range(6)] == [False, True, False, True, False, True]
    assert all(q.chunk_frames == 1 for q in DEFAULT_LADDER), "chunking adds latency: not a default step"
    with pytest.raises(ValueError):
        QualityLevel("bad", render_rate=0.0)
    with pytest.raises(ValueError):
        QualityLevel("bad", chunk_frames=0)


def test_quality_level_render_size_is_multiple_of_8() -> None:
    assert QualityLevel("x", 0.75).render_size(256) == 192
    assert QualityLevel("x", 0.3).render_size(256) == 80
    assert QualityLevel("x", 0.1).render_size(256) == 64


def test_timeline_live_push_releases_at_once_and_burst_is_paced() -> None:
    tl = AudioTimeline(FPS, 16000, start_time=0.0)
    assert [s.silence for s in tl.release(0.0)] == [True], "idle from the start: silence keeps frames coming"
    # live: 20 ms pieces pushed as they are captured
    t = 0.0
    released = []
    for i in range(10):
        t = 0.02 * (i + 1)
        tl.push(np.full(320, 0.1, np.float32), capture_time=0.02 * i)
        released += tl.release(t)
    live = [s for s in released if not s.silence]
    assert len(live) == 5
    assert all(s.release_time - s.capture_time == pytest.approx(DT, abs=0.021) for s in live)
    # burst: 2.4 s at once is released one frame per interval, never ahead of real time
    tl.push(np.full(640 * 60, 0.2, np.float32), capture_time=t)
    counts = []
    for k in range(60):
        t += DT
        counts.append(len(tl.release(t)))
    assert sum(counts) == 60 and max(counts) == 1
    with pytest.raises(AudioError, match="backlog"):
        tl.push(np.zeros(16000 * 31, np.float32), capture_time=t)


def test_timeline_live_speech_after_silence_is_not_phase_locked_behind_the_silence_grid() -> None:
    tl = AudioTimeline(FPS, 16000, start_time=0.0)
    for k in range(5):
        tl.release(k * DT)  # idle: silence slots on the tick grid 0, 40, ... 160 ms
    # live speech whose frames complete 5 ms after each grid tick, pushed in 20 ms pieces
    lags = []
    for i in range(40):
        t = 0.165 - DT + 0.02 * (i + 1)  # a piece [t-20ms, t) arrives at t
        tl.push(np.full(320, 0.1, np.float32), capture_time=t - 0.02)
        for s in tl.release(t):
            if not s.silence:
                lags.append(s.release_time - (s.capture_time + DT))
    assert len(lags) == 20 and max(lags) < 1e-6, f"released as soon as complete, got lags {max(lags):.3f} s"


def test_timeline_silence_fill_after_grace_and_clear() -> None:
    tl = AudioTimeline(FPS, 16000, start_time=0.0, grace_frames=2)
    tl.release(0.0)
    tl.push(np.ones(640, np.float32) * 0.1, capture_time=0.0)
    assert not tl.release(DT)[0].silence
    assert tl.release(DT * 3) == [], "within the grace period a late producer is waited for"
    out = tl.release(DT * 4 + 0.001)
    assert len(out) == 1 and out[0].silence
    fills = sum(len(tl.release(DT * (4 + k) + 0.001)) for k in range(1, 26))
    assert fills == 25, "idle: exactly one silence slot per frame interval"
    tl.push(np.ones(16000, np.float32), capture_time=1.0)
    assert tl.clear(1.1) == 16000 and tl.backlog_samples == 0


def _slot_stream(tl: AudioTimeline, pl: Playout, t: float) -> None:
    for s in tl.release(t):
        pl.add_slot(s)


def test_playout_pairs_images_with_their_audio_and_repeats_when_missing() -> None:
    tl = AudioTimeline(FPS, 16000, start_time=0.0)
    pl = Playout(FPS, 640, delay_s=0.03)
    shown = []
    for k in range(50):
        t = k * DT
        tl.push(np.full(640, k / 100, np.float32), capture_time=t - DT)
        for s in tl.release(t):
            pl.add_slot(s)
            if s.index % 10 != 7:  # every 10th frame's image never arrives
                pl.add_image(s.index, f"img{s.index}")
        em, img = pl.tick(t + 0.03)
        shown.append((em, img))
    fresh = [(em, img) for em, img in shown if not em.repeated]
    assert len(fresh) >= 40
    assert all(img == f"img{em.slot_index}" for em, img in fresh), "a fresh image plays with its own audio"
    rep = [(em, img) for em, img in shown if em.repeated and em.slot_index >= 0]
    assert rep and all(em.image_index == em.slot_index - 1 for em, _ in rep), "missing image -> previous one"
    assert pl.add_image(3, "late") is False and pl.dropped_late >= 1


def test_playout_never_queues_more_than_a_frame_behind() -> None:
    pl = Playout(FPS, 640, delay_s=0.0)
    tl = AudioTimeline(FPS, 16000, start_time=0.0)
    tl.push(np.zeros(640 * 20, np.float32), capture_time=-10.0)
    for k in range(20):
        for s in tl.release(k * DT):
            pl.add_slot(s)
    # the output stalled for 20 frames; one tick must not replay the backlog
    em, _ = pl.tick(20 * DT)
    assert pl.depth <= 1 and pl.dropped_catchup >= 18 and em.slot_index >= 18
