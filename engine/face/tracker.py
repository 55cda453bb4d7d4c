"""Dense face tracking: MediaPipe face mesh (478 points) to FaceTrack with pose, IOD and mouth aperture."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from engine.errors import ImageError, NoFaceError
from engine.face.image import as_rgb_array

log = logging.getLogger(__name__)

N_LANDMARKS = 478
EYE_OUTER_R, EYE_OUTER_L = 33, 263  # subject's right eye outer corner (image left), left eye outer corner
LIP_INNER_UP, LIP_INNER_DOWN = 13, 14
FOREHEAD, CHIN = 10, 152

# Left/right landmark pairs used to find the face's horizontal axis (subject's right side first).
_AXIS_PAIRS = np.array([(33, 263), (133, 362), (234, 454), (61, 291), (93, 323), (132, 361), (58, 288)])
# The forehead->chin line of an upright frontal face leans back in MediaPipe's depth; measured on
# frontal portraits so that a frontal face reads pitch ~ 0.
_PITCH_OFFSET = 0.09


@dataclass(frozen=True, slots=True)
class FaceTrack:
    """One tracked face in the pixel coordinates of the image it was tracked on.

    Pose conventions (camera frame x right, y down, z away from the camera; R = Rz(roll) Ry(yaw)
    Rx(pitch)): positive yaw turns the nose toward image left, positive pitch tilts the nose down,
    positive roll turns the face clockwise on screen.
    """

    landmarks: np.ndarray  # (478, 3) float32: x, y in pixels; z in pixels (MediaPipe depth × width)
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1 of the landmarks
    n_faces: int
    yaw: float
    pitch: float
    roll: float
    inter_ocular: float  # px between the outer eye corners

    @property
    def rotation(self) -> np.ndarray:
        """3×3 head rotation matrix (see class docstring for conventions)."""
        return euler_to_matrix(self.yaw, self.pitch, self.roll)


def euler_to_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(roll) @ Ry(yaw) @ Rx(pitch), float64 3×3."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    rz = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    return rz @ ry @ rx


def matrix_to_euler(r: np.ndarray) -> tuple[float, float, float]:
    """Inverse of `euler_to_matrix`: (yaw, pitch, roll) in radians."""
    yaw = float(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    pitch = float(np.arctan2(r[2, 1], r[2, 2]))
    roll = float(np.arctan2(r[1, 0], r[0, 0]))
    return yaw, pitch, roll


def head_rotation(landmarks: np.ndarray) -> np.ndarray:
    """Head rotation from a 3D mesh: face axes from left/right pairs and the forehead->chin line."""
    p = np.asarray(landmarks, np.float64)
    x = (p[_AXIS_PAIRS[:, 1]] - p[_AXIS_PAIRS[:, 0]]).sum(axis=0)
    x /= np.linalg.norm(x) + 1e-12
    y = p[CHIN] - p[FOREHEAD]
    y -= x * float(x @ y)
    y /= np.linalg.norm(y) + 1e-12
    z = np.cross(x, y)
    r = np.stack([x, y, z], axis=1)
    if _PITCH_OFFSET:
        r = r @ euler_to_matrix(0.0, -_PITCH_OFFSET, 0.0)
    return r


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance (px, image plane) between the outer eye corners 33 and 263."""
    lm = np.asarray(landmarks)
    return float(np.linalg.norm(lm[EYE_OUTER_L, :2] - lm[EYE_OUTER_R, :2]))


