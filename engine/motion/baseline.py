"""Baseline motion (`--motion baseline`): hand-tuned audio-envelope lips, blinks, head sway and keyword emotion.

It is the named baseline every learned motion model is measured against: the loudness envelope
and a coarse spectral shape drive the mouth, a random process blinks, filtered noise moves the
head, and a small keyword table turns an emotion prompt into expression offsets. It streams:
`step()` consumes exactly one video frame interval of 16 kHz audio and returns one coefficient
frame, carrying all state (smoothers, blink timer, noise filters) between calls.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field

import numpy as np

from engine.spec import DEFAULT_SPEC, MotionSpec

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000

# --- mouth from audio -------------------------------------------------------------------------
LEVEL_RANGE_DB = 32.0  # loudness below (running peak - this) leaves the jaw closed
PEAK_DECAY_DB_S = 4.0  # running peak falls this fast, so the gain adapts to the speaker
PEAK_INIT_DB = -18.0  # running peak before any audio (dBFS)
PEAK_FLOOR_DB = -45.0  # running peak never falls below this (silence is not normalised up)
JAW_MAX = 0.62  # jawOpen at full loudness for a neutral emotion
MOUTH_ATTACK_S = 0.025  # time constants of the mouth smoothers
MOUTH_RELEASE_S = 0.07
SHAPE_TAU_S = 0.06  # smoothing of the spectral shape (roundness / brightness)
ROUND_BAND_HZ = (150.0, 900.0)  # energy share here, out of 150..4000 Hz, marks rounded vowels
SPEECH_BAND_HZ = (150.0, 4000.0)
BRIGHT_CENTROID_HZ = (1300.0, 3200.0)  # centroid ramp from "neutral" to "spread / sibilant"

# --- eyes and head ----------------------------------------------------------------------------
BLINK_MIN_GAP_S = 2.0  # refractory gap; gap = this + Exp(mean BLINK_MEAN_EXTRA_S): mean ~4 s
BLINK_MEAN_EXTRA_S = 2.0
BLINK_DURATION_S = (0.15, 0.25)
BLINK_CLOSE_SHARE = 0.4  # share of the blink spent closing (the rest re-opening)
HEAD_TAU_S = (0.45, 0.25)  # two cascaded one-pole low-passes over white noise
# yaw, pitch, roll (rad), tx, ty (crop units) standard deviations while speaking
HEAD_STD = np.array([0.055, 0.035, 0.025, 0.008, 0.006], np.float64)
HEAD_IDLE_SHARE = 0.35  # head motion while idle, as a share of the speaking amount
ACTIVITY_TAU_S = 0.5  # how fast the head motion amount follows speech on/off
NOD_GAIN = 0.03  # pitch (rad) added per unit of loudness onset (emphasis nods)
BREATH_PERIOD_S = 4.2
BREATH_AMPLITUDE = np.array([0.006, -0.0035, 0.0025], np.float64)  # pitch, ty, scale-1 when idle
EMOTION_TAU_S = 0.35  # expression offsets glide to a new emotion with this time constant


@dataclass(frozen=True, slots=True)
class Emotion:
    """Parsed emotion prompt: expression offsets (0..1 per channel) and motion gains."""

    text: str
    offsets: tuple[tuple[str, float], ...] = ()
    head_gain: float = 1.0  # scales head motion
    jaw_gain: float = 1.0  # scales mouth opening
    matched: tuple[str, ...] = ()  # emotion names found in the text


@dataclass(frozen=True, slots=True)
class _Profile:
    words: tuple[str, ...]
    offsets: dict[str, float] = field(default_factory=dict)
    head_gain: float = 1.0
    jaw_gain: float = 1.0


def _both(stem: str, value: float) -> dict[str, float]:
    return {f"{stem}Left": value, f"{stem}Right": value}


_PROFILES: dict[str, _Profile] = {
    "happy": _Profile(
        ("happy", "happily", "happiness", "joy", "joyful", "joyous", "cheerful", "glad", "delighted",
         "smiling", "smile", "pleased", "warm", "friendly", "content", "elated"),
        {**_both("mouthSmile", 0.55), **_both("eyeSquint", 0.22), **_both("browOuterUp", 0.1)},
        head_gain=1.2, jaw_gain=1.05,
    ),
    "amused": _Profile(
        ("amused", "amusing", "playful", "teasing", "funny", "laughing", "grinning", "cheeky"),
        {**_both("mouthSmile", 0.4), **_both("eyeSquint", 0.18)},
        head_gain=1.15,
    ),
    "excited": _Profile(
        ("excited", "enthusiastic", "thrilled", "eager", "energetic", "lively"),
        {**_both("mouthSmile", 0.4), **_both("eyeWide", 0.3), **_both("browOuterUp", 0.3)},
        head_gain=1.45, jaw_gain=1.15,
    ),
    "sad": _Profile(
        ("sad", "sadly", "sadness", "unhappy", "tearful", "sorrowful", "melancholy", "gloomy",
         "depressed", "down", "upset", "grieving", "mournful", "miserable", "heartbroken"),
        {**_both("mouthFrown", 0.45), "browInnerUp": 0.55, **_both("eyeBlink", 0.12)},
        head_gain=0.6, jaw_gain=0.85,
    ),
    "angry": _Profile(
        ("angry", "angrily", "anger", "mad", "furious", "annoyed", "irritated", "rage", "enraged",
         "frustrated", "hostile", "outraged"),
        {**_both("browDown", 0.6), **_both("noseSneer", 0.35), **_both("eyeSquint", 0.2),
         **_both("mouthFrown", 0.15)},
        head_gain=1.1, jaw_gain=1.1,
    ),
    "surprised": _Profile(
        ("surprised", "surprise", "astonished", "amazed", "shocked", "stunned", "startled", "wow"),
        {**_both("eyeWide", 0.6), "browInnerUp": 0.4, **_both("browOuterUp", 0.6), "jawOpen": 0.08},
        head_gain=1.2, jaw_gain=1.1,
    ),
    "fearful": _Profile(
        ("fearful", "afraid", "scared", "fear", "frightened", "anxious", "nervous", "worried",
         "terrified"),
        {**_both("eyeWide", 0.5), "browInnerUp": 0.6, **_both("mouthStretch", 0.3)},
        head_gain=0.9,
    ),
    "disgusted": _Profile(
        ("disgusted", "disgust", "repulsed", "grossed"),
        {**_both("noseSneer", 0.5), **_both("mouthUpperUp", 0.35), **_both("browDown", 0.3)},
    ),
    "contempt": _Profile(
        ("contempt", "contemptuous", "smug", "sarcastic", "dismissive", "scornful", "sneering"),
        {"mouthSmileLeft": 0.38, "noseSneerLeft": 0.12, **_both("eyeSquint", 0.1)},
        head_gain=0.8,
    ),
    "confused": _Profile(
        ("confused", "puzzled", "unsure", "doubtful", "skeptical", "sceptical"),
        {"browInnerUp": 0.3, "browDownLeft": 0.35, "browOuterUpRight": 0.25},
    ),
    "tired": _Profile(
        ("tired", "sleepy", "bored", "exhausted", "weary", "drowsy"),
        {**_both("eyeBlink", 0.3), "browInnerUp": 0.1},
        head_gain=0.5, jaw_gain=0.8,
    ),
    "calm": _Profile(
        ("calm", "calmly", "relaxed", "serene", "peaceful", "gentle", "soft", "quiet"),
        {}, head_gain=0.7, jaw_gain=0.9,
    ),
    "neutral": _Profile(("neutral", "normal", "plain", "flat"), {}),
}

# Adverbs scale the next emotion word; "not"/"no"/"never" cancels it.
_INTENSITY: dict[str, float] = {
    "slightly": 0.45, "somewhat": 0.6, "mildly": 0.5, "faintly": 0.35, "barely": 0.25,
    "little": 0.5, "bit": 0.5, "kind": 0.6, "sort": 0.6, "lightly": 0.5, "moderately": 0.75,
    "fairly": 0.8, "rather": 0.85, "quite": 0.9, "pretty": 0.9,
    "very": 1.4, "really": 1.35, "so": 1.3, "truly": 1.35, "deeply": 1.45, "highly": 1.4,
    "extremely": 1.8, "incredibly": 1.8, "super": 1.7, "totally": 1.7, "utterly": 1.8,
    "absolutely": 1.7, "completely": 1.7, "intensely": 1.75,
}
_NEGATIONS = frozenset({"not", "no", "never", "without", "isn't", "aren't", "wasn't"})
_CLAUSE_BREAKS = frozenset({"but", "and", "yet", "though", "although", "while", "with"})
_WORD_TO_EMOTION: dict[str, str] = {w: name for name, p in _PROFILES.items() for w in p.words}
_TOKEN_RE = re.compile(r"[a-z']+|[,.;!?]")


def parse_emotion(text: str, spec: MotionSpec = DEFAULT_SPEC) -> Emotion:
    """Turn a free-text prompt ("calm but slightly amused") into expression offsets and gains.

    Each emotion word contributes its profile scaled by the intensity adverbs right before it
    (product, e.g. "very slightly"), or is cancelled by a negation; contributions add up and are
    clipped to 0..1. Gains combine as an intensity-weighted geometric mean.
    """
    tokens = _TOKEN_RE.findall(text.lower())
    offsets: dict[str, float] = {}
    log_head, log_jaw, weight_sum = 0.0, 0.0, 0.0
    matched: list[str] = []
    scale, negate = 1.0, False
    for tok in tokens:
        if tok in _INTENSITY:
            scale *= _INTENSITY[tok]
            continue
        if tok in _NEGATIONS:
            negate = True
            continue
        name = _WORD_TO_EMOTION.get(tok)
        if name is not None and not negate:
            prof = _PROFILES[name]
            matched.append(name)
            for ch, v in prof.offsets.items():
                spec.index(ch)  # KeyError for a table typo, caught by the tests
                offsets[ch] = offsets.get(ch, 0.0) + v * scale
            w = min(scale, 2.0)
            log_head += w * math.log(prof.head_gain)
            log_jaw += w * math.log(prof.jaw_gain)
            weight_sum += w
        if name is not None or tok in _CLAUSE_BREAKS or not tok.isalpha():
            scale, negate = 1.0, False
    if tokens and not matched:
        log.info("emotion %r: no known emotion word, using neutral", text)
    norm = max(weight_sum, 1.0)
    return Emotion(
        text=text,
        offsets=tuple(sorted((k, float(np.clip(v, 0.0, 1.0))) for k, v in offsets.items())),
        head_gain=float(math.exp(log_head / norm)),
        jaw_gain=float(math.exp(log_jaw / norm)),
        matched=tuple(matched),
    )


def frame_bounds(n_samples: int, fps: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Sample index where each video frame's audio starts, plus the end: (T+1,) int64, T = ceil."""
    n_frames = math.ceil(n_samples * fps / sample_rate - 1e-9)
    return np.round(np.arange(n_frames + 1) * (sample_rate / fps)).astype(np.int64)


