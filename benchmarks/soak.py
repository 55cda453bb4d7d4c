"""Soak test of the live path: a looped speech file for --seconds (default 600) in real time.

    python benchmarks/soak.py --seconds 600 --json out/soak.json

Pass criteria (also in the JSON as "pass"): A/V drift <= 1 frame (median image/audio slot offset
over each of the last 10 s, and output timestamps vs wall clock between the first and the last 10 s),
RSS growth <= 5 % after warm-up (hub + workers + spares), zero stalls (no gap between output frames
longer than 3 frame intervals).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live_harness import load_speech, plot, run_live, write_json  # noqa: E402

from engine.config import EngineConfig, load_config  # noqa: E402


def soak(cfg: EngineConfig, seconds: float, audio: str | None = None) -> dict[str, Any]:
    r = asyncio.run(run_live(cfg, seconds, load_speech(audio), warmup_s=3.0))
    r["pass"] = bool(
        r["av_drift_frames_last10s"] <= 1.0
        and r["clock_drift_frames"] <= 1.0
        and r["rss_growth"] <= 0.05
        and r["stalls"] == 0
    )
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--audio", default=None)
    p.add_argument("--config", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    r = soak(load_config(args.config), args.seconds, args.audio)
    write_json(r, args.json)
    if args.json:
        plot(r, Path(args.json).with_suffix(".png"), f"soak {args.seconds:.0f} s")
    keys = ("pass", "fps", "e2e_ms", "av_drift_frames_last10s", "clock_drift_frames", "rss_growth", "stalls",
            "max_gap_ms", "stall_at_s", "dropped", "repeated", "fresh_fraction", "level_time_s", "restarts",
            "load_avg_1m_start", "gc_pauses", "gc_pauses_over_20ms")
    print({k: r[k] for k in keys})  # the script's output is its report
    return 0 if r["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
