"""Emotions for synthetic data: labelled mixtures with intensity -> expression offsets and TTS prosody."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data.phonemes import Prosody
from engine.errors import InputError
from engine.spec import DEFAULT_SPEC, MotionSpec

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "surprised", "fearful", "disgusted", "contempt")


def primary_of(weights: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """Primary emotion id from (N, 8) weights: the strongest non-neutral one, or neutral when all are weak."""
    w = np.asarray(weights)
    return np.where(w[:, 1:].max(-1) > threshold, w[:, 1:].argmax(-1) + 1, 0)

# Full-intensity expression offsets (FACS-inspired: AU6+12 happy, AU1+4+15 sad, AU4+5+7+23 angry,
# AU1+2+5+26 surprise, AU1+2+4+5+20 fear, AU9+10 disgust, unilateral AU12+14 contempt).
_OFFSETS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"mouthSmileLeft": 0.65, "mouthSmileRight": 0.65, "eyeSquintLeft": 0.35, "eyeSquintRight": 0.35,
              "cheekPuff": 0.05, "browOuterUpLeft": 0.1, "browOuterUpRight": 0.1},
    "sad": {"browInnerUp": 0.65, "mouthFrownLeft": 0.55, "mouthFrownRight": 0.55, "eyeSquintLeft": 0.1,
            "eyeSquintRight": 0.1, "mouthLowerDownLeft": 0.05, "mouthLowerDownRight": 0.05},
    "angry": {"browDownLeft": 0.75, "browDownRight": 0.75, "eyeSquintLeft": 0.35, "eyeSquintRight": 0.35,
              "noseSneerLeft": 0.3, "noseSneerRight": 0.3, "mouthStretchLeft": 0.2, "mouthStretchRight": 0.2,
              "mouthFrownLeft": 0.2, "mouthFrownRight": 0.2},
    "surprised": {"browInnerUp": 0.7, "browOuterUpLeft": 0.75, "browOuterUpRight": 0.75, "eyeWideLeft": 0.7,
                  "eyeWideRight": 0.7, "jawOpen": 0.12},
    "fearful": {"browInnerUp": 0.75, "browOuterUpLeft": 0.35, "browOuterUpRight": 0.35, "eyeWideLeft": 0.6,
                "eyeWideRight": 0.6, "mouthStretchLeft": 0.5, "mouthStretchRight": 0.5, "browDownLeft": 0.15,
                "browDownRight": 0.15},
    "disgusted": {"noseSneerLeft": 0.7, "noseSneerRight": 0.7, "mouthUpperUpLeft": 0.5, "mouthUpperUpRight": 0.5,
                  "browDownLeft": 0.4, "browDownRight": 0.4, "mouthFrownLeft": 0.3, "mouthFrownRight": 0.3,
                  "eyeSquintLeft": 0.3, "eyeSquintRight": 0.3},
    "contempt": {"mouthSmileLeft": 0.45, "mouthStretchLeft": 0.15, "noseSneerLeft": 0.15, "eyeSquintLeft": 0.15,
                 "eyeSquintRight": 0.1, "browDownRight": 0.1},
}
# Prosody at full intensity, relative to neutral: (rate factor, pitch shift, range factor, volume factor)
_PROSODY: dict[str, tuple[float, float, float, float]] = {
    "neutral": (1.00, 0.0, 1.00, 1.00),
    "happy": (1.08, 12.0, 1.50, 1.10),
    "sad": (0.80, -12.0, 0.45, 0.75),
    "angry": (1.10, 5.0, 1.40, 1.45),
    "surprised": (1.05, 20.0, 1.80, 1.15),
    "fearful": (1.18, 15.0, 0.70, 0.90),
    "disgusted": (0.88, -8.0, 0.90, 1.00),
    "contempt": (0.92, -5.0, 0.80, 0.95),
}
# Blink rate factor and head-motion amplitude factor at full intensity
_DYNAMICS: dict[str, tuple[float, float]] = {
    "neutral": (1.0, 1.0), "happy": (1.0, 1.3), "sad": (0.8, 0.6), "angry": (0.7, 1.4), "surprised": (0.5, 1.2),
    "fearful": (1.6, 1.1), "disgusted": (1.0, 0.9), "contempt": (0.9, 0.8),
}
INTENSITY_LEVELS: tuple[str, ...] = ("low", "medium", "high")
_LEVEL_RANGE: dict[str, tuple[float, float]] = {"low": (0.2, 0.45), "medium": (0.45, 0.75), "high": (0.75, 1.0)}


def _offset_table(spec: MotionSpec) -> np.ndarray:
    table = np.zeros((len(EMOTIONS), spec.n_expression), np.float32)
    for i, e in enumerate(EMOTIONS):
        for ch, v in _OFFSETS[e].items():
            table[i, spec.index(ch)] = v
    return table


@dataclass(frozen=True, slots=True)
class EmotionMix:
    """A primary emotion with intensity 0..1, optionally blended with a secondary (weight 0..0.5)."""

    primary: str = "neutral"
    intensity: float = 0.0
    secondary: str = "neutral"
    secondary_weight: float = 0.0

    def __post_init__(self) -> None:
        for e in (self.primary, self.secondary):
            if e not in EMOTIONS:
                raise InputError(f"unknown emotion {e!r} (known: {', '.join(EMOTIONS)})")
        if not (0.0 <= self.intensity <= 1.0 and 0.0 <= self.secondary_weight <= 0.5):
            raise InputError("emotion intensity must be in 0..1 and secondary weight in 0..0.5")

    @property
    def primary_id(self) -> int:
        return EMOTIONS.index(self.primary)

    @property
    def level(self) -> str:
        return "low" if self.intensity < 0.45 else "medium" if self.intensity < 0.75 else "high"

    def weights(self) -> np.ndarray:
        """(8,) float32 activation per emotion (intensity-scaled; neutral takes what is left)."""
        w = np.zeros(len(EMOTIONS), np.float32)
        w[EMOTIONS.index(self.primary)] += self.intensity * (1.0 - self.secondary_weight)
        w[EMOTIONS.index(self.secondary)] += self.intensity * self.secondary_weight
        w[0] += 1.0 - self.intensity
        return w


def expression_offset(mix: EmotionMix, spec: MotionSpec = DEFAULT_SPEC) -> np.ndarray:
    """(n_expression,) float32 offsets added to the face's expression channels."""
    return (mix.weights() @ _offset_table(spec)).astype(np.float32)


