"""The glass-to-glass measurement core (clients/g2g.py) on series with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from clients import g2g


def _speech_like(sr: int, spans: list[tuple[float, float]], total: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1e-4, int(total * sr))  # a quiet noise floor, not digital silence
    t = np.arange(x.size) / sr
    for a, b in spans:
        m = (t >= a) & (t < b)
        x[m] += 0.3 * np.sin(2 * np.pi * 180 * t[m]) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t[m]))
    return x.astype(np.float32)


def test_onsets_found_at_speech_starts() -> None:
    sr = 16000
    spans = [(0.5, 1.4), (2.0, 3.1), (3.25, 3.6), (4.2, 4.9)]  # 3.25 follows a 150 ms pause: not an onset
    t, db = g2g.level_series(_speech_like(sr, spans, 5.5), sr, t0=10.0)
    on = g2g.speech_onsets(t, db)
    np.testing.assert_allclose(on, [10.5, 12.0, 14.2], atol=0.006)


def test_no_onsets_in_flat_noise() -> None:
    t, db = g2g.level_series(np.random.default_rng(1).normal(0, 0.01, 32000), 16000)
    assert g2g.speech_onsets(t, db).size == 0


def test_mouth_openings_and_pairing() -> None:
    fps = 25.0
    ft = np.arange(0, 6, 1 / fps) + 100.0
    ap = np.full(ft.size, 0.02)
    ap += np.random.default_rng(2).normal(0, 0.003, ft.size)
    for start, dur in [(100.62, 0.6), (102.16, 0.8), (104.5, 0.4)]:
        m = (ft >= start) & (ft < start + dur)
        ap[m] = 0.3 + 0.1 * np.sin(np.arange(m.sum()))
    op = g2g.mouth_openings(ft, ap)
    assert op.size == 3
    assert np.all(np.abs(op - [100.64, 102.16, 104.52]) <= 1 / fps)
    lat = g2g.pair_latencies(np.array([100.5, 102.0, 103.5]), op, max_s=0.5)
    assert lat[0] == pytest.approx(140, abs=1) and lat[1] == pytest.approx(160, abs=1)
    assert np.isnan(lat[2])  # nothing opens within 0.5 s of 103.5


def test_measure_end_to_end_known_delay() -> None:
    sr, fps, delay = 16000, 25.0, 0.18
    spans = [(0.4, 1.2), (1.9, 2.8), (3.5, 4.4)]
    at, db = g2g.level_series(_speech_like(sr, spans, 5.0), sr)
    ft = np.arange(0, 5, 1 / fps)
    ap = np.zeros(ft.size)
    for a, b in spans:
        ap[(ft >= a + delay) & (ft < b + delay)] = 1.0
    res = g2g.measure(at, db, ft, ap)
    s = res.summary()
    assert s["onsets"] == 3 and s["paired"] == 3 and s["missed"] == 0
    # the opening is seen at the first frame at or after onset+delay: within one frame interval
    assert delay * 1e3 - 1 <= s["min_ms"] and s["max_ms"] <= delay * 1e3 + 1e3 / fps + 1


def test_unsorted_and_mismatched_inputs() -> None:
    with pytest.raises(ValueError):
        g2g.mouth_openings(np.arange(5.0), np.arange(4.0))
    t = np.array([0.3, 0.0, 0.1, 0.2, 0.4, 0.5, 0.6])
    v = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    v_sorted_t = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    a = g2g.mouth_openings(t, np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]))
    b = g2g.mouth_openings(v_sorted_t, v)
    np.testing.assert_allclose(a, b)


def test_quiet_after_ignores_word_gaps() -> None:
    """Barge-in at 2.0 s; the frames stay loud until 2.23 s, with one 80 ms word gap just before and
    one just after the barge-in: the stop is 230 ms, not the gap."""
    fps = 25.0
    ft = np.arange(0, 4, 1 / fps)
    level = np.where((ft >= 0.5) & (ft < 2.23), 200.0, 0.0) + np.random.default_rng(3).normal(0, 2, ft.size)
    level[(ft >= 1.9) & (ft < 1.98)] = 0.0
    level[(ft >= 2.06) & (ft < 2.14)] = 0.0
    lat = g2g.quiet_after(np.array([2.0, 3.9]), ft, level, hold_s=0.25, max_s=1.0)
    assert lat[0] == pytest.approx(240, abs=1e3 / fps)  # the first quiet frame at or after 2.23 s
    assert np.isnan(lat[1])  # the series ends before 0.25 s of quiet can be seen
    # already quiet at the event and staying so: 0 ms
    assert g2g.quiet_after(np.array([2.5]), ft, level)[0] == 0.0
    # a flat series has no quiet against loud
    assert np.isnan(g2g.quiet_after(np.array([1.0]), ft, np.ones(ft.size))[0])