def speech_per_frame(samples: np.ndarray, fps: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Voice activity per video frame, (T,) bool: webrtcvad on 20 ms frames (smoothed, with hangover);
    a video frame is speech when any 20 ms VAD frame overlapping it is."""
    from engine.audio.vad import smooth_flags, vad_flags

    x = np.asarray(samples, np.float32).reshape(-1)
    bounds = frame_bounds(len(x), fps, sample_rate)
    hop = sample_rate // 50
    padded = np.zeros(max(bounds[-1], 1) + hop, np.float32)
    padded[: len(x)] = x
    flags = smooth_flags(vad_flags(padded, sample_rate, 20), hangover=4, min_speech=2)
    csum = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    first = np.minimum(bounds[:-1] // hop, len(flags))
    last = np.minimum((np.maximum(bounds[1:], bounds[:-1] + 1) - 1) // hop + 1, len(flags))
    return (csum[last] - csum[first]) > 0


def _alpha(tau_s: float, dt: float) -> float:
    """One-pole smoothing coefficient for time constant `tau_s` at step `dt`."""
    return 1.0 - math.exp(-dt / tau_s) if tau_s > 0 else 1.0


class BaselineMotion:
    """Streaming baseline motion: one `step()` per video frame, state carried between calls.

    `step(samples, speech)` takes the 16 kHz float32 audio of exactly one frame interval
    (sample_rate / fps samples; frame_bounds() gives the split for non-integer ratios) and the
    VAD verdict, and returns a (spec.dim,) float32 coefficient frame. Deterministic given `seed`.
    """

    def __init__(
        self,
        spec: MotionSpec = DEFAULT_SPEC,
        fps: float = 25.0,
        emotion: str = "neutral",
        seed: int = 0,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.spec = spec
        self.fps = float(fps)
        self.sample_rate = int(sample_rate)
        self.seed = int(seed)
        self._dt = 1.0 / self.fps
        self._idx = {n: spec.index(n) for n in spec.names}
        self._nfft = 1 << max(9, math.ceil(math.log2(max(self.sample_rate / self.fps, 2.0))))
        freqs = np.fft.rfftfreq(self._nfft, 1.0 / self.sample_rate)
        self._band_speech = (freqs >= SPEECH_BAND_HZ[0]) & (freqs < SPEECH_BAND_HZ[1])
        self._band_round = (freqs >= ROUND_BAND_HZ[0]) & (freqs < ROUND_BAND_HZ[1])
        self._freqs = freqs
        self._a_attack = _alpha(MOUTH_ATTACK_S, self._dt)
        self._a_release = _alpha(MOUTH_RELEASE_S, self._dt)
        self._a_shape = _alpha(SHAPE_TAU_S, self._dt)
        self._a_activity = _alpha(ACTIVITY_TAU_S, self._dt)
        self._a_emotion = _alpha(EMOTION_TAU_S, self._dt)
        self._a_head = np.array([_alpha(t, self._dt) for t in HEAD_TAU_S])
        # Stationary std of white noise through the two cascaded one-poles, to normalise to 1.
        p, q = 1.0 - self._a_head  # pole of each stage
        self._head_norm = math.sqrt(
            (1 - p) ** 2 / (1 - p * p) * (1 - q) ** 2 * (1 + p * q) / ((1 - q * q) * (1 - p * q))
        )
        self.emotion = parse_emotion(emotion, spec)
        self._emotion_target = self._offset_vector(self.emotion)
        self.reset()

    # -- public API -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the initial state (same seed: the same sequence again)."""
        blink_seed, head_seed = np.random.SeedSequence(self.seed).spawn(2)
        self._blink_rng = np.random.default_rng(blink_seed)
        self._head_rng = np.random.default_rng(head_seed)
        self._t = 0  # frames produced
        self._peak_db = PEAK_INIT_DB
        self._prev_loud = 0.0
        self._open = 0.0
        self._round = 0.0
        self._bright = 0.0
        self._activity = 0.0
        self._head = np.zeros((2, len(HEAD_STD)), np.float64)
        self._next_blink = self._draw_blink_gap(first=True)
        self._blink_start = -1.0
        self._blink_len = 0.2
        self._emotion_now = self._emotion_target.copy()

    def set_emotion(self, text: str) -> Emotion:
        """Change the emotion prompt; expressions glide to it over ~EMOTION_TAU_S. Returns the parse."""
        self.emotion = parse_emotion(text, self.spec)
        self._emotion_target = self._offset_vector(self.emotion)
        return self.emotion

    def step(self, samples: np.ndarray, speech: bool) -> np.ndarray:
        """One video frame: `samples` (N,) float32 16 kHz for this frame interval -> (dim,) float32."""
        x = np.asarray(samples, np.float32).reshape(-1)
        if x.size == 0:
            raise ValueError("step() needs the audio of one frame interval, got 0 samples")
        loud, roundness, bright = self._analyse(x)
        if not speech:
            loud = 0.0
        a = self._a_attack if loud > self._open else self._a_release
        self._open += a * (loud - self._open)
        self._round += self._a_shape * (roundness - self._round)
        self._bright += self._a_shape * (bright - self._bright)
        self._activity += self._a_activity * (float(speech) - self._activity)
        onset = max(loud - self._prev_loud, 0.0)
        self._prev_loud = loud
        self._emotion_now += self._a_emotion * (self._emotion_target - self._emotion_now)

        out = self.spec.neutral(1)[0].astype(np.float64)
        self._mouth(out, loud)
        self._eyes(out)
        self._pose(out, onset)
        self._t += 1
        return self.spec.clip(out.astype(np.float32))

    def generate(self, samples_all: np.ndarray, speech: np.ndarray | None = None) -> np.ndarray:
        """Whole clip: (N,) float32 16 kHz -> (T, dim) float32, T = ceil(N * fps / rate).

        `speech` is (T,) bool per video frame; default speech_per_frame() (webrtcvad). Runs step() per frame
        from the current state (call reset() first for a fresh, reproducible run).
        """
        x = np.asarray(samples_all, np.float32).reshape(-1)
        bounds = frame_bounds(len(x), self.fps, self.sample_rate)
        n_frames = len(bounds) - 1
        if speech is None:
            flags = speech_per_frame(x, self.fps, self.sample_rate)
        else:
            flags = np.asarray(speech, bool).reshape(-1)
        if len(flags) != n_frames:
            raise ValueError(f"speech flags: expected {n_frames} per-frame values, got {len(flags)}")
        padded = np.zeros(bounds[-1], np.float32)
        padded[: len(x)] = x
        out = np.empty((n_frames, self.spec.dim), np.float32)
        for i in range(n_frames):
            out[i] = self.step(padded[bounds[i] : bounds[i + 1]], bool(flags[i]))
        return out

    # -- internals ------------------------------------------------------------------------------
    def _offset_vector(self, emotion: Emotion) -> np.ndarray:
        vec = np.zeros(self.spec.dim, np.float64)
        for name, value in emotion.offsets:
            vec[self._idx[name]] = value
        return vec

    def _analyse(self, x: np.ndarray) -> tuple[float, float, float]:
        """Loudness 0..1 (adaptive gain), roundness 0..1 (low-band share), brightness 0..1 (centroid)."""
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        level = 20.0 * math.log10(rms + 1e-9)
        decay = PEAK_DECAY_DB_S * self._dt
        self._peak_db = max(level, self._peak_db - decay, PEAK_FLOOR_DB)
        loud = min(max((level - (self._peak_db - LEVEL_RANGE_DB)) / LEVEL_RANGE_DB, 0.0), 1.0)
        loud = loud**1.5  # quiet consonants open little, vowels open a lot
        n = min(len(x), self._nfft)
        spec = np.abs(np.fft.rfft(x[:n] * np.hanning(n), self._nfft)) ** 2
        speech_e = float(spec[self._band_speech].sum()) + 1e-12
        roundness = float(spec[self._band_round].sum()) / speech_e
        centroid = float((spec[self._band_speech] * self._freqs[self._band_speech]).sum()) / speech_e
        roundness = min(max((roundness - 0.6) / 0.3, 0.0), 1.0)
        lo, hi = BRIGHT_CENTROID_HZ
        bright = min(max((centroid - lo) / (hi - lo), 0.0), 1.0)
        return loud, roundness, bright

    def _mouth(self, out: np.ndarray, loud: float) -> None:
        i, emo = self._idx, self._emotion_now
        out[: self.spec.n_expression] = emo[: self.spec.n_expression]
        jaw = JAW_MAX * self.emotion.jaw_gain * self._open * (1.0 - 0.35 * self._round)
        out[i["jawOpen"]] = emo[i["jawOpen"]] + jaw
        # Lips close over a still-open jaw when the sound drops (plosives, pauses).
        closure = min(max(1.0 - loud / 0.15, 0.0), 1.0)
        out[i["mouthClose"]] = 0.8 * jaw * closure
        out[i["mouthFunnel"]] += 0.55 * self._round * self._open
        out[i["mouthPucker"]] += 0.45 * self._round * min(self._open * 3.0, 1.0) * (1.0 - self._open)
        stretch = 0.4 * self._bright * min(self._open * 2.0, 1.0) * (1.0 - self._round)
        lower = 0.3 * self._open
        upper = 0.12 * self._open + 0.1 * self._bright * self._open
        for side in ("Left", "Right"):
            out[i["mouthStretch" + side]] += stretch
            out[i["mouthLowerDown" + side]] += lower
            out[i["mouthUpperUp" + side]] += upper
            # A smile narrows while rounding the lips.
            out[i["mouthSmile" + side]] *= 1.0 - 0.5 * self._round * self._open

    def _draw_blink_gap(self, first: bool = False) -> float:
        """Frames until the next blink: refractory gap + exponential (the first one comes sooner)."""
        if first:
            return self._blink_rng.uniform(0.3, 2.5) / self._dt
        return (BLINK_MIN_GAP_S + self._blink_rng.exponential(BLINK_MEAN_EXTRA_S)) / self._dt

    def _eyes(self, out: np.ndarray) -> None:
        i = self._idx
        t = float(self._t)
        if t >= self._next_blink and self._blink_start < 0:
            self._blink_start = t
            self._blink_len = self._blink_rng.uniform(*BLINK_DURATION_S) / self._dt
        blink = 0.0
        if self._blink_start >= 0:
            phase = (t - self._blink_start + 0.5) / self._blink_len
            if phase >= 1.0:
                self._blink_start = -1.0
                self._next_blink = t + self._draw_blink_gap()
            else:
                if phase < BLINK_CLOSE_SHARE:
                    tri = phase / BLINK_CLOSE_SHARE
                else:
                    tri = (1.0 - phase) / (1.0 - BLINK_CLOSE_SHARE)
                blink = min(1.25 * tri, 1.0)
        for side in ("Left", "Right"):
            b = i["eyeBlink" + side]
            out[b] = max(out[b], blink)
            out[i["eyeWide" + side]] *= 1.0 - blink

    def _pose(self, out: np.ndarray, onset: float) -> None:
        noise = self._head_rng.standard_normal(len(HEAD_STD))
        self._head[0] += self._a_head[0] * (noise - self._head[0])
        self._head[1] += self._a_head[1] * (self._head[0] - self._head[1])
        amount = (HEAD_IDLE_SHARE + (1.0 - HEAD_IDLE_SHARE) * self._activity) * self.emotion.head_gain
        head = self._head[1] / self._head_norm * HEAD_STD * amount
        i = self._idx
        for k, name in enumerate(("yaw", "pitch", "roll", "tx", "ty")):
            out[i[name]] += head[k]
        out[i["pitch"]] += NOD_GAIN * onset * self.emotion.head_gain
        idle = 1.0 - self._activity
        breath = math.sin(2.0 * math.pi * self._t * self._dt / BREATH_PERIOD_S)
        pitch, ty, scale = BREATH_AMPLITUDE * breath * (0.3 + 0.7 * idle)
        out[i["pitch"]] += pitch
        out[i["ty"]] += ty
        out[i["scale"]] += scale
