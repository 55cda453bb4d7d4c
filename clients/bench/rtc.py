"""The bench's WebRTC client: the scenario's audio out on a sendrecv track, the avatar's video back.

Works against any WebRTC avatar endpoint: aiortc-style JSON offers (`http(s)://host/offer`) or
WHIP/WHEP-style SDP posts (`whep+http(s)://…`, `whip+http(s)://…`). `run_own_server` starts our
own `s2t serve` app in this process (timing marker on, optional injected delay) and runs the same
client against it, adding the engine's own stats.
"""

from __future__ import annotations

import asyncio
import logging
import time
from fractions import Fraction
from typing import Any
from urllib.parse import urljoin

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from clients import g2g
from clients.bench.analyze import SMOOTH_HOPS
from clients.bench.scenario import Scenario, SpeechPlan
from clients.bench.session import CHUNK, Recording, Sampler, slim_stats
from engine.clock import AUDIO_RATE

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
FIRST_FRAME_TIMEOUT_S = 15.0


class EndpointError(Exception):
    """The endpoint could not be reached, refused us, or sent no video (message says which)."""


class PcmTrack(MediaStreamTrack):
    """An audio track playing a PCM plan in real time (20 ms s16 frames), then silence until stopped.

    Chunk i is handed out once it has fully "happened" (t0 + (i+1)*20 ms); its first sample's time
    is recorded in `rec.chunk_times`, the same convention as a microphone capture.
    """

    kind = "audio"

    def __init__(self, plan: SpeechPlan, rec: Recording) -> None:
        super().__init__()
        self.pcm = (np.clip(plan.pcm, -1, 1) * 32767).astype(np.int16)
        self.n = -(-self.pcm.size // CHUNK)
        self.rec = rec
        self.barge_chunks = {int(round(b * 50)) for b in plan.barge_ins}
        self.on_barge_in: Any = None
        self.i = 0
        self.t0: float | None = None
        self.finished = asyncio.Event()

    async def recv(self) -> Any:
        import av

        if self.readyState != "live":
            raise MediaStreamError
        if self.t0 is None:
            self.t0 = time.monotonic()
            self.rec.started = self.t0
        due = self.t0 + (self.i + 1) * CHUNK / AUDIO_RATE
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # real-time pacing of a live source
        i = self.i
        self.i += 1
        if i < self.n:
            x = self.pcm[i * CHUNK : (i + 1) * CHUNK]
            if x.size < CHUNK:
                x = np.pad(x, (0, CHUNK - x.size))
            self.rec.chunk_times.append(time.monotonic() - CHUNK / AUDIO_RATE)
            if i in self.barge_chunks and self.on_barge_in is not None:
                self.on_barge_in()
                self.rec.barge_ins += 1
                self.rec.barge_in_times.append(time.monotonic())
            if i == self.n - 1:
                self.finished.set()
        else:
            x = np.zeros(CHUNK, np.int16)
        frame = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = i * CHUNK
        frame.time_base = Fraction(1, AUDIO_RATE)
        return frame


async def _signal(http: Any, url: str, pc: Any, token: str) -> tuple[str, str, str]:
    """Offer/answer with the endpoint; returns (answer sdp, session id or "", resource url or "")."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    sdp = pc.localDescription.sdp
    sdp_style = url.startswith(("whep+", "whip+"))
    target = url.split("+", 1)[1] if sdp_style else url
    try:
        if sdp_style:
            async with http.post(target, data=sdp, headers={**headers, "Content-Type": "application/sdp"}) as r:
                text = await r.text()
                if r.status not in (200, 201):
                    raise EndpointError(f"endpoint {url} answered HTTP {r.status}: {text[:200].strip()}")
                loc = r.headers.get("Location", "")
                return text, "", urljoin(target, loc) if loc else ""
        async with http.post(target, json={"sdp": sdp, "type": "offer"}, headers=headers) as r:
            if r.status != 200:
                raise EndpointError(f"endpoint {url} answered HTTP {r.status}: {(await r.text())[:200].strip()}")
            body = await r.json(content_type=None)
    except (aiohttp.ClientConnectorError, aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as e:
        raise EndpointError(f"cannot reach endpoint {url}: {e}") from None
    except TimeoutError:
        raise EndpointError(f"endpoint {url} did not answer the offer within {CONNECT_TIMEOUT_S:.0f} s") from None
    except (aiohttp.ContentTypeError, ValueError) as e:
        raise EndpointError(f"endpoint {url} sent no JSON answer: {e}") from None
    if not isinstance(body, dict) or not isinstance(body.get("sdp"), str):
        raise EndpointError(f"endpoint {url} answered without an SDP: {str(body)[:200]}")
    return body["sdp"], str(body.get("session") or ""), ""


async def run_client(url: str, s: Scenario, plan: SpeechPlan, rec: Recording, token: str = "",
                     marker: bool = False, engine_stats: Any = None, on_session: Any = None) -> str:
    """Send the plan's audio to `url`, record the video coming back; returns the session id if any.

    Raises EndpointError (unreachable, refused, no video); what was recorded until then stays in `rec`.
    `engine_stats(session_id)` -> dict adds engine stats to the per-second samples (our own server).
    """
    import aiohttp
    from aiortc import RTCPeerConnection, RTCSessionDescription

    if not url.startswith(("http://", "https://", "whep+http", "whip+http")):
        raise EndpointError(f"unsupported endpoint {url!r} (use http(s)://host/offer or whep+http(s)://host/whep)")
    pc = RTCPeerConnection()
    track = PcmTrack(plan, rec)
    got_video: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    pc.on("track", lambda t: got_video.set_result(t) if t.kind == "video" and not got_video.done() else None)
    pc.addTransceiver(track, direction="sendrecv")
    pc.addTransceiver("video", direction="recvonly")
    resource = ""
    pending: set[asyncio.Task[None]] = set()  # barge-in requests in flight
    sampler_task: asyncio.Task[None] | None = None
    timeout = aiohttp.ClientTimeout(total=CONNECT_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        try:
            await pc.setLocalDescription(await pc.createOffer())
            answer, sid, resource = await _signal(http, url, pc, token)
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            except ValueError as e:
                raise EndpointError(f"endpoint {url} sent an unusable SDP answer: {e}") from None
            if sid and on_session is not None:
                on_session(sid)
            if sid and plan.barge_ins:
                base = url.rsplit("/offer", 1)[0]

                def barge_in() -> None:
                    task = asyncio.create_task(_interrupt(http, f"{base}/session/{sid}/interrupt", token))
                    pending.add(task)
                    task.add_done_callback(pending.discard)

                track.on_barge_in = barge_in
            stats_fn = (lambda: slim_stats(engine_stats(sid))) if engine_stats is not None and sid else (lambda: None)
            sampler_task = asyncio.create_task(Sampler(rec, stats_fn).run(), name="s2t-bench-sampler")
            try:
                video = await asyncio.wait_for(asyncio.shield(got_video), FIRST_FRAME_TIMEOUT_S)
                first = await asyncio.wait_for(video.recv(), FIRST_FRAME_TIMEOUT_S)
            except (TimeoutError, MediaStreamError):
                raise EndpointError(f"endpoint {url} sent no video within {FIRST_FRAME_TIMEOUT_S:.0f} s "
                                    f"(connection {pc.connectionState})") from None
            await _receive(video, first, track, rec, s, marker)
            if engine_stats is not None and sid:
                rec.final_stats = engine_stats(sid)
            return sid
        finally:
            if sampler_task is not None:
                sampler_task.cancel()
                await asyncio.gather(sampler_task, return_exceptions=True)
            await asyncio.gather(*pending, return_exceptions=True)
            track.stop()
            if resource:
                try:
                    async with http.delete(resource, headers={"Authorization": f"Bearer {token}"} if token else {}):
                        pass
                except (aiohttp.ClientError, TimeoutError):
                    pass
            await pc.close()


async def _interrupt(http: Any, url: str, token: str) -> None:
    import aiohttp

    try:
        async with http.post(url, json={}, headers={"Authorization": f"Bearer {token}"} if token else {}) as r:
            if r.status != 200:
                log.warning("barge-in: %s answered %d", url, r.status)
    except (aiohttp.ClientError, TimeoutError) as e:
        log.warning("barge-in: %s failed: %s", url, e)


async def _receive(video: Any, first: Any, track: PcmTrack, rec: Recording, s: Scenario, marker: bool) -> None:
    """Record frames until the audio has played out plus the scenario's tail."""
    frame = first
    end: float | None = None
    while True:
        t = time.monotonic()
        img = frame.to_ndarray(format="rgb24")
        rec.add_frame(t, img, g2g.read_marker(img) if marker else float("nan"))
        if end is None and track.finished.is_set():
            end = t + s.tail_s
        if end is not None and t >= end:
            return
        try:
            frame = await asyncio.wait_for(video.recv(), 5.0)
        except (TimeoutError, MediaStreamError):
            raise EndpointError(f"the endpoint's video stopped after {len(rec.frame_times)} frames") from None


async def run_viewer(url: str, rec: Recording, marker: bool, token: str = "") -> None:
    """A WHEP viewer (recvonly video) recording frames until cancelled."""
    import aiohttp
    from aiortc import RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection()
    got_video: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    pc.on("track", lambda t: got_video.set_result(t) if t.kind == "video" and not got_video.done() else None)
    pc.addTransceiver("video", direction="recvonly")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CONNECT_TIMEOUT_S)) as http:
            await pc.setLocalDescription(await pc.createOffer())
            answer, _, _ = await _signal(http, url, pc, token)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        video = await asyncio.wait_for(got_video, FIRST_FRAME_TIMEOUT_S)
        while True:
            frame = await video.recv()
            img = frame.to_ndarray(format="rgb24")
            rec.add_frame(time.monotonic(), img, g2g.read_marker(img) if marker else float("nan"))
    except MediaStreamError:
        return
    finally:
        await pc.close()


