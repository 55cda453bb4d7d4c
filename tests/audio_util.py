"""Test helper: write audio in any container/codec with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

FORMATS: dict[str, tuple[str, str]] = {  # extension -> (container format, codec)
    ".wav": ("wav", "pcm_s16le"),
    ".mp3": ("mp3", "libmp3lame"),
    ".ogg": ("ogg", "libopus"),
    ".flac": ("flac", "flac"),
    ".m4a": ("ipod", "aac"),
    ".mp4": ("mp4", "aac"),
}


def write_audio(path: Path, samples: np.ndarray, rate: int = 16000, channels: int = 1) -> Path:
    fmt, codec = FORMATS[path.suffix]
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w", format=fmt) as c:
        out_rate = 48000 if codec == "libopus" else rate  # opus only encodes at 48 kHz
        s = c.add_stream(codec, rate=out_rate, layout=layout)
        fr_fmt = s.codec_context.format.name if s.codec_context.format else "s16"
        data = np.repeat(samples[None, :], channels, axis=0).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(data.reshape(1, -1) if channels == 1 else np.ascontiguousarray(data.T).reshape(1, -1), format="flt", layout=layout)
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=fr_fmt, layout=layout, rate=out_rate, frame_size=s.codec_context.frame_size or None)
        pts = 0
        for f in resampler.resample(frame) + resampler.resample(None):
            f.pts = pts
            pts += f.samples
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    return path


def tone(seconds: float, rate: int = 16000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)
