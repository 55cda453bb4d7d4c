"""Style-E style encoder: a reference coefficient clip (any length >= MIN_FRAMES) -> a talking-style code."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.errors import InputError
from engine.spec import DEFAULT_SPEC, MotionSpec

STYLE_DIM = 32
MIN_FRAMES = 12  # ~0.5 s at 25 fps: velocity statistics need a few cycles of motion
MAX_FRAMES = 2000  # longer references are cut to their first MAX_FRAMES frames (80 s)


class StyleEncoder(nn.Module):
    """(B, T, 34) normalised coefficients -> (B, STYLE_DIM) code, plus style logits from an auxiliary head."""

    def __init__(self, dim: int = 34, hidden: int = 64, n_styles: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(2 * dim, hidden, 5, padding=2), nn.GELU(),
                                 nn.Conv1d(hidden, hidden, 5, padding=4, dilation=2), nn.GELU())
        self.proj = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, STYLE_DIM))
        self.head = nn.Linear(STYLE_DIM, n_styles)

    def forward(self, ref: torch.Tensor) -> torch.Tensor:
        vel = torch.cat([torch.zeros_like(ref[:, :1]), ref[:, 1:] - ref[:, :-1]], 1) * 5.0
        h = self.net(torch.cat([ref, vel], -1).transpose(1, 2))
        pooled = torch.cat([h.mean(-1), h.std(-1)], -1)
        return torch.tanh(self.proj(pooled))


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
