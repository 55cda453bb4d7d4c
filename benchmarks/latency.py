"""Live-path latency: speech pushed in real time (20 ms pieces) -> paced frames; writes JSON + a PNG plot.

    python benchmarks/latency.py --seconds 30 --json out/latency.json [--audio FILE] [--config C.toml]
        [--emotion-every 2]   # a new emotion prompt every 2 s, as a user retyping it

JSON: fps, e2e_ms {p50,p95,p99} (audio captured -> frame ready at the hub), stages {name: {p50,p95}},
dropped, repeated, av_offset_ms (mean |image slot - audio slot| over played frames), and more.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live_harness import load_speech, plot, run_live, write_json  # noqa: E402

from engine.config import budget_ms_for, load_config  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--audio", default=None, help="speech file (default: the bundled demo speech), looped")
    p.add_argument("--config", default=None, help="engine TOML config")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--render-workers", type=int, default=None)
    p.add_argument("--json", default=None, help="write results here (a PNG plot goes beside it)")
    p.add_argument("--plot", default=None, help="PNG path (default: JSON path with .png)")
    p.add_argument("--emotion-every", type=float, default=None,
                   help="send a new emotion prompt every this many seconds (live_harness.PROMPT_CHANGES, cycled)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = load_config(args.config)
    cfg = dataclasses.replace(cfg, render=dataclasses.replace(cfg.render, size=args.size))
    if args.render_workers is not None:
        cfg = dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime, render_workers=args.render_workers))
    result = asyncio.run(run_live(cfg, args.seconds, load_speech(args.audio), emotion_every=args.emotion_every))
    result["config"] = {"motion": cfg.motion.kind, "render": cfg.render.kind, "size": cfg.render.size,
                        "fps": cfg.fps, "transport": cfg.runtime.transport, "render_workers": cfg.runtime.render_workers,
                        "budget_ms": budget_ms_for(cfg)}
    write_json(result, args.json)
    png = args.plot or (str(Path(args.json).with_suffix(".png")) if args.json else None)
    if png:
        plot(result, Path(png), f"live latency, {cfg.motion.kind} + {cfg.render.kind} {cfg.render.size}px")
    summary = {k: result[k] for k in ("fps", "e2e_ms", "dropped", "repeated", "av_offset_ms", "stalls")}
    summary["budget_ms"] = budget_ms_for(cfg)
    print(summary)  # the script's output is its report
    return 0


if __name__ == "__main__":
    sys.exit(main())
