"""Voice activity: webrtcvad flags per 20 ms frame, with a short hangover so words are not chopped."""

from __future__ import annotations

import numpy as np
import webrtcvad

from engine.clock import AUDIO_RATE


def _pcm16(samples: np.ndarray) -> bytes:
    x = np.nan_to_num(np.asarray(samples, np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def vad_flags(samples: np.ndarray, sr: int = AUDIO_RATE, frame_ms: int = 20, mode: int = 2) -> np.ndarray:
    """One bool per whole `frame_ms` frame of `samples` (a trailing partial frame is dropped)."""
    if frame_ms not in (10, 20, 30):
        raise ValueError("webrtcvad takes 10, 20 or 30 ms frames")
    if sr not in (8000, 16000, 32000, 48000):
        raise ValueError(f"webrtcvad needs 8/16/32/48 kHz audio, got {sr}")
    vad = webrtcvad.Vad(mode)
    n = sr * frame_ms // 1000
    count = len(samples) // n
    pcm = _pcm16(samples[: count * n])
    step = 2 * n
    return np.array([vad.is_speech(pcm[i * step : (i + 1) * step], sr) for i in range(count)], dtype=bool)


def smooth_flags(flags: np.ndarray, hangover: int = 5, min_speech: int = 2) -> np.ndarray:
    """Drop speech runs shorter than `min_speech` frames, then extend each run by `hangover` frames."""
    f = np.asarray(flags, bool).copy()
    if f.size == 0:
        return f
    # remove short blips
    edges = np.flatnonzero(np.diff(np.r_[0, f.astype(np.int8), 0]))
    for start, end in zip(edges[::2], edges[1::2]):
        if end - start < min_speech:
            f[start:end] = False
    if hangover > 0:
        idx = np.flatnonzero(f)
        out = f.copy()
        for k in range(1, hangover + 1):
            j = idx + k
            out[j[j < f.size]] = True
        f = out
    return f


class StreamingVad:
    """Frame-by-frame VAD for live audio: push 20 ms frames, get a smoothed speech flag per frame."""

    def __init__(self, sr: int = AUDIO_RATE, frame_ms: int = 20, mode: int = 2, hangover: int = 8) -> None:
        self._vad = webrtcvad.Vad(mode)
        self.sr = sr
        self.n = sr * frame_ms // 1000
        self.hangover = hangover
        self._since_speech = hangover + 1

    def push(self, frame: np.ndarray) -> bool:
        if frame.size != self.n:
            raise ValueError(f"expected {self.n} samples, got {frame.size}")
        raw = self._vad.is_speech(_pcm16(frame), self.sr)
        self._since_speech = 0 if raw else self._since_speech + 1
        return self._since_speech <= self.hangover

    def reset(self) -> None:
        self._since_speech = self.hangover + 1
