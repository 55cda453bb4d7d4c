"""ZeroMQ transport: zero-copy round trips over ipc and inproc, CURVE over tcp loopback, bounded HWM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from engine.config import RuntimeConfig
from engine.errors import InputError
from engine.messages import VideoFrame
from engine.runtime import transport


@pytest.fixture
def ctx() -> Any:
    c: zmq.Context[Any] = zmq.Context()
    yield c
    c.term()
    assert transport.open_sockets() == [], "a test leaked a socket"


def _frame(seq: int) -> VideoFrame:
    img = np.random.default_rng(seq).integers(0, 255, (256, 256, 3), np.uint8)
    return VideoFrame("s", seq, seq * 3600, 1.5, img, audio=np.ones(640, np.float32), timings=(("render", 3.0),))


def _roundtrip(ctx: Any, cfg: RuntimeConfig, ipc_dir: Path | None, keys: transport.CurveKeys | None) -> None:
    hub, endpoint = transport.bind_hub(ctx, cfg, ipc_dir, keys)
    worker = transport.connect_worker(ctx, endpoint, "render-0", cfg.high_water_mark, keys)
    try:
        sent = _frame(7)
        transport.send_sync(worker, sent)
        assert hub.poll(5000), "no message over " + endpoint
        sender, got = transport.decode_routed(hub.recv_multipart(copy=False))
        assert sender == "render-0" and isinstance(got, VideoFrame)
        assert np.array_equal(got.image, sent.image) and got.timings == sent.timings and got.seq == 7
        assert not got.image.flags.owndata, "decoded arrays view the received buffer (zero copy)"
        transport.send_sync(hub, _frame(8), to=b"render-0")  # addressed reply by routing id
        assert worker.poll(5000)
        back = transport.decode(worker.recv_multipart(copy=False))
        assert back.seq == 8  # type: ignore[union-attr]
        assert hub.getsockopt(zmq.SNDHWM) == cfg.high_water_mark == worker.getsockopt(zmq.RCVHWM)
    finally:
        worker.close(0)
        hub.close(0)


def test_ipc_roundtrip(ctx: Any, tmp_path: Path) -> None:
    _roundtrip(ctx, RuntimeConfig(transport="ipc", high_water_mark=4), tmp_path, None)


def test_inproc_roundtrip(ctx: Any) -> None:
    _roundtrip(ctx, RuntimeConfig(transport="inproc"), None, None)


def _keys() -> transport.CurveKeys:
    sp, ss = zmq.curve_keypair()
    cp, cs = zmq.curve_keypair()
    return transport.CurveKeys(sp.decode(), ss.decode(), cp.decode(), cs.decode())


def test_tcp_curve_roundtrip_and_unknown_client_refused(ctx: Any) -> None:
    import zmq.auth.thread

    keys = _keys()
    cfg = RuntimeConfig(
        transport="tcp", host="127.0.0.1", curve_server_public=keys.server_public, curve_server_secret=keys.server_secret,
        curve_client_public=keys.client_public, curve_client_secret=keys.client_secret,
    )
    assert transport.CurveKeys.from_config(cfg) == keys
    auth = zmq.auth.thread.ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve_callback("*", transport._OneKey(keys.client_public))
    try:
        _roundtrip(ctx, cfg, None, keys)
        # a client with another keypair (but the right server key) never gets a message through
        hub, endpoint = transport.bind_hub(ctx, cfg, None, keys)
        cp, cs = zmq.curve_keypair()
        rogue = transport.CurveKeys(keys.server_public, "", cp.decode(), cs.decode())
        intruder = transport.connect_worker(ctx, endpoint, "render-0", 4, rogue)
        try:
            transport.send_sync(intruder, _frame(1))
            assert hub.poll(700) == 0, "an unknown CURVE client must be refused"
        finally:
            intruder.close(0)
            hub.close(0)
    finally:
        auth.stop()


def test_partial_curve_config_is_refused() -> None:
    with pytest.raises(InputError, match="all four"):
        transport.CurveKeys.from_config(RuntimeConfig(curve_server_public="x" * 40))
    with pytest.raises(InputError, match="transport"):
        transport.bind_hub(zmq.Context.instance(), RuntimeConfig(transport="udp"), None, None)


def test_send_nowait_reports_full_pipe(ctx: Any) -> None:
    a = transport._track(ctx.socket(zmq.DEALER), 2)
    a.connect("inproc://nowhere-yet")  # no peer bound: messages queue up to the HWM, then block
    try:
        results = [transport.send_nowait(a, _frame(i)) for i in range(10)]
        assert results[0] and not all(results), "the high-water mark bounds the queue"
    finally:
        a.close(0)