async def run_own_server(s: Scenario, plan: SpeechPlan, rec: Recording) -> Recording | None:
    """Our `s2t serve` app on a free local port (marker on), measured as a client.

    With `inject_delay_ms`, the same session is also watched through a WHEP viewer whose video the
    server delays by that much: the returned Recording (same sent audio) should measure that much later.
    """
    from aiohttp import web

    from clients.bench.wrap import measured_factory
    from clients.webrtc.server import SERVER, ServeConfig, create_app

    app = create_app(ServeConfig(max_sessions=max(1, s.sessions), whep_video_delay_ms=s.inject_delay_ms,
                                 engine=s.engine()),
                     engine_factory=measured_factory(marker=s.marker, trace=True))
    srv = app[SERVER]
    runner = web.AppRunner(app)
    await runner.setup()
    copy: Recording | None = None
    viewer: asyncio.Task[None] | None = None
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"

        def stats(sid: str) -> dict[str, Any]:
            sess = srv.sessions.get(sid)
            return sess.engine.stats() if sess is not None else {}

        def watch(sid: str) -> None:
            nonlocal copy, viewer
            if s.inject_delay_ms > 0:
                copy = Recording(f"{rec.label}-delayed", plan, keep_images=False)
                copy.chunk_times = rec.chunk_times  # the same audio, the same list
                viewer = asyncio.create_task(run_viewer(f"whep+{base}/whep/{sid}", copy, s.marker),
                                             name="s2t-bench-viewer")

        sid = await run_client(f"{base}/offer", s, plan, rec, marker=s.marker, engine_stats=stats, on_session=watch)
        sess = srv.sessions.get(sid)
        if sess is not None:
            rec.legs = legs(rec, sess.engine)
    finally:
        if viewer is not None:
            viewer.cancel()
            outcome = (await asyncio.gather(viewer, return_exceptions=True))[0]
            if isinstance(outcome, EndpointError):
                rec.errors.append(f"delayed WHEP copy: {outcome}")
        await runner.cleanup()
    if copy is not None:
        copy.started = rec.started
    return copy

