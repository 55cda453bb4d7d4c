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

The mouth's articulation range is a style too (an opera singer opens the jaw ~2.4x as far as a whisperer), and
the audio encoder's mouth does not know it. `articulation_gain` reads it off the reference clip as a per-channel
gain, the clip's mean level over the training corpus's (`ReferenceScale.levels`), on the jaw and lip channels
that carry articulation (ARTICULATION_CHANNELS: not smile and frown, which are emotion's), within
[1/ARTICULATION_CAP, ARTICULATION_CAP]. The stream multiplies those channels by it: the mouth's timing and shape
stay the audio's (a per-stream gain leaves every correlation with the audio unchanged). Channels and cap were chosen
on training utterances like the constants above (style 49 % -> 71 % on that dev set, emotion 91 % -> 92 %).
"""

from __future__ import annotations

import math

import numpy as np

FIRST_CHANNEL = 14  # brows (14..18), blinks, eyes, cheeks, nose (..27) and head pose (28..33)
MEAN_POLE = 0.96  # running mean per frame (~1 s at 25 fps): what is motion and what is level
VAR_POLE = 0.99  # the stream's own spread, estimated over ~4 s
PRIOR = 0.6  # before it has seen motion, the stream is assumed to move this share of the reference
CAP = 4.0  # gains stay within [1/CAP, CAP]
BLEND_FRAMES = 6.25  # a new reference's spread glides in with this time constant (0.25 s, like the style code)
# jawOpen, mouthClose, mouthFunnel, mouthPucker, mouthStretch L/R, mouthUpperUp L/R, mouthLowerDown L/R
ARTICULATION_CHANNELS = (0, 1, 2, 3, 8, 9, 10, 11, 12, 13)
ARTICULATION_CAP = 1.5  # articulation gains stay within [1/1.5, 1.5] (dev: 1.5 and 2 alike, 4 cost emotion)


def running_deviation(c: np.ndarray, pole: float = MEAN_POLE) -> np.ndarray:
    """(T, C) -> each channel minus its causal one-pole running mean started at the first frame: the motion."""
    from scipy.signal import lfilter

    c = np.asarray(c, np.float64)
    if not len(c):
        return c.copy()
    d = c - c[:1]
    return d - lfilter([1.0 - pole], [1.0, -pole], d, axis=0)


def reference_spread(coeffs: np.ndarray) -> np.ndarray:
    """(C,) std of each channel's running deviation over a reference clip: how much the style moves."""
    return running_deviation(coeffs).std(0).astype(np.float32)


def articulation_gain(coeffs: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """(C,) gain per channel: on ARTICULATION_CHANNELS the reference clip's mean level over `levels` (the training
    corpus's), within [1/ARTICULATION_CAP, ARTICULATION_CAP]; 1 on every other channel."""
    c = np.asarray(coeffs, np.float64)
    lv = np.asarray(levels, np.float64).reshape(-1)
    if c.ndim != 2 or c.shape[1] != lv.shape[0] or not len(c):
        raise ValueError(f"reference {c.shape} and levels {lv.shape} do not match")
    gain = np.ones(lv.shape[0], np.float64)
    ch = [i for i in ARTICULATION_CHANNELS if i < lv.shape[0]]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = c[:, ch].mean(0) / lv[ch]
    gain[ch] = np.clip(np.where(np.isfinite(ratio) & (lv[ch] > 1e-4), ratio, 1.0), 1.0 / ARTICULATION_CAP,
                       ARTICULATION_CAP)
    return gain.astype(np.float32)


class AmplitudeMatch:
    """Online, per-stream: `__call__(chunk)` -> the chunk with its motion scaled toward `target` (set_target) and
    its articulation channels multiplied by the reference's articulation gain."""

    def __init__(self, channels: int, target: np.ndarray | None = None, gain: np.ndarray | None = None) -> None:
        self.channels = channels
        self.target: np.ndarray | None = None
        self._goal: np.ndarray | None = None
        self.gain = np.ones(channels, np.float64)  # the articulation gain in use (glides toward _gain_goal)
        self._gain_goal = self.gain.copy()
        self.set_target(target, gain, immediate=True)
        self.reset()

    def reset(self) -> None:
        """Forget the stream's level and spread (a new utterance or an interruption); the targets stay."""
        self._mean: np.ndarray | None = None
        self._var: np.ndarray | None = None

    def set_target(self, spread: np.ndarray | None, gain: np.ndarray | None = None, immediate: bool = False) -> None:
        """The reference spread to match (None: pass motion through) and articulation gain (None: 1). A change
        glides in over BLEND_FRAMES (`immediate`: the gain is taken at once, as before a stream's first chunk)."""
        g = np.ones(self.channels) if gain is None else np.asarray(gain, np.float64).reshape(-1)
        if g.shape != (self.channels,) or not np.isfinite(g).all() or (g <= 0).any():
            raise ValueError(f"articulation gain must be {self.channels} finite positive values, got {g.shape}")
        self._gain_goal = g.copy()
        if immediate:
            self.gain = g.copy()
        if spread is None:
            self.target = self._goal = None
            return
        s = np.asarray(spread, np.float64).reshape(-1)
        if s.shape != (self.channels,) or not np.isfinite(s).all():
            raise ValueError(f"reference spread must be {self.channels} finite values, got shape {s.shape}")
        self._goal = np.maximum(s[FIRST_CHANNEL:], 0.0)  # only the matched channels are tracked
        if self.target is None:
            self.target = self._goal.copy()

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        out = np.array(chunk, np.float32)
        if not len(out):
            return out
        a = 1.0 - math.exp(-1.0 / BLEND_FRAMES)
        if not (np.array_equal(self.gain, self._gain_goal) and (self.gain == 1.0).all()):
            for t in range(len(out)):
                self.gain += a * (self._gain_goal - self.gain)
                out[t] *= self.gain.astype(np.float32)
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
