"""Stage protocols the workers host (motion, render), today's adapters, and the factory by config name.

A stage never knows how it is hosted: the workers call these methods and move messages. Style-E
and Style-A plug in by implementing the same protocols and registering a name here (or by giving
`kind = "package.module:factory"` in the config, where `factory(config) -> stage`).
Heavy imports (mediapipe, cv2, torch) happen inside the factories, i.e. in the worker process.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from engine.config import EngineConfig
from engine.errors import InputError, NotAvailableError
from engine.runtime.budget import QualityLevel
from engine.spec import DEFAULT_SPEC, MotionSpec

log = logging.getLogger(__name__)


@runtime_checkable
class MotionStage(Protocol):
    """Audio frames in, coefficient frames out, state carried between calls."""

    spec: MotionSpec

    def set_emotion(self, text: str) -> None: ...

    def set_style_reference(self, coeffs: np.ndarray) -> None:
        """(T, spec.dim) float32 coefficients of a reference clip."""

    def set_quality(self, level: QualityLevel) -> None: ...

    def step_chunk(self, frames: np.ndarray, speech: np.ndarray) -> np.ndarray:
        """(K, samples_per_frame) float32 + (K,) bool -> (K, spec.dim) float32."""

    def reset(self) -> None:
        """Forget the speech in progress (barge-in); emotion and style stay."""


@runtime_checkable
class RenderStage(Protocol):
    """Coefficient frame in, RGB frame out."""

    def set_portrait(self, image: np.ndarray | None) -> None:
        """(H, W, 3) uint8 RGB, or None for the configured/bundled portrait. NoFaceError if faceless."""

    def set_art_style(self, image: np.ndarray | None) -> None: ...

    def set_size(self, size: int) -> None: ...

    def set_quality(self, level: QualityLevel) -> None: ...

    def render(self, coeffs: np.ndarray) -> np.ndarray:
        """(spec.dim,) float32 -> (size, size, 3) uint8 RGB."""


def check_style_reference(coeffs: np.ndarray, spec: MotionSpec = DEFAULT_SPEC) -> np.ndarray:
    """Validate a style reference coefficient array; returns it as contiguous float32."""
    arr = np.asarray(coeffs)
    if arr.ndim != 2 or arr.shape[1] != spec.dim or arr.shape[0] < 1:
        raise InputError(f"a style reference must be (T, {spec.dim}) coefficients in the MotionSpec, got {arr.shape}")
    arr = np.ascontiguousarray(arr, np.float32)
    if not np.isfinite(arr).all():
        raise InputError("the style reference contains NaN or infinite coefficients")
    return arr


class BaselineMotionStage:
    """engine.motion.baseline.BaselineMotion behind the MotionStage protocol."""

    def __init__(self, cfg: EngineConfig) -> None:
        from engine.motion.baseline import BaselineMotion

        self.spec = DEFAULT_SPEC
        self._motion = BaselineMotion(spec=self.spec, fps=cfg.fps, emotion=cfg.motion.emotion, seed=cfg.motion.seed)
        self._style: np.ndarray | None = None

    def set_emotion(self, text: str) -> None:
        self._motion.set_emotion(text)

    def set_style_reference(self, coeffs: np.ndarray) -> None:
        # The baseline has no style code; it keeps the reference so a reset/restart is consistent.
        self._style = check_style_reference(coeffs, self.spec)
        log.info("baseline motion has no talking-style model; style reference (%d frames) stored", len(self._style))

    def set_quality(self, level: QualityLevel) -> None:
        return None  # nothing to trade: the baseline costs well under a millisecond per frame

    def step_chunk(self, frames: np.ndarray, speech: np.ndarray) -> np.ndarray:
        out = np.empty((len(frames), self.spec.dim), np.float32)
        for i, (x, s) in enumerate(zip(frames, speech)):
            out[i] = self._motion.step(x, bool(s))
        return out

    def reset(self) -> None:
        self._motion.reset()


class FaceModelCache:
    """Fitted face models on disk (`FaceModel.save` .npz, no pickle), keyed by portrait content and size.

    The first render worker fits a portrait (~0.7 s of mediapipe) and writes the model; a restarted
    or spare worker, or a new session on the same portrait, loads it in milliseconds. Writes are
    atomic (temp file + rename), so workers sharing the directory never read a half-written file.
    An unreadable entry is refitted. With no directory it only fits.
    """

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory else None
        self.hits = 0
        self.fits = 0

    @staticmethod
    def key(image: np.ndarray, size: int) -> str:
        h = hashlib.sha256(f"{image.shape}|{image.dtype}|{size}|".encode())
        h.update(np.ascontiguousarray(image).data)
        return h.hexdigest()[:32]

    def get(self, image: np.ndarray, size: int) -> object:
        """The FaceModel of `image` at `size`: loaded when cached, otherwise fitted (NoFaceError) and stored."""
        from engine.face.model import FaceModel

        path = None if self.directory is None else self.directory / f"face-{self.key(image, size)}.npz"
        if path is not None and path.is_file():
            try:
                model = FaceModel.load(path)
                self.hits += 1
                return model
            except InputError as e:
                log.warning("cached face model unusable (%s); fitting again", e)
        model = FaceModel.from_portrait(image, size=size)
        self.fits += 1
        if path is not None:
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                model.save(tmp)
                os.replace(tmp, path)
            except OSError as e:
                log.warning("could not cache the face model in %s: %s", self.directory, e)
        return model


class ReferenceRenderStage:
    """engine.face.reference_renderer.ReferenceRenderer behind the RenderStage protocol.

    The face model is fitted once per portrait at the session size (through `FaceModelCache`).
    `set_size` builds a renderer of another size from the same model (no refit), but `set_quality`
    ignores the ladder's render scale: the reference renderer's cost does not depend on its size
    (~17 ms a frame at 256, 192 and 128 px alike), so rendering smaller would only lose detail.
    The reference renderer has no art-style network; `set_art_style` applies a global
    colour-statistics transfer (mean/std per RGB channel, scaled by `render.art_style_strength`)
    until Style-A lands.
    """

    def __init__(self, cfg: EngineConfig, cache: FaceModelCache | None = None) -> None:
        self._cfg = cfg
        self._cache = cache or FaceModelCache(None)
        self._size = cfg.render.size
        self._strength = float(cfg.render.art_style_strength)
        self._portrait = self._default_portrait()
        self._model = self._cache.get(self._portrait, cfg.render.size)
        self._renderer = self._renderer_for(self._size)
        self._style: tuple[np.ndarray, np.ndarray] | None = None
        self._frame_stats: tuple[np.ndarray, np.ndarray] | None = None

    def _default_portrait(self) -> np.ndarray:
        from engine.face.image import load_image

        if self._cfg.portrait:
            return load_image(self._cfg.portrait)
        from engine.assets import asset_path

        return load_image(asset_path("portrait.png"))

    def _renderer_for(self, size: int) -> object:
        from engine.face.reference_renderer import ReferenceRenderer

        return ReferenceRenderer(self._model, size)  # type: ignore[arg-type]

    def set_portrait(self, image: np.ndarray | None) -> None:
        portrait = self._default_portrait() if image is None else np.ascontiguousarray(image, np.uint8)
        model = self._cache.get(portrait, self._cfg.render.size)  # NoFaceError: keep the old face
        self._portrait, self._model = portrait, model
        self._renderer = self._renderer_for(self._size)
        self._frame_stats = None

    def set_art_style(self, image: np.ndarray | None) -> None:
        if image is None or self._strength <= 0:
            self._style = None
            return
        x = np.asarray(image, np.float32).reshape(-1, 3)
        self._style = (x.mean(0), x.std(0) + 1e-3)
        self._frame_stats = None

    def set_size(self, size: int) -> None:
        if size != self._size:
            self._renderer = self._renderer_for(size)
            self._size = size

    def set_quality(self, level: QualityLevel) -> None:
        return None  # see the class docstring: size does not change this renderer's cost

    def render(self, coeffs: np.ndarray) -> np.ndarray:
        img: np.ndarray = self._renderer.render(coeffs)  # type: ignore[attr-defined]
        if self._style is None:
            return img
        if self._frame_stats is None:  # the portrait's own statistics, measured once per look
            x = img.reshape(-1, 3).astype(np.float32)
            self._frame_stats = (x.mean(0), x.std(0) + 1e-3)
        (sm, ss), (fm, fs) = self._style, self._frame_stats
        gain = 1.0 + self._strength * (ss / fs - 1.0)
        offset = self._strength * sm + (1.0 - self._strength) * fm - gain * fm
        out = img.astype(np.float32) * gain + offset
        return np.clip(out, 0, 255).astype(np.uint8)


def _style_e_stage(cfg: EngineConfig) -> MotionStage:
    from engine.motion.style_e import load_stage  # torch-free ONNX runtime; imported in the worker only

    return load_stage(cfg)


def _style_a_stage(cfg: EngineConfig, cache: FaceModelCache) -> RenderStage:
    from engine.render.renderer import StyleARenderStage

    return StyleARenderStage(cfg)


MOTION_STAGES: dict[str, Callable[[EngineConfig], MotionStage]] = {
    "baseline": BaselineMotionStage,
    "style-e": _style_e_stage,
}
# Built-in render stages also get the face model cache; a "module:factory" stage gets the config only.
RENDER_STAGES: dict[str, Callable[[EngineConfig, FaceModelCache], RenderStage]] = {
    "reference": lambda cfg, cache: ReferenceRenderStage(cfg, cache),
    "style-a": _style_a_stage,
}


def _resolve(kind: str, table: dict[str, Callable[[EngineConfig], object]], what: str) -> Callable[[EngineConfig], object]:
    if kind in table:
        return table[kind]
    if ":" in kind:
        module, _, attr = kind.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
        except (ImportError, AttributeError) as e:
            raise NotAvailableError(f"{what} stage {kind!r} could not be loaded: {e}") from None
    raise NotAvailableError(f"no {what} stage named {kind!r} (have: {', '.join(sorted(table))}, or 'module:factory')")


def make_motion_stage(cfg: EngineConfig) -> MotionStage:
    """The motion stage named by `cfg.motion.kind`."""
    stage = _resolve(cfg.motion.kind, MOTION_STAGES, "motion")(cfg)  # type: ignore[arg-type]
    return stage  # type: ignore[return-value]


def make_render_stage(cfg: EngineConfig, cache_dir: str | Path | None = None) -> RenderStage:
    """The render stage named by `cfg.render.kind`; built-in stages cache face models in `cache_dir`."""
    kind = cfg.render.kind
    if kind in RENDER_STAGES:
        return RENDER_STAGES[kind](cfg, FaceModelCache(cache_dir))
    stage = _resolve(kind, RENDER_STAGES, "render")(cfg)  # type: ignore[arg-type]
    return stage  # type: ignore[return-value]


def check_stage_kinds(cfg: EngineConfig) -> None:
    """Fail early in the hub (cheaply, without importing the stages) on an unknown stage name."""
    for kind, table, what in ((cfg.motion.kind, MOTION_STAGES, "motion"), (cfg.render.kind, RENDER_STAGES, "render")):
        if kind not in table and ":" not in kind:
            raise NotAvailableError(f"no {what} stage named {kind!r} (have: {', '.join(sorted(table))}, or 'module:factory')")