def mouth_apertures(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap (landmarks 13 and 14) divided by the inter-ocular distance (33 to 263), over any leading
    axes: (..., 478, >=2) -> (...); NaN landmarks give NaN."""
    lm = np.asarray(landmarks, np.float64)
    gap = np.linalg.norm(lm[..., LIP_INNER_DOWN, :2] - lm[..., LIP_INNER_UP, :2], axis=-1)
    iod = np.linalg.norm(lm[..., EYE_OUTER_L, :2] - lm[..., EYE_OUTER_R, :2], axis=-1)
    return gap / np.maximum(iod, 1e-6)


def mouth_aperture(landmarks: np.ndarray) -> float:
    """`mouth_apertures` of one face's (478, >=2) landmarks."""
    return float(mouth_apertures(landmarks))


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence MediaPipe/TFLite's native start-up chatter (written straight to fd 2, not via logging).

    Only around graph creation and the first frame; with --debug (DEBUG logging) it is shown.
    """
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class FaceTracker:
    """MediaPipe face mesh with iris refinement (478 landmarks); use as a context manager or close()."""

    def __init__(self, static_image_mode: bool = True, max_faces: int = 4, min_confidence: float = 0.5) -> None:
        import mediapipe as mp

        if max_faces < 1:
            raise ValueError("max_faces must be >= 1")
        self.static_image_mode = static_image_mode
        self.max_faces = max_faces
        with _quiet_native_stderr():
            self._mesh: Any = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=static_image_mode,
                max_num_faces=max_faces,
                refine_landmarks=True,
                min_detection_confidence=min_confidence,
                min_tracking_confidence=min_confidence,
            )
        self._warm = False

    def track(self, image: np.ndarray | str | Path | bytes) -> FaceTrack:
        """Track the largest face of an RGB image (array or anything load_image reads).

        Raises NoFaceError when no face is found; logs a warning when several are.
        """
        track = self.track_or_none(image)
        if track is None:
            raise NoFaceError("no face found in the image (use a clear, roughly frontal portrait)")
        if track.n_faces > 1:
            log.warning("%d faces found; using the largest", track.n_faces)
        return track

    def track_or_none(self, image: np.ndarray | str | Path | bytes) -> FaceTrack | None:
        """Like track() but returns None instead of raising when no face is found, and does not warn."""
        if self._mesh is None:
            raise RuntimeError("FaceTracker is closed")
        rgb = as_rgb_array(image)
        h, w = rgb.shape[:2]
        if self._warm:
            result = self._mesh.process(rgb)
        else:
            with _quiet_native_stderr():
                result = self._mesh.process(rgb)
            self._warm = True
        faces = result.multi_face_landmarks
        if not faces:
            return None
        arrays = [
            np.array([(p.x * w, p.y * h, p.z * w) for p in f.landmark], dtype=np.float32) for f in faces
        ]
        arrays = [a for a in arrays if a.shape[0] == N_LANDMARKS]
        if not arrays:
            raise ImageError("face mesh returned an unexpected landmark count (need refine_landmarks)")
        areas = [float(np.ptp(a[:, 0]) * np.ptp(a[:, 1])) for a in arrays]
        lm = arrays[int(np.argmax(areas))]
        return make_track(lm, n_faces=len(arrays))

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def make_track(landmarks: np.ndarray, n_faces: int = 1) -> FaceTrack:
    """Build a FaceTrack (bbox, pose, IOD) from a (478, 3) landmark array in pixels."""
    lm = np.ascontiguousarray(landmarks, dtype=np.float32)
    yaw, pitch, roll = matrix_to_euler(head_rotation(lm))
    x0, y0 = lm[:, :2].min(axis=0)
    x1, y1 = lm[:, :2].max(axis=0)
    return FaceTrack(
        landmarks=lm,
        bbox=(float(x0), float(y0), float(x1), float(y1)),
        n_faces=n_faces,
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        inter_ocular=inter_ocular(lm),
    )


def mouth_aperture_series(
    frames: Iterable[np.ndarray], tracker: FaceTracker | None = None
) -> np.ndarray:
    """Mouth aperture per frame (float64), NaN where no face was found.

    Uses `tracker` when given, else a video-mode tracker (one face) made and closed here.
    """
    own = tracker is None
    trk = FaceTracker(static_image_mode=False, max_faces=1) if tracker is None else tracker
    out: list[float] = []
    try:
        for frame in frames:
            t = trk.track_or_none(frame)
            out.append(float("nan") if t is None else mouth_aperture(t.landmarks))
    finally:
        if own:
            trk.close()
    return np.asarray(out, dtype=np.float64)