def legs(rec: Recording, eng: Any) -> dict[str, float]:
    """Where our own server's glass-to-glass goes (one host, one clock): uplink (client audio out ->
    server push), engine (push -> frame out of the server's engine, marker-stamped and delayed), and
    downlink (frame out -> frame decoded at the client); each a loudness cross-correlation lag, ms."""
    pushes = np.asarray(getattr(eng, "pushes", []), np.float64).reshape(-1, 2)
    emits = np.asarray(getattr(eng, "emits", []), np.float64).reshape(-1, 2)
    if pushes.shape[0] < 10 or emits.shape[0] < 10:
        return {}
    at, adb = rec.audio_level()
    sent = g2g.marker_value(g2g.smooth_level_db(adb, SMOOTH_HOPS))
    # pushes are 10-20 ms blocks: smoothed to one frame of audio the same way
    k = max(1, int(round(0.04 / max(1e-3, float(np.median(np.diff(pushes[:, 0])))))))
    recv = g2g.marker_value(g2g.smooth_level_db(pushes[:, 1], k))
    up = g2g.lag_by_xcorr(at[: sent.size], sent, pushes[: recv.size, 0], recv, max_lag_s=1.0)[0]
    engine = g2g.lag_by_xcorr(pushes[: recv.size, 0], recv, emits[:, 0], emits[:, 1], max_lag_s=1.0)[0]
    ft, fm = np.asarray(rec.frame_times), np.asarray(rec.markers)
    down = g2g.lag_by_xcorr(emits[:, 0], emits[:, 1], ft, fm, max_lag_s=0.5, step_s=0.002)[0]
    return {"uplink_ms": up, "engine_ms": engine, "downlink_ms": down}

