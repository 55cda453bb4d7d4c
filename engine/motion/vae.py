"""Style-E motion latent: a small causal-conv VAE over normalised coefficient windows (34 -> 16 per frame).

Causal convolutions (each frame sees itself and the 4 before it) make decoding a stream exact: the
runtime keeps the last `CONTEXT` latents and decodes only the new ones, so chunk seams add nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.motion.audio_encoder import N_MOUTH

LATENT = 16
CONTEXT = 4  # past latent frames the decoder reads (2 causal convs with kernel 3)
# mouth channels the audio encoder alone drives (jawOpen): the denoiser's residual there, learned on synthetic
# speech, cancelled most of the real-speaker jaw (full-model jaw vs its own encoder r 0.42); its mean is kept
ENCODER_ONLY = (0,)


class CausalConv(nn.Conv1d):
    """Conv1d over (B, C, T) padded on the left only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        pad = (self.kernel_size[0] - 1) * self.dilation[0]
        return super().forward(nn.functional.pad(x, (pad, 0)))


class MotionVAE(nn.Module):
    """encode: (B, T, 34) normalised coeffs -> mean, logvar (B, T, 16); decode: (B, T, 16) -> (B, T, 34)."""

    def __init__(self, dim: int = 34, hidden: int = 128, latent: int = LATENT) -> None:
        super().__init__()
        self.enc = nn.Sequential(CausalConv(dim, hidden, 3), nn.GELU(), CausalConv(hidden, hidden, 3), nn.GELU(),
                                 nn.Conv1d(hidden, 2 * latent, 1))
        self.dec = nn.Sequential(CausalConv(latent, hidden, 3), nn.GELU(), CausalConv(hidden, hidden, 3), nn.GELU(),
                                 nn.Conv1d(hidden, dim, 1))
        self.register_buffer("latent_scale", torch.ones(latent))  # per-channel std of the latent means

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(x.transpose(1, 2)).transpose(1, 2)
        mean, logvar = h.chunk(2, -1)
        return mean, logvar.clamp(-12, 4)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z.transpose(1, 2)).transpose(1, 2)


class LatentDecoder(nn.Module):
    """Export wrapper: unit-scaled latent (B, T, 16) + audio encoder output (B, T, 15) -> coefficients (B, T, 34).

    The VAE models the coefficients minus the encoder's mouth (train.motion_target); the encoder's 14 mouth
    channels are added back here, so the mouth the audio encoder learned on real speakers passes through. On
    the ENCODER_ONLY channels (jawOpen) the residual's time-varying part is dropped (its training mean stays).
    """

    def __init__(self, vae: MotionVAE, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.vae = vae
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        keep = torch.ones(N_MOUTH)
        keep[list(ENCODER_ONLY)] = 0.0
        self.register_buffer("keep_residual", keep)

    def forward(self, z: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        out = self.vae.decode(z * self.vae.latent_scale) * self.std + self.mean
        keep = self.keep_residual
        residual = out[..., :N_MOUTH] * keep + self.mean[:N_MOUTH] * (1 - keep)
        return torch.cat([residual + audio[..., :N_MOUTH], out[..., N_MOUTH:]], -1)
