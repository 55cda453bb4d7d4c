"""`s2t serve`: aiohttp + aiortc server: the browser page, POST /offer sessions, controls, stats, g2g, WHEP.

One `Engine` per session. The incoming audio track is resampled to 16 kHz mono and pushed with its
arrival time; the session's frames fan out to its own peer connection and to any WHEP viewers.
Limits: `max_sessions` live sessions, `max_viewers` WHEP viewers, uploads capped at
`max_upload_bytes`, optional bearer token on every signalling/control route. Sessions end when the
peer connection closes or fails, when the page's beacon says the tab is going, or on DELETE.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import logging
import math
import secrets
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Awaitable, Callable

import numpy as np
from aiohttp import web

from engine.config import EngineConfig, check_phone_weight, load_config
from engine.errors import (
    DeviceUnavailableError,
    ImageError,
    InputError,
    NoFaceError,
    NotAvailableError,
    S2TError,
)

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MiB = 1 << 20
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/bmp", "image/gif")
CLIP_TYPES = ("video/", "application/octet-stream")


@dataclass(frozen=True, slots=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_sessions: int = 2  # live engine sessions at once; the next is refused with 503
    max_viewers: int = 8  # WHEP viewers at once
    token: str = ""  # bearer token for signalling and controls; empty = none
    max_upload_bytes: int = 8 * MiB  # portrait / art-style / style-clip uploads
    max_g2g_bytes: int = 24 * MiB  # the page's glass-to-glass sample upload
    stats_interval_s: float = 0.5
    whep_video_delay_ms: float = 0.0  # harness self-check only (s2t bench): WHEP viewers' video this much late
    engine: EngineConfig = field(default_factory=EngineConfig)


EngineFactory = Callable[[EngineConfig, str], Any]


def _default_engine(cfg: EngineConfig, session: str) -> Any:
    from engine.runtime import Engine

    return Engine(cfg, session=session)


class HttpError(Exception):
    """An error answered as JSON {"error": message} with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _status_for(e: S2TError) -> int:
    if isinstance(e, NoFaceError):
        return 422
    if isinstance(e, ImageError):
        return 415
    if isinstance(e, InputError):
        return 400
    if isinstance(e, NotAvailableError):
        return 501
    if isinstance(e, DeviceUnavailableError):
        return 503
    return 500


@web.middleware
async def _errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpError as e:
        return web.json_response({"error": str(e)}, status=e.status)
    except S2TError as e:
        return web.json_response({"error": str(e)}, status=_status_for(e))
    except web.HTTPRequestEntityTooLarge as e:
        limit = e.max_size if hasattr(e, "max_size") else 0
        return web.json_response({"error": f"upload too large (limit {limit / MiB:.0f} MiB)"}, status=413)
    except web.HTTPException:
        raise
    except Exception as e:  # a failure of ours (a worker that did not start, ...): JSON like every other error
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": f"internal error: {type(e).__name__}: {e}"[:500]}, status=500)


class Session:
    """One live avatar: an engine, its fan-out, its peer connection, its tasks and its latest stats."""

    def __init__(self, sid: str, engine: Any, kind: str = "rtc") -> None:
        from clients.sinks.rtc import FrameFanout

        self.id = sid
        self.kind = kind
        self.engine = engine
        self.fanout = FrameFanout(engine.frames())
        self.pc: Any = None
        self.channels: list[Any] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.created = time.monotonic()
        self.audio_samples_in = 0
        self.g2g: dict[str, Any] | None = None
        self.closed = False
        self.viewers: set[str] = set()

    def stats(self) -> dict[str, Any]:
        s = self.engine.stats()
        e2e = s.get("e2e_ms", {})
        return {
            "session": self.id,
            "e2e_ms": {k: _num(v) for k, v in e2e.items()},  # the last second
            "e2e_ms_session": {k: _num(v) for k, v in s.get("e2e_ms_session", {}).items()},
            "fps": _num(s.get("fps", 0.0)),
            "level": s.get("level", 0),
            "level_name": s.get("level_name", ""),
            "dropped": s.get("dropped", 0),
            "repeated": s.get("repeated", 0),
            "frames_sent": self.fanout.frames,
            "audio_in_s": round(self.audio_samples_in / 16000.0, 2),
            "viewers": len(self.viewers),
            "uptime_s": round(time.monotonic() - self.created, 1),
            "g2g": self.g2g["summary"] if self.g2g else None,
        }


