"""`s2t stream` to a real RTMP server (Debian nginx + libnginx-mod-rtmp on loopback): publish, server
drop + reconnect, pull back with PyAV, check video, audio and their sync; plus mp4/mkv files."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from clients import g2g
from clients.sinks.live import AVSink, Backoff
from clients.stream import LiveOptions, run_live, stream
from engine.config import EngineConfig
from engine.errors import InputError
from test_webrtc_server import speech_bursts_wav

RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
NGINX = Path("/usr/sbin/nginx")
needs_nginx = pytest.mark.skipif(not (NGINX.exists() and RTMP_MODULE.exists()),
                                 reason="needs Debian nginx + libnginx-mod-rtmp (see debian.txt)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _nginx(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
load_module {RTMP_MODULE};
daemon off;
master_process off;
error_log {tmp}/error.log info;
pid {tmp}/nginx.pid;
events {{ worker_connections 64; }}
rtmp {{
  server {{
    listen 127.0.0.1:{port};
    chunk_size 4096;
    application live {{ live on; record off; }}
  }}
}}
""")
    proc = subprocess.Popen([str(NGINX), "-p", str(tmp), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # ready when the port accepts (a handshake, not a sleep)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx failed: {proc.stderr.read().decode() if proc.stderr else ''}") from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nginx did not start listening")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)


def _pull(url: str, out: dict[str, Any], seconds: float) -> None:
    """Read video and audio frames (with pts in seconds) from an RTMP URL for `seconds`."""
    video: list[tuple[float, np.ndarray]] = []
    audio: list[tuple[float, np.ndarray]] = []
    out["video"], out["audio"] = video, audio
    try:
        with av.open(url, timeout=(20.0, 3.0)) as c:
            out["rate"] = c.streams.audio[0].rate
            end = time.monotonic() + seconds
            for frame in c.decode(c.streams.video[0], c.streams.audio[0]):
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base)
                if isinstance(frame, av.VideoFrame):
                    video.append((t, frame.to_ndarray(format="rgb24")))
                else:
                    audio.append((t, frame.to_ndarray().reshape(-1).astype(np.float32)))
                if time.monotonic() > end:
                    break
    except (OSError, av.FFmpegError) as e:
        out["error"] = e


@needs_nginx
async def test_rtmp_publish_drop_reconnect_pull_sync(tmp_path: Path) -> None:
    wav, _ = speech_bursts_wav(tmp_path / "speech.wav")
    port = _free_port()
    url = f"rtmp://127.0.0.1:{port}/live/avatar"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    server = _nginx(tmp_path / "a", port)
    sink = AVSink(url, 25.0, backoff=Backoff(first_s=0.3, max_s=1.0))
    pulled: dict[str, Any] = {}
    puller: threading.Thread | None = None
    dropped = asyncio.Event()
    loop = asyncio.get_running_loop()

    def consume(frame: Any) -> None:
        sink.put(frame)
        if sink.counts["written"] >= 30 and not dropped.is_set():
            dropped.set()

    async def chaos() -> None:
        nonlocal server, puller
        await dropped.wait()
        await asyncio.to_thread(_stop, server)  # the server goes away mid-stream
        server = await asyncio.to_thread(_nginx, tmp_path / "b", port)  # and comes back on the same port
        puller = threading.Thread(target=_pull, args=(url, pulled, 6.0))
        puller.start()

    chaos_task = loop.create_task(chaos())
    try:
        opts = LiveOptions(audio=str(wav), loop=True, duration_s=11.0)
        stats = await run_live(EngineConfig(), opts, consume)
        await sink.close()
        await chaos_task
        assert puller is not None
        await asyncio.to_thread(puller.join, 15)
    finally:
        chaos_task.cancel()
        _stop(server)
    assert sink.counts["connects"] == 2 and sink.counts["failures"] >= 1, sink.counts  # reconnected
    assert stats["fps"] > 15
    video, audio = pulled["video"], pulled["audio"]
    assert len(video) >= 60, (len(video), pulled.get("error"))
    assert video[0][1].shape == (256, 256, 3)
    vt = np.array([t for t, _ in video])
    assert np.all(np.diff(vt) > 0) and abs(np.median(np.diff(vt)) - 0.04) < 0.002  # 25 fps timestamps
    assert pulled["rate"] == 48000 and len(audio) >= 50
    at0 = audio[0][0]
    pcm = np.concatenate([a for _, a in audio])
    assert np.abs(pcm).max() > 0.05  # the speech is there
    assert abs(at0 - vt[0]) < 0.25  # the streams start together (the player joins at a keyframe)

    # lip sync in what came back: speech onsets in the audio vs mouth openings in the video
    from engine.face.tracker import mouth_aperture_series

    ap = await asyncio.to_thread(mouth_aperture_series, [im for _, im in video])
    ok = np.isfinite(ap)
    assert ok.mean() > 0.9 and np.ptp(ap[ok]) > 0.05
    t_lvl, db = g2g.level_series(pcm, pulled["rate"], t0=at0)
    res = g2g.measure(t_lvl, db, vt[ok], ap[ok], max_s=0.5, min_s=-0.3)
    s = res.summary()
    print(f"\nRTMP A/V: onsets {s['onsets']} paired {s['paired']} offsets_ms {res.latencies_ms.round(0).tolist()}")
    assert s["paired"] >= 2, s
    assert -120 <= s["p50"] <= 200, res.latencies_ms  # the mouth opens with the sound it plays with


async def test_stream_files_and_bad_outputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unsupported output"):
        await stream(EngineConfig(), LiveOptions(audio="x.wav"), [str(tmp_path / "out.avi")])
    with pytest.raises(InputError, match="at least one output"):
        await stream(EngineConfig(), LiveOptions(audio="x.wav"), [])
    wav, _ = speech_bursts_wav(tmp_path / "speech.wav", gap_s=0.3)
    outs = [str(tmp_path / "out.mp4"), str(tmp_path / "out.mkv")]
    r = await stream(EngineConfig(), LiveOptions(audio=str(wav), duration_s=2.5), outs)
    for o, st in zip(outs, r["outputs"]):
        # 2.5 s at 25 fps is 62 frames; the first ~0.5 s is pipeline start-up (first frame, warm spares
        # starting beside it on 2 cores), so at least 40 must reach every file and none be dropped
        assert st["written"] >= 40 and st["dropped"] == 0, st
        with av.open(o) as c:
            v = [f for f in c.decode(video=0)]
        with av.open(o) as c:
            a = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
        assert len(v) == st["written"] and v[0].width == 256
        assert abs(a.size / 48000 - len(v) / 25) < 0.1  # as much audio as video
