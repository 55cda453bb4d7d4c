"""Decode wav/mp3/ogg/flac/m4a/mp4 audio with PyAV to 16 kHz mono float32, whole or streamed in frames."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from engine.clock import AUDIO_RATE
from engine.errors import AudioError

log = logging.getLogger(__name__)

KNOWN_EXTENSIONS = frozenset({".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".mp4", ".aac", ".webm", ".mkv", ".mov"})


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What a container says about its first audio stream."""

    path: str
    container: str
    codec: str
    duration: float  # seconds (decoded length when the container does not say)
    sample_rate: int
    channels: int


def _open(path: str | Path) -> av.container.InputContainer:
    p = Path(path)
    if not p.exists():
        raise AudioError(f"audio file not found: {p}")
    if p.is_dir():
        raise AudioError(f"expected an audio file, got a directory: {p}")
    if p.stat().st_size == 0:
        raise AudioError(f"audio file is empty (0 bytes): {p}")
    try:
        container = av.open(str(p), mode="r")
    except av.error.FFmpegError as e:
        ext = p.suffix.lower()
        if ext not in KNOWN_EXTENSIONS:
            raise AudioError(f"unknown audio format {ext or '(no extension)'!r}: {p} (supported: wav, mp3, ogg, flac, m4a, mp4)") from None
        raise AudioError(f"cannot read {p}: corrupt or not a {ext[1:]} file ({e.__class__.__name__})") from None
    if not container.streams.audio:
        container.close()
        raise AudioError(f"no audio stream in {p}")
    return container


def probe_audio(path: str | Path) -> AudioInfo:
    """Format facts of `path`'s first audio stream; AudioError when it cannot be read."""
    with _open(path) as c:
        s = c.streams.audio[0]
        duration = 0.0
        if s.duration is not None and s.time_base is not None:
            duration = float(s.duration * s.time_base)
        elif c.duration is not None:
            duration = c.duration / av.time_base
        return AudioInfo(
            path=str(path),
            container=c.format.name,
            codec=s.codec_context.name,
            duration=duration,
            sample_rate=int(s.codec_context.sample_rate or 0),
            channels=int(s.codec_context.channels or 0),
        )


def iter_audio(path: str | Path, sample_rate: int = AUDIO_RATE) -> Iterator[np.ndarray]:
    """Yield float32 mono blocks at `sample_rate` as they decode (memory bounded by one packet).

    A decode error after some audio was read ends the stream with a warning (a truncated file plays
    what it has); an error before any audio raises AudioError.
    """
    produced = 0
    with _open(path) as c:
        stream = c.streams.audio[0]
        # Resample keeping the channels, then average them ourselves: FFmpeg's downmix adds +3 dB
        # to a centred stereo signal and can clip it.
        resampler: av.AudioResampler | None = None
        try:
            for frame in c.decode(stream):
                if resampler is None:
                    resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=sample_rate)
                for out in resampler.resample(frame):
                    block = _mono(out)
                    produced += block.size
                    yield block
        except av.error.FFmpegError as e:
            if produced == 0:
                raise AudioError(f"cannot decode {path}: corrupt audio ({e.__class__.__name__})") from None
            log.warning("decode error in %s after %.2f s; keeping what was decoded", path, produced / sample_rate)
        for out in resampler.resample(None) if resampler is not None else ():
            block = _mono(out)
            produced += block.size
            yield block
    if produced == 0:
        raise AudioError(f"no audio samples in {path}")


def _mono(frame: av.AudioFrame) -> np.ndarray:
    planes = frame.to_ndarray()  # (channels, n) for planar float
    return planes.mean(axis=0, dtype=np.float32) if planes.shape[0] > 1 else planes[0].astype(np.float32, copy=False)


def decode_audio(path: str | Path, sample_rate: int = AUDIO_RATE) -> np.ndarray:
    """The whole file as one float32 mono array at `sample_rate`, values in -1..1."""
    blocks = list(iter_audio(path, sample_rate))
    samples = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{path} decodes to non-finite samples")
    return np.clip(samples, -1.0, 1.0)


def iter_frames(path: str | Path, frame_ms: int = 20, sample_rate: int = AUDIO_RATE) -> Iterator[np.ndarray]:
    """Fixed-size frames of `frame_ms` (the last one zero-padded), streamed with bounded memory."""
    n = sample_rate * frame_ms // 1000
    if n <= 0:
        raise ValueError("frame_ms too small")
    pending = np.zeros(0, np.float32)
    for block in iter_audio(path, sample_rate):
        pending = np.concatenate([pending, block]) if pending.size else block
        whole = pending.size // n * n
        for i in range(0, whole, n):
            yield pending[i : i + n].copy()
        pending = pending[whole:]
    if pending.size:
        yield np.pad(pending, (0, n - pending.size))


def to_mono_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Resample an in-memory float array ((N,) or (N, channels)) to 16 kHz mono float32."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise AudioError(f"audio must be 1-D or (samples, channels), got shape {x.shape}")
    if sample_rate <= 0:
        raise AudioError(f"sample rate must be positive, got {sample_rate}")
    if sample_rate == AUDIO_RATE or x.size == 0:
        return x.copy()
    from scipy.signal import resample_poly

    g = np.gcd(int(sample_rate), AUDIO_RATE)
    return resample_poly(x, AUDIO_RATE // g, int(sample_rate) // g).astype(np.float32)
