"""How well a rigidly rotated frontal mesh predicts the tracker on REAL head turns (ceiling for face_geometry pose rows).

face_geometry.py asks that landmarks re-detected on a rendered yaw/pitch frame lie within the
tracker's noise floor + 1% IOD of the model's projected mesh, i.e. of the portrait's MediaPipe mesh
rotated rigidly with its own depth. This diagnostic applies the same test to real video of real
heads turning: a FaceModel is built from the clip's most frontal frame, every other frame's
tracked landmarks are fitted (1) by rigid pose only (yaw, pitch, roll, shift, scale; expression
held at the reference frame's) and (2) by pose plus all 28 expression channels (absorbs speech),
and the mean error (% IOD over the 468 mesh points) is binned by the fitted rotation. Both fits
choose the pose that suits the tracker best, so they are lower bounds on what the benchmark's
commanded-pose comparison would give for the same head. The reference frame's noise floor is
measured exactly as in face_geometry.py. For comparison, each frame's fitted pose is also rendered
from the reference frame by the ReferenceRenderer and scored like a face_geometry pose row (tracked
vs the commanded projected mesh): real video is what a perfect renderer would produce.

    .venv/bin/python benchmarks/face_pose_real.py --json out/face_pose_real.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.face import topology as tp  # noqa: E402
from engine.face.model import FaceModel  # noqa: E402
from engine.face.reference_renderer import ReferenceRenderer  # noqa: E402
from engine.face.tracker import FaceTrack, FaceTracker  # noqa: E402

from face_geometry import mesh_error, noise_floor, rigid_fit  # noqa: E402

log = logging.getLogger("face_pose_real")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Real clips (none of them the face_geometry portraits) whose heads turn by 15-40 degrees.
DEFAULT_CLIPS = (
    "style_clips/styletalk/furious_talk1_clip1.mp4",
    "style_clips/styletalk/nice_clip1.mp4",
    "style_clips/styletalk/sad_emotion_clip1.mp4",
    "style_clips/styletalk/happyenglish_clip1.mp4",
    "talking/styletalk_feifeili_clip1.mp4",
    "talking/edtalk_mouth_source_AmyKlobuchar.mp4",
    "talking/videoretalking_face3_AOC.mp4",
)
BINS_DEG = ((0.0, 5.0), (5.0, 10.0), (10.0, 15.0), (15.0, 25.0))


def read_frames(path: Path, step: int, limit: int) -> list[np.ndarray]:
    """Every `step`-th RGB frame of a video, at most `limit` of them."""
    out: list[np.ndarray] = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % step == 0:
                out.append(f.to_ndarray(format="rgb24"))
            if len(out) >= limit:
                break
    return out


def measure_clip(path: Path, tracker: FaceTracker, step: int, limit: int) -> dict[str, object]:
    frames = read_frames(path, step, limit)
    tracks: list[FaceTrack | None] = [tracker.track_or_none(f) for f in frames]
    ok = [i for i, t in enumerate(tracks) if t is not None]
    ref = min(ok, key=lambda i: abs(tracks[i].yaw) + abs(tracks[i].pitch))  # type: ignore[union-attr]
    model = FaceModel.from_portrait(frames[ref], size=256, tracker=tracker)
    floor = 100 * noise_floor(model, tracker)
    ne = model.spec.n_expression
    renderer = ReferenceRenderer(model)
    rot, rigid, full, rendered = [], [], [], []
    prev = model.spec.neutral(1)[0]
    for i in ok:
        lm = model.image_to_crop(tracks[i].landmarks)  # type: ignore[union-attr]
        c_rigid = rigid_fit(model, lm[: tp.N_MESH, :2], prev)
        rigid.append(100 * mesh_error(lm, model.deform(c_rigid), model.iod))
        c_full, err = model.fit(lm, init=c_rigid)
        full.append(100 * err)
        prev = c_full
        rot.append(float(np.rad2deg(np.hypot(c_rigid[ne], c_rigid[ne + 1]))))
        # the same head pose rendered from the reference frame, scored like face_geometry (commanded mesh)
        c_pose = model.spec.neutral(1)[0]
        c_pose[ne:] = c_rigid[ne:]
        t = tracker.track_or_none(renderer.render(c_pose))
        rendered.append(float("nan") if t is None else 100 * mesh_error(t.landmarks, model.deform(c_pose), model.iod))
    r, eg, ef, er = np.array(rot), np.array(rigid), np.array(full), np.array(rendered)
    bins = []
    for lo, hi in BINS_DEG:
        m = (r >= lo) & (r < hi)
        bins.append({"deg": [lo, hi], "frames": int(m.sum()),
                     "rigid_pct": float(eg[m].mean()) if m.any() else None,
                     "rigid_plus_expression_pct": float(ef[m].mean()) if m.any() else None,
                     "rendered_same_pose_pct": float(np.nanmean(er[m])) if m.any() else None})
    return {"noise_floor_pct": floor, "limit_pct": floor + 1.0, "reference_frame": ref * step,
            "max_rotation_deg": float(r.max()), "bins": bins}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write results here")
    ap.add_argument("--step", type=int, default=2, help="use every n-th frame")
    ap.add_argument("--limit", type=int, default=150, help="frames per clip")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cv2.setNumThreads(1)
    paths = [DATA / c for c in DEFAULT_CLIPS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        log.error("clips not found: %s", ", ".join(missing))
        return 2
    res: dict[str, object] = {}
    with FaceTracker(static_image_mode=True, max_faces=1) as tracker:
        for p in paths:
            row = measure_clip(p, tracker, args.step, args.limit)
            res[p.name] = row
            cells = "  ".join(
                f"{b['deg'][0]:.0f}-{b['deg'][1]:.0f}deg n{b['frames']}: rigid {b['rigid_pct']:.2f} full "
                f"{b['rigid_plus_expression_pct']:.2f} rendered {b['rendered_same_pose_pct']:.2f}" for b in row["bins"] if b["frames"]  # type: ignore[index]
            )
            log.info("%s (limit %.2f%%): %s", p.name, row["limit_pct"], cells)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
