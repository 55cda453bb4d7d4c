"""Style-E denoiser: a small transformer over a window of motion latents (P past + K new frames).

Per frame it sees the noisy latent, the clean past latent (where known) with its mask, and the audio
encoder's output; globally the diffusion time, the emotion code, the style code, a condition-present
flag (classifier-free guidance is trained by dropping emotion and style) and a guidance strength `w`
(used by the distilled students so guidance costs no doubled batch). It predicts x0 for every frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from engine.motion.audio_encoder import AUDIO_COND
from engine.motion.sampler import COSINE_F0, cosine_angle
from engine.motion.style_encoder import STYLE_DIM
from engine.motion.vae import LATENT

EMOTION_DIM = 8  # emotion code = predicted per-emotion weights (see text_encoder)
MAX_FRAMES = 64


@dataclass(frozen=True, slots=True)
class DenoiserConfig:
    width: int = 128
    layers: int = 3
    heads: int = 4
    # x0 = alpha(t) x_t + sigma(t) F: the noisy input passes through at low noise and the network adds what is
    # missing (EDM's skip scaling for a variance-preserving schedule with unit data std; the same as predicting
    # v). Without it the network must copy x_t itself, and measured at t = 0.05 it kept brows at r 0.76.
    skip: bool = False


def alpha_sigma_t(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sampler.alpha_sigma (cosine schedule) on a torch tensor, inside the exported graph."""
    abar = ((torch.cos(cosine_angle(t)) / COSINE_F0) ** 2).clamp(0.0, 1.0)
    return abar.sqrt(), (1.0 - abar).sqrt()


def time_embedding(t: torch.Tensor, dim: int = 64) -> torch.Tensor:
    """(B,) continuous time in [0, 1] -> (B, dim) sinusoidal features."""
    freqs = torch.exp(torch.arange(dim // 2, dtype=torch.float32) * (-math.log(1000.0) / (dim // 2)))
    ang = t[:, None] * 1000.0 * freqs[None, :]
    return torch.cat([torch.sin(ang), torch.cos(ang)], -1)


class Block(nn.Module):
    """Pre-norm transformer block with reshape-by-(-1) attention, so ONNX export keeps batch and length dynamic."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        d = h.shape[-1]
        q, k, v = self.qkv(self.n1(h)).chunk(3, -1)
        split = lambda x: x.reshape(x.shape[0], -1, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        att = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(d // self.heads), -1) @ split(v)
        h = h + self.proj(att.transpose(1, 2).reshape(h.shape[0], -1, d))
        return h + self.ff(self.n2(h))


class Denoiser(nn.Module):
    """x (B,N,16), past (B,N,16), past_mask (B,N,1), audio (B,N,15), t (B,), emotion (B,8), style (B,32),
    cond_mask (B,1), w (B,) -> x0 (B,N,16)."""

    def __init__(self, cfg: DenoiserConfig = DenoiserConfig()) -> None:
        super().__init__()
        d = cfg.width
        self.cfg = cfg
        self.tok = nn.Linear(2 * LATENT + 1 + AUDIO_COND, d)
        self.pos = nn.Parameter(torch.randn(MAX_FRAMES, d) * 0.02)
        self.t_mlp = nn.Sequential(nn.Linear(64 + 64, d), nn.GELU(), nn.Linear(d, d))
        self.cond = nn.Linear(EMOTION_DIM + STYLE_DIM + 1, d)
        self.body = nn.Sequential(*[Block(d, cfg.heads) for _ in range(cfg.layers)])
        self.norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, LATENT)

    def forward(self, x: torch.Tensor, past: torch.Tensor, past_mask: torch.Tensor, audio: torch.Tensor,
                t: torch.Tensor, emotion: torch.Tensor, style: torch.Tensor, cond_mask: torch.Tensor,
                w: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        g = self.t_mlp(torch.cat([time_embedding(t), time_embedding(w / 4.0)], -1))
        g = g + self.cond(torch.cat([emotion * cond_mask, style * cond_mask, cond_mask], -1))
        h = self.tok(torch.cat([x * (1 - past_mask), past * past_mask, past_mask, audio], -1))
        h = h + self.pos[:n][None] + g[:, None]
        h = self.body(torch.cat([g[:, None], h], 1))[:, 1:]
        out = self.out(self.norm(h))
        if self.cfg.skip:
            a, s = alpha_sigma_t(t)
            out = a[:, None, None] * x + s[:, None, None] * out
        return out
