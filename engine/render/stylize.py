"""Procedural art styles (OpenCV/numpy): the training targets and labelled style pictures for Style-A.

Six styles, each a pure function of an RGB uint8 image: flat cartoon, pencil sketch, painterly,
comic halftone, watercolour and pop palette. They are deterministic (a seed only varies texture
phase), vectorised and fast enough (a few ms at 256²) to run inside a training loop.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from engine.errors import ImageError

STYLES: tuple[str, ...] = ("cartoon", "sketch", "painterly", "halftone", "watercolour", "pop")


def _check(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8 or min(a.shape[:2]) < 8:
        raise ImageError(f"stylize needs an (H, W, 3) uint8 RGB image of at least 8 px, got {a.shape} {a.dtype}")
    return np.ascontiguousarray(a)


def _edges(gray: np.ndarray, block: int, c: float) -> np.ndarray:
    """1 on flat areas, 0 on dark ink lines (adaptive threshold of a median-blurred luminance)."""
    g = cv2.medianBlur(gray, 5)
    block = max(3, block | 1)
    return (cv2.adaptiveThreshold(g, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, c) / 255.0).astype(np.float32)


def cartoon(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """Flat cartoon: edge-preserving smoothing, colours quantised to few levels, black outlines."""
    a = _check(img)
    s = cv2.bilateralFilter(a, 7, 60, 7)
    s = cv2.bilateralFilter(s, 7, 60, 7)
    q = (np.floor(s.astype(np.float32) / 48.0) * 48.0 + 24.0)
    e = _edges(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), max(9, a.shape[0] // 24), 4)
    return np.clip(q * e[..., None], 0, 255).astype(np.uint8)


def sketch(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """Pencil sketch: colour-dodge of luminance by its blurred negative, light hatching grain."""
    a = _check(img)
    g = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32)
    sigma = max(1.5, a.shape[0] / 64.0)
    blur = cv2.GaussianBlur(255.0 - g, (0, 0), sigma)
    dodge = np.minimum(255.0, g * 255.0 / np.maximum(255.0 - blur, 1.0))
    h, w = g.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    hatch = 0.5 + 0.5 * np.sin((xx + yy) * 1.3 + seed)
    out = dodge - (255.0 - dodge) * 0.35 * hatch
    out = 0.92 * out + 12.0
    return np.repeat(np.clip(out, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def painterly(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """Painterly: median 'brush' smoothing, warmer saturated palette, directional stroke texture."""
    a = _check(img)
    k = 5 if a.shape[0] <= 160 else 7
    m = cv2.medianBlur(a, k)
    hsv = cv2.cvtColor(m, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.minimum(255.0, hsv[..., 1] * 1.35 + 10.0)
    m = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(a.shape[:2]).astype(np.float32)
    strokes = cv2.filter2D(noise, -1, np.eye(7, dtype=np.float32)[::-1] / 7.0)
    out = m * (1.0 + 0.10 * strokes[..., None]) + np.array([10.0, 4.0, -8.0], np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def halftone(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """Comic halftone: posterised colour, luminance printed as a dot screen, black ink outlines."""
    a = _check(img)
    f = a.astype(np.float32)
    g = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    h, w = g.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = 5.0
    screen = 0.5 + 0.25 * (np.cos(2 * np.pi * (xx + yy) / (period * 1.414)) + np.cos(2 * np.pi * (xx - yy) / (period * 1.414)))
    ink = (g < screen * 0.9).astype(np.float32)
    poster = np.floor(f / 85.0) * 85.0 + 60.0
    out = poster * (1.0 - 0.55 * ink[..., None])
    e = _edges(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), max(9, a.shape[0] // 20), 6)
    return np.clip(out * e[..., None], 0, 255).astype(np.uint8)


def watercolour(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """Watercolour: soft washes (blur + lightened, desaturated-to-pastel), pigment pooling at edges, paper grain."""
    a = _check(img)
    f = cv2.GaussianBlur(a, (0, 0), max(1.2, a.shape[0] / 110.0)).astype(np.float32)
    wash = 255.0 - (255.0 - f) * 0.7
    g = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    edge = cv2.GaussianBlur(cv2.Canny(g, 40, 110).astype(np.float32), (0, 0), 1.5) / 255.0
    rng = np.random.default_rng(seed + 17)
    grain = cv2.GaussianBlur(rng.standard_normal(a.shape[:2]).astype(np.float32), (0, 0), 1.0)
    out = wash * (1.0 - 0.45 * edge[..., None]) * (1.0 + 0.05 * grain[..., None]) + np.array([4.0, 2.0, 8.0], np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


POP_PALETTE = np.array([[20, 20, 40], [230, 30, 120], [250, 210, 40], [60, 200, 230]], np.float32)


def pop(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """Pop-art palette: luminance cut into four bands mapped to bold flat colours, thin outlines."""
    a = _check(img)
    g = cv2.cvtColor(cv2.GaussianBlur(a, (3, 3), 0), cv2.COLOR_RGB2GRAY).astype(np.float32)
    lo, hi = np.percentile(g, (3, 97))
    band = np.clip(((g - lo) / max(hi - lo, 1.0) * 4.0).astype(np.int64), 0, 3)
    out = POP_PALETTE[band]
    e = _edges(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), max(9, a.shape[0] // 16), 8)
    return np.clip(out * e[..., None], 0, 255).astype(np.uint8)


STYLE_FNS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "cartoon": cartoon, "sketch": sketch, "painterly": painterly,
    "halftone": halftone, "watercolour": watercolour, "pop": pop,
}


def stylize(img: np.ndarray, style: str | int, seed: int = 0) -> np.ndarray:
    """Apply one named (or indexed) style to an RGB uint8 image; same shape out."""
    name = STYLES[style] if isinstance(style, (int, np.integer)) else style
    if name not in STYLE_FNS:
        raise ImageError(f"unknown art style {name!r}; have {', '.join(STYLES)}")
    return STYLE_FNS[name](img, seed)
