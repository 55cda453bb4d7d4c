"""The hand-built face model: an aligned portrait crop, its neutral 3D mesh, a blendshape basis and rigid pose.

Coefficients follow engine.spec (28 expression channels in 0..1, then yaw, pitch, roll in radians,
tx, ty in crop units and scale). Pose is relative to the portrait: the neutral coefficient row
reproduces the portrait's own mesh exactly. Projection is weak perspective (orthographic, x, y in
crop pixels), which matches how MediaPipe's mesh is expressed.
"""

from __future__ import annotations

import contextlib

import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.errors import InputError
from engine.face import topology as tp
from engine.face.basis import build_basis
from engine.face.image import as_rgb_array
from engine.face.tracker import FaceTracker, euler_to_matrix, head_rotation, inter_ocular
from engine.spec import DEFAULT_SPEC, MotionSpec

log = logging.getLogger(__name__)

HEAD_CENTRE_DEPTH = 0.6  # head rotation centre this many IODs behind the mesh centroid
# Pose is a true 3D rotation: MediaPipe's z is in the same scale as x. Flattening depth lowers the
# geometry benchmark's error only by turning the head less (at 0.7 the tracker reads ~12° for a
# commanded 20°, at 1.0 ~15-19°; face_geometry.py reports this as pose gain), so it is not done.
POSE_DEPTH_SCALE = 1.0
# Real heads miss face_geometry's pose limit too (benchmarks/face_pose_real.py): MediaPipe on a real
# 15-25 deg head turn is 2.0-3.9% IOD from the clip's frontal mesh rotated rigidly at the best-fitting
# pose (1.5-3.2% with expression also fitted); our renders of the same poses score 1.6-3.2%.
# Depth 1.3 gives pose gain ~1.0 but more error.
FIT_REG = 0.01  # ridge on expression coefficients in the fit (IOD units per unit coefficient)
_FORMAT = 1


def _rotation_and_grads(yaw: float, pitch: float, roll: float) -> tuple[np.ndarray, np.ndarray]:
    """R = Rz Ry Rx (tracker.euler_to_matrix) and its derivatives (3, 3, 3) w.r.t. (yaw, pitch, roll)."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    rz = euler_to_matrix(0.0, 0.0, roll)
    ry = euler_to_matrix(yaw, 0.0, 0.0)
    rx = euler_to_matrix(0.0, pitch, 0.0)
    drz = np.array([[-sr, -cr, 0.0], [cr, -sr, 0.0], [0.0, 0.0, 0.0]])
    dry = np.array([[-sy, 0.0, cy], [0.0, 0.0, 0.0], [-cy, 0.0, -sy]])
    drx = np.array([[0.0, 0.0, 0.0], [0.0, -sp, -cp], [0.0, cp, -sp]])
    r = rz @ ry @ rx
    grads = np.stack([rz @ dry @ rx, rz @ ry @ drx, drz @ ry @ rx])
    return r, grads


def _rotations(pose: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotation matrices from (T, 3) yaw, pitch, roll."""
    yaw, pitch, roll = pose[:, 0], pose[:, 1], pose[:, 2]
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    r = np.empty((pose.shape[0], 3, 3))
    r[:, 0, 0] = cr * cy
    r[:, 0, 1] = cr * sy * sp - sr * cp
    r[:, 0, 2] = cr * sy * cp + sr * sp
    r[:, 1, 0] = sr * cy
    r[:, 1, 1] = sr * sy * sp + cr * cp
    r[:, 1, 2] = sr * sy * cp - cr * sp
    r[:, 2, 0] = -sy
    r[:, 2, 1] = cy * sp
    r[:, 2, 2] = cy * cp
    return r


