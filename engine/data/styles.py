"""Talking/singing styles as motion-dynamics parameters, plus speech-correlated blinks and head motion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from engine.data.visemes import ArticulationParams
from engine.errors import InputError
from engine.spec import DEFAULT_SPEC, MotionSpec


@dataclass(frozen=True, slots=True)
class TalkingStyle:
    """Parameters of one talking or singing style (all motion dynamics, plus how the TTS is driven)."""

    name: str
    jaw_range: float  # scale on viseme jaw targets
    lip_range: float  # scale on viseme lip targets
    vowel_sustain: float  # >1 widens vowel dominance (held, sung vowels)
    head_tempo_hz: float  # dominant frequency of head motion
    head_amplitude: float  # rad, std of yaw at full energy
    smile_baseline: float  # constant smile added (0..1)
    brow_activity: float  # how strongly brows follow speech energy onsets
    blink_per_min: float
    energy_coupling: float  # 0..1: share of head motion driven by the speech envelope
    rate_factor: float  # TTS rate multiplier
    pitch_shift: float  # TTS pitch offset (espeak 0..100 scale)
    pitch_range: float  # TTS pitch-range multiplier
    volume: float  # TTS volume multiplier
    variant: str = ""  # force an espeak variant (e.g. "whisper"); "" = the voice's own

    def articulation(self) -> ArticulationParams:
        return ArticulationParams(jaw_range=self.jaw_range, lip_range=self.lip_range, vowel_sustain=self.vowel_sustain)


STYLES: dict[str, TalkingStyle] = {s.name: s for s in (
    TalkingStyle("calm_narrator", 0.85, 0.9, 1.0, 0.35, 0.035, 0.05, 0.3, 14, 0.4, 0.92, -3, 0.8, 0.95),
    TalkingStyle("energetic_presenter", 1.15, 1.15, 1.0, 0.9, 0.09, 0.25, 1.0, 20, 0.8, 1.15, 6, 1.5, 1.25),
    TalkingStyle("whisper", 0.6, 1.05, 0.9, 0.25, 0.02, 0.0, 0.2, 12, 0.3, 0.95, 0, 0.6, 0.8, "whisper"),
    TalkingStyle("rap", 0.95, 1.0, 0.7, 1.6, 0.07, 0.1, 0.7, 18, 0.9, 1.6, 0, 0.7, 1.3),
    TalkingStyle("opera", 1.45, 1.25, 2.2, 0.2, 0.05, 0.05, 1.2, 8, 0.5, 0.55, 14, 2.0, 1.4),
    TalkingStyle("ballad", 1.1, 1.0, 1.8, 0.25, 0.045, 0.15, 0.6, 10, 0.5, 0.65, 4, 1.6, 1.0),
    TalkingStyle("newsreader", 0.9, 0.9, 1.0, 0.3, 0.02, 0.0, 0.25, 12, 0.3, 1.0, 0, 0.9, 1.0),
)}
STYLE_NAMES: tuple[str, ...] = tuple(STYLES)


def get_style(name: str) -> TalkingStyle:
    try:
        return STYLES[name]
    except KeyError:
        raise InputError(f"unknown style {name!r} (known: {', '.join(STYLE_NAMES)})") from None


def _smooth(x: np.ndarray, alpha: float) -> np.ndarray:
    """One-pole low-pass along axis 0 (alpha = per-frame pole)."""
    return lfilter([1.0 - alpha], [1.0, -alpha], x, axis=0)


def head_motion(rng: np.random.Generator, energy: np.ndarray, style: TalkingStyle, amp_factor: float = 1.0,
                fps: float = 25.0) -> np.ndarray:
    """(T, 6) pose (yaw, pitch, roll, tx, ty, scale): band-limited random motion whose amplitude follows
    the smoothed speech envelope, plus small nods at energy onsets."""
    T = len(energy)
    e = np.asarray(energy, np.float64)
    e = e / (np.percentile(e, 95) + 1e-8) if T else e
    env = _smooth(np.clip(e, 0, 1.5), 0.85)
    gain = (1.0 - style.energy_coupling) + style.energy_coupling * env
    # second-order resonant filter around the style's head tempo: sway at that rate, not white jitter
    f = max(style.head_tempo_hz, 0.05) / fps
    r = 0.93
    a = [1.0, -2 * r * np.cos(2 * np.pi * f), r * r]
    noise = rng.standard_normal((T + 50, 6))
    sway = lfilter([1.0 - r], a, noise, axis=0)[50:]
    sway /= sway.std(axis=0, keepdims=True) + 1e-8
    drift = _smooth(rng.standard_normal((T + 50, 6)), 0.98)[50:]
    drift /= drift.std(axis=0, keepdims=True) + 1e-8
    amp = style.head_amplitude * amp_factor
    scales = np.array([1.0, 0.6, 0.35, 0.012, 0.008, 0.01]) * amp / 0.05
    pose = (0.7 * sway * gain[:, None] + 0.3 * drift) * scales[None] * 0.05
    onsets = np.clip(np.diff(env, prepend=env[:1]), 0, None)
    pose[:, 1] += _smooth(onsets, 0.7) * amp * 2.0  # nod down on stress/onsets
    pose[:, 5] += 1.0
    return pose.astype(np.float32)


def blinks(rng: np.random.Generator, energy: np.ndarray, per_min: float, fps: float = 25.0) -> np.ndarray:
    """(T,) eyelid closure 0..1: a Poisson blink process, more likely in pauses, each ~200 ms with a
    fast close and a slower open; refractory 0.5 s."""
    T = len(energy)
    out = np.zeros(T, np.float32)
    if T == 0:
        return out
    e = np.asarray(energy, np.float64)
    quiet = e < 0.25 * (np.percentile(e, 90) + 1e-8)
    p = per_min / 60.0 / fps * np.where(quiet, 1.8, 0.7)
    hits = rng.random(T) < p
    shape = np.array([0.5, 1.0, 0.85, 0.5, 0.2], np.float32)
    last = -1000
    for t in np.flatnonzero(hits):  # a few per utterance: a short loop over events, not frames
        if t - last < 0.5 * fps:
            continue
        last = int(t)
        seg = shape[: T - t]
        out[t : t + len(seg)] = np.maximum(out[t : t + len(seg)], seg)
    return out


def style_expression(style: TalkingStyle, energy: np.ndarray, spec: MotionSpec = DEFAULT_SPEC) -> np.ndarray:
    """(T, n_expression) style-driven offsets: smile baseline and brows that rise with speech onsets."""
    T = len(energy)
    out = np.zeros((T, spec.n_expression), np.float32)
    e = np.asarray(energy, np.float64)
    e = e / (np.percentile(e, 95) + 1e-8) if T else e
    env = _smooth(np.clip(e, 0, 1.5), 0.8)
    onsets = _smooth(np.clip(np.diff(env, prepend=env[:1]), 0, None), 0.85)
    brow = np.clip(style.brow_activity * 2.5 * onsets, 0, 0.6)
    for ch in ("browInnerUp", "browOuterUpLeft", "browOuterUpRight"):
        out[:, spec.index(ch)] = brow * (0.6 if ch == "browInnerUp" else 1.0)
    for ch in ("mouthSmileLeft", "mouthSmileRight"):
        out[:, spec.index(ch)] = style.smile_baseline
    return out
