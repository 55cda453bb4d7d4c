"""MotionSpec: the named coefficient layout (expression channels + head pose) every model and file shares."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

# ARKit-style expression channels, each in 0..1. Order is part of the contract.
EXPRESSION_CHANNELS: tuple[str, ...] = (
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "browInnerUp",
    "browDownLeft",
    "browDownRight",
    "browOuterUpLeft",
    "browOuterUpRight",
    "eyeBlinkLeft",
    "eyeBlinkRight",
    "eyeWideLeft",
    "eyeWideRight",
    "eyeSquintLeft",
    "eyeSquintRight",
    "cheekPuff",
    "noseSneerLeft",
    "noseSneerRight",
)

# Head pose: yaw, pitch, roll in radians; tx, ty in normalised crop units (fraction of the
# crop side, +x right, +y down); scale is a multiplicative factor (1.0 = portrait's own size).
POSE_CHANNELS: tuple[str, ...] = ("yaw", "pitch", "roll", "tx", "ty", "scale")
POSE_UNITS: tuple[str, ...] = ("rad", "rad", "rad", "crop", "crop", "factor")
POSE_NEUTRAL: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class MotionSpec:
    """Layout of one coefficient frame: `expression` channels (0..1) followed by `pose` channels."""

    expression: tuple[str, ...] = EXPRESSION_CHANNELS
    pose: tuple[str, ...] = POSE_CHANNELS
    pose_units: tuple[str, ...] = POSE_UNITS
    pose_neutral: tuple[float, ...] = POSE_NEUTRAL
    fps: float = 25.0
    version: int = 1
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        names = self.names
        if len(set(names)) != len(names):
            raise ValueError("MotionSpec channel names must be unique")
        if not (len(self.pose) == len(self.pose_units) == len(self.pose_neutral)):
            raise ValueError("pose, pose_units and pose_neutral must have equal length")
        self._index.update({n: i for i, n in enumerate(names)})

    @property
    def names(self) -> tuple[str, ...]:
        return self.expression + self.pose

    @property
    def dim(self) -> int:
        return len(self.expression) + len(self.pose)

    @property
    def n_expression(self) -> int:
        return len(self.expression)

    def index(self, name: str) -> int:
        """Column of channel `name`; KeyError naming the channel if unknown."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"unknown motion channel {name!r}") from None

    def neutral(self, frames: int = 1) -> np.ndarray:
        """`frames`×dim float32 array: expression 0, pose neutral."""
        row = np.zeros(self.dim, np.float32)
        row[self.n_expression :] = self.pose_neutral
        return np.repeat(row[None], frames, axis=0)

    def clip(self, coeffs: np.ndarray) -> np.ndarray:
        """Clamp expression channels to 0..1 (pose left as is); returns a new float32 array."""
        out = np.asarray(coeffs, np.float32).copy()
        np.clip(out[..., : self.n_expression], 0.0, 1.0, out=out[..., : self.n_expression])
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "expression": list(self.expression),
            "pose": list(self.pose),
            "pose_units": list(self.pose_units),
            "pose_neutral": list(self.pose_neutral),
            "fps": self.fps,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> MotionSpec:
        return cls(
            expression=tuple(d["expression"]),  # type: ignore[arg-type]
            pose=tuple(d["pose"]),  # type: ignore[arg-type]
            pose_units=tuple(d["pose_units"]),  # type: ignore[arg-type]
            pose_neutral=tuple(float(x) for x in d["pose_neutral"]),  # type: ignore[union-attr]
            fps=float(d.get("fps", 25.0)),  # type: ignore[arg-type]
            version=int(d.get("version", 1)),  # type: ignore[call-overload]
        )

    @property
    def key(self) -> str:
        """Short stable hash of the layout; travels on the wire instead of the whole spec."""
        blob = json.dumps({k: v for k, v in self.to_dict().items() if k != "fps"}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


DEFAULT_SPEC = MotionSpec()
