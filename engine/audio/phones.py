"""Streaming phone recognition (pocketsphinx allphone) turned into mouth channels per video frame.

The audio encoder's mouth is learned from ~150 s of real clips and espeak-ng speech; on voices it never heard
(flite, TTS) its jaw correlates 0.43 with the phonetic ground truth. pocketsphinx's bundled US-English acoustic
model was trained by CMU on far more speakers; decoding phones with it (no words, no text) and passing them
through the corpus's phone -> viseme -> coarticulation map (engine.data.visemes) gives 0.72 on those voices,
streamed with 2 frames of lookahead, and no parameter of it is fitted to our data. On real speakers it is
later and weaker than the encoder (benchmarks/results/phone_mouth_probe.json), so Style-E blends it in with
`StreamConfig.phone_weight` (docs/style_e.md): the jaw's value (JAW_SCALE, JAW_BIAS) and the lip shapes' motion
within the utterance (LIP_GAIN).

    tracker = PhoneTracker()
    tracker.push(samples_16k)           # any number of samples, as they arrive
    mouth = tracker.mouth(first, n)      # (n, 28) mouth channels of video frames first .. first+n-1
    jaw = tracker.jaw(first, n)          # (n,) jawOpen on the synthetic coefficient scale
"""

from __future__ import annotations

import logging

import numpy as np

from engine.data.phonemes import FLITE_TO_IPA
from engine.data.visemes import mouth_track
from engine.errors import NotAvailableError
from engine.spec import DEFAULT_SPEC

log = logging.getLogger(__name__)
RATE = 16000
FPS = 25.0
WINDOW_S = 2.0  # phones that ended longer ago than this no longer shape the current frame (coarticulation ~0.3 s)
RESTART_S = 8.0  # a decoding pass is closed at the first pause after this long (the segmentation is re-read
MAX_UTT_S = 20.0  # every piece and grows with the pass), and at this length even without a pause
# the phone jaw mapped onto the synthetic jawOpen scale (mean/spread matched on 318 espeak-ng training utterances,
# as the encoder's jaw is: benchmarks/phone_mouth_probe.py, "jaw_calibration")
JAW_SCALE = 1.268
JAW_BIAS = 0.030
# mouth channels 0..13: the synthetic ground truth's motion within an utterance (deviation from a ~1 s running
# mean) over the streamed phones' (200 espeak-ng training utterances: benchmarks/phone_mouth_probe.py
# "lip_calibration", which reproduces these); 0 where this map is not used: jawOpen (its value is blended through
# JAW_SCALE / JAW_BIAS instead) and the frowns (phones say nothing about them)
LIP_GAIN = np.array([0.0, 1.226, 0.918, 0.695, 1.183, 1.094, 0.0, 0.0, 0.915, 0.909, 1.233, 1.233, 0.984, 0.984],
                    np.float32)
_PHONE_LIPS = (LIP_GAIN > 0).astype(np.float32)  # the channels whose motion phones take over
_PAUSES = frozenset({"SIL", "<s>", "</s>", "<sil>"})
_IPA = {k.upper(): v for k, v in FLITE_TO_IPA.items()}


def decoder() -> object:
    """A pocketsphinx decoder in allphone mode (NotAvailableError without pocketsphinx)."""
    try:
        import pocketsphinx
    except ImportError as e:
        raise NotAvailableError(f"phone recognition needs pocketsphinx ({e}); pip install pocketsphinx==5.1.1") from None
    m = pocketsphinx.get_model_path()
    # allphone: a phone-bigram search with no dictionary; wide beams as CMU recommends for phone decoding
    return pocketsphinx.Decoder(hmm=f"{m}/en-us/en-us", allphone=f"{m}/en-us/en-us-phone.lm.bin", lm=None,
                                dict=None, samprate=RATE, loglevel="FATAL", backtrace=True, beam=1e-20,
                                pbeam=1e-20, lw=2.0)


def best_segments(dec: object, t0: float = 0.0) -> list[tuple[str, float, float]]:
    """The decoder's current best phone segmentation: (ARPAbet, "SIL" for pauses and fillers; start s; end s),
    times offset by `t0`."""
    out = []
    for s in dec.seg() or ():  # type: ignore[attr-defined]
        w = "SIL" if s.word in _PAUSES or s.word.startswith("+") else s.word
        out.append((w, t0 + s.start_frame * 0.01, t0 + (s.end_frame + 1) * 0.01))
    return out


def phone_mouth(segs: list[tuple[str, float, float]], frames: int) -> np.ndarray:
    """(frames, 28) expression channels of a phone segmentation (seconds from frame 0) at 25 fps, through the
    corpus's viseme map (engine.data.visemes.mouth_track)."""
    return mouth_track(["_" if w == "SIL" else _IPA.get(w, "_") for w, _, _ in segs],
                       np.array([b for _, b, _ in segs]), np.array([e for _, _, e in segs]), frames, FPS)


