"""Style-E audio encoder: a dilated 1D conv over frame-aligned log-mel -> mouth coefficients + energy per frame.

The encoder sees `past` mel frames before and `lookahead` frames after each output frame (video-frame
units, 25 fps, 4 mel sub-frames each). The jaw can come from a linear head over the same window (`jaw_lin`,
a ridge regression fitted after the conv is trained, `audio_train.fit_linear_jaw`): on held-out real speakers
the heavily regularised linear map generalises better than the conv, which memorises the ~150 s of real
clips (docs/style_e.md). The encoder's output is a fixed, semantically named interface — the 14
mouth channels of the MotionSpec (synthetic scale) plus a normalised log-energy — so the denoiser does
not depend on one training run's hidden features (a leave-one-speaker-out encoder can be swapped in).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

N_MOUTH = 14  # jawOpen .. mouthLowerDownRight: the first 14 expression channels of DEFAULT_SPEC
AUDIO_COND = N_MOUTH + 1  # + log-energy
MEL_DIM = 4 * 80  # mel_for_video(sub=4) flattened per video frame
SILENCE_LOGMEL = float(np.log(1e-5))  # log_mel of digital silence (LOG_FLOOR)


@dataclass(frozen=True, slots=True)
class AudioEncoderConfig:
    """Shape of the encoder; `radius` is the symmetric receptive field in frames, `lookahead` <= 2*radius."""

    channels: int = 128
    radius: int = 8  # receptive field radius (frames): dilations 1,2,4 with kernel 3 then one more k3
    lookahead: int = 4
    dropout: float = 0.0  # on the residual branches while training (real clips are few: fight memorisation)

    @property
    def past(self) -> int:
        return 2 * self.radius - self.lookahead


class FrameNorm(nn.LayerNorm):
    """LayerNorm over channels of each frame of (B, C, T): unlike GroupNorm it does not pool over time, so a
    streaming window of K + 16 frames gives exactly the offline output (no dependence on the window length)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class AudioEncoder(nn.Module):
    """(B, T + past + lookahead, 320) normalised log-mel -> (B, T, AUDIO_COND); valid convolutions only."""

    def __init__(self, cfg: AudioEncoderConfig = AudioEncoderConfig()) -> None:
        super().__init__()
        if cfg.radius != 8 or not 0 <= cfg.lookahead <= 2 * cfg.radius:
            raise ValueError(f"unsupported audio encoder shape {cfg}")
        c = cfg.channels
        self.cfg = cfg
        self.inp = nn.Conv1d(MEL_DIM, c, 1)
        self.convs = nn.ModuleList([nn.Conv1d(c, c, 3, dilation=d) for d in (1, 2, 4, 1)])
        self.norms = nn.ModuleList([FrameNorm(c) for _ in range(4)])
        self.out = nn.Conv1d(c, N_MOUTH, 1)
        self.drop = nn.Dropout(cfg.dropout)
        # linear jaw over the whole window of frame-averaged mel bins (standardised per bin); used when linear_jaw=1
        self.jaw_lin = nn.Conv1d(80, 1, 2 * cfg.radius + 1)
        self.register_buffer("jaw_mu", torch.zeros(80))
        self.register_buffer("jaw_sd", torch.ones(80))
        self.register_buffer("linear_jaw", torch.zeros(()))
        self.jaw_fit: dict[str, object] = {}  # how the linear jaw was fitted (audio_train.fit_linear_jaw)
        self.register_buffer("mel_mean", torch.zeros(()))
        self.register_buffer("mel_std", torch.ones(()))
        # per-channel map of the raw head onto the synthetic coefficient scale (the jaw trains in z units)
        self.register_buffer("mouth_scale", torch.ones(N_MOUTH))
        self.register_buffer("mouth_bias", torch.zeros(N_MOUTH))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        out = self.raw(mel)
        return torch.cat([out[..., :N_MOUTH] * self.mouth_scale + self.mouth_bias, out[..., N_MOUTH:]], -1)

    def raw(self, mel: torch.Tensor) -> torch.Tensor:
        """Like forward, without the mouth_scale/mouth_bias map (training units)."""
        x = (mel - self.mel_mean) / self.mel_std
        energy = x.mean(-1, keepdim=True)[:, 2 * self.cfg.radius :]  # (B, T, 1)
        h = self.inp(x.transpose(1, 2))
        for conv, norm in zip(self.convs, self.norms):
            d = conv.dilation[0]
            h = h[:, :, d:-d] + self.drop(conv(torch.nn.functional.gelu(norm(h))))
        mouth = self.out(torch.nn.functional.gelu(h)).transpose(1, 2)
        lin = self.jaw_lin((self.jaw_frames(x) - self.jaw_mu[:, None]) / self.jaw_sd[:, None]).transpose(1, 2)
        jaw = self.linear_jaw * lin + (1 - self.linear_jaw) * mouth[..., :1]
        return torch.cat([jaw, mouth[..., 1:], energy], -1)

    @staticmethod
    def jaw_frames(x: torch.Tensor) -> torch.Tensor:
        """(B, T, 320) normalised mel -> (B, 80, T): the 4 sub-frames of each video frame averaged (jaw head input)."""
        return x.reshape(x.shape[0], x.shape[1], 4, 80).mean(2).transpose(1, 2)


def pad_mel(mel: np.ndarray, past: int, lookahead: int) -> np.ndarray:
    """(T, 4, 80) mel -> (T + past + lookahead, 320) padded with silence, ready for the encoder."""
    flat = np.asarray(mel, np.float32).reshape(len(mel), MEL_DIM)
    return np.pad(flat, ((past, lookahead), (0, 0)), constant_values=SILENCE_LOGMEL)