def align_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """2×3 similarity (image px -> crop px, OpenCV pixel-centre convention) centring and levelling the face.

    The square has side max(4.4 × eye-to-eye, 4.0 × eye-to-mouth) around a point 40% of the way
    from the eyes to the mouth (room for jaw and head motion), rotated so the eyes are level.
    """
    lm = np.asarray(landmarks, np.float64)[:, :2]
    eye_r = lm[[33, 133]].mean(axis=0)
    eye_l = lm[[263, 362]].mean(axis=0)
    mouth = lm[[61, 291]].mean(axis=0)
    eye_avg = 0.5 * (eye_r + eye_l)
    e2e = eye_l - eye_r
    e2m = mouth - eye_avg
    x = e2e - np.array([-e2m[1], e2m[0]])
    x /= np.linalg.norm(x) + 1e-12
    side = max(4.4 * float(np.linalg.norm(e2e)), 4.0 * float(np.linalg.norm(e2m)))
    centre = eye_avg + 0.4 * e2m
    s = size / side
    c, si = x[0] * s, x[1] * s
    a = np.array([[c, si], [-si, c]])
    t = np.array([size / 2.0 - 0.5, size / 2.0 - 0.5]) - a @ (centre - 0.5)
    return np.hstack([a, t[:, None]])


def warp_crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Apply a 2×3 crop matrix with area-style prefiltering when it shrinks the image a lot."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    m = matrix.astype(np.float64).copy()
    src = image
    if scale < 0.5:
        f = 2.0 * scale
        src = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        # p_small = f * p (pixel-centre convention up to half a pixel); fold 1/f into the matrix.
        m[:, :2] /= f
    return cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def single_thread_blas() -> contextlib.AbstractContextManager[object]:
    """Limit BLAS to one thread: per-frame fits are tiny (962x34) problems where threaded BLAS only
    spins (measured ~15x slower with the default thread count on a busy 2-core machine)."""
    import scipy.linalg  # noqa: F401  (load scipy's BLAS first: threadpoolctl limits loaded libraries)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