def phone_jaw(mouth: np.ndarray) -> np.ndarray:
    """(n,) jawOpen on the synthetic coefficient scale from (n, >= 1) phone mouth channels (JAW_SCALE, JAW_BIAS)."""
    return (JAW_SCALE * np.asarray(mouth)[:, 0] + JAW_BIAS).astype(np.float32)


def lip_shift(heard: np.ndarray, encoded: np.ndarray) -> np.ndarray:
    """(n, 14) what the phones change in the mouth channels at weight 1, from the within-utterance motion
    (running deviation) of the phones' mouth (`heard`) and of the encoder's (`encoded`): LIP_GAIN x heard -
    encoded on the lip channels, 0 on jawOpen (blended by value, phone_jaw) and on the frowns."""
    return (LIP_GAIN * np.asarray(heard) - np.asarray(encoded)) * _PHONE_LIPS


class PhoneTracker:
    """One stream's phone recogniser. Not thread-safe; ~2 ms of one core per 40 ms of audio here."""

    def __init__(self) -> None:
        self._dec = decoder()
        self._rng = np.random.default_rng(0)
        self.reset()

    def reset(self) -> None:
        """Forget the audio heard so far (a new utterance or an interruption)."""
        if getattr(self, "_open", False):
            self._dec.end_utt()  # type: ignore[attr-defined]
        self._open = False
        self._fed = 0  # samples pushed since reset
        self._utt_start = 0  # sample where the open decoding pass began
        self._closed: list[tuple[str, float, float]] = []  # segments of closed passes (IPA, start s, end s)
        self._segs: list[tuple[str, float, float]] = []  # the open pass's current best segmentation

    @property
    def seconds(self) -> float:
        return self._fed / RATE

    def push(self, samples: np.ndarray) -> None:
        """Feed 16 kHz mono float32 audio (any length)."""
        x = np.asarray(samples, np.float32).reshape(-1)
        if not x.size:
            return
        if not np.isfinite(x).all():  # the stream goes on; those samples are heard as silence
            log.warning("phone tracker: %d NaN/infinite samples read as silence", int((~np.isfinite(x)).sum()))
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        if not self._open:
            self._dec.start_utt()  # type: ignore[attr-defined]
            self._open, self._utt_start = True, self._fed
        # a little dither: digital silence gives the MFCC front end -inf log energies
        x = x + self._rng.normal(0.0, 1e-4, x.size).astype(np.float32)
        self._dec.process_raw((np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes(), full_utt=False)  # type: ignore[attr-defined]
        self._fed += x.size
        segs = self._segs = best_segments(self._dec, self._utt_start / RATE)
        long = (self._fed - self._utt_start) / RATE
        if long > MAX_UTT_S or (long > RESTART_S and segs and segs[-1][0] == "SIL" and segs[-1][2] - segs[-1][1] > 0.1):
            self._dec.end_utt()  # type: ignore[attr-defined]
            self._open = False
            self._closed += self._segs
            self._segs = []
        horizon = self.seconds - WINDOW_S - 1.0
        if self._closed and self._closed[0][2] < horizon:
            self._closed = [s for s in self._closed if s[2] >= horizon]

    def segments(self) -> list[tuple[str, float, float]]:
        """Recognised phones (ARPAbet, "SIL" for pauses) with start/end seconds since reset, as known now."""
        return self._closed + self._segs

    def mouth(self, first: int, n: int) -> np.ndarray:
        """(n, 28) expression channels (mouth ones set, others 0) of 25 fps frames first .. first+n-1, from the
        phones known now. Frames before 0 read as silence."""
        out = np.zeros((n, DEFAULT_SPEC.n_expression), np.float32)
        end = first + n
        if n <= 0 or end <= 0:
            return out
        lo = max(0, end - int(WINDOW_S * FPS) - n)  # frame where the local track starts
        t_lo = lo / FPS
        segs = [(w, b - t_lo, e - t_lo) for w, b, e in self.segments() if e > t_lo]
        if not segs:
            segs = [("SIL", 0.0, (end - lo) / FPS)]
        track = phone_mouth(segs, end - lo)
        take = track[max(first, lo) - lo :]
        out[n - len(take) :] = take
        return out

    def jaw(self, first: int, n: int) -> np.ndarray:
        """(n,) jawOpen of frames first .. first+n-1 on the synthetic coefficient scale (JAW_SCALE, JAW_BIAS)."""
        return phone_jaw(self.mouth(first, n))
