"""Style-A at run time: ONNX Runtime graphs behind `load_renderer` (offline CLI) and `StyleARenderStage` (live runtime).

Per portrait/art change the encode graph runs once (identity code, style code); per frame the
reference renderer warps the portrait (OpenCV, a few ms) and the render graph refines/stylises it.
The render graph takes a batch, so frames of many sessions (each with its own cached codes) can
be rendered in one call through `StyleAGraphs.render`.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from engine.errors import ImageError, InputError, NotAvailableError
from engine.spec import DEFAULT_SPEC

if TYPE_CHECKING:
    from engine.config import EngineConfig
    from engine.face.model import FaceModel
    from engine.runtime.budget import QualityLevel

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
ENCODE_FILE = "style_a_encode.onnx"
RENDER_FILE = "style_a_render.onnx"
STYLES: tuple[str, ...] = ("cartoon", "sketch", "painterly", "halftone", "watercolour", "pop")
CODE_SIZE = 128  # portraits and art pictures enter the encode graph at 128×128
MIN_PICTURE = 16  # smaller art pictures are refused; anything below CODE_SIZE is upsampled with a warning


def check_strength(strength: float) -> float:
    """Validate an art-style strength: a finite number in 0..1 (InputError otherwise)."""
    s = float(strength)
    if not np.isfinite(s) or not 0.0 <= s <= 1.0:
        raise InputError(f"art-style strength must be in 0..1, got {strength}")
    return s


def prepare_picture(image: np.ndarray | str | Path | bytes, size: int = CODE_SIZE) -> np.ndarray:
    """Any picture (path/bytes/array; gray, RGBA, tiny or huge) -> (size, size, 3) uint8 RGB centre square."""
    from engine.face.image import as_rgb_array

    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 4:
        a = image.astype(np.float32)
        if image.dtype == np.uint8:
            alpha = a[..., 3:4] / 255.0
        else:
            alpha = np.clip(a[..., 3:4], 0.0, 1.0)
            a = a * (255.0 if float(np.nanmax(a[..., :3])) <= 1.0 else 1.0)
        image = np.clip(a[..., :3] * alpha + 255.0 * (1.0 - alpha), 0, 255).astype(np.uint8)  # over white
    rgb = as_rgb_array(image)
    h, w = rgb.shape[:2]
    s = min(h, w)
    if s < MIN_PICTURE:
        raise ImageError(f"art-style picture is too small ({w}×{h}); need at least {MIN_PICTURE} px on the short side")
    if s < size:
        log.warning("art-style picture is small (%d×%d); upsampling to %d px", w, h, size)
    sq = rgb[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    return cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_CUBIC)


@dataclass(frozen=True, slots=True)
class StyleCodes:
    """Cached outputs of the encode graph for one (portrait, art picture) pair."""

    id_code: np.ndarray  # (64,) float32
    style_code: np.ndarray  # (32,) float32; zeros when there is no art picture
    style_probs: np.ndarray  # (6,) float32 softmax over STYLES; uniform when there is no art picture

    @property
    def nearest_style(self) -> str:
        return STYLES[int(np.argmax(self.style_probs))]


class StyleAGraphs:
    """The two ONNX Runtime sessions (shared by every renderer in a process; thread-safe `run`)."""

    _cache: dict[tuple[str, int], StyleAGraphs] = {}
    _lock = threading.Lock()

    def __init__(self, weights_dir: str | Path = WEIGHTS_DIR, threads: int = 1) -> None:
        import onnxruntime as ort

        d = Path(weights_dir)
        paths = [d / ENCODE_FILE, d / RENDER_FILE]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise NotAvailableError(f"Style-A weights missing: {', '.join(missing)} (run `make weights`)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # 1: one frame per core; several renderer workers scale out
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-wait on shared cores
        avail = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in avail]
        self.encoder = ort.InferenceSession(str(paths[0]), opts, providers=providers)
        self.renderer = ort.InferenceSession(str(paths[1]), opts, providers=providers)
        card = d / "style_a_meta.json"
        self.meta = json.loads(card.read_text()) if card.is_file() else {}
        self.id_dim = int(self.encoder.get_outputs()[0].shape[1])
        self.style_dim = int(self.encoder.get_outputs()[1].shape[1])

    @classmethod
    def shared(cls, weights_dir: str | Path = WEIGHTS_DIR, threads: int = 1) -> StyleAGraphs:
        """One instance per (directory, threads) in this process."""
        key = (str(Path(weights_dir).resolve()), threads)
        with cls._lock:
            if key not in cls._cache:
                cls._cache[key] = cls(weights_dir, threads)
            return cls._cache[key]

    def encode(self, portrait_crop: np.ndarray, picture: np.ndarray | None) -> StyleCodes:
        """(H, W, 3) uint8 portrait crop + optional prepared (128, 128, 3) art picture -> StyleCodes."""
        p = cv2.resize(portrait_crop, (CODE_SIZE, CODE_SIZE), interpolation=cv2.INTER_AREA)
        q = picture if picture is not None else np.full((CODE_SIZE, CODE_SIZE, 3), 128, np.uint8)
        id_code, style_code, logits = self.encoder.run(None, {"portrait": p[None], "picture": q[None]})
        if picture is None:
            return StyleCodes(id_code[0], np.zeros(self.style_dim, np.float32), np.full(len(STYLES), 1.0 / len(STYLES), np.float32))
        e = np.exp(logits[0] - logits[0].max())
        return StyleCodes(id_code[0], style_code[0], (e / e.sum()).astype(np.float32))

    def render(self, warped: np.ndarray, coeffs: np.ndarray, strength: np.ndarray, id_code: np.ndarray,
               style_code: np.ndarray) -> np.ndarray:
        """Batched per-frame graph: (B,H,W,3) u8, (B,34), (B,1), (B,64), (B,32) -> (B,H,W,3) u8."""
        feeds = {"warped": np.ascontiguousarray(warped, np.uint8), "coeffs": np.ascontiguousarray(coeffs, np.float32),
                 "strength": np.ascontiguousarray(strength, np.float32).reshape(-1, 1),
                 "id_code": np.ascontiguousarray(id_code, np.float32), "style_code": np.ascontiguousarray(style_code, np.float32)}
        return self.renderer.run(None, feeds)[0]  # type: ignore[no-any-return]


class StyleARenderer:
    """One portrait (+ art style) rendered by Style-A: `.render(coeffs (34,)) -> (size, size, 3) uint8`."""

    def __init__(self, portrait: np.ndarray | str | Path | bytes, size: int = 256,
                 art_style: np.ndarray | str | Path | bytes | None = None, strength: float = 1.0,
                 graphs: StyleAGraphs | None = None, refine: bool = True) -> None:
        self.graphs = graphs or StyleAGraphs.shared()
        self.strength = check_strength(strength)
        self.refine = refine
        self._picture = None if art_style is None else prepare_picture(art_style)
        self._size = self._check_size(size)
        self._set_portrait(portrait)

    @staticmethod
    def _check_size(size: int) -> int:
        if size < 64 or size % 8:
            raise InputError(f"Style-A render size must be a multiple of 8 and >= 64, got {size}")
        return int(size)

    def _set_portrait(self, portrait: np.ndarray | str | Path | bytes) -> None:
        from engine.face.image import as_rgb_array

        rgb = as_rgb_array(portrait)
        model = self._fit(rgb, self._size)  # NoFaceError if faceless; the previous face stays
        self._portrait, self._models = rgb, {self._size: model}
        self._use(model)
        self.codes = self.graphs.encode(model.crop, self._picture)

    @staticmethod
    def _fit(rgb: np.ndarray, size: int) -> FaceModel:
        from engine.face.model import FaceModel

        return FaceModel.from_portrait(rgb, size=size)

    def _use(self, model: FaceModel) -> None:
        from engine.face.reference_renderer import ReferenceRenderer

        self.model, self.reference = model, ReferenceRenderer(model, model.size)

    @property
    def size(self) -> int:
        return self._size

    def set_portrait(self, portrait: np.ndarray | str | Path | bytes) -> None:
        """New face; the old one stays if this one fails (NoFaceError / ImageError)."""
        self._set_portrait(portrait)

    def set_art_style(self, picture: np.ndarray | str | Path | bytes | None, strength: float | None = None) -> None:
        """New art picture (None: photographic); re-runs the encode graph once."""
        self._picture = None if picture is None else prepare_picture(picture)
        if strength is not None:
            self.strength = check_strength(strength)
        self.codes = self.graphs.encode(self.model.crop, self._picture)

    def set_strength(self, strength: float) -> None:
        self.strength = check_strength(strength)

    @property
    def effective_strength(self) -> float:
        """The strength the graph sees: 0 without an art picture (photographic), else the set strength."""
        return 0.0 if self._picture is None else self.strength

    def set_size(self, size: int) -> None:
        """Render at another size (face model fitted once per size and cached; the codes are size-independent)."""
        size = self._check_size(size)
        if size != self._size:
            model = self._models.get(size) or self._fit(self._portrait, size)
            self._models[size] = model
            self._size = size
            self._use(model)

    def _check_coeffs(self, coeffs: np.ndarray, batch: bool) -> np.ndarray:
        c = np.asarray(coeffs, np.float32)
        want = (c.ndim == 2) if batch else (c.shape == (DEFAULT_SPEC.dim,))
        if not want or c.shape[-1] != DEFAULT_SPEC.dim:
            raise InputError(f"coefficients must have shape {'(T, ' if batch else '('}{DEFAULT_SPEC.dim},), got {c.shape}")
        if not np.isfinite(c).all():
            raise InputError("coefficients contain NaN or inf")
        return c

    def render(self, coeffs: np.ndarray) -> np.ndarray:
        """(34,) coefficients -> (size, size, 3) uint8 RGB."""
        return self.render_batch(self._check_coeffs(coeffs, batch=False)[None])[0]

    def render_batch(self, coeffs: np.ndarray) -> np.ndarray:
        """(T, 34) -> (T, size, size, 3) uint8: T reference warps, one render-graph call."""
        c = self._check_coeffs(coeffs, batch=True)
        warped = np.stack([self.reference.render(row) for row in c])
        if not self.refine:
            return warped
        n = len(c)
        return self.graphs.render(warped, c, np.full((n, 1), self.effective_strength, np.float32),
                                  np.repeat(self.codes.id_code[None], n, 0), np.repeat(self.codes.style_code[None], n, 0))


def load_renderer(portrait: np.ndarray | str | Path | bytes, size: int = 256,
                  art_style: np.ndarray | str | Path | bytes | None = None, strength: float = 1.0) -> StyleARenderer:
    """The hook clients/render.py looks for: a Style-A renderer for one portrait (+ optional art picture)."""
    return StyleARenderer(portrait, size=size, art_style=art_style, strength=strength)


class StyleARenderStage:
    """Style-A behind engine.runtime.stages.RenderStage (config kind "engine.render.renderer:StyleARenderStage")."""

    def __init__(self, cfg: EngineConfig) -> None:
        self._cfg = cfg
        self._base_size = cfg.render.size
        self._renderer = StyleARenderer(self._default_portrait(), size=cfg.render.size,
                                        strength=check_strength(cfg.render.art_style_strength))

    def _default_portrait(self) -> np.ndarray:
        from engine.face.image import load_image

        if self._cfg.portrait:
            return load_image(self._cfg.portrait)
        from engine.assets import asset_path

        return load_image(asset_path("portrait.png"))

    def set_portrait(self, image: np.ndarray | None) -> None:
        self._renderer.set_portrait(self._default_portrait() if image is None else image)

    def set_art_style(self, image: np.ndarray | None) -> None:
        self._renderer.set_art_style(image)

    def set_strength(self, strength: float) -> None:
        self._renderer.set_strength(strength)

    def set_size(self, size: int) -> None:
        self._renderer.set_size(size)

    def set_quality(self, level: QualityLevel) -> None:
        self._renderer.refine = bool(level.refine)
        self.set_size(level.render_size(self._base_size))

    def render(self, coeffs: np.ndarray) -> np.ndarray:
        return self._renderer.render(coeffs)
