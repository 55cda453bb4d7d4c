"""Live outputs for `s2t stream`: PyAV muxing (RTMP/FLV, mp4, mkv) and WHIP publishing, with reconnects.

Every sink takes engine `VideoFrame`s through `put(frame)` (never blocks; a slow or reconnecting
output loses the oldest frames, counted) and is closed with `close()`. `AVSink` encodes H.264 + AAC
in its own thread (network writes and reconnects never stall the engine loop); `WhipSink` publishes
over WebRTC to a WHIP endpoint. Both reconnect with exponential backoff when the server drops.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import av
import numpy as np

from engine.clock import AUDIO_RATE, VIDEO_CLOCK_RATE
from engine.errors import InputError
from engine.messages import VideoFrame

log = logging.getLogger(__name__)

OUT_AUDIO_RATE = 48_000
QUEUE_FRAMES = 50  # 2 s at 25 fps waiting for a slow output before the oldest is dropped


class Sink(Protocol):
    name: str

    def put(self, frame: VideoFrame) -> None: ...

    async def close(self) -> None: ...

    def stats(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: first, doubled each failure, capped; `attempts` 0 = forever."""

    first_s: float = 0.5
    max_s: float = 10.0
    attempts: int = 0

    def delay(self, failures: int) -> float:
        return min(self.max_s, self.first_s * (2.0 ** max(0, failures - 1)))


def container_format(url: str) -> str:
    """PyAV muxer for an output URL or path: rtmp(s):// -> flv; .mp4/.mov/.mkv/.flv/.ts by extension."""
    low = url.lower()
    if low.startswith(("rtmp://", "rtmps://")):
        return "flv"
    for ext, fmt in ((".mp4", "mp4"), (".mov", "mov"), (".mkv", "matroska"), (".flv", "flv"), (".ts", "mpegts")):
        if low.endswith(ext):
            return fmt
    raise InputError(f"unsupported output {url!r} (use rtmp://, whip+http(s)://, or a .mp4/.mkv/.flv/.ts path)")


class _Encoder:
    """One open container: H.264 video (pts from the engine's 90 kHz grid) + AAC audio in step with it."""

    def __init__(self, url: str, fmt: str, width: int, height: int, fps: float, bitrate: int) -> None:
        opts = {"flvflags": "no_duration_filesize"} if fmt == "flv" else {}
        self.c = av.open(url, mode="w", format=fmt, container_options=opts, timeout=(5.0, 5.0))
        try:
            v = self.c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            v.width, v.height, v.pix_fmt = width, height, "yuv420p"
            v.bit_rate = bitrate
            v.codec_context.gop_size = max(1, int(round(fps * 2)))
            v.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
            v.codec_context.time_base = Fraction(1, VIDEO_CLOCK_RATE)
            a = self.c.add_stream("aac", rate=OUT_AUDIO_RATE, layout="mono")
            a.bit_rate = 96_000
        except BaseException:
            self.c.close()
            raise
        self.v, self.a = v, a
        self.resampler = av.AudioResampler(format="fltp", layout="mono", rate=OUT_AUDIO_RATE, frame_size=1024)
        self.pts0: int | None = None
        self.audio_pts = 0

    def write(self, frame: VideoFrame) -> None:
        if self.pts0 is None:
            self.pts0 = frame.pts
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame.image), format="rgb24")
        vf.pts = frame.pts - self.pts0
        vf.time_base = Fraction(1, VIDEO_CLOCK_RATE)
        for pkt in self.v.encode(vf):
            self.c.mux(pkt)
        pcm = np.asarray(frame.audio, np.float32).reshape(1, -1)
        if pcm.size:
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm), format="flt", layout="mono")
            af.sample_rate = AUDIO_RATE
            self._audio(self.resampler.resample(af))

    def _audio(self, frames: list[av.AudioFrame]) -> None:
        for f in frames:
            f.pts = self.audio_pts
            f.time_base = Fraction(1, OUT_AUDIO_RATE)
            self.audio_pts += f.samples
            for pkt in self.a.encode(f):
                self.c.mux(pkt)

    def finish(self) -> None:
        try:
            self._audio(self.resampler.resample(None))
            for s in (self.v, self.a):
                for pkt in s.encode(None):
                    self.c.mux(pkt)
        finally:
            self.c.close()

    def abort(self) -> None:
        try:
            self.c.close()
        except (OSError, av.FFmpegError):
            pass


