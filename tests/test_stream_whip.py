"""`s2t stream` over WHIP to a small loopback WHIP endpoint written with aiortc: publish, drop, republish."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from clients.sinks.live import Backoff, WhipSink
from clients.stream import LiveOptions, run_live
from engine.config import EngineConfig
from test_webrtc_server import speech_bursts_wav, start_site


class WhipEndpoint:
    """Accepts WHIP publications, records what arrives, and drops the first one after `drop_after` frames."""

    def __init__(self, token: str, drop_after: int) -> None:
        self.token = token
        self.drop_after = drop_after
        self.pcs: list[RTCPeerConnection] = []
        self.video: list[list[Any]] = []
        self.audio: list[int] = []
        self.deleted: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def post(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=401, text="bad token")
        assert request.content_type == "application/sdp"
        n = len(self.pcs)
        pc = RTCPeerConnection()
        self.pcs.append(pc)
        self.video.append([])
        self.audio.append(0)

        @pc.on("track")
        def on_track(track: Any) -> None:
            self.tasks.append(asyncio.create_task(self._record(n, pc, track)))

        await pc.setRemoteDescription(RTCSessionDescription(sdp=await request.text(), type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return web.Response(status=201, text=pc.localDescription.sdp, content_type="application/sdp",
                            headers={"Location": f"/whip/res/{n}"})

    async def delete(self, request: web.Request) -> web.Response:
        self.deleted.append(request.match_info["n"])
        return web.Response(status=200)

    async def _record(self, n: int, pc: RTCPeerConnection, track: Any) -> None:
        while True:
            try:
                f = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                self.video[n].append(f.to_ndarray(format="rgb24")[::8, ::8].copy())
                if n == 0 and len(self.video[0]) == self.drop_after:
                    await pc.close()  # the server drops the publisher
                    return
            else:
                self.audio[n] += f.samples


async def test_whip_publish_and_republish(tmp_path: Path) -> None:
    ep = WhipEndpoint("tok", drop_after=25)
    app = web.Application()
    app.router.add_post("/whip", ep.post)
    app.router.add_delete("/whip/res/{n}", ep.delete)
    runner, base = await start_site(app)
    wav, _ = speech_bursts_wav(tmp_path / "speech.wav", gap_s=0.3)
    sink = WhipSink(f"whip+{base}/whip", token="tok", backoff=Backoff(first_s=0.2, max_s=1.0))
    try:
        await run_live(EngineConfig(), LiveOptions(audio=str(wav), loop=True, duration_s=7.0), sink.put)
        await sink.close()
    finally:
        await sink.close()
        for pc in ep.pcs:
            await pc.close()
        for t in ep.tasks:
            t.cancel()
        await asyncio.gather(*ep.tasks, return_exceptions=True)
        await runner.cleanup()
    assert sink.counts["connects"] >= 2 and sink.counts["failures"] >= 1, sink.counts
    assert len(ep.video[0]) == 25
    assert len(ep.video[1]) >= 40, [len(v) for v in ep.video]  # the republished stream flows
    assert ep.video[1][-1].shape == (32, 32, 3)
    frames = np.stack(ep.video[1]).astype(np.float32)
    assert frames.std(axis=0).mean() > 0.5  # the picture moves (it talks)
    assert ep.audio[1] > 48000 * 1.0  # audio came with it (Opus decodes at 48 kHz)
    assert ep.deleted == [str(len(ep.pcs) - 1)]  # the live publication was ended with DELETE
