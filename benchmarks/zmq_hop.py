"""One 256x256 RGB VideoFrame hop over ZeroMQ ipc (encode, send zero-copy, receive, decode): p50/p99.

    python benchmarks/zmq_hop.py --n 2000 --json out/zmq_hop.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import RuntimeConfig  # noqa: E402
from engine.messages import VideoFrame  # noqa: E402
from engine.runtime import transport  # noqa: E402


def measure(n: int, size: int) -> dict[str, Any]:
    ctx: zmq.Context[Any] = zmq.Context()
    with tempfile.TemporaryDirectory(prefix="s2t-hop-") as d:
        hub, endpoint = transport.bind_hub(ctx, RuntimeConfig(transport="ipc"), Path(d), None)
        worker = transport.connect_worker(ctx, endpoint, "render-0", 8, None)
        image = np.random.default_rng(0).integers(0, 255, (size, size, 3), np.uint8)
        audio = np.zeros(640, np.float32)
        times = np.empty(n)
        try:
            for i in range(n + 50):
                t0 = time.perf_counter()
                transport.send_sync(worker, VideoFrame("s", i, i * 3600, 0.0, image, audio=audio))
                _, msg = transport.decode_routed(hub.recv_multipart(copy=False))
                t1 = time.perf_counter()
                assert isinstance(msg, VideoFrame) and msg.image.shape == image.shape
                if i >= 50:  # warm-up excluded
                    times[i - 50] = (t1 - t0) * 1e3
        finally:
            worker.close(0)
            hub.close(0)
            ctx.term()
    return {"n": n, "size": size, "bytes": int(image.nbytes + audio.nbytes),
            "p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
            "max_ms": float(times.max())}


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
    print(result)  # the script's output is its report
    return 0


if __name__ == "__main__":
    sys.exit(main())
