"""Phonemes -> visemes -> mouth expression channels, with Cohen-Massaro coarticulation and jaw dynamics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from engine.spec import DEFAULT_SPEC, MotionSpec

INTERNAL_RATE = 100.0  # Hz: coarticulation is computed on a 10 ms grid, then pooled to video frames

# Mouth channels this module drives (others stay 0 here; emotions/styles add their own offsets).
MOUTH: tuple[str, ...] = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "mouthLowerDownLeft", "mouthLowerDownRight",
)

# viseme -> (jaw, close, funnel, pucker, smile, stretch, upperUp, lowerDown); symmetric channels share a value
_VISEMES: dict[str, tuple[float, ...]] = {
    "sil": (0.02, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "PP": (0.03, 1.0, 0.0, 0.1, 0.0, 0.0, 0.0, 0.0),
    "FF": (0.10, 0.2, 0.0, 0.0, 0.0, 0.1, 0.25, 0.0),
    "TH": (0.15, 0.0, 0.0, 0.0, 0.0, 0.1, 0.10, 0.10),
    "DD": (0.18, 0.0, 0.0, 0.0, 0.0, 0.1, 0.05, 0.10),
    "kk": (0.25, 0.0, 0.0, 0.0, 0.0, 0.1, 0.05, 0.10),
    "CH": (0.15, 0.0, 0.55, 0.35, 0.0, 0.0, 0.20, 0.15),
    "SS": (0.08, 0.0, 0.0, 0.0, 0.15, 0.3, 0.10, 0.10),
    "RR": (0.18, 0.0, 0.35, 0.35, 0.0, 0.0, 0.05, 0.05),
    "aa": (0.70, 0.0, 0.05, 0.0, 0.0, 0.1, 0.15, 0.35),
    "E": (0.42, 0.0, 0.0, 0.0, 0.1, 0.25, 0.10, 0.25),
    "I": (0.22, 0.0, 0.0, 0.0, 0.25, 0.40, 0.05, 0.15),
    "O": (0.50, 0.0, 0.60, 0.30, 0.0, 0.0, 0.05, 0.20),
    "U": (0.20, 0.0, 0.35, 0.80, 0.0, 0.0, 0.0, 0.05),
}
VISEME_NAMES: tuple[str, ...] = tuple(_VISEMES)
# Dominance strength (alpha) and sharpness (theta, 1/s) per viseme: closures dominate and are sharp, so
# lips really meet on /p b m/; tongue consonants let neighbouring vowels' lip shapes spread over them.
_ALPHA: dict[str, float] = {"sil": 0.3, "PP": 2.0, "FF": 1.5, "TH": 0.8, "DD": 0.5, "kk": 0.5, "CH": 1.5,
                            "SS": 1.2, "RR": 1.0, "aa": 1.5, "E": 1.5, "I": 1.5, "O": 1.6, "U": 1.6}
_THETA: dict[str, float] = {"sil": 18.0, "PP": 70.0, "FF": 50.0, "TH": 25.0, "DD": 25.0, "kk": 25.0,
                            "CH": 25.0, "SS": 30.0, "RR": 22.0, "aa": 16.0, "E": 16.0, "I": 16.0, "O": 14.0,
                            "U": 14.0}
_VOWELS = frozenset({"aa", "E", "I", "O", "U"})

# first IPA symbol(s) -> viseme; diphthongs take their first vowel
_IPA: dict[str, str] = {}
for _v, _chars in {
    "PP": "pbmɱ", "FF": "fv", "TH": "θð", "DD": "tdnlɾɫ", "kk": "kɡgŋxhʔç", "CH": "ʃʒ", "SS": "sz",
    "RR": "ɹrɻ", "aa": "aɑæʌɐ", "E": "eɛəɜɚ", "I": "iɪjy", "O": "oɔɒ", "U": "uʊwɵ", "sil": "_ ",
}.items():
    for _c in _chars:
        _IPA[_c] = _v


def viseme_of(phoneme: str) -> str:
    """Viseme class of one IPA phoneme (affricates tʃ dʒ -> CH); unknown symbols count as DD."""
    p = phoneme.strip()
    if not p or p == "_":
        return "sil"
    if p.startswith(("tʃ", "dʒ", "ts", "dz")):
        return "CH" if p[1] in "ʃʒ" else "SS"
    for ch in p:
        v = _IPA.get(ch)
        if v is not None:
            return v
    return "DD"


@dataclass(frozen=True, slots=True)
class ArticulationParams:
    """Style knobs for articulation: target scales, vowel sustain (>1 widens vowel plateaus), jaw speed."""

    jaw_range: float = 1.0
    lip_range: float = 1.0
    vowel_sustain: float = 1.0
    jaw_omega: float = 38.0  # rad/s, natural frequency of the critically damped jaw
    lip_omega: float = 70.0


def _targets_matrix(visemes: list[str], art: ArticulationParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    base = np.array([_VISEMES[v] for v in visemes], np.float64)  # (P, 8)
    base[:, 0] *= art.jaw_range
    base[:, 2:] *= art.lip_range
    tgt = np.concatenate([base[:, :4], np.repeat(base[:, 4:], 2, axis=1)], axis=1)  # (P, 12) in MOUTH order
    sustain = np.array([art.vowel_sustain if v in _VOWELS else 1.0 for v in visemes])
    alpha = np.array([_ALPHA[v] for v in visemes]) * sustain
    theta = np.array([_THETA[v] for v in visemes]) / sustain
    return tgt, alpha, theta


def _critically_damped(x: np.ndarray, omega: float, rate: float) -> np.ndarray:
    """Second-order critically damped low-pass along axis 0 (bilinear transform), started at x[0]."""
    k = 2.0 * rate
    w2 = omega * omega
    a0 = k * k + 2 * omega * k + w2
    b = np.array([w2, 2 * w2, w2]) / a0
    a = np.array([1.0, (2 * w2 - 2 * k * k) / a0, (k * k - 2 * omega * k + w2) / a0])
    x0 = x[:1]
    y = lfilter(b, a, x - x0, axis=0)
    return y + x0


def mouth_track(
    phonemes: tuple[str, ...] | list[str],
    starts: np.ndarray,
    ends: np.ndarray,
    n_frames: int,
    fps: float = 25.0,
    art: ArticulationParams = ArticulationParams(),
    spec: MotionSpec = DEFAULT_SPEC,
) -> np.ndarray:
    """(n_frames, spec.n_expression) float32: mouth channels for a timed phoneme sequence, others 0.

    Each phoneme segment exerts a dominance alpha*exp(-theta*d) on every instant, d being the distance
    to the segment (0 inside it); channel value = dominance-weighted mean of targets (Cohen & Massaro
    1993). Jaw and lips then pass through critically damped dynamics; bilabial segments end closed.
    Frame t covers [t/fps, (t+1)/fps).
    """
    out = np.zeros((n_frames, spec.n_expression), np.float32)
    if n_frames <= 0:
        return out
    starts = np.asarray(starts, np.float64)
    ends = np.maximum(np.asarray(ends, np.float64), starts)
    visemes = [viseme_of(p) for p in phonemes]
    n_int = int(np.ceil(n_frames / fps * INTERNAL_RATE)) + 1
    t = (np.arange(n_int) + 0.5) / INTERNAL_RATE
    if not visemes:
        tgt = np.tile(np.array(_VISEMES["sil"])[[0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 7, 7]], (n_int, 1))
        closed = np.zeros(n_int, bool)
    else:
        T, alpha, theta = _targets_matrix(visemes, art)
        d = np.maximum(starts[:, None] - t[None], 0) + np.maximum(t[None] - ends[:, None], 0)  # (P, N)
        dom = alpha[:, None] * np.exp(-theta[:, None] * d) + 1e-9
        tgt = (dom.T @ T) / dom.sum(axis=0)[:, None]  # (N, 12)
        is_pp = np.array([v == "PP" for v in visemes])
        closed = ((d[is_pp] == 0).any(axis=0)) if is_pp.any() else np.zeros(n_int, bool)
    jaw = _critically_damped(tgt[:, :1], art.jaw_omega, INTERNAL_RATE)
    lips = _critically_damped(tgt[:, 1:], art.lip_omega, INTERNAL_RATE)
    track = np.clip(np.concatenate([jaw, lips], axis=1), 0.0, 1.0)
    # lip closure for bilabials: lips meet during the whole segment; closure also lifts the jaw and
    # cancels lip parting, so consumers that read jawOpen alone (no ARKit mouthClose) still see it shut
    track[closed, 1] = np.maximum(track[closed, 1], 0.95)
    shut = track[:, 1:2]
    track[:, :1] *= 1.0 - 0.85 * shut
    track[:, [2, 8, 9, 10, 11]] *= 1.0 - shut  # funnel, upperUp, lowerDown
    # pool the 10 ms grid into video frames (mean; mouthClose takes the max so short closures survive)
    idx = np.minimum((t * fps).astype(np.int64), n_frames - 1)
    counts = np.maximum(np.bincount(idx, minlength=n_frames), 1)[:, None]
    pooled = np.zeros((n_frames, track.shape[1]))
    np.add.at(pooled, idx, track)
    pooled /= counts
    mx = np.zeros(n_frames)
    np.maximum.at(mx, idx, track[:, 1])
    pooled[:, 1] = mx
    cols = [spec.index(n) for n in MOUTH]
    out[:, cols] = pooled.astype(np.float32)
    return out


def openness(coeffs: np.ndarray, spec: MotionSpec = DEFAULT_SPEC) -> np.ndarray:
    """(T,) intended inner-lip opening in jaw units: jaw opening plus the lips' own parting (lower lip
    down, upper lip up, funnel), all cancelled by lip closure."""
    c = np.asarray(coeffs, np.float32)
    g = lambda n: c[..., spec.index(n)]  # noqa: E731
    part = (0.65 * 0.5 * (g("mouthLowerDownLeft") + g("mouthLowerDownRight"))
            + 0.55 * 0.5 * (g("mouthUpperUpLeft") + g("mouthUpperUpRight")) + 0.55 * g("mouthFunnel"))
    return ((g("jawOpen") + part) * (1.0 - g("mouthClose"))).astype(np.float32)
