"""One 256x256 RGB VideoFrame hop between two processes over ZeroMQ ipc: encode, hop, decode, p50/p99.

    python benchmarks/zmq_hop.py --n 2000 --json benchmarks/results/zmq_hop.json

A spawned sender process (a render worker's DEALER) and this process (the hub's ROUTER) play
ping-pong, so every frame travels alone (no queueing): the sender encodes the frame once, stamps
each send with the system-wide monotonic clock in an 8-byte first part and sends zero-copy; the
receiver stamps the arrival, decodes (zero-copy views) and acknowledges. `hop` is send -> arrival
(sockets, kernel, ZeroMQ I/O threads, the receiver's wake-up); `encode` and `decode` are timed
apart. The receiver runs twice: blocking `recv_multipart(copy=False)` ("sync") and awaiting it on
a `zmq.asyncio` socket in an event loop, as the hub does ("asyncio").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq
import zmq.asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import RuntimeConfig  # noqa: E402
from engine.messages import VideoFrame, decode, encode  # noqa: E402
from engine.runtime import transport  # noqa: E402

WARMUP = 50


def _frame(size: int) -> VideoFrame:
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), np.uint8)
    return VideoFrame("s", 1, 3600, 0.0, image, audio=np.zeros(640, np.float32))


def sender(endpoint: str, total: int, size: int) -> None:
    """Child process: send `total` frames, each after the previous one was acknowledged."""
    ctx: zmq.Context[Any] = zmq.Context()
    sock = transport.connect_worker(ctx, endpoint, "render-0", 8, None)
    try:
        frame = _frame(size)
        enc = np.empty(total)
        for i in range(total):
            t0 = time.monotonic()
            parts = encode(frame)
            t1 = time.monotonic()
            enc[i] = t1 - t0
            sock.send_multipart([struct.pack("<d", time.monotonic()), *parts], copy=False)
            sock.recv()  # ack
        sock.send_multipart([b"enc", enc.tobytes()])
    finally:
        sock.close(0)
        ctx.term()


def _spawn(endpoint: str, total: int, size: int) -> multiprocessing.process.BaseProcess:
    proc = multiprocessing.get_context("spawn").Process(target=sender, args=(endpoint, total, size), daemon=True)
    proc.start()
    return proc


def _record(parts: list[Any], hop: np.ndarray, dec: np.ndarray, i: int, t_arrive: float, size: int) -> None:
    t_send = struct.unpack("<d", parts[1].buffer)[0]
    t0 = time.monotonic()
    msg = decode(parts[2:])
    dec[i] = time.monotonic() - t0
    hop[i] = t_arrive - t_send
    assert isinstance(msg, VideoFrame) and msg.image.shape == (size, size, 3)


def run_sync(n: int, size: int, d: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    total = n + WARMUP
    ctx: zmq.Context[Any] = zmq.Context()
    hub, endpoint = transport.bind_hub(ctx, RuntimeConfig(transport="ipc"), d, None, name="sync")
    proc = _spawn(endpoint, total, size)
    hop, dec = np.empty(total), np.empty(total)
    try:
        for i in range(total):
            parts = hub.recv_multipart(copy=False)
            t_arrive = time.monotonic()
            _record(parts, hop, dec, i, t_arrive, size)
            hub.send_multipart([parts[0], b"k"])
        enc = np.frombuffer(hub.recv_multipart()[2], np.float64)
    finally:
        proc.join(10)
        hub.close(0)
        ctx.term()
    return enc[WARMUP:], hop[WARMUP:], dec[WARMUP:]


async def _run_async(n: int, size: int, d: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    total = n + WARMUP
    ctx = zmq.asyncio.Context()
    hub, endpoint = transport.bind_hub(ctx, RuntimeConfig(transport="ipc"), d, None, name="async")
    proc = _spawn(endpoint, total, size)
    hop, dec = np.empty(total), np.empty(total)
    try:
        for i in range(total):
            parts = await hub.recv_multipart(copy=False)
            t_arrive = time.monotonic()
            _record(parts, hop, dec, i, t_arrive, size)
            await hub.send_multipart([parts[0], b"k"])
        enc = np.frombuffer((await hub.recv_multipart())[2], np.float64)
    finally:
        proc.join(10)
        hub.close(0)
        ctx.term()
    return enc[WARMUP:], hop[WARMUP:], dec[WARMUP:]


def _summary(enc: np.ndarray, hop: np.ndarray, dec: np.ndarray) -> dict[str, Any]:
    total = enc + hop + dec
    out: dict[str, Any] = {}
    for name, v in (("encode", enc), ("hop", hop), ("decode", dec), ("total", total)):
        ms = v * 1e3
        out[name] = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
                     "max_ms": float(ms.max())}
    return out


def measure(n: int, size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="s2t-hop-") as tmp:
        d = Path(tmp)
        sync = _summary(*run_sync(n, size, d))
        asy = _summary(*asyncio.run(_run_async(n, size, d)))
    frame = _frame(size)
    return {"n": n, "size": size, "bytes": int(frame.image.nbytes + frame.audio.nbytes), "transport": "ipc",
            "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "sync": sync, "asyncio": asy,
            "p99_ms": asy["total"]["p99_ms"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    result = measure(args.n, args.size)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=1))  # the script's output is its report
    return 0


if __name__ == "__main__":
    sys.exit(main())
