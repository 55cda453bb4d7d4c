"""Style-A networks (torch): content encoder, art-style encoder, mapping, coefficient-driven flow + modulated U-Net, discriminator.

Tensor conventions: images B×3×H×W in [-1, 1]; coefficients B×34 (engine.spec order); style
strength B×1 in [0, 1]. The per-frame generator refines the reference renderer's warped frame: a
coefficient-modulated U-Net predicts a small residual flow (motion generator) that re-warps the
frame, plus a colour correction; art style enters through the same modulation (StyleGAN2 modulated
convolutions written as "scale input, shared conv, demodulate via einsum" so ONNX keeps a dynamic batch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.spec import DEFAULT_SPEC

N_STYLES = 6


@dataclass(frozen=True, slots=True)
class StyleAConfig:
    """Network widths; the defaults are the shipped CPU model."""

    coeff_dim: int = DEFAULT_SPEC.dim
    id_dim: int = 64
    style_dim: int = 32
    w_dim: int = 128
    ch: tuple[int, int, int] = (12, 24, 48)  # channels at 1/2, 1/4, 1/8 resolution (nothing heavy runs at full size)
    max_flow_px: float = 2.0  # residual flow bound, in pixels
    style_size: int = 128  # art pictures are encoded at this size
    # keep the warped frame's detail where the art style is off: the refiner's correction is low-passed
    # (`detail_blur` passes of a 5-tap binomial, σ = √n px) so it fixes colour/shading without moving the edges
    # the tracker (and a viewer) reads identity from; the share kept is (1 − style strength)
    keep_detail: bool = True
    detail_blur: int = 12

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["ch"] = list(self.ch)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> StyleAConfig:
        kw = dict(d)
        kw["ch"] = tuple(kw["ch"])  # type: ignore[arg-type]
        return cls(**kw)  # type: ignore[arg-type]


def assert_shape(x: torch.Tensor, shape: tuple[int | None, ...]) -> None:
    """Check a tensor's shape at a boundary (None matches any size); skipped while tracing for export."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return
    if x.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape)):
        raise ValueError(f"expected shape {shape}, got {tuple(x.shape)}")


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class ModConv(nn.Module):
    """StyleGAN2 modulated 3×3 (or 1×1) conv: x·s -> shared conv -> ·demod(w, s); export-friendly, any batch."""

    def __init__(self, cin: int, cout: int, w_dim: int, k: int = 3, demod: bool = True, act: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k) / (cin * k * k) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(cout))
        self.affine = nn.Linear(w_dim, cin)
        nn.init.zeros_(self.affine.weight)
        nn.init.ones_(self.affine.bias)
        self.demod, self.act, self.pad = demod, act, k // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)  # B×Cin
        y = F.conv2d(x * s[:, :, None, None], self.weight, padding=self.pad)
        if self.demod:
            d = torch.rsqrt(torch.einsum("oikl,bi->bo", self.weight.square(), s.square()) + 1e-8)
            y = y * d[:, :, None, None]
        y = y + self.bias[None, :, None, None]
        return _lrelu(y) if self.act else y


def lowpass(x: torch.Tensor, passes: int = 1) -> torch.Tensor:
    """`passes` separable 5-tap binomial blurs of a B×3×H×W image (replicate border; σ = √passes px).

    Exports as two depthwise convs per pass."""
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=x.dtype, device=x.device) / 16.0
    kx, ky = k.view(1, 1, 1, 5).repeat(3, 1, 1, 1), k.view(1, 1, 5, 1).repeat(3, 1, 1, 1)
    for _ in range(passes):
        x = F.conv2d(F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kx, groups=3), ky, groups=3)
    return x


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1)


class ContentEncoder(nn.Module):
    """Portrait crop B×3×H×W -> identity code B×id_dim (multi-scale conv features, pooled). Run once per portrait."""

    def __init__(self, cfg: StyleAConfig) -> None:
        super().__init__()
        c = cfg.ch
        self.convs = nn.ModuleList([_conv(3, c[0], 2), _conv(c[0], c[1], 2), _conv(c[1], c[2], 2), _conv(c[2], c[2], 2)])
        self.out = nn.Linear(c[0] + c[1] + 2 * c[2], cfg.id_dim)

    def forward(self, portrait: torch.Tensor) -> torch.Tensor:
        assert_shape(portrait, (None, 3, None, None))
        x, pooled = portrait, []
        for conv in self.convs:
            x = _lrelu(conv(x))
            pooled.append(x.mean(dim=(2, 3)))
        return self.out(torch.cat(pooled, 1))


