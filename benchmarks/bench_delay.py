"""Harness self-check: one live session of our WebRTC server watched directly and through a copy delayed by D ms.

    python benchmarks/bench_delay.py --runs 3 --seconds 12 --delay-ms 100 --json out/bench_delay.json

Runs `s2t bench`'s webrtc target (our server in-process, timing marker on, the real engine unless
--scenario says otherwise) with `inject_delay_ms` = D: the bench client sends the speech and receives
the session's video, and a WHEP viewer receives the same session's video delayed by D in the server.
Reports how much later the harness measured the copy (marker cross-correlation lag and marker onset
p50), per run and on average, plus the uplink / engine / downlink legs of the direct view.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from clients.bench.run import run_scenario  # noqa: E402
from clients.bench.scenario import load_scenario, parse_scenario  # noqa: E402

log = logging.getLogger("bench_delay")


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    base = load_scenario(args.scenario) if args.scenario else parse_scenario({})
    s = replace(base, name="delay-self-check", targets=("webrtc",), duration_s=args.seconds, face_tracking=False,
                marker=True, inject_delay_ms=args.delay_ms, load=replace(base.load, enabled=False))
    runs: list[dict[str, Any]] = []
    for i in range(args.runs):
        r = await run_scenario(s)
        t = r["targets"].get("webrtc", {})
        g = t.get("glass_to_glass", {})
        runs.append({"run": i, **r.get("self_check", {}), "direct_xcorr_ms": g.get("marker_xcorr_ms"),
                     "legs_ms": g.get("legs_ms"), "e2e_ms": r["e2e_ms"], "errors": r["errors"]})
        log.info("run %d: copy measured +%.1f ms (xcorr), +%.1f ms (marker p50)", i,
                 runs[-1].get("xcorr_ms", float("nan")), runs[-1].get("marker_p50_ms", float("nan")))
    out: dict[str, Any] = {"injected_ms": args.delay_ms, "seconds": args.seconds, "runs": runs}
    for k in ("xcorr_ms", "marker_p50_ms"):
        a = np.asarray([r.get(k, np.nan) for r in runs], np.float64)
        out[f"measured_{k}"] = {"mean": float(np.nanmean(a)), "min": float(np.nanmin(a)), "max": float(np.nanmax(a))}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=12.0)
    p.add_argument("--delay-ms", type=float, default=100.0)
    p.add_argument("--scenario", default="", help="scenario TOML for engine settings (default: built-in defaults)")
    p.add_argument("--json", default=None, help="write results here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in ("engine", "clients", "aioice", "aiortc"):
        logging.getLogger(name).setLevel(logging.WARNING)
    out = asyncio.run(measure(args))
    text = json.dumps(out, indent=1, default=float)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    x, m = out["measured_xcorr_ms"], out["measured_marker_p50_ms"]
    log.info("injected %.0f ms: measured +%.1f ms (xcorr, %.1f..%.1f), +%.1f ms (marker onset p50, %.1f..%.1f)",
             args.delay_ms, x["mean"], x["min"], x["max"], m["mean"], m["min"], m["max"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
