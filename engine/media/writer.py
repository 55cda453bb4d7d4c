"""Mp4Writer: rendered RGB frames + 16 kHz speech into an H.264/AAC .mp4 (or .mkv/.mov) with A/V in sync."""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from engine.errors import InputError

log = logging.getLogger(__name__)

CONTAINERS: dict[str, str] = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}


class Mp4Writer:
    """Streaming A/V file writer: `write_frame(rgb)` per video frame, `write_audio(samples)` any time.

    Video is libx264 yuv420p with pts = frame index on a 1/fps time base. Audio is the original
    mono float32 PCM at `sample_rate`, converted by PyAV's AudioResampler to the AAC encoder's
    format, layout, rate and frame size. Audio is never encoded past the video written so far,
    and `close()` pads with silence or drops the excess so the audio lasts exactly
    n_frames / fps: the two stream durations differ by less than one AAC frame (< 1 video frame).
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float = 25.0,
        sample_rate: int = 16_000,
        audio: bool = True,
        crf: int = 20,
        preset: str = "veryfast",
        audio_rate: int = 48_000,
        audio_bitrate: int = 96_000,
    ) -> None:
        self.path = Path(path)
        fmt = CONTAINERS.get(self.path.suffix.lower())
        if fmt is None:
            raise InputError(
                f"unsupported output format {self.path.suffix or '(none)'!r} for {self.path}; "
                f"use one of {', '.join(CONTAINERS)}"
            )
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise InputError(f"video size must be positive and even for yuv420p, got {width}x{height}")
        if fps <= 0:
            raise InputError(f"fps must be positive, got {fps}")
        self.width, self.height = int(width), int(height)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.sample_rate = int(sample_rate)
        self.n_frames = 0
        self._audio_in: list[np.ndarray] = []  # pending input PCM not yet encoded
        self._audio_pending = 0
        self._audio_done = 0  # input samples already handed to the resampler
        self._audio_out = 0  # output samples encoded (pts of the next audio frame)
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._container = av.open(str(self.path), mode="w", format=fmt)
        except (OSError, av.FFmpegError) as e:
            raise InputError(f"cannot open {self.path} for writing: {e}") from e
        self._video = self._container.add_stream("libx264", rate=self.fps)
        self._video.width, self._video.height = self.width, self.height
        self._video.pix_fmt = "yuv420p"
        self._video.time_base = 1 / self.fps
        self._video.options = {"crf": str(crf), "preset": preset}
        self._audio: av.audio.stream.AudioStream | None = None
        self._resampler: av.AudioResampler | None = None
        if audio:
            self._audio = self._container.add_stream("aac", rate=audio_rate)
            self._audio.layout = "mono"
            self._audio.bit_rate = audio_bitrate
            self._audio.time_base = Fraction(1, audio_rate)

    # -- context manager --------------------------------------------------------------------------
    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------------
    @property
    def duration(self) -> float:
        """Seconds of video written so far."""
        return float(self.n_frames / self.fps)

    def _audio_target(self) -> int:
        """Input samples that exactly span the video written so far."""
        return round(self.n_frames * self.sample_rate / self.fps)

    def write_frame(self, rgb: np.ndarray) -> None:
        """Append one (height, width, 3) uint8 RGB frame."""
        if self._closed:
            raise RuntimeError("write_frame() after close()")
        img = np.asarray(rgb)
        if img.dtype != np.uint8 or img.shape != (self.height, self.width, 3):
            raise ValueError(
                f"frame must be ({self.height}, {self.width}, 3) uint8, got {img.shape} {img.dtype}"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        frame.pts = self.n_frames
        self._container.mux(self._video.encode(frame))
        self.n_frames += 1
        self._drain_audio(self._audio_target())

    def write_audio(self, samples: np.ndarray) -> None:
        """Append mono float32 PCM at `sample_rate` (any chunk size; encoded as the video catches up)."""
        if self._closed:
            raise RuntimeError("write_audio() after close()")
        if self._audio is None:
            raise RuntimeError("this writer was opened with audio=False")
        x = np.asarray(samples, np.float32).reshape(-1)
        if x.size:
            self._audio_in.append(x)
            self._audio_pending += x.size
            self._drain_audio(self._audio_target())

    def _drain_audio(self, upto: int) -> None:
        """Encode pending input samples until `upto` input samples have been encoded in total."""
        if self._audio is None or self._audio_done >= upto or not self._audio_pending:
            return
        take = min(upto - self._audio_done, self._audio_pending)
        buf = np.concatenate(self._audio_in) if len(self._audio_in) > 1 else self._audio_in[0]
        chunk, rest = buf[:take], buf[take:]
        self._audio_in = [rest] if rest.size else []
        self._audio_pending = rest.size
        self._encode_audio(chunk)

    def _encode_audio(self, chunk: np.ndarray | None) -> None:
        assert self._audio is not None
        if self._resampler is None:
            ctx = self._audio.codec_context
            self._resampler = av.AudioResampler(
                format=ctx.format, layout=ctx.layout, rate=ctx.sample_rate, frame_size=ctx.frame_size or None
            )
        if chunk is None:
            frames = self._resampler.resample(None)
        else:
            frame = av.AudioFrame.from_ndarray(np.clip(chunk, -1.0, 1.0)[None, :], format="flt", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = self._audio_done
            frame.time_base = Fraction(1, self.sample_rate)
            self._audio_done += chunk.size
            frames = self._resampler.resample(frame)
        for f in frames:
            f.pts = self._audio_out
            f.time_base = self._audio.time_base
            self._audio_out += f.samples
            self._container.mux(self._audio.encode(f))

    def close(self) -> None:
        """Pad/trim audio to the video's duration, flush both encoders and finish the file."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._audio is not None:
                target = self._audio_target()
                self._drain_audio(target)
                missing = target - self._audio_done
                if missing > 0:
                    self._encode_audio(np.zeros(missing, np.float32))
                if self._audio_pending:
                    log.debug("dropping %d audio samples past the last video frame", self._audio_pending)
                if self._audio_done:
                    self._encode_audio(None)
                self._container.mux(self._audio.encode(None))
            self._container.mux(self._video.encode(None))
        finally:
            self._container.close()
        log.debug("wrote %s: %d frames (%.3f s), %d audio samples", self.path, self.n_frames, self.duration,
                  self._audio_done)


def probe_durations(path: str | Path) -> dict[str, float]:
    """Per-stream-type duration in seconds of a media file, from its packets ({"video": s, "audio": s})."""
    spans: dict[str, tuple[float, float]] = {}
    with av.open(str(path)) as c:
        for pkt in c.demux():
            if pkt.pts is None or pkt.time_base is None:
                continue
            start = float(pkt.pts * pkt.time_base)
            end = float((pkt.pts + (pkt.duration or 0)) * pkt.time_base)
            kind = pkt.stream.type
            lo, hi = spans.get(kind, (math.inf, -math.inf))
            spans[kind] = (min(lo, start), max(hi, end))
    return {k: hi - max(lo, 0.0) for k, (lo, hi) in spans.items()}