class FaceModel:
    """A portrait ready to animate: crop (size×size RGB), neutral mesh (478×3 crop px) and basis (28×478×3)."""

    def __init__(
        self,
        crop: np.ndarray,
        neutral: np.ndarray,
        crop_matrix: np.ndarray,
        spec: MotionSpec = DEFAULT_SPEC,
        basis: np.ndarray | None = None,
    ) -> None:
        crop = np.ascontiguousarray(crop, dtype=np.uint8)
        if crop.ndim != 3 or crop.shape[0] != crop.shape[1] or crop.shape[2] != 3:
            raise InputError(f"face model crop must be square RGB, got {crop.shape}")
        if spec.n_expression != len(DEFAULT_SPEC.expression) or spec.expression != DEFAULT_SPEC.expression:
            raise InputError("FaceModel supports the default expression channels only")
        self.crop = crop
        self.size = int(crop.shape[0])
        self.spec = spec
        self.neutral = np.ascontiguousarray(neutral, dtype=np.float32)
        if self.neutral.shape != (478, 3):
            raise InputError(f"neutral mesh must be (478, 3), got {self.neutral.shape}")
        self.crop_matrix = np.asarray(crop_matrix, np.float64).reshape(2, 3)
        self.iod = inter_ocular(self.neutral)
        self.rotation0 = head_rotation(self.neutral)
        eye_mid = self.neutral[[33, 263, 133, 362]].astype(np.float64).mean(axis=0)
        self.head_frame = ((self.neutral - eye_mid) @ self.rotation0) / self.iod
        centroid = self.neutral[: tp.N_MESH].astype(np.float64).mean(axis=0)
        self.centre = centroid + self.rotation0 @ np.array([0.0, 0.0, HEAD_CENTRE_DEPTH * self.iod])
        if basis is None:
            head_basis = build_basis(self.head_frame)
            basis = np.einsum("knd,ed->kne", head_basis.astype(np.float64), self.rotation0) * self.iod
        self.basis = np.ascontiguousarray(basis, dtype=np.float32)
        self._basis_flat = self.basis.reshape(self.basis.shape[0], -1).astype(np.float64)
        ne = spec.n_expression
        self._i_pose = ne
        self._i_t = ne + 3
        self._i_s = ne + 5

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def from_portrait(
        cls, image: np.ndarray | str | Path | bytes, size: int = 256, tracker: FaceTracker | None = None
    ) -> FaceModel:
        """Track the face in `image`, crop it square and aligned at `size`, and build the model."""
        if size < 64:
            raise InputError(f"face model size must be >= 64 px, got {size}")
        rgb = as_rgb_array(image)
        own = tracker is None
        trk = FaceTracker(static_image_mode=True, max_faces=4) if tracker is None else tracker
        try:
            track = trk.track(rgb)
            m = align_matrix(track.landmarks, size)
            crop = warp_crop(rgb, m, size)
            again = trk.track_or_none(crop)
        finally:
            if own:
                trk.close()
        if again is not None:
            neutral = again.landmarks
        else:
            log.warning("face not re-found on the aligned crop; using the transformed portrait landmarks")
            neutral = _transform_points(track.landmarks, m)
        return cls(crop=crop, neutral=neutral, crop_matrix=m)

    # ---- geometry -----------------------------------------------------------------------------

    @property
    def portrait_pose(self) -> tuple[float, float, float]:
        """The portrait's own (yaw, pitch, roll) as recovered from its neutral mesh."""
        from engine.face.tracker import matrix_to_euler

        return matrix_to_euler(self.rotation0)

    def _check(self, coeffs: np.ndarray, batch: bool) -> np.ndarray:
        c = np.asarray(coeffs, np.float64)
        want = 2 if batch else 1
        if c.ndim != want or c.shape[-1] != self.spec.dim:
            shape = "(T, %d)" % self.spec.dim if batch else "(%d,)" % self.spec.dim
            raise InputError(f"coefficients must have shape {shape}, got {c.shape}")
        return c

    def expression_mesh(self, coeffs: np.ndarray) -> np.ndarray:
        """(T, 478, 3) deformed meshes before pose, float64, for (T, dim) coefficients."""
        w = coeffs[:, : self.spec.n_expression]
        flat = self.neutral.reshape(1, -1).astype(np.float64) + w @ self._basis_flat
        return flat.reshape(-1, 478, 3)

    def apply_pose(self, points: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
        """Apply each row's relative head pose to (T, N, 3) points (crop px): returns (T, N, 3).

        x, y are exact (the neutral row returns them unchanged); depth relative to the head centre
        is scaled by POSE_DEPTH_SCALE, so output z serves for ordering only.
        """
        p = self._i_pose
        rot = _rotations(coeffs[:, p : p + 3])
        s = coeffs[:, self._i_s][:, None, None]
        t = np.zeros((coeffs.shape[0], 1, 3))
        t[:, 0, :2] = coeffs[:, self._i_t : self._i_t + 2] * self.size
        rel = (points - self.centre) * np.array([1.0, 1.0, POSE_DEPTH_SCALE])
        return self.centre + s * np.einsum("tij,tnj->tni", rot, rel) + t

    def deform3d_batch(self, coeffs: np.ndarray) -> np.ndarray:
        """(T, 478, 3) posed meshes (x, y crop px; z depth px) for (T, dim) coefficients."""
        c = self._check(coeffs, batch=True)
        return self.apply_pose(self.expression_mesh(c), c)

    def deform(self, coeffs: np.ndarray) -> np.ndarray:
        """(478, 2) float32 projected positions in the crop for one (dim,) coefficient row."""
        c = self._check(coeffs, batch=False)
        return self.deform3d_batch(c[None])[0, :, :2].astype(np.float32)

    def deform_batch(self, coeffs: np.ndarray) -> np.ndarray:
        """(T, 478, 2) float32 projected positions for (T, dim) coefficients."""
        return self.deform3d_batch(coeffs)[:, :, :2].astype(np.float32)

    # ---- fitting ------------------------------------------------------------------------------

    def fit(self, landmarks: np.ndarray, init: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Coefficients whose deformed mesh best matches `landmarks` (478×2 or ×3, crop px).

        Bounded nonlinear least squares (trust region, analytic Jacobian) over all 34 channels with
        expression kept in 0..1 and a small ridge on it; the 10 iris points are not used. Returns the
        (dim,) float32 coefficients and the mean point error as a fraction of the landmarks' IOD.
        """
        from scipy.optimize import least_squares

        lm = np.asarray(landmarks, np.float64)
        if lm.ndim != 2 or lm.shape[0] != 478 or lm.shape[1] not in (2, 3):
            raise InputError(f"landmarks must be (478, 2) or (478, 3), got {lm.shape}")
        if not np.isfinite(lm[:, :2]).all():
            raise InputError("landmarks contain NaN or inf")
        target = lm[: tp.N_MESH, :2]
        iod = max(inter_ocular(lm), 1e-6)
        ne = self.spec.n_expression
        dim = self.spec.dim
        x0 = self.spec.neutral(1)[0].astype(np.float64) if init is None else np.asarray(init, np.float64).copy()
        lo = np.full(dim, -np.inf)
        hi = np.full(dim, np.inf)
        lo[:ne], hi[:ne] = 0.0, 1.0
        p = self._i_pose
        lo[p : p + 3], hi[p : p + 3] = -1.2, 1.2
        lo[self._i_t : self._i_t + 2], hi[self._i_t : self._i_t + 2] = -1.0, 1.0
        lo[self._i_s], hi[self._i_s] = 0.2, 5.0
        x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)
        basis = self.basis[:, : tp.N_MESH].astype(np.float64)  # (K, N, 3)
        neutral = self.neutral[: tp.N_MESH].astype(np.float64)
        n = tp.N_MESH
        inv = 1.0 / iod
        depth = np.array([1.0, 1.0, POSE_DEPTH_SCALE])

        def parts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            xe = neutral + np.tensordot(x[:ne], basis, axes=1)
            rel = (xe - self.centre) * depth
            r, dr = _rotation_and_grads(x[p], x[p + 1], x[p + 2])
            return xe, rel, r, dr

        def resid(x: np.ndarray) -> np.ndarray:
            _, rel, r, _ = parts(x)
            pos = self.centre + x[self._i_s] * rel @ r.T
            pos[:, 0] += x[self._i_t] * self.size
            pos[:, 1] += x[self._i_t + 1] * self.size
            out = np.empty(2 * n + ne)
            out[: 2 * n] = ((pos[:, :2] - target) * inv).ravel()
            out[2 * n :] = FIT_REG * x[:ne]
            return out

        def jac(x: np.ndarray) -> np.ndarray:
            _, rel, r, dr = parts(x)
            s = x[self._i_s]
            j = np.zeros((2 * n + ne, dim))
            # expression: s R B_k
            jb = s * np.einsum("ij,knj->nik", r[:2] * depth, basis)  # (N, 2, K)
            j[: 2 * n, :ne] = jb.reshape(2 * n, ne)
            for a in range(3):
                j[: 2 * n, p + a] = (s * rel @ dr[a][:2].T).ravel()
            j[0 : 2 * n : 2, self._i_t] = self.size
            j[1 : 2 * n : 2, self._i_t + 1] = self.size
            j[: 2 * n, self._i_s] = (rel @ r[:2].T).ravel()
            j[: 2 * n] *= inv
            j[2 * n :, :ne] = FIT_REG * np.eye(ne)
            return j

        with single_thread_blas():
            res = least_squares(resid, x0, jac=jac, bounds=(lo, hi), method="trf", x_scale="jac", max_nfev=40, ftol=1e-7, xtol=1e-7, gtol=1e-9)
        coeffs = res.x.astype(np.float32)
        pos = self.deform(coeffs)[: tp.N_MESH]
        err = float(np.linalg.norm(pos - target, axis=1).mean() / iod)
        return coeffs, err

    def fit_sequence(self, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fit (T, 478, k) landmarks frame by frame, each warm-started from the previous solution.

        Frames whose landmarks contain NaN (no face) repeat the previous coefficients and get error NaN.
        Returns (T, dim) float32 coefficients and (T,) float64 errors (fraction of IOD).
        """
        lms = np.asarray(landmarks, np.float64)
        if lms.ndim != 3 or lms.shape[1] != 478:
            raise InputError(f"landmarks must be (T, 478, 2|3), got {lms.shape}")
        coeffs = np.empty((lms.shape[0], self.spec.dim), np.float32)
        errors = np.full(lms.shape[0], np.nan)
        prev = self.spec.neutral(1)[0]
        for i, frame in enumerate(lms):
            if not np.isfinite(frame[:, :2]).all():
                coeffs[i] = prev
                continue
            prev, errors[i] = self.fit(frame, init=prev)
            coeffs[i] = prev
        return coeffs, errors

    # ---- mapping other images into this crop ----------------------------------------------------

    def image_to_crop(self, points: np.ndarray) -> np.ndarray:
        """Map (…, 2|3) landmark coordinates of the source portrait's frame into crop pixels."""
        return _transform_points(points, self.crop_matrix)

    def crop_image(self, image: np.ndarray) -> np.ndarray:
        """Cut another image of the source's size (e.g. a later video frame) with this model's crop."""
        return warp_crop(as_rgb_array(image), self.crop_matrix, self.size)

    # ---- persistence (npz, no pickle) -----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain arrays and JSON-able values; `from_dict` rebuilds an identical model."""
        return {
            "format": _FORMAT,
            "crop": self.crop,
            "neutral": self.neutral,
            "crop_matrix": self.crop_matrix,
            "basis": self.basis,
            "spec": json.dumps(self.spec.to_dict()),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaceModel:
        fmt = int(np.asarray(d.get("format", -1)))
        if fmt != _FORMAT:
            raise InputError(f"unsupported face model format {fmt} (expected {_FORMAT})")
        spec = MotionSpec.from_dict(json.loads(str(np.asarray(d["spec"]))))
        return cls(
            crop=np.asarray(d["crop"]),
            neutral=np.asarray(d["neutral"]),
            crop_matrix=np.asarray(d["crop_matrix"]),
            spec=spec,
            basis=np.asarray(d["basis"]),
        )

    def save(self, path: str | Path) -> None:
        """Write the model to a compressed .npz file (loadable without pickle)."""
        d = self.to_dict()
        np.savez_compressed(Path(path), **{k: np.asarray(v) for k, v in d.items()})

    @classmethod
    def load(cls, path: str | Path) -> FaceModel:
        """Read a model written by `save`; InputError if missing or malformed."""
        p = Path(path)
        if not p.is_file():
            raise InputError(f"face model file not found: {p}")
        try:
            with np.load(p, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read face model {p}: {e}") from None
        missing = {"format", "crop", "neutral", "crop_matrix", "basis", "spec"} - set(d)
        if missing:
            raise InputError(f"face model {p} lacks {sorted(missing)}")
        return cls.from_dict(d)


def _transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2×3 OpenCV crop matrix to MediaPipe-convention points (z scaled by the zoom)."""
    pts = np.asarray(points, np.float64)
    out = pts.copy()
    a, t = matrix[:, :2], matrix[:, 2]
    out[..., :2] = (pts[..., :2] - 0.5) @ a.T + t + 0.5
    if pts.shape[-1] > 2:
        out[..., 2] = pts[..., 2] * float(np.sqrt(abs(np.linalg.det(a))))
    return out.astype(np.float32)