class StyleEncoder(nn.Module):
    """Art picture B×3×S×S -> (unit style code B×style_dim, style logits B×N_STYLES)."""

    def __init__(self, cfg: StyleAConfig) -> None:
        super().__init__()
        chans = (3, 16, 32, 48, 64)
        self.convs = nn.ModuleList([_conv(a, b, 2) for a, b in zip(chans[:-1], chans[1:])])
        self.code = nn.Linear(2 * sum(chans[1:]), cfg.style_dim)
        self.classify = nn.Linear(cfg.style_dim, N_STYLES)

    def forward(self, picture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert_shape(picture, (None, 3, None, None))
        x, stats = picture, []
        for conv in self.convs:
            x = _lrelu(conv(x))
            # channel means and stds (Gram-like texture statistics) are what tells styles apart
            m = x.mean(dim=(2, 3))
            stats += [m, (x.square().mean(dim=(2, 3)) - m.square()).clamp_min(1e-6).sqrt()]
        code = F.normalize(self.code(torch.cat(stats, 1)), dim=1)
        return code, self.classify(code * 8.0)


class Mapping(nn.Module):
    """(coefficients, identity code, style code, strength) -> modulation vector w (B×w_dim)."""

    def __init__(self, cfg: StyleAConfig) -> None:
        super().__init__()
        d = cfg.coeff_dim + cfg.id_dim + cfg.style_dim + 1
        self.net = nn.Sequential(nn.Linear(d, cfg.w_dim), nn.LeakyReLU(0.2), nn.Linear(cfg.w_dim, cfg.w_dim), nn.LeakyReLU(0.2))

    def forward(self, coeffs: torch.Tensor, id_code: torch.Tensor, style_code: torch.Tensor,
                strength: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([coeffs, id_code, style_code * strength, strength], 1))


class Generator(nn.Module):
    """Per-frame refiner: warped frame + w -> residual flow (motion generator) + corrected/stylised frame.

    3×3 convolutions run at 1/2 resolution or below; at full resolution there are only the flow warp
    (grid_sample) and two 1×1 modulated convs giving a per-pixel colour matrix + offset, ~0.2 GMAC at 256².
    """

    def __init__(self, cfg: StyleAConfig) -> None:
        super().__init__()
        c, w = cfg.ch, cfg.w_dim
        self.cfg = cfg
        self.e1 = _conv(3, c[0], 2)
        self.e2 = _conv(c[0], c[1], 2)
        self.e3 = _conv(c[1], c[2], 2)
        self.m1 = ModConv(c[2], c[2], w)
        self.m2 = ModConv(c[2], c[2], w)
        self.flow = nn.Conv2d(c[2], 2, 3, 1, 1)
        nn.init.zeros_(self.flow.weight)
        nn.init.zeros_(self.flow.bias)
        self.d2 = ModConv(c[2] + c[1], c[1], w)
        self.d1 = ModConv(c[1] + c[0] + 3, c[0], w)
        # full-resolution head: per-pixel 1×1 modulated convs -> a 3×3 colour matrix + offset applied to the
        # re-warped pixel (identity at init), so corrections and art styles keep full-resolution detail
        self.h1 = ModConv(c[0] + 3, 16, w, k=1)
        self.h2 = ModConv(16, 12, w, k=1, demod=False, act=False)
        nn.init.zeros_(self.h2.weight)

    def forward(self, warped: torch.Tensor, w: torch.Tensor,
                keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """B×3×H×W (H, W divisible by 8) + B×w_dim -> (frame B×3×H×W in [-1, 1], flow B×2×H×W in pixels).

        `keep` (B×1, 0..1): share of the re-warped frame's high-frequency detail that replaces the output's.
        """
        assert_shape(warped, (None, 3, None, None))
        h, wd = warped.shape[2], warped.shape[3]
        x1 = _lrelu(self.e1(warped))
        x2 = _lrelu(self.e2(x1))
        x3 = _lrelu(self.e3(x2))
        y = self.m2(self.m1(x3, w), w)
        # motion generator: a bounded residual flow in pixels (same meaning on training patches and whole
        # frames) at 1/8 resolution, upsampled, re-warps the frame
        flow = F.interpolate(torch.tanh(self.flow(y)) * self.cfg.max_flow_px, size=(h, wd), mode="bilinear",
                             align_corners=False)
        ys = torch.linspace(-1.0, 1.0, h, device=warped.device, dtype=warped.dtype)
        xs = torch.linspace(-1.0, 1.0, wd, device=warped.device, dtype=warped.dtype)
        base = torch.stack([xs[None, :].expand(h, wd), ys[:, None].expand(h, wd)], dim=2)  # H×W×(x, y)
        to_norm = torch.stack([xs[1] - xs[0], ys[1] - ys[0]])  # one pixel in grid units: 2 / (size - 1)
        grid = base[None] + flow.permute(0, 2, 3, 1) * to_norm
        rewarped = F.grid_sample(warped, grid, mode="bilinear", padding_mode="border", align_corners=True)
        half = F.avg_pool2d(rewarped, 2)
        y = F.interpolate(y, scale_factor=2.0, mode="nearest")
        y = self.d2(torch.cat([y, x2], 1), w)
        y = F.interpolate(y, scale_factor=2.0, mode="nearest")
        y = self.d1(torch.cat([y, x1, half], 1), w)
        y = F.interpolate(y, size=(h, wd), mode="bilinear", align_corners=False)
        z = self.h2(self.h1(torch.cat([y, rewarped], 1), w), w)  # B×12×H×W
        m = z[:, :9].reshape(-1, 3, 3, h, wd)
        out = rewarped + (m * rewarped[:, None]).sum(2) + z[:, 9:]
        if keep is not None:
            # out + keep·(hp(rewarped) − hp(out)) with hp = 1 − lowpassⁿ; by linearity one blur chain on the
            # correction suffices: at keep = 1 the frame is the warp plus the low-passed correction
            d = rewarped - out
            out = out + keep[:, :, None, None] * (d - lowpass(d, self.cfg.detail_blur))
        return out, flow


class StyleA(nn.Module):
    """All inference parts; `encode` runs once per portrait/art change, `render` per frame."""

    def __init__(self, cfg: StyleAConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or StyleAConfig()
        self.content = ContentEncoder(self.cfg)
        self.style = StyleEncoder(self.cfg)
        self.mapping = Mapping(self.cfg)
        self.generator = Generator(self.cfg)

    def encode(self, portrait: torch.Tensor, picture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """portrait B×3×H×W, picture B×3×S×S (both [-1, 1]) -> (id code, style code, style logits)."""
        code, logits = self.style(picture)
        return self.content(portrait), code, logits

    def render(self, warped: torch.Tensor, coeffs: torch.Tensor, strength: torch.Tensor, id_code: torch.Tensor,
               style_code: torch.Tensor) -> torch.Tensor:
        """warped B×3×H×W [-1, 1], coeffs B×34, strength B×1, codes from `encode` -> frame B×3×H×W [-1, 1]."""
        assert_shape(coeffs, (None, self.cfg.coeff_dim))
        w = self.mapping(coeffs, id_code, style_code, strength)
        return self.generator(warped, w, self.keep(strength))[0]

    def keep(self, strength: torch.Tensor) -> torch.Tensor | None:
        """Share of the warped frame's fine detail kept (B×1), or None when the model was trained without it."""
        return (1.0 - strength) if self.cfg.keep_detail else None


class Discriminator(nn.Module):
    """PatchGAN-style critic on B×3×H×W (training only); returns logits and intermediate features."""

    def __init__(self, ch: int = 32) -> None:
        super().__init__()
        chans = (3, ch, 2 * ch, 4 * ch)
        self.convs = nn.ModuleList([nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(chans[:-1], chans[1:])])
        self.out = nn.Conv2d(chans[-1], 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        for conv in self.convs:
            x = _lrelu(conv(x))
            feats.append(x)
        return self.out(x), feats
