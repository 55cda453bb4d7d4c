"""The Style-E benchmark's own measures: dynamic amplitude (how lively the output is against the ground truth)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from motion_quality import AMPLITUDE_GROUPS, dynamic_amplitude, running_deviation, wilson95  # noqa: E402


def _clip(rng: np.random.Generator, t: int = 300) -> np.ndarray:
    return np.cumsum(rng.normal(0, 0.02, (t, 34)), 0) + rng.random(34)


def test_running_deviation_ignores_levels_and_keeps_motion() -> None:
    c = _clip(np.random.default_rng(0))
    np.testing.assert_allclose(running_deviation(c + 3.0), running_deviation(c), atol=1e-9)  # a level is not motion
    assert np.allclose(running_deviation(np.ones((50, 34))), 0.0)
    assert running_deviation(c).std(0).min() > 0.005


def test_dynamic_amplitude_reads_stiffness_per_group() -> None:
    rng = np.random.default_rng(1)
    truths = [_clip(rng) for _ in range(3)]
    same = dynamic_amplitude(truths, truths)
    assert set(same) == set(AMPLITUDE_GROUPS) and all(v == 1.0 for v in same.values())
    stiff = [t.copy() for t in truths]
    for s in stiff:  # head half as lively, a level shift elsewhere (which is not motion)
        lo, hi = AMPLITUDE_GROUPS["head_pose"]
        s[:, lo:hi] = 0.5 * s[:, lo:hi]
        s[:, :lo] += 0.2
    got = dynamic_amplitude(stiff, truths)
    assert got["head_pose"] == 0.5
    assert all(v == 1.0 for k, v in got.items() if k != "head_pose")
    still = [t.copy() for t in truths]
    for t in still:
        t[:, 19:21] = 0.0  # ground truth that never blinks: no ratio to take
    assert dynamic_amplitude(still, still)["blinks"] == -1.0


def test_wilson_interval_says_how_far_chance_reaches() -> None:
    lo, hi = wilson95(45, 58)  # the headline style test: 77.6 % of 58 utterances
    assert 0.64 < lo < 0.66 and 0.86 < hi < 0.87 and lo < 45 / 58 < hi
    lo2, hi2 = wilson95(180, 232)  # the same rate on 4x the utterances: about half as wide
    assert 0.4 < (hi2 - lo2) / (hi - lo) < 0.6
    assert wilson95(0, 10)[0] == 0.0 and wilson95(10, 10)[1] == 1.0 and wilson95(0, 0) == [0.0, 1.0]
