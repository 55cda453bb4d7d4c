"""Kill -> fresh-frame time for the render and the motion worker, with and without warm spares.

    python benchmarks/recovery.py --kills 5 --json benchmarks/results/recovery.json

Real stages (baseline motion + reference renderer), speech pushed in real time. Each kill is a
SIGKILL mid-speech; the recovery time is from the kill to the first fresh (not repeated) frame
made from audio captured after the kill, so it includes the normal pipeline latency (~0.1 s, the
floor; measured with no kill as "no_kill"). Reported: median and max of `--kills` kills per
worker, for `runtime.standby` on (a warm spare takes over) and off (a fresh process starts; the
render worker loads its face model from the cache instead of refitting it).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live_harness import PIECE, SR, load_speech, write_json  # noqa: E402

from engine.config import EngineConfig, load_config  # noqa: E402

log = logging.getLogger("bench")


async def _time_to_fresh(eng: Any, frames: Any, t_mark: float, timeout_s: float = 20.0) -> float:
    """Seconds from `t_mark` to the first fresh frame whose audio was captured after it."""
    async with asyncio.timeout(timeout_s):
        while True:
            f = await anext(frames)
            if not f.repeated and f.capture_time > t_mark:
                return time.monotonic() - t_mark


async def _drain(frames: Any, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await anext(frames)


async def run(cfg: EngineConfig, kills: int, speech: np.ndarray) -> dict[str, Any]:
    from engine.runtime import Engine

    eng = Engine(cfg)
    await eng.start()
    frames = eng.frames()
    loop_audio = np.resize(speech.astype(np.float32), 600 * SR)

    async def feed() -> None:
        t0 = time.monotonic()
        for i in range(len(loop_audio) // PIECE):
            delay = t0 + (i + 1) * PIECE / SR - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            eng.push_audio(loop_audio[i * PIECE : (i + 1) * PIECE], capture_time=t0 + i * PIECE / SR)

    feeder = asyncio.create_task(feed())
    out: dict[str, Any] = {}
    try:
        while not all(w["ready"] for w in eng.stats()["spares"].values()):
            await anext(frames)
        await _drain(frames, 3.0)
        out["no_kill"] = [await _time_to_fresh(eng, frames, time.monotonic()) for _ in range(kills)]
        for victim in ("render-0", "motion"):
            times = []
            for _ in range(kills):
                role = "motion" if victim == "motion" else "render"
                while cfg.runtime.standby and not eng.stats()["spares"][role]["ready"]:
                    await anext(frames)
                await _drain(frames, 1.5)
                os.kill(eng.worker_pids()[victim], signal.SIGKILL)
                times.append(await _time_to_fresh(eng, frames, time.monotonic()))
            out[victim] = times
        out["failovers"] = eng.stats()["counts"]["failovers"]
        out["restarts"] = eng.stats()["counts"]["restarts"]
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        await frames.aclose()
        await eng.close()
    summary: dict[str, Any] = {k: v for k, v in out.items() if not isinstance(v, list)}
    for k, v in out.items():
        if isinstance(v, list):
            summary[k] = {"median_s": float(np.median(v)), "max_s": float(np.max(v)), "all_s": [round(x, 3) for x in v]}
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--config", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    base = load_config(args.config)
    speech = load_speech(None)
    result: dict[str, Any] = {"kills": args.kills, "load_avg_1m_start": os.getloadavg()[0]}
    for standby in (True, False):
        cfg = dataclasses.replace(base, runtime=dataclasses.replace(base.runtime, standby=standby))
        result["standby" if standby else "no_standby"] = asyncio.run(run(cfg, args.kills, speech))
    result["load_avg_1m_end"] = os.getloadavg()[0]
    write_json(result, args.json)
    print(json.dumps(result, indent=1))  # the script's output is its report
    return 0


if __name__ == "__main__":
    sys.exit(main())
