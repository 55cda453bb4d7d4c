"""Engine frames as aiortc media tracks: a fan-out of one engine to many viewers, and the mic pump in.

`FrameFanout` reads `Engine.frames()` once and hands every frame to each `Subscription` (latest-frame
slot for video, a short bounded queue for the audio that plays with it). `EngineVideoTrack` and
`EngineAudioTrack` are the aiortc tracks a peer connection sends; `pump_audio` pushes a received
WebRTC audio track into an engine at 16 kHz mono with the server's arrival time as capture time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from fractions import Fraction
from typing import AsyncIterator, Protocol

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from engine.clock import AUDIO_RATE, VIDEO_TIME_BASE
from engine.messages import VideoFrame

log = logging.getLogger(__name__)

AUDIO_PACKET = AUDIO_RATE // 50  # 20 ms packets (what Opus takes)
AUDIO_QUEUE_PACKETS = 25  # 0.5 s of audio waiting for a slow sender before the oldest is dropped


class AudioPusher(Protocol):
    def push_audio(self, pcm: np.ndarray, capture_time: float | None = None, sample_rate: int = AUDIO_RATE) -> None: ...


class Subscription:
    """One viewer's view of a fan-out: the latest video frame and the audio queued behind it."""

    def __init__(self) -> None:
        self.video: deque[VideoFrame] = deque(maxlen=1)
        self.audio: deque[np.ndarray] = deque(maxlen=AUDIO_QUEUE_PACKETS)
        self._audio_carry = np.zeros(0, np.float32)
        self.video_event = asyncio.Event()
        self.audio_event = asyncio.Event()
        self.closed = False
        self.frames_in = 0

    def put(self, frame: VideoFrame) -> None:
        self.frames_in += 1
        self.video.append(frame)
        self.video_event.set()
        a = np.asarray(frame.audio, np.float32).reshape(-1)
        if a.size:
            x = np.concatenate([self._audio_carry, a]) if self._audio_carry.size else a
            n = x.size // AUDIO_PACKET
            for i in range(n):
                self.audio.append(x[i * AUDIO_PACKET : (i + 1) * AUDIO_PACKET])
            self._audio_carry = x[n * AUDIO_PACKET :].copy()
            if n:
                self.audio_event.set()

    def close(self) -> None:
        self.closed = True
        self.video_event.set()
        self.audio_event.set()

    async def next_video(self) -> VideoFrame | None:
        while not self.video:
            if self.closed:
                return None
            self.video_event.clear()
            await self.video_event.wait()
        return self.video.popleft()

    async def next_audio(self) -> np.ndarray | None:
        while not self.audio:
            if self.closed:
                return None
            self.audio_event.clear()
            await self.audio_event.wait()
        return self.audio.popleft()


class FrameFanout:
    """Reads one frame stream and copies each frame reference to every subscriber (no image copies)."""

    def __init__(self, frames: AsyncIterator[VideoFrame]) -> None:
        self._frames = frames
        self.subs: set[Subscription] = set()
        self.frames = 0
        self.last_frame: VideoFrame | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="s2t-fanout")

    def subscribe(self) -> Subscription:
        sub = Subscription()
        self.subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subs.discard(sub)
        sub.close()

    async def _run(self) -> None:
        try:
            async for f in self._frames:
                self.frames += 1
                self.last_frame = f
                for s in tuple(self.subs):
                    s.put(f)
        finally:
            for s in tuple(self.subs):
                s.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for s in tuple(self.subs):
            s.close()


class EngineVideoTrack(MediaStreamTrack):
    """Video track of a subscription: RGB frames with the engine's 90 kHz pts."""

    kind = "video"

    def __init__(self, sub: Subscription) -> None:
        super().__init__()
        self.sub = sub
        self._pts0: int | None = None

    async def recv(self) -> av.VideoFrame:
        f = await self.sub.next_video()
        if f is None or self.readyState != "live":
            raise MediaStreamError
        if self._pts0 is None:
            self._pts0 = f.pts
        out = av.VideoFrame.from_ndarray(np.ascontiguousarray(f.image), format="rgb24")
        out.pts = f.pts - self._pts0
        out.time_base = VIDEO_TIME_BASE
        return out


class EngineAudioTrack(MediaStreamTrack):
    """Audio track of a subscription: the engine's delayed audio in 20 ms s16 mono 16 kHz frames."""

    kind = "audio"

    def __init__(self, sub: Subscription) -> None:
        super().__init__()
        self.sub = sub
        self._samples = 0

    async def recv(self) -> av.AudioFrame:
        x = await self.sub.next_audio()
        if x is None or self.readyState != "live":
            raise MediaStreamError
        pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16).reshape(1, -1)
        out = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        out.sample_rate = AUDIO_RATE
        out.pts = self._samples
        out.time_base = Fraction(1, AUDIO_RATE)
        self._samples += x.size
        return out


async def pump_audio(track: MediaStreamTrack, engine: AudioPusher) -> int:
    """Push every frame of a received audio track into `engine` until the track ends; returns samples.

    Each frame is resampled to 16 kHz mono float32 (one stateful resampler) and pushed with capture
    time = its arrival time on this host's monotonic clock minus its duration (its first sample).
    """
    resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
    total = 0
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return total
        arrival = time.monotonic()
        for out in resampler.resample(frame):
            x = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            if x.size:
                engine.push_audio(x, capture_time=arrival - x.size / AUDIO_RATE, sample_rate=AUDIO_RATE)
                total += x.size
