"""Style-E style encoder: a reference coefficient clip (>= reference.MIN_FRAMES frames) -> a talking-style code."""

from __future__ import annotations

import torch
from torch import nn

STYLE_DIM = 32


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
