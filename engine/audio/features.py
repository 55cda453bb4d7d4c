"""Log-mel features (25 ms window, 10 ms hop, 80 bins) offline and streaming, aligned to video frames."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from engine.clock import AUDIO_RATE

N_FFT = 512
WIN = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
N_MELS = 80
LOG_FLOOR = 1e-5


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


@lru_cache(maxsize=4)
def mel_filterbank(sr: int = AUDIO_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS, fmin: float = 55.0, fmax: float = 7600.0) -> np.ndarray:
    """(n_mels, n_fft//2+1) triangular HTK-mel filters, area-normalised."""
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mels = np.linspace(_hz_to_mel(np.array(fmin)), _hz_to_mel(np.array(fmax)), n_mels + 2)
    hz = _mel_to_hz(mels)
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (freqs[None] - lower) / (centre - lower)
    down = (upper - freqs[None]) / (upper - centre)
    fb = np.maximum(0.0, np.minimum(up, down))
    fb *= (2.0 / (upper - lower))
    fb.setflags(write=False)
    return fb.astype(np.float32)


@lru_cache(maxsize=2)
def _window() -> np.ndarray:
    w = np.hanning(WIN + 1)[:-1].astype(np.float32)
    w.setflags(write=False)
    return w


def _frames_to_logmel(frames: np.ndarray) -> np.ndarray:
    spec = np.abs(np.fft.rfft(frames * _window(), n=N_FFT, axis=-1)) ** 2
    return np.log(np.maximum(spec.astype(np.float32) @ mel_filterbank().T, LOG_FLOOR)).astype(np.float32)


def log_mel(samples: np.ndarray, sr: int = AUDIO_RATE) -> np.ndarray:
    """(n, 80) log-mel; frame i is centred on sample i*160 (signal zero-padded by 200 each side)."""
    if sr != AUDIO_RATE:
        raise ValueError(f"log_mel expects {AUDIO_RATE} Hz audio, got {sr}")
    x = np.asarray(samples, np.float32)
    n = len(x) // HOP + 1
    padded = np.pad(x, (WIN // 2, WIN // 2 + HOP))
    idx = np.arange(WIN)[None, :] + HOP * np.arange(n)[:, None]
    return _frames_to_logmel(padded[idx])


def n_video_frames(n_samples: int, fps: float, sr: int = AUDIO_RATE) -> int:
    """Video frames covering `n_samples` of audio (ceil: no audio is left without a frame)."""
    return int(math.ceil(n_samples * fps / sr - 1e-6))


def mel_for_video(samples: np.ndarray, fps: float = 25.0, sub: int = 4, sr: int = AUDIO_RATE) -> np.ndarray:
    """(T, sub, 80): for video frame t (covering [t/fps, (t+1)/fps)), `sub` mel frames spread over it.

    Mel frames are linearly interpolated at the sub-frame centres so any fps works (25 fps, sub=4 hits
    the 10 ms grid exactly).
    """
    mel = log_mel(samples, sr)
    T = n_video_frames(len(samples), fps, sr)
    centres = (np.arange(T)[:, None] + (np.arange(sub)[None, :] + 0.5) / sub) / fps  # seconds
    pos = np.clip(centres * sr / HOP, 0, len(mel) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(mel) - 1)
    w = (pos - lo)[..., None].astype(np.float32)
    return (mel[lo] * (1 - w) + mel[hi] * w).astype(np.float32)


def rms_envelope(samples: np.ndarray, fps: float = 25.0, sr: int = AUDIO_RATE) -> np.ndarray:
    """(T,) RMS of the audio under each video frame."""
    T = n_video_frames(len(samples), fps, sr)
    edges = np.round(np.arange(T + 1) * sr / fps).astype(np.int64)
    x = np.asarray(samples, np.float32)
    sq = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    edges = np.minimum(edges, len(x))
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    return np.sqrt((sq[edges[1:]] - sq[edges[:-1]]) / counts).astype(np.float32)


class StreamingLogMel:
    """Incremental log-mel: push any number of samples, get the mel frames that became complete.

    Produces exactly the rows `log_mel` gives for the same signal (except the last few, which need
    the right-hand padding that only `flush()` adds).
    """

    def __init__(self) -> None:
        self._buf = np.zeros(WIN // 2, np.float32)  # left zero-padding, as log_mel
        self._next = 0  # index of the next mel frame to emit
        self._offset = 0  # absolute padded-sample index of self._buf[0]
        self._total = 0  # real samples pushed

    def push(self, samples: np.ndarray) -> np.ndarray:
        self._total += len(samples)
        return self._emit(samples)

    def _emit(self, samples: np.ndarray) -> np.ndarray:
        self._buf = np.concatenate([self._buf, np.asarray(samples, np.float32)])
        start = self._next * HOP - self._offset
        n = (len(self._buf) - start - WIN) // HOP + 1
        if n <= 0:
            return np.zeros((0, N_MELS), np.float32)
        idx = start + np.arange(WIN)[None, :] + HOP * np.arange(n)[:, None]
        out = _frames_to_logmel(self._buf[idx])
        self._next += n
        drop = self._next * HOP - self._offset
        self._buf = self._buf[drop:]
        self._offset += drop
        return out

    def flush(self) -> np.ndarray:
        """The remaining frames, so the whole stream equals `log_mel` of everything pushed."""
        want = self._total // HOP + 1 - self._next
        out = self._emit(np.zeros(WIN // 2 + HOP, np.float32))
        return out[: max(want, 0)]
