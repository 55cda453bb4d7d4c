"""Portrait image loading: any common format to RGB uint8, EXIF orientation applied, huge photos downscaled."""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import numpy as np

from engine.errors import ImageError

log = logging.getLogger(__name__)

MAX_SIDE = 2048
"""Images whose long side exceeds this many pixels are downscaled (with a warning) on load."""

# Pillow refuses very large images as a "decompression bomb"; a 50 MP photo is legitimate input.
_PIXEL_LIMIT = 400_000_000


def load_image(src: str | Path | bytes, max_side: int = MAX_SIDE) -> np.ndarray:
    """Decode `src` (path or encoded bytes) to an RGB uint8 H×W×3 array.

    EXIF orientation is applied; grayscale, palette, CMYK and alpha images become RGB (alpha is
    composited on white); an image with a side longer than `max_side` is downscaled keeping its
    aspect ratio, with a logged warning. Raises ImageError with one clear line on a missing file,
    corrupt data or an unknown format.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = "<bytes>"
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        if not data:
            raise ImageError("image data is empty")
    else:
        path = Path(src)
        name = str(path)
        if not path.exists():
            raise ImageError(f"image file not found: {path}")
        if not path.is_file():
            raise ImageError(f"not a file: {path}")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ImageError(f"cannot read image {path}: {e.strerror or e}") from None
        if not data:
            raise ImageError(f"image file is empty: {path}")

    old_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = _PIXEL_LIMIT
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt = im.format or "unknown"
                # draft() lets JPEG decode at 1/2..1/8 scale directly: a 50 MP photo stays cheap.
                if fmt == "JPEG" and max(im.size) > 2 * max_side:
                    im.draft("RGB", (max_side, max_side))
                im.load()
                im = ImageOps.exif_transpose(im) or im
                rgb = _to_rgb(im)
    except UnidentifiedImageError:
        raise ImageError(f"unknown or unsupported image format: {name}") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"image too large to decode safely: {name} ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"corrupt or truncated image {name}: {e}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit

    w, h = rgb.size
    if max(w, h) > max_side:
        f = max_side / max(w, h)
        nw, nh = max(1, round(w * f)), max(1, round(h * f))
        log.warning("image %s is %dx%d; downscaled to %dx%d (max side %d)", name, w, h, nw, nh, max_side)
        rgb = rgb.resize((nw, nh), Image.Resampling.LANCZOS, reducing_gap=3.0)
    arr = np.asarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 8 or arr.shape[1] < 8:
        raise ImageError(f"image {name} is too small or malformed: shape {arr.shape}")
    return np.ascontiguousarray(arr)


def as_rgb_array(image: np.ndarray | str | Path | bytes) -> np.ndarray:
    """Accept an RGB uint8 array (returned as is) or anything `load_image` reads."""
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ImageError(f"expected an H×W×3 RGB image array, got shape {image.shape}")
        if image.dtype != np.uint8:
            if np.issubdtype(image.dtype, np.floating) and float(np.nanmax(image)) <= 1.0:
                image = image * 255.0
            image = np.clip(image, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(image[..., :3])
    return load_image(image)


def _to_rgb(im: "Image.Image") -> "Image.Image":  # noqa: F821 - PIL imported lazily
    from PIL import Image

    if im.mode == "RGB":
        return im
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        hi = float(a.max()) or 1.0
        return Image.fromarray((a * (255.0 / hi)).astype(np.uint8)).convert("RGB")
    return im.convert("RGB")
