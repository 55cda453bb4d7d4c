"""How long a live session waits for a video style reference: fitted (child process) vs read back from the fit cache.

    .venv/bin/python benchmarks/style_ref_cache.py --json benchmarks/results/style_ref_cache.json

For each clip (default: the first 3 videos of ../shared/data/talking), in a fresh, empty cache folder:
`read_style_reference_async` once (the face fit in a spawned child, as `Engine.set_style_reference` does), then
--repeats more times (served by engine.data.fit_cache, no child). Reports both, the median of the cached reads,
and whether the cached coefficients equal the fitted ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

log = logging.getLogger("style_ref_cache")
TALKING = Path(__file__).resolve().parents[2] / "shared" / "data" / "talking"


def measure(clips: list[Path], repeats: int) -> dict[str, object]:
    import numpy as np

    from engine.data import fit_cache
    from engine.runtime.style_ref import read_style_reference_async

    rows = []
    with tempfile.TemporaryDirectory() as d:
        os.environ[fit_cache.DIR_ENV] = d  # an empty cache: the first read fits (the child inherits it)
        for clip in clips:
            t = time.perf_counter()
            fitted = asyncio.run(read_style_reference_async(clip))
            first = time.perf_counter() - t
            again = []
            for _ in range(repeats):
                t = time.perf_counter()
                cached = asyncio.run(read_style_reference_async(clip))
                again.append(time.perf_counter() - t)
            rows.append({"clip": clip.name, "bytes": clip.stat().st_size, "frames": len(fitted),
                         "fitted_s": round(first, 3), "cached_ms_median": round(statistics.median(again) * 1e3, 2),
                         "cached_ms": [round(x * 1e3, 2) for x in again],
                         "same_coefficients": bool(np.array_equal(fitted, cached))})
            log.info("%s", json.dumps(rows[-1]))
    return {"clips": rows, "repeats": repeats,
            "fitted_s_median": round(statistics.median(r["fitted_s"] for r in rows), 3),  # type: ignore[misc]
            "cached_ms_median": round(statistics.median(r["cached_ms_median"] for r in rows), 2),  # type: ignore[misc]
            "command": "benchmarks/style_ref_cache.py " + " ".join(sys.argv[1:])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("videos", nargs="*", help="clips (default: the first 3 of ../shared/data/talking)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    clips = [Path(v) for v in a.videos] or sorted(TALKING.glob("*.mp4"))[:3]
    if not clips:
        raise SystemExit(f"no videos given and none in {TALKING}")
    r = measure(clips, a.repeats)
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=1) + "\n")
    log.info("fitted %.2f s (median), cached %.1f ms (median)", r["fitted_s_median"], r["cached_ms_median"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
