"""Self-reenactment data for Style-A: real clips -> (source crop, target crop, reference warp, coefficients, face mask).

For each talking clip the first frame with a face is the "portrait"; a FaceModel is built from it,
later frames are cut with the same crop, their tracked meshes are fitted to coefficients relative to
the portrait, and the reference renderer draws what those coefficients look like. Style-A learns to
turn that reference warp into the real target frame. Extracted clips are cached as .npz (no pickle).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from engine.errors import InputError, NoFaceError

log = logging.getLogger(__name__)

# Whole speakers never used in training (the "unseen identities" split).
UNSEEN_CLIPS: tuple[str, ...] = (
    "styletalk_feifeili_clip1",
    "videoretalking_face2_EricSwalwell",
    "videoretalking_face4_woman_bluebg",
)
HOLDOUT_FRACTION = 0.2  # last fifth of every training clip is held out (a contiguous block, no near-duplicates)
CACHE_VERSION = 1


@dataclass(frozen=True, slots=True)
class ReenactSet:
    """Stacked self-reenactment samples. Images are uint8 (N, S, S, 3); masks uint8 (N, S, S) in {0, 1}."""

    portraits: np.ndarray  # (P, S, S, 3) one source crop per clip
    portrait_id: np.ndarray  # (N,) index into portraits
    targets: np.ndarray
    warped: np.ndarray
    masks: np.ndarray
    coeffs: np.ndarray  # (N, 34) float32
    split: np.ndarray  # (N,) str: "train", "heldout" (held-out frames of training clips) or "unseen"
    clip: np.ndarray  # (N,) str clip name

    def subset(self, which: str) -> ReenactSet:
        """Samples of one split (portraits are kept whole so portrait_id stays valid)."""
        k = self.split == which
        return ReenactSet(self.portraits, self.portrait_id[k], self.targets[k], self.warped[k], self.masks[k],
                          self.coeffs[k], self.split[k], self.clip[k])

    def __len__(self) -> int:
        return int(len(self.targets))


def face_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(size, size) uint8 {0,1}: convex hull of the 468 mesh points (crop px, MediaPipe convention)."""
    pts = np.asarray(landmarks, np.float64)[:468, :2] - 0.5
    hull = cv2.convexHull(np.round(pts * 16).astype(np.int32))
    m = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(m, hull, 1, cv2.LINE_8, 4)
    return m


def extract_clip(path: str | Path, size: int = 256, max_samples: int = 120) -> dict[str, np.ndarray]:
    """One clip -> arrays: portrait, targets, warped, masks, coeffs, errors, frame index (NoFaceError if faceless)."""
    from engine.data.fit import read_frames
    from engine.face.model import FaceModel
    from engine.face.reference_renderer import ReferenceRenderer
    from engine.face.tracker import FaceTracker

    frames, _fps = read_frames(path)
    stride = max(1, int(np.ceil(len(frames) / max_samples)))
    with FaceTracker(static_image_mode=True, max_faces=1) as trk:
        first = next((i for i, f in enumerate(frames[:50]) if trk.track_or_none(f) is not None), -1)
        if first < 0:
            raise NoFaceError(f"no face in the first frames of {path}")
        model = FaceModel.from_portrait(frames[first], size=size, tracker=trk)
    ref = ReferenceRenderer(model, size)
    targets, warped, masks, coeffs, errs, idx = [], [], [], [], [], []
    prev: np.ndarray | None = None
    with FaceTracker(static_image_mode=False, max_faces=1) as trk:
        for i in range(first + 1, len(frames), stride):
            crop = model.crop_image(frames[i])
            tr = trk.track_or_none(crop)
            if tr is None:
                continue
            c, e = model.fit(tr.landmarks, init=prev)
            prev = c
            targets.append(crop)
            warped.append(ref.render(c))
            masks.append(face_mask(tr.landmarks, size))
            coeffs.append(c)
            errs.append(e)
            idx.append(i)
    if not targets:
        raise NoFaceError(f"no trackable target frames in {path}")
    return {"portrait": model.crop, "targets": np.stack(targets), "warped": np.stack(warped),
            "masks": np.stack(masks), "coeffs": np.stack(coeffs).astype(np.float32),
            "errors": np.asarray(errs), "frame": np.asarray(idx)}


