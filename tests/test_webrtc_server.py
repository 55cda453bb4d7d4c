"""`s2t serve` with the real engine and an aiortc client: media both ways, WHEP, limits, teardown."""

from __future__ import annotations

import asyncio
import base64
import io
import time
import wave
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from clients import g2g
from clients.webrtc.server import SERVER, MiB, ServeConfig, create_app
from engine.assets import asset_path
from engine.audio.ingest import decode_audio
from engine.config import EngineConfig

TOKEN = "s3cret"


def speech_bursts_wav(path: Path, gap_s: float = 0.8) -> tuple[Path, list[float]]:
    """The demo speech cut into its three phrases with `gap_s` of silence before each; onset times."""
    x = decode_audio(asset_path("demo_speech.wav"))
    sr = 16000
    phrases = [(0.0, 0.8), (1.1, 2.45), (2.6, 4.7)]
    parts: list[np.ndarray] = []
    onsets: list[float] = []
    n = 0
    for a, b in phrases:
        parts.append(np.zeros(int(gap_s * sr), np.float32))
        n += int(gap_s * sr)
        onsets.append(n / sr)
        seg = x[int(a * sr) : int(b * sr)]
        parts.append(seg)
        n += seg.size
    parts.append(np.zeros(int(gap_s * sr), np.float32))
    y = (np.clip(np.concatenate(parts), -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(y.tobytes())
    return path, onsets


async def start_site(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def _png_data_url(size: int) -> str:
    return "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * size).decode()


async def _offer(http: aiohttp.ClientSession, base: str, pc: RTCPeerConnection, headers: dict[str, str],
                 **extra: Any) -> tuple[int, dict[str, Any]]:
    await pc.setLocalDescription(await pc.createOffer())
    body = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type, **extra}
    async with http.post(f"{base}/offer", json=body, headers=headers) as r:
        return r.status, await r.json()


async def _collect(track: Any, seconds: float, out: list[tuple[float, Any]]) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        f = await asyncio.wait_for(track.recv(), 10)
        out.append((time.monotonic(), f))


async def test_serve_session_whep_limits_teardown(tmp_path: Path) -> None:
    wav, _ = speech_bursts_wav(tmp_path / "speech.wav")
    cfg = ServeConfig(max_sessions=1, max_viewers=1, token=TOKEN, max_upload_bytes=1 * MiB, engine=EngineConfig())
    app = create_app(cfg)
    srv = app[SERVER]
    runner, base = await start_site(app)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    player = MediaPlayer(str(wav), loop=True)
    pc = RTCPeerConnection()
    viewer = RTCPeerConnection()
    try:
        async with aiohttp.ClientSession() as http:
            # the page itself needs no token
            async with http.get(f"{base}/") as r:
                assert r.status == 200 and "<video" in await r.text()
            pc.addTransceiver(player.audio, direction="sendrecv")
            pc.addTransceiver("video", direction="recvonly")
            tracks: dict[str, Any] = {}
            pc.on("track", lambda t: tracks.__setitem__(t.kind, t))
            status, ans = await _offer(http, base, pc, auth, emotion="happy and lively")
            assert status == 200, ans
            sid = ans["session"]
            await pc.setRemoteDescription(RTCSessionDescription(sdp=ans["sdp"], type=ans["type"]))
            video: list[tuple[float, Any]] = []
            audio: list[tuple[float, Any]] = []
            await asyncio.gather(_collect(tracks["video"], 6.0, video), _collect(tracks["audio"], 6.0, audio))
            assert len(video) >= 6.0 * 25 * 0.6, len(video)  # paced near 25 fps
            img = video[-1][1].to_ndarray(format="rgb24")
            assert img.shape == (256, 256, 3)
            pcm = np.concatenate([f.to_ndarray().reshape(-1) for _, f in audio]).astype(np.float32)
            assert np.abs(pcm).max() > 1000  # the delayed speech comes back (s16)

            stats = await (await http.get(f"{base}/stats", params={"session": sid}, headers=auth)).json()
            assert stats["fps"] > 15 and stats["e2e_ms_session"]["p95"] is not None and stats["audio_in_s"] > 3

            # the received frames move with the speech: mouth aperture by the face tracker
            from engine.face.tracker import mouth_aperture_series

            frames = [f.to_ndarray(format="rgb24") for _, f in video[::2]]
            ap = await asyncio.to_thread(mouth_aperture_series, frames)  # off the server's loop
            ok = ap[np.isfinite(ap)]
            assert ok.size >= 0.9 * len(frames)
            assert np.percentile(ok, 95) - np.percentile(ok, 10) > 0.05, np.percentile(ok, [10, 50, 95])
            op = g2g.mouth_openings(np.array([t for t, _ in video[::2]])[np.isfinite(ap)], ok)
            assert op.size >= 2  # the mouth opens again after each pause

            # limits: each refused clearly, none disturbing the running session
            pc2 = RTCPeerConnection()
            pc2.addTransceiver("audio", direction="sendrecv")
            pc2.addTransceiver("video", direction="recvonly")
            st, body = await _offer(http, base, pc2, auth)
            await pc2.close()
            assert st == 503 and "limit of 1 session" in body["error"]
            async with http.post(f"{base}/offer", json={"sdp": "x", "type": "offer"},
                                 headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401 and "token" in (await r.json())["error"]
            async with http.post(f"{base}/session/{sid}/portrait", json={"image": _png_data_url(2 * MiB)}, headers=auth) as r:
                assert r.status == 413 and "too large" in (await r.json())["error"]
            async with http.post(f"{base}/session/{sid}/portrait", headers=auth,
                                 json={"image": "data:text/plain;base64," + base64.b64encode(b"hello").decode()}) as r:
                assert r.status == 415 and "unsupported type" in (await r.json())["error"]
            async with http.post(f"{base}/session/{sid}/portrait", json={"image": _png_data_url(100)}, headers=auth) as r:
                assert r.status == 415 and "not a readable image" in (await r.json())["error"]
            blank = io.BytesIO()
            from PIL import Image

            Image.new("RGB", (200, 200), (90, 140, 200)).save(blank, format="PNG")
            faceless = "data:image/png;base64," + base64.b64encode(blank.getvalue()).decode()
            async with http.post(f"{base}/session/{sid}/portrait", json={"image": faceless}, headers=auth) as r:
                assert r.status == 422 and "face" in (await r.json())["error"]
            clip = "data:video/mp4;base64," + base64.b64encode(b"\0" * 100).decode()
            async with http.post(f"{base}/session/{sid}/style_reference", json={"clip": clip}, headers=auth) as r:
                assert r.status == 400 and "cannot read video" in (await r.json())["error"]
            async with http.post(f"{base}/session/{sid}/emotion", json={"text": "calm"}, headers=auth) as r:
                assert r.status == 200
            assert srv.refused == {"limit": 1, "auth": 1, "upload": 3}

            # WHEP viewer pulls the same avatar; a second viewer is over the viewer limit
            viewer.addTransceiver("video", direction="recvonly")
            viewer.addTransceiver("audio", direction="recvonly")
            vt: dict[str, Any] = {}
            viewer.on("track", lambda t: vt.__setitem__(t.kind, t))
            await viewer.setLocalDescription(await viewer.createOffer())
            async with http.post(f"{base}/whep/{sid}", data=viewer.localDescription.sdp,
                                 headers={**auth, "Content-Type": "application/sdp"}) as r:
                assert r.status == 201, await r.text()
                location = r.headers["Location"]
                await viewer.setRemoteDescription(RTCSessionDescription(sdp=await r.text(), type="answer"))
            async with http.post(f"{base}/whep/{sid}", data="v=0\r\n", headers={**auth, "Content-Type": "application/sdp"}) as r:
                assert r.status == 503
            got: list[tuple[float, Any]] = []
            await _collect(vt["video"], 1.5, got)
            assert len(got) >= 20 and got[-1][1].to_ndarray(format="rgb24").shape == (256, 256, 3)

            # the running session was not disturbed: frames kept flowing the whole time
            more: list[tuple[float, Any]] = []
            await _collect(tracks["video"], 1.0, more)
            assert len(more) >= 15
            async with http.delete(f"{base}{location}", headers=auth) as r:
                assert r.status == 200
            assert not srv.viewers

            # teardown: closing the peer connection ends the session and its engine
            engine = srv.sessions[sid].engine
            await pc.close()
            for _ in range(100):
                if not srv.sessions:
                    break
                await asyncio.sleep(0.05)
            assert not srv.sessions and engine._closed
    finally:
        player.audio.stop()
        await pc.close()
        await viewer.close()
        await runner.cleanup()
    assert not srv.sessions


async def test_refusals_before_any_engine_starts(tmp_path: Path) -> None:
    started: list[str] = []

    def factory(cfg: EngineConfig, sid: str) -> Any:
        started.append(sid)
        raise AssertionError("no engine may start for a refused request")

    app = create_app(ServeConfig(token=TOKEN, max_upload_bytes=MiB // 4, max_g2g_bytes=MiB), engine_factory=factory)
    runner, base = await start_site(app)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/offer", json={"sdp": "v=0", "type": "offer"}) as r:
                assert r.status == 401
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with http.post(f"{base}/offer", data=b"{not json", headers=auth) as r:
                assert r.status == 400 and "JSON" in (await r.json())["error"]
            async with http.post(f"{base}/offer", json={"sdp": "v=0", "type": "offer", "portrait": _png_data_url(MiB // 2)},
                                 headers=auth) as r:
                assert r.status == 413
            async with http.post(f"{base}/offer", json={"sdp": "v=0", "type": "offer", "budget_ms": 5}, headers=auth) as r:
                assert r.status == 400 and "budget_ms" in (await r.json())["error"]
            for bad in (1.5, -0.1, "0.8", True):
                async with http.post(f"{base}/offer", json={"sdp": "v=0", "type": "offer", "phone_weight": bad},
                                     headers=auth) as r:
                    assert r.status == 400 and "phone_weight" in (await r.json())["error"]
            async with http.post(f"{base}/offer", data=b"x" * (2 * MiB), headers=auth) as r:
                assert r.status == 413 and "too large" in (await r.json())["error"]
            async with http.get(f"{base}/stats", params={"session": "nope"}, headers=auth) as r:
                assert r.status == 404
    finally:
        await runner.cleanup()
    assert started == []


class _FailingEngine:
    """An engine whose workers cannot start (what a crashed or missing worker process looks like)."""

    closed = False

    async def start(self) -> None:
        raise RuntimeError("motion worker exited with code 1 before it was ready")

    async def close(self) -> None:
        _FailingEngine.closed = True


async def test_engine_start_failure_is_a_json_500_and_frees_the_slot() -> None:
    configs: list[EngineConfig] = []

    def factory(cfg: EngineConfig, sid: str) -> _FailingEngine:
        configs.append(cfg)
        return _FailingEngine()

    app = create_app(ServeConfig(token=TOKEN, max_sessions=1), engine_factory=factory)
    runner, base = await start_site(app)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession() as http:
            for w in (None, 0.8):  # the second try proves the session slot was given back
                pc = RTCPeerConnection()
                pc.addTransceiver("video", direction="recvonly")
                status, body = await _offer(http, base, pc, auth, **({} if w is None else {"phone_weight": w}))
                await pc.close()
                assert status == 500 and "motion worker exited" in body["error"]
    finally:
        await runner.cleanup()
    assert _FailingEngine.closed and not app[SERVER].sessions
    assert [round(c.motion.phone_weight, 3) for c in configs] == [0.2, 0.8]  # the default, then the offer's own
