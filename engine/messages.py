"""Typed messages between stages (one frozen dataclass per hop) and their zero-copy wire codec.

Wire format: frame 0 is a msgpack header {"kind", "fields", "arrays": [[name, dtype, shape], ...]};
each ndarray field follows as one raw buffer frame, sent without copying. Never pickle.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import msgpack
import numpy as np

from engine.clock import AUDIO_RATE

Timings = tuple[tuple[str, float], ...]  # (stage name, duration in ms) in the order they happened


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Mono float32 PCM at `sample_rate`; `pts` counts samples from the session start (time base 1/rate)."""

    kind: ClassVar[str] = "audio"
    session: str
    seq: int
    pts: int
    capture_time: float  # monotonic seconds when the first sample was captured
    samples: np.ndarray  # (N,) float32 in -1..1
    sample_rate: int = AUDIO_RATE
    speech: bool = True  # VAD verdict for this chunk


@dataclass(frozen=True, slots=True)
class MotionChunk:
    """T frames of coefficients in the MotionSpec named by `spec_key`; `pts` of the first frame (1/90000)."""

    kind: ClassVar[str] = "motion"
    session: str
    seq: int
    pts: int
    capture_time: float  # capture time of the audio the first frame came from
    coeffs: np.ndarray  # (T, spec.dim) float32
    fps: float
    spec_key: str
    speech: np.ndarray  # (T,) bool, voice activity per frame
    timings: Timings = ()
    # Frames of lookahead: row i depicts audio frame seq + i and was made when audio frame seq + lag + i
    # arrived (the stage's `latency_frames`; 0 for a stage without lookahead).
    lag: int = 0


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One rendered RGB frame; `pts` on the 90 kHz grid; `audio` is the PCM that plays with it."""

    kind: ClassVar[str] = "video"
    session: str
    seq: int
    pts: int
    capture_time: float
    image: np.ndarray  # (H, W, 3) uint8 RGB
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # float32 16 kHz
    coeffs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (dim,) used
    timings: Timings = ()
    repeated: bool = False  # True when the output repeated the last frame instead of a fresh one


@dataclass(frozen=True, slots=True)
class Control:
    """A control message for a session: `op` is one of OPS, `value` its argument (text, bytes, array)."""

    kind: ClassVar[str] = "control"
    OPS: ClassVar[tuple[str, ...]] = (
        "set_emotion",
        "set_style_reference",
        "set_art_style",
        "set_portrait",
        "set_quality",
        "interrupt",
        "ping",
        "pong",
        "ready",
        "stop",
        "error",
    )
    session: str
    seq: int
    op: str
    text: str = ""
    data: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    number: float = 0.0
    sent_time: float = 0.0

    def __post_init__(self) -> None:
        if self.op not in self.OPS:
            raise ValueError(f"unknown control op {self.op!r}")


Message = AudioChunk | MotionChunk | VideoFrame | Control
_KINDS: dict[str, type] = {c.kind: c for c in (AudioChunk, MotionChunk, VideoFrame, Control)}


def encode(msg: Message) -> list[Any]:
    """Header + one buffer per ndarray field. Buffers are the arrays' own memory (no copy)."""
    header_fields: dict[str, Any] = {}
    arrays: list[list[Any]] = []
    buffers: list[Any] = []
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        if isinstance(value, np.ndarray):
            arr = np.ascontiguousarray(value)
            arrays.append([f.name, arr.dtype.str, list(arr.shape)])
            buffers.append(memoryview(arr).cast("B") if arr.size else b"")
        else:
            header_fields[f.name] = value
    header = msgpack.packb({"kind": msg.kind, "fields": header_fields, "arrays": arrays}, use_bin_type=True)
    return [header, *buffers]


def decode(frames: Sequence[Any]) -> Message:
    """Inverse of `encode`. Arrays view the received buffers (zero copy, read-only)."""
    if not frames:
        raise ValueError("empty message")
    header = msgpack.unpackb(bytes(_buf(frames[0])), raw=False)
    cls = _KINDS.get(header.get("kind"))
    if cls is None:
        raise ValueError(f"unknown message kind {header.get('kind')!r}")
    arrays = header["arrays"]
    if len(frames) != 1 + len(arrays):
        raise ValueError(f"{cls.__name__}: expected {1 + len(arrays)} frames, got {len(frames)}")
    kwargs = dict(header["fields"])
    for (name, dtype, shape), frame in zip(arrays, frames[1:]):
        buf = _buf(frame)
        kwargs[name] = np.frombuffer(buf, dtype=np.dtype(dtype)).reshape(shape) if len(buf) else np.zeros(shape, dtype)
    if "timings" in kwargs:
        kwargs["timings"] = tuple((str(n), float(ms)) for n, ms in kwargs["timings"])
    return cls(**kwargs)  # type: ignore[no-any-return]


def _buf(frame: Any) -> memoryview:
    # zmq.Frame exposes .buffer; bytes and memoryview pass through.
    b = getattr(frame, "buffer", frame)
    return memoryview(b)
