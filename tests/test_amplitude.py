"""Reference amplitude matching (engine.motion.amplitude): identity without a reference, matches a reference's
spread online, keeps levels and the mouth, caps gains, glides between references."""

from __future__ import annotations

import numpy as np
import pytest

from engine.motion import amplitude as A


def _clip(amp: float, frames: int = 500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    motion = np.sin(2 * np.pi * t / rng.uniform(8, 30, 34)) + 0.3 * rng.standard_normal((frames, 34))
    return (0.5 + amp * 0.1 * motion).astype(np.float32)


def _run(am: A.AmplitudeMatch, x: np.ndarray, k: int = 2) -> np.ndarray:
    return np.concatenate([am(x[i:i + k]) for i in range(0, len(x), k)])


def test_no_reference_is_identity() -> None:
    x = _clip(0.3)
    np.testing.assert_array_equal(_run(A.AmplitudeMatch(34), x), x)


def test_matches_reference_spread_keeps_levels_and_mouth() -> None:
    ref, stiff = _clip(1.0, seed=1), _clip(0.35, seed=2)
    am = A.AmplitudeMatch(34, A.reference_spread(ref))
    out = _run(am, stiff)
    lo = A.FIRST_CHANNEL
    np.testing.assert_array_equal(out[:, :lo], stiff[:, :lo])  # the mouth is the audio's, untouched
    tail = slice(250, None)  # after the online estimate settles
    got = A.running_deviation(out)[tail, lo:].std(0)
    want = A.reference_spread(ref)[lo:]
    before = A.running_deviation(stiff)[tail, lo:].std(0)
    assert np.median(np.abs(got / want - 1)) < 0.2 < np.median(np.abs(before / want - 1))
    np.testing.assert_allclose(out[tail, lo:].mean(0), stiff[tail, lo:].mean(0), atol=0.02)  # levels kept


def test_gain_is_capped_and_still_channels_stay_still() -> None:
    ref = _clip(1.0, seed=3)
    x = _clip(0.01, seed=4)
    x[:, 20] = 0.5  # a channel that does not move at all
    out = _run(A.AmplitudeMatch(34, A.reference_spread(ref)), x)
    dev_in, dev_out = A.running_deviation(x), A.running_deviation(out)
    lo = A.FIRST_CHANNEL
    assert (dev_out[:, lo:].std(0) <= A.CAP * dev_in[:, lo:].std(0) + 1e-6).all()
    assert np.allclose(out[:, 20], 0.5)


def test_new_reference_glides_in() -> None:
    x = _clip(0.5, seed=5)
    am = A.AmplitudeMatch(34, A.reference_spread(_clip(0.5, seed=6)))
    first = _run(am, x[:200])
    am.set_target(A.reference_spread(_clip(3.0, seed=7)))
    second = _run(am, x[200:])
    y = np.concatenate([first, second])
    jump = np.abs(np.diff(y[195:215], axis=0)).max()  # the switch: no step beyond the new regime's own motion
    after = np.percentile(np.abs(np.diff(y[300:], axis=0)), 99)
    before = np.percentile(np.abs(np.diff(y[100:195], axis=0)), 99)
    assert jump < 1.5 * after and after > 2 * before  # the livelier reference took over, without a jump


def test_bad_spread_refused() -> None:
    am = A.AmplitudeMatch(34)
    with pytest.raises(ValueError):
        am.set_target(np.ones(10))
    with pytest.raises(ValueError):
        am.set_target(np.full(34, np.nan))
    am.set_target(None)
    assert am.target is None
