"""Speed of the face stage on one core: portrait tracking, model build, reference rendering, fitting.

    .venv/bin/python benchmarks/face_speed.py --json out/face_speed.json [--portrait PATH] [--size 256]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.face.image import load_image  # noqa: E402
from engine.face.model import FaceModel  # noqa: E402
from engine.face.reference_renderer import ReferenceRenderer  # noqa: E402
from engine.face.tracker import FaceTracker  # noqa: E402
from engine.spec import DEFAULT_SPEC  # noqa: E402

log = logging.getLogger("face_speed")
DEFAULT_PORTRAIT = Path(__file__).resolve().parents[2] / "shared" / "data" / "portraits" / "photo_macron.png"


def _coeffs(n: int, seed: int = 0) -> np.ndarray:
    """Speech-like coefficients: sparse expression activity plus gentle head motion."""
    rng = np.random.default_rng(seed)
    c = DEFAULT_SPEC.neutral(n)
    ne = DEFAULT_SPEC.n_expression
    c[:, :ne] = rng.uniform(0.0, 0.6, (n, ne)) * (rng.uniform(size=(n, ne)) < 0.3)
    c[:, 0] = np.abs(np.sin(np.arange(n) / 3.0))
    c[:, ne : ne + 3] = rng.uniform(-0.2, 0.2, (n, 3))
    return c


def _percentiles(x: list[float]) -> dict[str, float]:
    a = np.asarray(x) * 1000
    return {"mean_ms": float(a.mean()), "p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95))}


def run(portrait: Path, size: int, frames: int) -> dict[str, object]:
    cv2.setNumThreads(1)
    image = load_image(portrait)
    with FaceTracker(static_image_mode=True, max_faces=4) as tracker:
        tracker.track(image)  # warm-up (model load)
        track_t = []
        for _ in range(10):
            t0 = time.perf_counter()
            tracker.track(image)
            track_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model = FaceModel.from_portrait(image, size=size, tracker=tracker)
        build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    renderer = ReferenceRenderer(model)
    init_s = time.perf_counter() - t0
    coeffs = _coeffs(frames)
    renderer.render(coeffs[0])
    render_t = []
    for row in coeffs:
        t0 = time.perf_counter()
        renderer.render(row)
        render_t.append(time.perf_counter() - t0)
    fit_t, fit_err = [], []
    for row in coeffs[:20]:
        lm = model.deform(row)
        t0 = time.perf_counter()
        _, err = model.fit(lm)
        fit_t.append(time.perf_counter() - t0)
        fit_err.append(err)
    fps = frames / float(np.sum(render_t))
    return {
        "portrait": str(portrait),
        "image_shape": list(image.shape),
        "size": size,
        "threads": "cv2.setNumThreads(1); run under `taskset -c 0` for a strict single core",
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "machine": platform.processor() or platform.machine(),
        "track": _percentiles(track_t),
        "model_build_s": build_s,
        "renderer_init_s": init_s,
        "render": _percentiles(render_t),
        "render_fps": fps,
        "fit": _percentiles(fit_t),
        "fit_mean_error_iod": float(np.mean(fit_err)),
        "targets": {"render_fps_min": 100, "track_ms_max": 100},
        "pass": bool(fps >= 100 and np.mean(track_t) * 1000 < 100),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write results here")
    ap.add_argument("--portrait", type=Path, default=DEFAULT_PORTRAIT)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frames", type=int, default=300)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.portrait.is_file():
        log.error("portrait not found: %s", args.portrait)
        return 2
    res = run(args.portrait, args.size, args.frames)
    print(json.dumps(res, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
    return 0 if res["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
