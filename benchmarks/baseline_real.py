"""The named baseline measurement: BaselineMotion's jawOpen vs a real speaker's mouth aperture, per clip.

For every clip in ../shared/data/talking: track the speaker's mouth aperture per video frame
(FaceTracker in video mode, the clip at its own fps), run BaselineMotion on the clip's audio at
that fps, and report Pearson r between jawOpen and the real aperture at the best lag within
±4 frames. For reference the same is done for the raw RMS envelope; with --render, the
reference renderer draws the bundled portrait from the coefficients and the tracker's aperture
on those rendered frames is correlated too. Writes JSON (--json OUT) with per-clip rows and means.

    .venv/bin/python benchmarks/baseline_real.py --json out/baseline_real.json [--render]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.audio.ingest import decode_audio  # noqa: E402
from engine.face.tracker import FaceTracker, mouth_aperture_series  # noqa: E402
from engine.metrics import best_lag_pearson  # noqa: E402
from engine.motion.baseline import SAMPLE_RATE, BaselineMotion, frame_bounds, speech_per_frame  # noqa: E402
from engine.spec import DEFAULT_SPEC  # noqa: E402

log = logging.getLogger("baseline_real")
DATA = Path(os.environ.get("S2T_SHARED_DATA", REPO.parent / "shared" / "data"))


def read_video(path: Path, max_seconds: float, max_side: int) -> tuple[list[np.ndarray], float]:
    """RGB frames (downscaled so the longer side is <= max_side) of the first max_seconds, and the fps."""
    import av
    import cv2

    frames: list[np.ndarray] = []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        fps = float(stream.average_rate or Fraction(25))
        limit = int(round(max_seconds * fps))
        for frame in c.decode(stream):
            img = frame.to_ndarray(format="rgb24")
            scale = max_side / max(img.shape[:2])
            if scale < 1.0:
                img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            frames.append(img)
            if len(frames) >= limit:
                break
    return frames, fps


def frame_rms(samples: np.ndarray, fps: float) -> np.ndarray:
    bounds = frame_bounds(len(samples), fps)
    padded = np.zeros(bounds[-1], np.float32)
    padded[: len(samples)] = samples
    csum = np.concatenate([[0.0], np.cumsum(padded.astype(np.float64) ** 2)])
    return np.sqrt((csum[bounds[1:]] - csum[bounds[:-1]]) / np.maximum(np.diff(bounds), 1))


def measure_clip(path: Path, args: argparse.Namespace, renderer: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    frames, fps = read_video(path, args.max_seconds, args.max_side)
    real = mouth_aperture_series(frames)
    samples = decode_audio(path)[: int(round(len(frames) / fps * SAMPLE_RATE))]
    motion = BaselineMotion(fps=fps, seed=args.seed)
    coeffs = motion.generate(samples, speech_per_frame(samples, fps))
    n = min(len(coeffs), len(real))
    jaw = coeffs[:n, DEFAULT_SPEC.index("jawOpen")].astype(np.float64)
    real = real[:n]
    r_jaw, lag_jaw = best_lag_pearson(jaw, real)
    r_rms, lag_rms = best_lag_pearson(frame_rms(samples, fps)[:n], real)
    row: dict[str, Any] = {
        "clip": path.name,
        "fps": round(fps, 3),
        "frames": n,
        "seconds": round(n / fps, 2),
        "face_found": round(float(np.isfinite(real).mean()), 3),
        "r_jaw": round(r_jaw, 4),
        "lag_jaw": lag_jaw,
        "r_rms": round(r_rms, 4),
        "lag_rms": lag_rms,
    }
    if renderer is not None:
        rendered = mouth_aperture_series(renderer.render(c) for c in coeffs[:n])
        r_ren, lag_ren = best_lag_pearson(rendered, real)
        r_self, _ = best_lag_pearson(jaw, rendered, max_lag=0)
        row.update(r_rendered=round(r_ren, 4), lag_rendered=lag_ren, r_jaw_vs_rendered=round(r_self, 4))
    row["wall_s"] = round(time.perf_counter() - t0, 2)
    log.info("%s", row)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", metavar="OUT", help="write the results here as JSON")
    p.add_argument("--data", type=Path, default=DATA / "talking", help="folder of talking clips")
    p.add_argument("--max-seconds", type=float, default=12.0, help="use at most this much of each clip")
    p.add_argument("--max-side", type=int, default=512, help="downscale frames before tracking")
    p.add_argument("--render", action="store_true", help="also render the bundled portrait and track it")
    p.add_argument("--size", type=int, default=256, help="render size with --render")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    clips = sorted(args.data.glob("*.mp4")) if args.data.is_dir() else []
    if not clips:
        log.error("no clips in %s (set S2T_SHARED_DATA)", args.data)
        return 2
    renderer = None
    if args.render:
        from engine.assets import asset_path
        from engine.face.image import load_image
        from engine.face.model import FaceModel
        from engine.face.reference_renderer import ReferenceRenderer

        model = FaceModel.from_portrait(load_image(asset_path("portrait.png")), size=args.size)
        renderer = ReferenceRenderer(model, args.size)
    t0 = time.perf_counter()
    rows = [measure_clip(c, args, renderer) for c in clips]
    keys = [k for k in ("r_jaw", "r_rms", "r_rendered", "r_jaw_vs_rendered") if k in rows[0]]
    mean = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in keys}
    result = {
        "benchmark": "baseline_real",
        "what": "Pearson r vs the real speaker's mouth aperture (inner-lip gap / IOD), best lag within ±4 frames",
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "config": {"max_seconds": args.max_seconds, "max_side": args.max_side, "seed": args.seed,
                   "render": args.render, "size": args.size},
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "clips": rows,
        "mean": mean,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    log.info("mean over %d clips: %s", len(rows), mean)
    sys.stdout.write(json.dumps(mean) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
