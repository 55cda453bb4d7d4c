"""Reference amplitude matching: scale each expression/pose channel's motion toward the style reference's spread.

The sampler reproduces a talking style's levels but not its liveliness: brows, blinks, eyes and head pose come
out with a quarter to two thirds of the ground truth's motion (`dynamic_amplitude` in motion_quality.json), so
a style is recognised by its shape and lost in its size. The style reference clip says how much each channel
should move. This stage, after the decoder, splits each channel into a causal running mean (the level, kept)
and the deviation from it (the motion), and scales the deviation by reference spread / the stream's own spread
(an online estimate), within [1/CAP, CAP]: an AdaIN on motion, per channel, causal, no lookahead. The mouth
(channels below FIRST_CHANNEL: jawOpen from the audio encoder and the lip shapes) is left alone. Without a
reference it does nothing. CAP, VAR_POLE and PRIOR were chosen on training utterances (the style classifier fitted
on one half, outputs scored on the other; flat within a few points over CAP 2-8, VAR_POLE 0.98-0.995, PRIOR
0.25-0.6), never on the test set.

The mouth's articulation is a style too, and the audio encoder's mouth does not know it: how far it opens (an
opera singer's jaw ~2.4x a whisperer's) and how briskly it moves (sung vowels are held). `articulation` reads both
off the reference clip, per channel of ARTICULATION_CHANNELS (jaw and lips; not smile and frown, which are
emotion's): a gain, the clip's mean level over the training corpus's (`ReferenceScale.levels`), within
[1/ARTICULATION_CAP, ARTICULATION_CAP]; and a tempo, the clip's mean speed over its spread against the corpus's
(`ReferenceScale.tempo`): a clip slower than the corpus's typical utterance by a factor f (down to
1/2) gives a causal one-pole smoothing with pole 1 - f (so at most 0.5, one frame of delay); a brisker one none.
The stream multiplies those channels by the gain and smooths them with the pole: the mouth's timing stays the
audio's. Channels, cap and tempo rule were chosen on training utterances like the constants above (dev set of 140:
style 49 % -> 73 % with the gain, 78 % with the tempo too; emotion 91 % -> 92 %).

Since session 12 the rule is two-sided, and the jaw may close further: a lip channel that the clip moves more
briskly than the corpus by a factor f gets its fast motion lifted (y + b (y - lowpass(y)), b = f - 1 up to
MAX_BOOST, lowpass a one-pole at BOOST_POLE: an unsharp mask, causal, no delay), and the jaw's gain goes down to
JAW_GAIN_FLOOR (a whisperer's jaw sits at 0.5-0.6 of the corpus's level, which the symmetric cap held at 0.67).
Chosen on a new dev set of the same kind (140 training utterances, classifier on the other half; session 12's
corpus rebuild): style 70.0 % -> 75.7 % with the jaw floor (whisper, read as newsreader, 3 -> 11 of 26) -> 78.6 %
with the lip boost too; emotion 90.7 % throughout; jaw and lip-shape correlations within 0.001. The boost on the
jaw, or the floor on the lips, scored lower (77.9 %, 73.6 %).

Since session 13 a reference whose lips range wider than the corpus's typical utterance widens the stream's lips
too. The stream's lip channels move 0.4-0.7x the ground truth's spread for every style, while their frame-to-frame
speed is about right (0.8-1.2x): what is missing is the slower motion, between the jitter and the level. So a lip
channel whose reference spread (`reference_spread`) is r times the corpus's mean (`ReferenceScale.spread`) gets
that band widened: y + w (lowpass(y) - mean(y)), lowpass a one-pole at WIDEN_POLE (~0.2 s), mean the running mean at
MEAN_POLE (~1 s), w = WIDEN_SLOPE (r - 1) within [0, MAX_WIDEN]. Causal; the widened band lags the lips by a few
frames, which moved their best-lag correlation with the ground truth by nothing (still lag 0) and their lag-0 r by
-0.004. Chosen on session 12's dev set: style 78.6 % -> 82.1 % (whisper 13 -> 19 of 26, the rest within one
utterance), emotion 90.7 -> 90.0 %; at phone weight 0 / 0.8 70.7 -> 75.7 % / 72.9 -> 73.6 %; flat over WIDEN_SLOPE 2-8,
MAX_WIDEN 0.6-1, WIDEN_POLE 0.7-0.9. Widening every stream's lips by the same amount, or the whole motion rather
than the band, scored lower (ballads then read as whispers). Checked after: the val split's unheard voices 81.3 ->
86.5 %, all 148 test utterances 77.0 -> 81.1 %; the benchmark's 58-utterance headline 79.3 -> 77.6 % (one ballad).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

FIRST_CHANNEL = 14  # brows (14..18), blinks, eyes, cheeks, nose (..27) and head pose (28..33)
MEAN_POLE = 0.96  # running mean per frame (~1 s at 25 fps): what is motion and what is level
VAR_POLE = 0.99  # the stream's own spread, estimated over ~4 s
PRIOR = 0.6  # before it has seen motion, the stream is assumed to move this share of the reference
CAP = 4.0  # gains stay within [1/CAP, CAP]
BLEND_FRAMES = 6.25  # a new reference's spread glides in with this time constant (0.25 s, like the style code)
# jawOpen, mouthClose, mouthFunnel, mouthPucker, mouthStretch L/R, mouthUpperUp L/R, mouthLowerDown L/R
ARTICULATION_CHANNELS = (0, 1, 2, 3, 8, 9, 10, 11, 12, 13)
ARTICULATION_CAP = 1.5  # articulation gains stay within [1/1.5, 1.5] (dev: 1.5 and 2 alike, 4 cost emotion)
MAX_TEMPO_POLE = 0.5  # a reference at half the corpus's tempo or slower: pole 0.5 (dev: 0.5 and 0.7 alike)
JAW_GAIN_FLOOR = 1 / 3  # the jaw's gain may go this low (dev: 1/1.5 70.0 %, 1/2 74.3 %, 1/3 and 1/4 75.7 %)
MAX_BOOST = 0.5  # a lip channel 1.5x as brisk as the corpus or brisker: boost 0.5 (dev: 0.25 76.4 %, 0.5-2 78.6 %)
BOOST_POLE = 0.5  # the boost's low-pass (dev: 0.3 76.4 %, 0.5 78.6 %, 0.7 77.9 %)
WIDEN_SLOPE = 2.0  # lip band widening per unit of reference spread over the corpus's (dev: 2, 4, 8 alike)
MAX_WIDEN = 1.0  # at most double the band (dev: 0.6 and 1 alike at slope 2)
WIDEN_POLE = 0.8  # the widened band's fast edge (dev: 0.5 80.0 %, 0.7 81.4 %, 0.8 and 0.9 82.1 %)


def running_deviation(c: np.ndarray, pole: float = MEAN_POLE) -> np.ndarray:
    """(T, C) -> each channel minus its causal one-pole running mean started at the first frame: the motion."""
    return RunningDeviation(pole)(c)


class RunningDeviation:
    """`running_deviation` for a stream: `__call__(chunk)` -> the chunk minus its channels' causal running mean,
    chunk by chunk exactly as `running_deviation` gives it for the whole signal (the filter's state carries over)."""

    def __init__(self, pole: float = MEAN_POLE) -> None:
        self.pole = pole
        self.reset()

    def reset(self) -> None:
        self._origin: np.ndarray | None = None  # the first frame: the mean starts there (filtered relative to it)
        self._state: np.ndarray | None = None

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        x = np.asarray(chunk, np.float64)
        if not len(x):
            return x.copy()
        if self._origin is None:
            self._origin, self._state = x[:1].copy(), np.zeros((1,) + x.shape[1:])
        d = x - self._origin
        mean, self._state = lfilter([1.0 - self.pole], [1.0, -self.pole], d, axis=0, zi=self._state)
        return d - mean


def reference_spread(coeffs: np.ndarray) -> np.ndarray:
    """(C,) std of each channel's running deviation over a reference clip: how much the style moves."""
    return running_deviation(coeffs).std(0).astype(np.float32)


def mouth_tempo(coeffs: np.ndarray) -> np.ndarray:
    """(C,) per channel: mean absolute frame-to-frame change over the spread (how briskly it moves for its range;
    0 for a channel that does not move)."""
    c = np.asarray(coeffs, np.float64)
    sd = c.std(0)
    speed = np.abs(np.diff(c, axis=0)).mean(0) if len(c) > 1 else np.zeros(c.shape[1])
    return np.where(sd > 1e-6, speed / np.maximum(sd, 1e-6), 0.0).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Articulation:
    """A style reference's articulation, per channel (each (C,)): `gain` multiplies the channel, `pole` smooths it
    (causal one-pole; 0 = untouched), `boost` lifts its fast motion, `widen` its slower motion (0 = untouched;
    None: 0 everywhere). Channels outside ARTICULATION_CHANNELS have gain 1, pole 0, boost 0 and widen 0."""

    gain: np.ndarray
    pole: np.ndarray
    boost: np.ndarray | None = None
    widen: np.ndarray | None = None


def articulation(coeffs: np.ndarray, levels: np.ndarray, tempo: np.ndarray,
                 spread: np.ndarray | None = None) -> Articulation:
    """The articulation of reference clip `coeffs` against the training corpus's per-channel `levels` (mean level
    per utterance), `tempo` (mouth_tempo per utterance) and `spread` (reference_spread per utterance; None: no
    widening): gain = level ratio within [1/ARTICULATION_CAP, ARTICULATION_CAP] (the jaw's down to JAW_GAIN_FLOOR);
    pole = 1 - tempo ratio, within [0, MAX_TEMPO_POLE]; boost (lip channels) = tempo ratio - 1, within [0,
    MAX_BOOST]; widen (lip channels) = WIDEN_SLOPE (spread ratio - 1), within [0, MAX_WIDEN]."""
    c = np.asarray(coeffs, np.float64)
    lv = np.asarray(levels, np.float64).reshape(-1)
    tp = np.asarray(tempo, np.float64).reshape(-1)
    if c.ndim != 2 or c.shape[1] != lv.shape[0] or tp.shape != lv.shape or len(c) < 2:
        raise ValueError(f"reference {c.shape}, levels {lv.shape} and tempo {tp.shape} do not match")
    gain, pole, boost = np.ones(lv.shape[0]), np.zeros(lv.shape[0]), np.zeros(lv.shape[0])
    ch = [i for i in ARTICULATION_CHANNELS if i < lv.shape[0]]
    with np.errstate(divide="ignore", invalid="ignore"):
        level = c[:, ch].mean(0) / lv[ch]
        pace = mouth_tempo(c)[ch] / tp[ch]
    floor = np.where(np.asarray(ch) == 0, JAW_GAIN_FLOOR, 1.0 / ARTICULATION_CAP)
    gain[ch] = np.clip(np.where(np.isfinite(level) & (lv[ch] > 1e-4), level, 1.0), floor, ARTICULATION_CAP)
    moving = np.isfinite(pace) & (tp[ch] > 1e-4) & (pace > 0)  # a still channel says nothing about tempo
    pole[ch] = np.where(moving, np.clip(1.0 - pace, 0.0, MAX_TEMPO_POLE), 0.0)
    boost[ch] = np.where(moving & (np.asarray(ch) != 0), np.clip(pace - 1.0, 0.0, MAX_BOOST), 0.0)
    widen = np.zeros(lv.shape[0])
    if spread is not None:
        sp = np.asarray(spread, np.float64).reshape(-1)
        if sp.shape != lv.shape:
            raise ValueError(f"corpus spread {sp.shape} does not match levels {lv.shape}")
        with np.errstate(divide="ignore", invalid="ignore"):
            wide = reference_spread(c)[ch] / sp[ch]
        ok = np.isfinite(wide) & (sp[ch] > 1e-4) & (np.asarray(ch) != 0)
        widen[ch] = np.where(ok, np.clip(WIDEN_SLOPE * (wide - 1.0), 0.0, MAX_WIDEN), 0.0)
    return Articulation(gain.astype(np.float32), pole.astype(np.float32), boost.astype(np.float32),
                        widen.astype(np.float32))


class AmplitudeMatch:
    """Online, per-stream: `__call__(chunk)` -> the chunk with its motion scaled toward `target` (set_target) and
    its articulation channels multiplied, smoothed, boosted and widened as the reference's Articulation says."""

    def __init__(self, channels: int, target: np.ndarray | None = None,
                 articulation: Articulation | None = None) -> None:
        self.channels = channels
        self.target: np.ndarray | None = None
        self._goal: np.ndarray | None = None
        self.gain = np.ones(channels, np.float64)  # articulation in use (glides toward the goals)
        self.pole = np.zeros(channels, np.float64)
        self.boost = np.zeros(channels, np.float64)
        self.widen = np.zeros(channels, np.float64)
        self._gain_goal, self._pole_goal, self._boost_goal = self.gain.copy(), self.pole.copy(), self.boost.copy()
        self._widen_goal = self.widen.copy()
        self.set_target(target, articulation, immediate=True)
        self.reset()

    def reset(self) -> None:
        """Forget the stream's level, spread and smoothing state (a new utterance or an interruption); the targets
        stay."""
        self._mean: np.ndarray | None = None
        self._var: np.ndarray | None = None
        self._prev: np.ndarray | None = None  # last smoothed articulation frame
        self._low: np.ndarray | None = None  # the boost's low-pass of the smoothed frames
        self._band: np.ndarray | None = None  # the widening's low-pass and running mean of the boosted frames
        self._level: np.ndarray | None = None

    def set_target(self, spread: np.ndarray | None, articulation: Articulation | None = None,
                   immediate: bool = False) -> None:
        """The reference spread to match (None: pass motion through) and articulation (None: gain 1, no smoothing,
        no boost, no widening).
        A change glides in over BLEND_FRAMES (`immediate`: the articulation is taken at once, as before a stream's
        first chunk)."""
        g = np.ones(self.channels) if articulation is None else np.asarray(articulation.gain, np.float64).reshape(-1)
        q = np.zeros(self.channels) if articulation is None else np.asarray(articulation.pole, np.float64).reshape(-1)
        if g.shape != (self.channels,) or not np.isfinite(g).all() or (g <= 0).any():
            raise ValueError(f"articulation gain must be {self.channels} finite positive values, got {g.shape}")
        if q.shape != (self.channels,) or not np.isfinite(q).all() or (q < 0).any() or (q >= 1).any():
            raise ValueError(f"articulation pole must be {self.channels} values in [0, 1), got {q.shape}")
        b = np.zeros(self.channels) if articulation is None or articulation.boost is None else \
            np.asarray(articulation.boost, np.float64).reshape(-1)
        if b.shape != (self.channels,) or not np.isfinite(b).all() or (b < 0).any() or (b > 4).any():
            raise ValueError(f"articulation boost must be {self.channels} values in [0, 4], got {b.shape}")
        lf = np.zeros(self.channels) if articulation is None or articulation.widen is None else \
            np.asarray(articulation.widen, np.float64).reshape(-1)
        if lf.shape != (self.channels,) or not np.isfinite(lf).all() or (lf < 0).any() or (lf > 4).any():
            raise ValueError(f"articulation widen must be {self.channels} values in [0, 4], got {lf.shape}")
        self._gain_goal, self._pole_goal, self._boost_goal, self._widen_goal = g.copy(), q.copy(), b.copy(), lf.copy()
        if immediate:
            self.gain, self.pole, self.boost, self.widen = g.copy(), q.copy(), b.copy(), lf.copy()
        self._settle()
        if spread is None:
            self.target = self._goal = None
            return
        s = np.asarray(spread, np.float64).reshape(-1)
        if s.shape != (self.channels,) or not np.isfinite(s).all():
            raise ValueError(f"reference spread must be {self.channels} finite values, got shape {s.shape}")
        self._goal = np.maximum(s[FIRST_CHANNEL:], 0.0)  # only the matched channels are tracked
        if self.target is None:
            self.target = self._goal.copy()

    def _settle(self) -> None:
        """Snap a glide that has arrived (within 1e-5) onto its goal; note whether articulation does nothing."""
        pairs = ((self.gain, self._gain_goal), (self.pole, self._pole_goal), (self.boost, self._boost_goal),
                 (self.widen, self._widen_goal))
        if all(np.abs(now - goal).max() < 1e-5 for now, goal in pairs):
            self.gain, self.pole = self._gain_goal.copy(), self._pole_goal.copy()
            self.boost, self.widen = self._boost_goal.copy(), self._widen_goal.copy()
        self._identity = bool((self.gain == 1.0).all() and (self.pole == 0.0).all() and (self.boost == 0.0).all()
                              and (self.widen == 0.0).all() and (self._gain_goal == 1.0).all()
                              and (self._pole_goal == 0.0).all() and (self._boost_goal == 0.0).all()
                              and (self._widen_goal == 0.0).all())
        if self._identity:  # the filters stop here: a later reference starts them afresh, not from stale frames
            self._prev = self._low = self._band = self._level = None

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        if not len(chunk) or (self._identity and self._goal is None):
            return np.asarray(chunk, np.float32)
        out = np.array(chunk, np.float32)
        a = 1.0 - math.exp(-1.0 / BLEND_FRAMES)
        if not self._identity:
            for t in range(len(out)):
                self.gain += a * (self._gain_goal - self.gain)
                self.pole += a * (self._pole_goal - self.pole)
                self.boost += a * (self._boost_goal - self.boost)
                self.widen += a * (self._widen_goal - self.widen)
                x = out[t].astype(np.float64) * self.gain
                y = x if self._prev is None else (1.0 - self.pole) * x + self.pole * self._prev
                self._prev = y
                self._low = y if self._low is None else BOOST_POLE * self._low + (1.0 - BOOST_POLE) * y
                z = y + self.boost * (y - self._low)
                if self._band is None or self._level is None:
                    self._band, self._level = z.copy(), z.copy()
                self._band = WIDEN_POLE * self._band + (1.0 - WIDEN_POLE) * z
                self._level = MEAN_POLE * self._level + (1.0 - MEAN_POLE) * z
                out[t] = z + self.widen * (self._band - self._level)
            self._settle()
        if self._goal is None or self.target is None:
            return out
        lo = FIRST_CHANNEL
        x = out[:, lo:].astype(np.float64)
        if self._mean is None or self._var is None:
            self._mean = x[0].copy()
            self._var = (PRIOR * self.target) ** 2 + 1e-10
        for t in range(len(x)):
            self.target += a * (self._goal - self.target)
            self._mean = MEAN_POLE * self._mean + (1.0 - MEAN_POLE) * x[t]
            d = x[t] - self._mean
            self._var = VAR_POLE * self._var + (1.0 - VAR_POLE) * d * d
            out[t, lo:] = self._mean + np.clip(self.target / np.sqrt(self._var + 1e-10), 1.0 / CAP, CAP) * d
        return out
