"""Geometry of the reference renderer: tracker noise floor vs landmarks re-detected on rendered frames.

For each portrait: (1) the tracker's own noise floor — re-track the unmodified crop shifted by
sub-pixel and pixel amounts, undo the shift, mean landmark error in % of IOD; (2) per expression
channel at values 0.25..1 and per pose axis (yaw, pitch within ±20°): landmarks detected on the
rendered frame vs the model's projected deformed mesh. Pass when every row's mean error is within
noise floor + 1% IOD. For pose rows it also reports the gain: head rotation read back from the
tracked landmarks over the commanded one (a model that turns the head less than commanded scores a
lower error, so a gain under MIN_POSE_GAIN fails the row). Writes JSON with the per-channel table.

    .venv/bin/python benchmarks/face_geometry.py --json out/face_geometry.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.face import topology as tp  # noqa: E402
from engine.face.model import FaceModel  # noqa: E402
from engine.face.reference_renderer import ReferenceRenderer  # noqa: E402
from engine.face.tracker import FaceTracker, head_rotation, matrix_to_euler  # noqa: E402
from engine.spec import DEFAULT_SPEC  # noqa: E402

log = logging.getLogger("face_geometry")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "portraits"
DEFAULT_PORTRAITS = ("photo_macron.png", "photo_woman_happy.png", "photo_leijun.png", "photo_dicaprio.jpg")
VALUES = (0.25, 0.5, 0.75, 1.0)
POSE_VALUES = tuple(np.deg2rad(v) for v in (-20.0, -10.0, 10.0, 20.0))
MIN_POSE_GAIN = 0.7
SHIFTS = ((0.25, 0.0), (0.0, 0.5), (0.5, 0.5), (1.0, 0.0), (0.0, 1.0), (2.0, 1.0), (-1.0, -2.0), (-0.5, 0.25))


def mesh_error(detected: np.ndarray, expected: np.ndarray, iod: float) -> float:
    """Mean distance over the 468 mesh points (iris excluded), as a fraction of IOD."""
    d = detected[: tp.N_MESH, :2] - expected[: tp.N_MESH, :2]
    return float(np.linalg.norm(d, axis=1).mean() / iod)


def noise_floor(model: FaceModel, tracker: FaceTracker) -> float:
    errs = []
    for dx, dy in SHIFTS:
        m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
        img = cv2.warpAffine(model.crop, m, (model.size, model.size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
        t = tracker.track_or_none(img)
        if t is None:
            continue
        lm = t.landmarks[:, :2] - (dx, dy)
        errs.append(mesh_error(lm, model.neutral, model.iod))
    return float(np.mean(errs)) if errs else float("nan")


def rigid_fit(model: FaceModel, target: np.ndarray, init: np.ndarray) -> np.ndarray:
    """Coefficients with expression at zero and pose, shift, scale fitted to (468, 2) crop-px landmarks."""
    from scipy.optimize import least_squares

    ne = model.spec.n_expression
    base = np.asarray(init, np.float64).copy()
    base[:ne] = 0.0

    def resid(x: np.ndarray) -> np.ndarray:
        c = base.copy()
        c[ne:] = x
        return ((model.deform(c)[: tp.N_MESH] - target) / model.iod).ravel()

    base[ne:] = least_squares(resid, base[ne:], diff_step=1e-4, max_nfev=60).x
    return base


def measure(model: FaceModel, renderer: ReferenceRenderer, tracker: FaceTracker, channel: str,
            values: tuple[float, ...]) -> dict[str, float]:
    spec = model.spec
    errs, misses, gains, offsets, ovals, centred, rigid = [], 0, [], [], [], [], []
    oval = tp.face_oval()
    axis = {"yaw": 0, "pitch": 1}.get(channel)
    base = matrix_to_euler(head_rotation(model.neutral))
    for v in values:
        c = spec.neutral(1)[0]
        c[spec.index(channel)] = v
        frame = renderer.render(c)
        t = tracker.track_or_none(frame)
        if t is None:
            misses += 1
            continue
        expected = model.deform(c)
        errs.append(mesh_error(t.landmarks, expected, model.iod))
        if axis is not None:
            gains.append((matrix_to_euler(head_rotation(t.landmarks))[axis] - base[axis]) / v)
            d = (t.landmarks[: tp.N_MESH, :2] - expected[: tp.N_MESH, :2]) / model.iod
            offsets.append(float(np.linalg.norm(d.mean(axis=0))))
            ovals.append(float(np.linalg.norm(d[oval], axis=1).mean()))
            centred.append(float(np.linalg.norm(d - d.mean(axis=0), axis=1).mean()))
            best = rigid_fit(model, t.landmarks[: tp.N_MESH, :2], c)
            rigid.append(mesh_error(t.landmarks, model.deform(best), model.iod))
    row = {
        "mean_pct": 100 * float(np.mean(errs)) if errs else float("nan"),
        "max_pct": 100 * float(np.max(errs)) if errs else float("nan"),
        "misses": misses,
    }
    if axis is not None:
        row["pose_gain"] = float(np.mean(gains)) if gains else float("nan")
        # diagnostics: |mean displacement| (the part a global shift explains) and the face-outline error
        row["global_offset_pct"] = 100 * float(np.mean(offsets)) if offsets else float("nan")
        row["outline_pct"] = 100 * float(np.mean(ovals)) if ovals else float("nan")
        # error with the mean displacement removed, and at the rigid pose that fits the detection best
        # (expression zero): what is left there is shape, not how far the head was read to turn
        row["offset_removed_pct"] = 100 * float(np.mean(centred)) if centred else float("nan")
        row["best_rigid_pose_pct"] = 100 * float(np.mean(rigid)) if rigid else float("nan")
    return row


def row_ok(row: dict[str, float], limit: float) -> bool:
    return row["mean_pct"] <= limit and row["misses"] == 0 and row.get("pose_gain", 1.0) >= MIN_POSE_GAIN


def run(portraits: list[Path]) -> dict[str, object]:
    cv2.setNumThreads(1)
    results: dict[str, object] = {"portraits": {}, "values": list(VALUES),
                                  "pose_values_deg": [round(float(np.rad2deg(v)), 1) for v in POSE_VALUES]}
    all_ok = True
    with FaceTracker(static_image_mode=True, max_faces=1) as tracker:
        for path in portraits:
            t0 = time.perf_counter()
            model = FaceModel.from_portrait(path, size=256, tracker=tracker)
            renderer = ReferenceRenderer(model)
            floor = 100 * noise_floor(model, tracker)
            table: dict[str, dict[str, float]] = {}
            for ch in DEFAULT_SPEC.expression:
                table[ch] = measure(model, renderer, tracker, ch, VALUES)
            for ch in ("yaw", "pitch"):
                table[ch] = measure(model, renderer, tracker, ch, POSE_VALUES)
            limit = floor + 1.0
            worst = max(table, key=lambda k: table[k]["mean_pct"])
            ok = all(row_ok(r, limit) for r in table.values())
            all_ok &= ok
            results["portraits"][path.name] = {  # type: ignore[index]
                "noise_floor_pct": floor,
                "limit_pct": limit,
                "pass": ok,
                "worst_channel": worst,
                "worst_mean_pct": table[worst]["mean_pct"],
                "channels": table,
                "seconds": time.perf_counter() - t0,
            }
            log.info("%s: floor %.2f%% IOD, worst %s %.2f%% (limit %.2f%%) -> %s", path.name, floor, worst,
                     table[worst]["mean_pct"], limit, "PASS" if ok else "FAIL")
    results["pass"] = all_ok
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write results here")
    ap.add_argument("--portraits", nargs="*", type=Path, help="portrait images (default: four shared photos)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = args.portraits or [DATA / p for p in DEFAULT_PORTRAITS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        log.error("portraits not found: %s", ", ".join(missing))
        return 2
    res = run(paths)
    for name, r in res["portraits"].items():  # type: ignore[union-attr]
        print(f"\n{name}: noise floor {r['noise_floor_pct']:.2f}% IOD, limit {r['limit_pct']:.2f}%")
        for ch, row in r["channels"].items():
            flag = "" if row_ok(row, r["limit_pct"]) else "  <-- over"
            gain = (f"  gain {row['pose_gain']:.2f}  offset {row['global_offset_pct']:.2f}%  outline "
                    f"{row['outline_pct']:.2f}%  centred {row['offset_removed_pct']:.2f}%  best rigid "
                    f"{row['best_rigid_pose_pct']:.2f}%" if "pose_gain" in row else "")
            print(f"  {ch:20s} mean {row['mean_pct']:5.2f}%  max {row['max_pct']:5.2f}%{gain}{flag}")
    print("\nPASS" if res["pass"] else "\nFAIL")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
    return 0 if res["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
