"""Style-E start-up cost of the emotion text encoder: load_model() + the first emotion code, in a fresh process.

    python benchmarks/text_encoder_load.py --runs 3 --json benchmarks/results/text_encoder_load.json

Backends alternate run by run (the machine's noise falls on both): `onnx` (the exported MiniLM graph in the
user cache, engine/data/minilm_onnx.py; exported first if missing) and `torch` (sentence-transformers,
S2T_TEXT_BACKEND=torch). JSON: per backend the runs, the median seconds and peak RSS, and whether torch was
imported; plus the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("text_encoder_load")
PROBE = """
import json, resource, sys, time
t0 = time.perf_counter()
from engine.motion.style_e import load_model
m = load_model()
m.emotion_code("very happy")
print(json.dumps({"seconds": time.perf_counter() - t0, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "torch_imported": "torch" in sys.modules}))
"""


def one_run(backend: str) -> dict[str, float | bool]:
    env = os.environ | {"S2T_TEXT_BACKEND": backend}
    r = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300,
                       cwd=Path(__file__).resolve().parents[1])
    if r.returncode != 0:
        raise RuntimeError(f"{backend} run failed: {r.stderr[-1000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", required=True)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from engine.data import minilm_onnx

    minilm_onnx.main()  # export outside the timed runs
    runs: dict[str, list[dict[str, float | bool]]] = {"onnx": [], "torch": []}
    for i in range(a.runs):
        for backend in runs:
            runs[backend].append(one_run(backend))
            log.info("run %d %s: %s", i, backend, runs[backend][-1])
    res: dict[str, object] = {"runs": a.runs, "what": "fresh process: load_model() + first emotion code"}
    for backend, rs in runs.items():
        res[backend] = {"seconds_median": round(statistics.median(float(r["seconds"]) for r in rs), 3),
                        "maxrss_mb_median": round(statistics.median(float(r["maxrss_mb"]) for r in rs)),
                        "torch_imported": any(bool(r["torch_imported"]) for r in rs),
                        "runs": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in rs]}
    res["torch_over_onnx_seconds"] = round(res["torch"]["seconds_median"] / res["onnx"]["seconds_median"], 2)  # type: ignore[index]
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1))
    log.info("%s", json.dumps({k: v for k, v in res.items() if k not in ("onnx", "torch")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
