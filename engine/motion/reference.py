"""Style-E talking-style references: the checks a (T, 34) coefficient clip must pass (torch-free, for the runtime)."""

from __future__ import annotations

import numpy as np

from engine.errors import InputError
from engine.spec import DEFAULT_SPEC, MotionSpec

MIN_FRAMES = 12  # ~0.5 s at 25 fps: velocity statistics need a few cycles of motion
MAX_FRAMES = 2000  # longer references are cut to their first MAX_FRAMES frames (80 s)


def check_reference(coeffs: np.ndarray, spec: MotionSpec = DEFAULT_SPEC) -> np.ndarray:
    """Validate a style reference (T, spec.dim); InputError with the reason if it cannot give a style."""
    arr = np.asarray(coeffs)
    if arr.ndim != 2 or arr.shape[1] != spec.dim:
        raise InputError(f"a style reference must be (T, {spec.dim}) coefficients, got shape {arr.shape}")
    if len(arr) < MIN_FRAMES:
        raise InputError(f"a style reference needs at least {MIN_FRAMES} frames ({MIN_FRAMES / 25:.2f} s at 25 fps) "
                         f"to show a talking style; got {len(arr)}")
    arr = np.ascontiguousarray(arr, np.float32)
    if not np.isfinite(arr).all():
        raise InputError("the style reference contains NaN or infinite coefficients")
    if len(arr) > MAX_FRAMES:
        arr = arr[:MAX_FRAMES]
    return arr
