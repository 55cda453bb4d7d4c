"""Tests for the baseline motion: determinism, envelope-driven jaw, idle behaviour, emotion keywords."""

from __future__ import annotations

import numpy as np
import pytest

from engine.assets import asset_path
from engine.motion.baseline import BaselineMotion, frame_bounds, parse_emotion, speech_per_frame
from engine.spec import DEFAULT_SPEC as SPEC

SR = 16_000
HOP = 640  # samples per frame at 25 fps


def col(y: np.ndarray, name: str) -> np.ndarray:
    return y[:, SPEC.index(name)]


def voiced(
    seconds: float, f0: float = 140.0, formants: tuple[float, ...] = (700.0, 1200.0), seed: int = 0
) -> np.ndarray:
    """A buzzy vowel-like signal: harmonics of f0 weighted by bumps at `formants`."""
    t = np.arange(int(seconds * SR)) / SR
    x = np.zeros_like(t)
    for h in range(1, int(4000 / f0)):
        f = h * f0
        w = sum(np.exp(-0.5 * ((f - fm) / 120.0) ** 2) for fm in formants)
        x += (w + 0.01) * np.sin(2 * np.pi * f * t)
    x += 0.001 * np.random.default_rng(seed).standard_normal(len(t))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def syllables(seconds: float = 4.0, rate_hz: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Voiced signal amplitude-modulated like syllables; returns (samples, per-frame RMS)."""
    x = voiced(seconds)
    t = np.arange(len(x)) / SR
    env = np.clip(np.sin(2 * np.pi * rate_hz * t), 0, None) ** 2 + 0.002
    y = (x * env).astype(np.float32)
    n = len(y) // HOP
    rms = np.sqrt((y[: n * HOP].reshape(n, HOP) ** 2).mean(1))
    return y, rms


def test_deterministic_given_seed() -> None:
    x, _ = syllables(3.0)
    a = BaselineMotion(seed=7).generate(x)
    b = BaselineMotion(seed=7).generate(x)
    c = BaselineMotion(seed=8).generate(x)
    assert a.shape == (75, SPEC.dim) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(col(a, "yaw"), col(c, "yaw"))
    m = BaselineMotion(seed=7)
    m.generate(x)
    m.reset()
    np.testing.assert_array_equal(m.generate(x), a)


def test_streaming_steps_equal_whole_clip() -> None:
    x, _ = syllables(2.0)
    flags = np.ones(50, bool)
    whole = BaselineMotion(seed=3).generate(x, flags)
    live = BaselineMotion(seed=3)
    steps = np.stack([live.step(x[i * HOP : (i + 1) * HOP], True) for i in range(50)])
    np.testing.assert_array_equal(whole, steps)
    with pytest.raises(ValueError):
        live.step(np.zeros(0, np.float32), True)


def test_jaw_follows_rms_envelope() -> None:
    x, rms = syllables(4.0)
    y = BaselineMotion().generate(x, np.ones(len(rms), bool))
    jaw = col(y, "jawOpen")[: len(rms)]
    r = np.corrcoef(jaw, rms)[0, 1]
    assert r > 0.8, r
    loud, quiet = rms > np.percentile(rms, 80), rms < np.percentile(rms, 20)
    assert jaw[loud].mean() > 0.3 and jaw[quiet].mean() < 0.1
    assert y[:, : SPEC.n_expression].min() >= 0.0 and y[:, : SPEC.n_expression].max() <= 1.0


def test_jaw_tracks_real_speech_envelope() -> None:
    from engine.audio.ingest import decode_audio

    x = decode_audio(asset_path("demo_speech.wav"))
    y = BaselineMotion().generate(x)
    n = len(x) // HOP
    rms = np.sqrt((x[: n * HOP].reshape(n, HOP) ** 2).mean(1))
    r = np.corrcoef(col(y, "jawOpen")[:n], rms)[0, 1]
    assert r > 0.6, r


def test_silence_keeps_mouth_closed_and_blinking() -> None:
    m = BaselineMotion(seed=1)
    seconds = 20
    y = m.generate(np.zeros(seconds * SR, np.float32), np.zeros(seconds * 25, bool))
    mouth = [n for n in SPEC.expression if n.startswith(("jaw", "mouth"))]
    assert max(float(col(y, n).max()) for n in mouth) < 1e-3
    blink = col(y, "eyeBlinkLeft")
    closed = blink > 0.5
    starts = np.flatnonzero(np.diff(closed.astype(int)) == 1)
    assert 3 <= len(starts) <= 9, len(starts)  # one blink every ~2-6 s
    assert blink.max() == pytest.approx(1.0)
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, blink > 0.05, 0])))[::2]
    assert runs.min() >= 2 and runs.max() <= 7  # 150-250 ms at 25 fps, shoulders included
    pitch = col(y, "pitch")
    assert 1e-3 < pitch.std() < 0.05  # breathing + idle sway, small
    assert np.abs(col(y, "yaw")).max() < 0.15


def test_speech_moves_head_more_than_idle() -> None:
    x, _ = syllables(12.0)
    talk = BaselineMotion(seed=2).generate(x, np.ones(300, bool))
    idle = BaselineMotion(seed=2).generate(np.zeros_like(x), np.zeros(300, bool))
    assert col(talk, "yaw")[50:].std() > 1.5 * col(idle, "yaw")[50:].std()


def test_rounded_vs_spread_vowels() -> None:
    oo = BaselineMotion().generate(voiced(1.0, formants=(300.0, 700.0)), np.ones(25, bool))[10:]
    ee = BaselineMotion().generate(voiced(1.0, formants=(300.0, 2600.0, 3200.0)), np.ones(25, bool))[10:]
    assert col(oo, "mouthFunnel").mean() > col(ee, "mouthFunnel").mean() + 0.1
    assert col(ee, "mouthStretchLeft").mean() > col(oo, "mouthStretchLeft").mean() + 0.05


@pytest.mark.parametrize(
    ("text", "up", "still"),
    [
        ("happy", ["mouthSmileLeft", "mouthSmileRight"], ["mouthFrownLeft", "browDownLeft"]),
        ("sad and tearful", ["mouthFrownLeft", "browInnerUp"], ["mouthSmileLeft"]),
        ("angry", ["browDownLeft", "browDownRight", "noseSneerLeft"], ["mouthSmileLeft", "eyeWideLeft"]),
        ("Surprised!", ["eyeWideLeft", "eyeWideRight", "browOuterUpLeft"], ["browDownLeft"]),
    ],
)
def test_emotion_keywords_move_the_right_channels(text: str, up: list[str], still: list[str]) -> None:
    silence = np.zeros(2 * SR, np.float32)
    flags = np.zeros(50, bool)
    neutral = BaselineMotion(seed=0).generate(silence, flags)[-10:]
    emo = BaselineMotion(seed=0, emotion=text).generate(silence, flags)[-10:]
    for name in up:
        assert col(emo, name).mean() > col(neutral, name).mean() + 0.2, name
    for name in still:
        assert col(emo, name).mean() < 0.05, name


def test_intensity_adverbs_and_negation() -> None:
    def smile(text: str) -> float:
        return dict(parse_emotion(text).offsets).get("mouthSmileLeft", 0.0)

    assert 0 < smile("slightly happy") < smile("happy") < smile("very happy") <= 1.0
    assert smile("not happy") == 0.0
    assert smile("calm but slightly amused") > 0 and parse_emotion("calm but slightly amused").head_gain < 1.0
    assert parse_emotion("xyzzy").offsets == () and parse_emotion("").matched == ()
    assert parse_emotion("very sad").head_gain < parse_emotion("excited").head_gain


def test_set_emotion_glides_midstream() -> None:
    m = BaselineMotion()
    quiet = np.zeros(HOP, np.float32)
    for _ in range(10):
        m.step(quiet, False)
    assert m.set_emotion("very happy").matched == ("happy",)
    first = m.step(quiet, False)[SPEC.index("mouthSmileLeft")]
    for _ in range(40):
        last = m.step(quiet, False)[SPEC.index("mouthSmileLeft")]
    assert 0.0 < first < 0.5 * last and last > 0.6


@pytest.mark.parametrize("fps", [25.0, 30.0, 24.0])
def test_frame_split_and_speech_flags(fps: float) -> None:
    x, _ = syllables(2.3)
    b = frame_bounds(len(x), fps)
    assert b[0] == 0 and b[-1] >= len(x) and b[-2] < len(x)
    flags = speech_per_frame(x, fps)
    assert len(flags) == len(b) - 1 and flags.any()
    assert not speech_per_frame(np.zeros(SR, np.float32), fps).any()
    assert BaselineMotion(fps=fps).generate(x).shape == (len(b) - 1, SPEC.dim)
