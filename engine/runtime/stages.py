"""Stage protocols the workers host (motion, render), today's adapters, and the factory by config name.

A stage never knows how it is hosted: the workers call these methods and move messages. Style-E
and Style-A plug in by implementing the same protocols and registering a name here (or by giving
`kind = "package.module:factory"` in the config, where `factory(config) -> stage`).
Heavy imports (mediapipe, cv2, torch) happen inside the factories, i.e. in the worker process.
"""

from __future__ import annotations

import importlib
import logging
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


class ReferenceRenderStage:
    """engine.face.reference_renderer.ReferenceRenderer behind the RenderStage protocol.

    Face models are fitted once per (portrait, size) and cached for ladder moves. The reference
    renderer has no art-style network; `set_art_style` applies a global colour-statistics transfer
    (mean/std per RGB channel, scaled by `render.art_style_strength`) until Style-A lands.
    """

    def __init__(self, cfg: EngineConfig) -> None:
        self._cfg = cfg
        self._size = cfg.render.size
        self._strength = float(cfg.render.art_style_strength)
        self._portrait = self._default_portrait()
        self._models: dict[int, object] = {}
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
        from engine.face.model import FaceModel
        from engine.face.reference_renderer import ReferenceRenderer

        model = self._models.get(size)
        if model is None:
            model = FaceModel.from_portrait(self._portrait, size=size)
            self._models[size] = model
        return ReferenceRenderer(model, size)

    def set_portrait(self, image: np.ndarray | None) -> None:
        previous, models = self._portrait, self._models
        self._portrait = self._default_portrait() if image is None else np.ascontiguousarray(image, np.uint8)
        self._models = {}
        try:
            self._renderer = self._renderer_for(self._size)
        except BaseException:
            self._portrait, self._models = previous, models  # keep rendering the old face
            raise
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
        # Changing size means a new face fit (~0.7 s of mediapipe) that would stall the stream
        # in the middle of an overload; at ~13 ms a frame the reference renderer keeps its size
        # unless a model for the new size is already cached. Style-A makes this knob pay.
        size = level.render_size(self._cfg.render.size)
        if size in self._models:
            self.set_size(size)

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


MOTION_STAGES: dict[str, Callable[[EngineConfig], MotionStage]] = {"baseline": BaselineMotionStage}
RENDER_STAGES: dict[str, Callable[[EngineConfig], RenderStage]] = {"reference": ReferenceRenderStage}


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


def make_render_stage(cfg: EngineConfig) -> RenderStage:
    """The render stage named by `cfg.render.kind`."""
    stage = _resolve(cfg.render.kind, RENDER_STAGES, "render")(cfg)  # type: ignore[arg-type]
    return stage  # type: ignore[return-value]


def check_stage_kinds(cfg: EngineConfig) -> None:
    """Fail early in the hub (cheaply, without importing the stages) on an unknown stage name."""
    for kind, table, what in ((cfg.motion.kind, MOTION_STAGES, "motion"), (cfg.render.kind, RENDER_STAGES, "render")):
        if kind not in table and ":" not in kind:
            raise NotAvailableError(f"no {what} stage named {kind!r} (have: {', '.join(sorted(table))}, or 'module:factory')")