def emotion_prosody(mix: EmotionMix, base: Prosody) -> Prosody:
    """Base prosody bent toward the mixture's emotions (rate, pitch, pitch range, loudness)."""
    w = mix.weights()
    p = np.array([_PROSODY[e] for e in EMOTIONS], np.float64)  # (8, 4)
    rate, dpitch, rng, vol = w @ p
    return Prosody(
        rate=int(np.clip(base.rate * rate, 80, 450)),
        pitch=int(np.clip(base.pitch + dpitch, 0, 99)),
        pitch_range=int(np.clip(base.pitch_range * rng, 0, 100)),
        volume=int(np.clip(base.volume * vol, 10, 200)),
    )


def emotion_dynamics(mix: EmotionMix) -> tuple[float, float]:
    """(blink-rate factor, head-amplitude factor) for the mixture."""
    w = mix.weights()
    d = np.array([_DYNAMICS[e] for e in EMOTIONS], np.float64)
    b, h = w @ d
    return float(b), float(h)


def random_mix(rng: np.random.Generator, p_neutral: float = 0.15, p_mixture: float = 0.3) -> EmotionMix:
    """A random labelled emotion: neutral, a single emotion at a random intensity, or a mixture."""
    if rng.random() < p_neutral:
        return EmotionMix()
    primary = EMOTIONS[int(rng.integers(1, len(EMOTIONS)))]
    level = INTENSITY_LEVELS[int(rng.integers(len(INTENSITY_LEVELS)))]
    lo, hi = _LEVEL_RANGE[level]
    intensity = float(rng.uniform(lo, hi))
    if rng.random() < p_mixture:
        others = [e for e in EMOTIONS[1:] if e != primary]
        return EmotionMix(primary, intensity, others[int(rng.integers(len(others)))], float(rng.uniform(0.2, 0.5)))
    return EmotionMix(primary, intensity)


def level_range(level: str) -> tuple[float, float]:
    if level not in _LEVEL_RANGE:
        raise InputError(f"unknown intensity level {level!r} (known: {', '.join(INTENSITY_LEVELS)})")
    return _LEVEL_RANGE[level]