class AVSink:
    """RTMP / file output through PyAV in a writer thread; reconnects (live URLs) with backoff."""

    def __init__(self, url: str, fps: float, bitrate: int = 1_500_000, backoff: Backoff = Backoff()) -> None:
        self.url = url
        self.name = url
        self.fmt = container_format(url)
        self.live = "://" in url
        self.fps = fps
        self.bitrate = bitrate
        self.backoff = backoff
        self._q: queue.Queue[VideoFrame | None] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._stop = threading.Event()
        self.counts = {"written": 0, "dropped": 0, "connects": 0, "failures": 0}
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"s2t-sink-{self.fmt}", daemon=True)
        self._thread.start()

    def put(self, frame: VideoFrame) -> None:
        while True:
            try:
                self._q.put_nowait(frame)
                return
            except queue.Full:
                try:
                    self._q.get_nowait()
                    self.counts["dropped"] += 1
                except queue.Empty:
                    pass

    def stats(self) -> dict[str, Any]:
        return {"output": self.url, **self.counts}

    async def close(self) -> None:
        self._q.put(None)
        await asyncio.to_thread(self._thread.join)
        if self.error is not None and not self.live:
            raise InputError(f"could not write {self.url}: {self.error}")

    def _run(self) -> None:
        enc: _Encoder | None = None
        failures = 0
        while True:
            frame = self._q.get()
            if frame is None:
                break
            if enc is None:
                if failures and self._stop.wait(0):
                    break
                try:
                    h, w = frame.image.shape[:2]
                    enc = _Encoder(self.url, self.fmt, w, h, self.fps, self.bitrate)
                    self.counts["connects"] += 1
                    if failures:
                        log.info("%s: reconnected after %d failure(s)", self.url, failures)
                    failures = 0
                except (OSError, av.FFmpegError) as e:
                    if self._give_up(e, failures := failures + 1):
                        break
                    continue
            try:
                enc.write(frame)
                self.counts["written"] += 1
            except (OSError, av.FFmpegError) as e:
                enc.abort()
                enc = None
                if self._give_up(e, failures := failures + 1):
                    break
        if enc is not None:
            try:
                enc.finish()
            except (OSError, av.FFmpegError) as e:
                log.warning("%s: closing failed: %s", self.url, e)

    def _give_up(self, e: BaseException, failures: int) -> bool:
        """Log a failure; for live outputs wait out the backoff (dropping what queued meanwhile)."""
        self.counts["failures"] += 1
        self.error = e
        if not self.live or (self.backoff.attempts and failures > self.backoff.attempts):
            log.error("%s: %s (giving up)", self.url, e)
            self._drain()
            return True
        delay = self.backoff.delay(failures)
        log.warning("%s: %s; reconnecting in %.1f s", self.url, e, delay)
        t_end = time.monotonic() + delay
        while (left := t_end - time.monotonic()) > 0:  # drop live frames while the server is away
            try:
                item = self._q.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                self._q.put(None)
                return True
            self.counts["dropped"] += 1
        return False

    def _drain(self) -> None:
        while self._q.get() is not None:
            self.counts["dropped"] += 1


class WhipSink:
    """Publishes the avatar to a WHIP endpoint (WebRTC ingest); re-publishes with backoff on failure."""

    def __init__(self, url: str, token: str = "", backoff: Backoff = Backoff()) -> None:
        from clients.sinks.rtc import Subscription

        self.url = url.removeprefix("whip+")
        self.name = url
        self.token = token
        self.backoff = backoff
        self.sub = Subscription()
        self.counts = {"put": 0, "connects": 0, "failures": 0}
        self._closed = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="s2t-whip")

    def put(self, frame: VideoFrame) -> None:
        self.counts["put"] += 1
        self.sub.put(frame)

    def stats(self) -> dict[str, Any]:
        return {"output": self.name, **self.counts}

    async def _publish(self, http: Any) -> None:
        """One publication: offer, answer, wait until the connection ends or the sink closes."""
        from aiortc import RTCPeerConnection, RTCSessionDescription

        from clients.sinks.rtc import EngineAudioTrack, EngineVideoTrack

        pc = RTCPeerConnection()
        ended = asyncio.Event()
        pc.on("connectionstatechange", lambda: ended.set() if pc.connectionState in ("failed", "closed") else None)
        location = ""
        try:
            pc.addTransceiver(EngineVideoTrack(self.sub), direction="sendonly")
            pc.addTransceiver(EngineAudioTrack(self.sub), direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            headers = {"Content-Type": "application/sdp"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            async with http.post(self.url, data=pc.localDescription.sdp, headers=headers) as r:
                if r.status != 201:
                    raise ConnectionError(f"WHIP endpoint answered {r.status}: {(await r.text())[:200]}")
                location = r.headers.get("Location", "")
                answer = await r.text()
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            self.counts["connects"] += 1
            log.info("WHIP: publishing to %s", self.url)
            closed = asyncio.ensure_future(self._closed.wait())
            gone = asyncio.ensure_future(ended.wait())
            await asyncio.wait({closed, gone}, return_when=asyncio.FIRST_COMPLETED)
            for f in (closed, gone):
                f.cancel()
            if not self._closed.is_set():
                raise ConnectionError(f"WHIP connection {pc.connectionState}")
        finally:
            if location and self._closed.is_set():
                from urllib.parse import urljoin

                try:
                    async with http.delete(urljoin(self.url, location), headers={"Authorization": f"Bearer {self.token}"} if self.token else {}):
                        pass
                except OSError:
                    pass
            await pc.close()

    async def _run(self) -> None:
        import aiohttp

        failures = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
            while not self._closed.is_set():
                try:
                    await self._publish(http)
                    failures = 0
                except (ConnectionError, OSError, aiohttp.ClientError, TimeoutError, ValueError) as e:
                    failures += 1
                    self.counts["failures"] += 1
                    if self.backoff.attempts and failures > self.backoff.attempts:
                        log.error("WHIP %s: %s (giving up)", self.url, e)
                        return
                    delay = self.backoff.delay(failures)
                    log.warning("WHIP %s: %s; republishing in %.1f s", self.url, e, delay)
                    self.sub.video.clear()
                    self.sub.audio.clear()
                    try:
                        await asyncio.wait_for(self._closed.wait(), delay)
                    except TimeoutError:
                        pass

    async def close(self) -> None:
        self._closed.set()
        self.sub.close()
        await asyncio.gather(self._task, return_exceptions=True)


def make_sink(url: str, fps: float, whip_token: str = "", backoff: Backoff = Backoff()) -> Sink:
    """The sink for an output: whip+http(s)://… -> WhipSink; rtmp://… or a file path -> AVSink."""
    if url.lower().startswith(("whip+http://", "whip+https://")):
        return WhipSink(url, whip_token, backoff)
    return AVSink(url, fps, backoff=backoff)