def _num(v: Any) -> float | None:
    f = float(v)
    return None if math.isnan(f) or math.isinf(f) else round(f, 2)


class Server:
    """The server's state: sessions, viewers, limits. Handlers are its methods."""

    def __init__(self, cfg: ServeConfig, engine_factory: EngineFactory | None = None) -> None:
        self.cfg = cfg
        self.factory = engine_factory or _default_engine
        self.sessions: dict[str, Session] = {}
        self.viewers: dict[str, tuple[Any, Any, str]] = {}  # id -> (pc, subscription, session id)
        self._starting = 0
        self.refused: dict[str, int] = {"limit": 0, "auth": 0, "upload": 0}

    # ------------------------------------------------------------------ helpers
    def _auth(self, request: web.Request) -> None:
        if not self.cfg.token:
            return
        got = request.headers.get("Authorization", "")
        if not secrets.compare_digest(got.encode(), f"Bearer {self.cfg.token}".encode()):
            self.refused["auth"] += 1
            raise HttpError(401, "missing or wrong bearer token (send 'Authorization: Bearer <token>')")

    async def _json(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        try:
            body = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HttpError(400, "request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise HttpError(400, "request body must be a JSON object")
        return body

    def _data_url(self, value: Any, what: str, types: tuple[str, ...]) -> bytes:
        """Decode a base64 data URL, refusing other media types and sizes over the upload limit."""
        if not isinstance(value, str) or not value.startswith("data:") or "," not in value:
            raise HttpError(400, f"{what} must be a base64 data URL (data:<type>;base64,...)")
        head, payload = value.split(",", 1)
        mime = head[5:].split(";")[0].strip().lower()
        if not any(mime.startswith(t) for t in types):
            self.refused["upload"] += 1
            raise HttpError(415, f"{what}: unsupported type {mime or 'unknown'!r} (expected {', '.join(types)})")
        if len(payload) * 3 // 4 > self.cfg.max_upload_bytes:
            self.refused["upload"] += 1
            raise HttpError(413, f"{what} is too large (limit {self.cfg.max_upload_bytes / MiB:.1f} MiB)")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise HttpError(400, f"{what}: invalid base64 data") from None

    def _image(self, value: Any, what: str) -> np.ndarray:
        from engine.face.image import load_image

        data = self._data_url(value, what, IMAGE_TYPES)
        try:
            return load_image(data)
        except ImageError as e:
            self.refused["upload"] += 1
            raise HttpError(415, f"{what} is not a readable image: {e}") from None

    def _session(self, request: web.Request) -> Session:
        sid = request.match_info.get("sid") or request.query.get("session", "")
        s = self.sessions.get(sid)
        if s is None:
            raise HttpError(404, f"no such session {sid!r}")
        return s

    # ------------------------------------------------------------------ sessions
    async def _reserve(self) -> None:
        if len(self.sessions) + self._starting >= self.cfg.max_sessions:
            self.refused["limit"] += 1
            raise HttpError(503, f"the server is at its limit of {self.cfg.max_sessions} session(s); try again later")
        self._starting += 1

    async def offer(self, request: web.Request) -> web.Response:
        """aiortc-examples signalling: {"sdp","type","emotion"?,"portrait"?,"budget_ms"?,"phone_weight"?} ->
        {"sdp","type","session"}. phone_weight (0..1): the Style-E mouth's share from recognised phones; 0.8 suits a
        synthesized voice (a voice agent's TTS)."""
        from aiortc import RTCPeerConnection, RTCSessionDescription

        self._auth(request)
        body = await self._json(request)
        if body.get("type") != "offer" or not isinstance(body.get("sdp"), str):
            raise HttpError(400, 'expected {"sdp": "...", "type": "offer"}')
        portrait = self._image(body["portrait"], "portrait") if body.get("portrait") else None
        emotion = str(body.get("emotion") or "").strip()
        ecfg = self.cfg.engine
        if body.get("budget_ms") is not None:
            try:
                budget = float(body["budget_ms"])
            except (TypeError, ValueError):
                raise HttpError(400, "budget_ms must be a number") from None
            if not 40.0 <= budget <= 2000.0:
                raise HttpError(400, "budget_ms must be between 40 and 2000")
            ecfg = replace(ecfg, runtime=replace(ecfg.runtime, budget_ms=budget))
        if body.get("phone_weight") is not None:  # InputError: 400
            w = check_phone_weight(body["phone_weight"], "phone_weight")
            ecfg = replace(ecfg, motion=replace(ecfg.motion, phone_weight=w))
        await self._reserve()
        sid = secrets.token_urlsafe(12)
        engine = self.factory(ecfg, sid)
        session: Session | None = None
        try:
            await engine.start()
            if portrait is not None:
                await engine.set_portrait(portrait)
            if emotion:
                await engine.set_emotion(emotion)
            session = Session(sid, engine)
            pc = RTCPeerConnection()
            session.pc = pc
            self._wire(session, pc)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="offer"))
            sub = session.fanout.subscribe()
            from clients.sinks.rtc import EngineAudioTrack, EngineVideoTrack

            audio_t, video_t = EngineAudioTrack(sub), EngineVideoTrack(sub)
            kinds = [t.kind for t in pc.getTransceivers()]
            if "video" not in kinds:
                raise HttpError(400, "the offer has no video transceiver (add a recvonly video transceiver)")
            if "audio" in kinds:
                pc.addTrack(audio_t)
            pc.addTrack(video_t)
            await pc.setLocalDescription(await pc.createAnswer())
            session.fanout.start()
            self.sessions[sid] = session
            log.info("session %s started (%d live)", sid, len(self.sessions))
            return web.json_response({"sdp": pc.localDescription.sdp, "type": pc.localDescription.type, "session": sid})
        except BaseException:
            if session is not None:
                await self._teardown(session)
            else:
                await engine.close()
            raise
        finally:
            self._starting -= 1

    def _wire(self, session: Session, pc: Any) -> None:
        from clients.sinks.rtc import pump_audio

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind != "audio":
                return

            async def pump() -> None:
                session.audio_samples_in = 0
                n = await pump_audio(track, _Counting(session))
                log.info("session %s: incoming audio ended after %.1f s", session.id, n / 16000)

            session.tasks.append(asyncio.create_task(pump(), name=f"s2t-pump-{session.id}"))

        @pc.on("datachannel")
        def on_channel(channel: Any) -> None:
            session.channels.append(channel)
            channel.on("close", lambda: session.channels.remove(channel) if channel in session.channels else None)
            if not any(t.get_name().startswith("s2t-stats") for t in session.tasks):
                session.tasks.append(asyncio.create_task(self._stats_loop(session), name=f"s2t-stats-{session.id}"))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            log.info("session %s: connection %s", session.id, pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                await self.close_session(session.id)

    async def _stats_loop(self, session: Session) -> None:
        while not session.closed:
            msg = json.dumps(session.stats())
            for ch in list(session.channels):
                if ch.readyState == "open":
                    ch.send(msg)
            await asyncio.sleep(self.cfg.stats_interval_s)

    async def close_session(self, sid: str) -> bool:
        session = self.sessions.pop(sid, None)
        if session is None:
            return False
        await self._teardown(session)
        log.info("session %s closed (%d live)", sid, len(self.sessions))
        return True

    async def _teardown(self, session: Session) -> None:
        session.closed = True
        for vid in list(session.viewers):
            await self._close_viewer(vid)
        current = asyncio.current_task()
        for t in session.tasks:
            if t is not current:
                t.cancel()
        await asyncio.gather(*(t for t in session.tasks if t is not current), return_exceptions=True)
        await session.fanout.close()
        if session.pc is not None:
            await session.pc.close()
        await session.engine.close()

    async def close(self, request: web.Request) -> web.Response:
        """DELETE /session/{sid} or POST /session/{sid}/close (the page's beacon; the id is the capability)."""
        sid = request.match_info["sid"]
        return web.json_response({"closed": await self.close_session(sid)})

    # ------------------------------------------------------------------ controls
    async def control(self, request: web.Request) -> web.Response:
        """POST /session/{sid}/{op}: emotion {text} | portrait {image} | art_style {image|null, strength}
        | style_reference {clip (data URL: .npy coefficients or a video)} | interrupt."""
        self._auth(request)
        session = self._session(request)
        op = request.match_info["op"]
        body = await self._json(request)
        eng = session.engine
        note = ""
        if op == "emotion":
            await eng.set_emotion(str(body.get("text", "")))
        elif op == "portrait":
            await eng.set_portrait(self._image(body.get("image"), "portrait"))
        elif op == "art_style":
            img = None if body.get("image") is None else self._image(body["image"], "art-style picture")
            await eng.set_art_style(img)
            strength = body.get("strength")
            if strength is not None:
                setter = getattr(eng, "set_art_style_strength", None)
                if setter is None:
                    note = "art-style strength is not available yet in this engine (applied at full strength)"
                else:
                    await setter(float(strength))
        elif op == "style_reference":
            await self._style_reference(eng, body.get("clip"))
        elif op == "interrupt":
            eng.interrupt()
        else:
            raise HttpError(404, f"unknown control {op!r} (emotion, portrait, art_style, style_reference, interrupt)")
        return web.json_response({"ok": True, "op": op, **({"note": note} if note else {})})

    async def _style_reference(self, eng: Any, clip: Any) -> None:
        """A .npy coefficient array is used as it is; anything else is taken for a video and fitted (seconds,
        in a child process: the session streams on meanwhile)."""
        data = self._data_url(clip, "style clip", CLIP_TYPES)
        if data[:6] == b"\x93NUMPY":
            import io

            try:
                arr = np.load(io.BytesIO(data), allow_pickle=False)
            except ValueError as e:
                raise HttpError(400, f"style clip: not a readable .npy array: {e}") from None
            await eng.set_style_reference(arr)
            return
        with tempfile.TemporaryDirectory(prefix="s2t-clip-") as d:
            path = Path(d) / "clip.video"
            path.write_bytes(data)
            await eng.set_style_reference(path)

    # ------------------------------------------------------------------ stats and g2g
    async def stats(self, request: web.Request) -> web.Response:
        """GET /stats?session=ID -> that session's stats; without it, a server summary."""
        self._auth(request)
        if request.query.get("session"):
            return web.json_response(self._session(request).stats())
        return web.json_response({
            "sessions": len(self.sessions), "max_sessions": self.cfg.max_sessions,
            "viewers": len(self.viewers), "refused": dict(self.refused),
        })

    async def g2g(self, request: web.Request) -> web.Response:
        """POST /session/{sid}/g2g: the page's samples -> glass-to-glass latencies (clients/g2g.py).

        Body: {"audio": {"t": [...ms], "db": [...]}, "frames": [{"t": ms, "jpeg": base64}, ...]}, all
        times on the page's performance clock. Mouth aperture per received frame by the face tracker.
        """
        self._auth(request)
        session = self._session(request)
        body = await self._json(request)
        try:
            at = np.asarray(body["audio"]["t"], np.float64) / 1e3
            adb = np.asarray(body["audio"]["db"], np.float64)
            ft = np.asarray([f["t"] for f in body["frames"]], np.float64) / 1e3
            jpegs = [base64.b64decode(f["jpeg"]) for f in body["frames"]]
        except (KeyError, TypeError, ValueError, binascii.Error) as e:
            raise HttpError(400, f"bad g2g samples: {e}") from None
        if ft.size != len(jpegs) or at.size != adb.size:
            raise HttpError(400, "bad g2g samples: times and values differ in length")
        from clients.webrtc.apertures import measure_apertures

        result = _g2g_result(at, adb, ft, await measure_apertures(jpegs))
        session.g2g = result
        log.info("session %s g2g: %s", session.id, result["summary"])
        return web.json_response(result)

    async def g2g_result(self, request: web.Request) -> web.Response:
        self._auth(request)
        session = self._session(request)
        return web.json_response(session.g2g or {})

    # ------------------------------------------------------------------ WHEP
    async def whep(self, request: web.Request) -> web.Response:
        """WHEP playback: POST application/sdp offer (recvonly) -> 201 + Location + SDP answer."""
        from aiortc import RTCPeerConnection, RTCSessionDescription

        from clients.sinks.rtc import EngineAudioTrack, EngineVideoTrack

        self._auth(request)
        if request.content_type != "application/sdp":
            raise HttpError(415, "WHEP takes Content-Type: application/sdp")
        sid = request.match_info.get("sid") or request.query.get("session", "")
        if not sid and len(self.sessions) == 1:
            sid = next(iter(self.sessions))
        session = self.sessions.get(sid)
        if session is None:
            raise HttpError(404, "no live session to watch (give /whep/<session> or ?session=)")
        if len(self.viewers) >= self.cfg.max_viewers:
            self.refused["limit"] += 1
            raise HttpError(503, f"the server is at its limit of {self.cfg.max_viewers} viewer(s)")
        sdp = (await request.read()).decode("utf-8", "replace")
        vid = secrets.token_urlsafe(12)
        pc = RTCPeerConnection()
        sub = session.fanout.subscribe()
        self.viewers[vid] = (pc, sub, session.id)
        session.viewers.add(vid)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._close_viewer(vid)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            for t in pc.getTransceivers():
                if t.kind == "audio":
                    pc.addTrack(EngineAudioTrack(sub))
                elif t.kind == "video":
                    video: Any = EngineVideoTrack(sub)
                    if self.cfg.whep_video_delay_ms > 0:
                        from clients.bench.wrap import DelayedTrack

                        video = DelayedTrack(video, self.cfg.whep_video_delay_ms)
                    pc.addTrack(video)
            await pc.setLocalDescription(await pc.createAnswer())
        except ValueError as e:
            await self._close_viewer(vid)
            raise HttpError(400, f"bad SDP offer: {e}") from None
        loc = f"/whep/resource/{vid}"
        return web.Response(status=201, text=pc.localDescription.sdp, content_type="application/sdp",
                            headers={"Location": loc})

    async def whep_delete(self, request: web.Request) -> web.Response:
        self._auth(request)
        ok = await self._close_viewer(request.match_info["vid"])
        if not ok:
            raise HttpError(404, "no such WHEP resource")
        return web.Response(status=200)

    async def _close_viewer(self, vid: str) -> bool:
        entry = self.viewers.pop(vid, None)
        if entry is None:
            return False
        pc, sub, sid = entry
        s = self.sessions.get(sid)
        if s is not None:
            s.fanout.unsubscribe(sub)
            s.viewers.discard(vid)
        else:
            sub.close()
        await pc.close()
        return True

    # ------------------------------------------------------------------ app
    async def shutdown(self, app: web.Application) -> None:
        for sid in list(self.sessions):
            await self.close_session(sid)


SERVER = web.AppKey("server", Server)


class _Counting:
    """Passes audio to the session's engine and counts it (for the stats overlay)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def push_audio(self, pcm: np.ndarray, capture_time: float | None = None, sample_rate: int = 16000) -> None:
        if self.session.closed:
            return
        self.session.engine.push_audio(pcm, capture_time=capture_time, sample_rate=sample_rate)
        self.session.audio_samples_in += int(np.asarray(pcm).size)


def _g2g_result(at: np.ndarray, adb: np.ndarray, ft: np.ndarray, ap: np.ndarray) -> dict[str, Any]:
    from clients import g2g

    ok = np.isfinite(ap)
    res = g2g.measure(at, adb, ft[ok], ap[ok])
    return {
        "summary": res.summary(),
        "latencies_ms": [None if not np.isfinite(v) else round(float(v), 1) for v in res.latencies_ms],
        "onsets_s": [round(float(v), 4) for v in res.onsets],
        "openings_s": [round(float(v), 4) for v in res.openings],
        "frames": int(ap.size),
        "faces": int(ok.sum()),
        "aperture": {"t": [round(float(v), 4) for v in ft[ok]], "v": [round(float(v), 4) for v in ap[ok]]},
    }


def create_app(cfg: ServeConfig, engine_factory: EngineFactory | None = None) -> web.Application:
    """The aiohttp application (the `Server` object is at app[SERVER])."""
    srv = Server(cfg, engine_factory)
    limit = max(cfg.max_g2g_bytes, cfg.max_upload_bytes * 4 // 3 + 64 * 1024)
    app = web.Application(client_max_size=limit, middlewares=[_errors])
    app[SERVER] = srv

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC)
    app.router.add_post("/offer", srv.offer)
    app.router.add_get("/stats", srv.stats)
    app.router.add_post("/session/{sid}/close", srv.close)
    app.router.add_delete("/session/{sid}", srv.close)
    app.router.add_post("/session/{sid}/g2g", srv.g2g)
    app.router.add_get("/session/{sid}/g2g", srv.g2g_result)
    app.router.add_post("/session/{sid}/{op}", srv.control)
    app.router.add_post("/whep", srv.whep)
    app.router.add_post("/whep/{sid}", srv.whep)
    app.router.add_delete("/whep/resource/{vid}", srv.whep_delete)
    app.on_shutdown.append(srv.shutdown)
    return app


# ---------------------------------------------------------------------- CLI
def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="WebRTC server + browser page (and WHEP playback)",
        description="Serve the browser page at / and WebRTC sessions at POST /offer (aiortc-examples JSON).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--config", help="engine config TOML")
    p.add_argument("--max-sessions", type=int, default=2, help="live sessions at once (default 2)")
    p.add_argument("--max-viewers", type=int, default=8, help="WHEP viewers at once (default 8)")
    p.add_argument("--token", default="", help="require 'Authorization: Bearer TOKEN' for signalling (env S2T_TOKEN)")
    p.add_argument("--max-upload-mb", type=float, default=8.0, help="portrait/art/style upload limit")
    p.add_argument("--budget-ms", type=float, help="default end-to-end latency budget in ms (default: 250 with Style-E or Style-A, 150 for the baselines)")
    p.add_argument("--phone-weight", type=float, metavar="W", help="Style-E: the mouth's default share from recognised "
                   "phones, 0..1 (default 0.2; 0.8 suits synthesized voices; an offer's phone_weight overrides it)")
    p.add_argument("--timing-marker", action="store_true",
                   help="stamp the glass-to-glass timing marker in a corner of every frame (for s2t bench)")
    p.add_argument("--video-delay-ms", type=float, default=0.0, help=argparse.SUPPRESS)  # bench self-check only
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import os

    ecfg = load_config(args.config)
    if args.budget_ms:
        ecfg = replace(ecfg, runtime=replace(ecfg.runtime, budget_ms=float(args.budget_ms)))
    if args.phone_weight is not None:
        ecfg = replace(ecfg, motion=replace(ecfg.motion, phone_weight=check_phone_weight(args.phone_weight,
                                                                                       "--phone-weight")))
    if args.max_sessions < 1:
        raise InputError("--max-sessions must be at least 1")
    cfg = ServeConfig(host=args.host, port=args.port, max_sessions=args.max_sessions, max_viewers=args.max_viewers,
                      token=args.token or os.environ.get("S2T_TOKEN", ""),
                      max_upload_bytes=int(args.max_upload_mb * MiB), engine=ecfg)
    log.info("serving http://%s:%d/ (max %d sessions%s)", cfg.host, cfg.port, cfg.max_sessions,
             ", token required" if cfg.token else "")
    factory = None
    if args.timing_marker or args.video_delay_ms > 0:
        from clients.bench.wrap import measured_factory

        factory = measured_factory(marker=args.timing_marker, delay_ms=args.video_delay_ms)
    web.run_app(create_app(cfg, factory), host=cfg.host, port=cfg.port, print=None)
    return 0