def build_cache(videos: str | Path, cache: str | Path, size: int = 256, max_samples: int = 120,
                pattern: str = "*.mp4") -> list[str]:
    """Extract every video in `videos` matching `pattern` into `cache/<clip>_<size>.npz` (skipping cached ones)."""
    vdir, cdir = Path(videos), Path(cache)
    if not vdir.is_dir():
        raise InputError(f"not a directory: {vdir}")
    cdir.mkdir(parents=True, exist_ok=True)
    names = []
    for f in sorted(vdir.glob(pattern)):
        out = cdir / f"{f.stem}_{size}.npz"
        if not out.is_file():
            try:
                arrays = extract_clip(f, size, max_samples)
            except (NoFaceError, InputError) as e:
                log.warning("skipping %s: %s", f.name, e)
                continue
            np.savez(out, version=np.int64(CACHE_VERSION), **arrays)
            log.info("%s: %d samples, median fit error %.2f%% IOD", f.stem, len(arrays["targets"]),
                     100 * float(np.median(arrays["errors"])))
        names.append(f.stem)
    (cdir / "clips.json").write_text(json.dumps({"clips": names, "size": size, "unseen": list(UNSEEN_CLIPS)}, indent=1))
    return names


def load_cache(cache: str | Path | Sequence[str | Path], size: int = 256,
               unseen: tuple[str, ...] = UNSEEN_CLIPS) -> ReenactSet:
    """Stack cached clips from one or more cache folders, tagging each sample train / heldout / unseen."""
    dirs = [Path(cache)] if isinstance(cache, (str, Path)) else [Path(c) for c in cache]
    files = sorted(f for d in dirs for f in d.glob(f"*_{size}.npz"))
    if not files:
        raise InputError(f"no cached clips at size {size} in {cache}; run `s2t train style-a --extract` first")
    portraits, pid, tg, wp, mk, co, sp, cl = [], [], [], [], [], [], [], []
    for p, f in enumerate(files):
        name = f.stem[: -len(f"_{size}")]
        with np.load(f, allow_pickle=False) as z:
            n = len(z["targets"])
            portraits.append(z["portrait"])
            tg.append(z["targets"])
            wp.append(z["warped"])
            mk.append(z["masks"])
            co.append(z["coeffs"])
        if name in unseen:
            split = np.full(n, "unseen", dtype="<U8")
        else:
            split = np.full(n, "train", dtype="<U8")
            split[int(round(n * (1.0 - HOLDOUT_FRACTION))):] = "heldout"
        sp.append(split)
        pid.append(np.full(n, p))
        cl.append(np.full(n, name))
    return ReenactSet(np.stack(portraits), np.concatenate(pid), np.concatenate(tg), np.concatenate(wp),
                      np.concatenate(mk), np.concatenate(co), np.concatenate(sp), np.concatenate(cl))


def masked_psnr(img: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, peak 255) over the pixels where mask > 0 (all pixels if the mask is empty)."""
    m = np.asarray(mask) > 0
    if not m.any():
        m = np.ones(m.shape, bool)
    diff = img.astype(np.float64)[m] - ref.astype(np.float64)[m]
    mse = float(np.mean(diff * diff))
    return float(10.0 * np.log10(255.0**2 / max(mse, 1e-10)))


def masked_ssim(img: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> float:
    """Mean SSIM (Gaussian window σ=1.5, mean over RGB) over the pixels where mask > 0."""
    a, b = img.astype(np.float64) / 255.0, ref.astype(np.float64) / 255.0

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma**2, blur(b * b) - mb**2, blur(a * b) - ma * mb
    c1, c2 = 0.01**2, 0.03**2
    s = (((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))).mean(axis=2)
    m = np.asarray(mask) > 0
    return float(s[m].mean() if m.any() else s.mean())
