"""Style-E talking-style references: reading one from a file, the checks a (T, 34) coefficient clip must pass and
the scale it is read on (neither torch nor ONNX Runtime: the runtime's hub reads coefficient files and cached fits
itself).

Style-E's motion lives on the synthetic training corpus's scale. A reference fitted from a real video by the face
tracker lives on the tracker's: its brows and head translation move 5-65x as much, its jawOpen sits at 0.0-0.4x the
corpus's level and its mouthClose at 1.5-7x (13 fitted talking clips against 300 corpus utterances). Matching
such a clip's amplitude and articulation copies the tracker's scale, not the speaker's style. `ReferenceScale`
holds both populations' per-channel mean and spread (`s2t train style-e --reference-scale-only` computes them
from the corpus and the fitted real clips, into `reference_scale.json` beside the weights), and `to_model_scale`
maps a fitted clip channel by channel from the fitted population onto the corpus's: a speaker who opens the jaw
more than the typical real speaker then reads as opening it more than the typical corpus utterance.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data import fit_cache
from engine.data.fit_cache import STYLE_VIDEO_MAX_FRAMES, STYLE_VIDEO_MAX_SIDE
from engine.errors import InputError
from engine.spec import DEFAULT_SPEC, MotionSpec

MIN_FRAMES = 12  # ~0.5 s at 25 fps: velocity statistics need a few cycles of motion
MAX_FRAMES = 2000  # longer references are cut to their first MAX_FRAMES frames (80 s)
REFERENCE_SCALE_FILE = "reference_scale.json"
WEIGHTS_ENV = "S2T_STYLE_E_WEIGHTS"  # a folder with style_e.npz/.json + the ONNX graphs
log = logging.getLogger(__name__)


def check_reference(coeffs: np.ndarray, spec: MotionSpec = DEFAULT_SPEC) -> np.ndarray:
    """Validate a style reference (T, spec.dim); InputError with the reason if it cannot give a style."""
    arr = np.asarray(coeffs)
    if arr.ndim != 2 or arr.shape[1] != spec.dim:
        raise InputError(f"a style reference must be (T, {spec.dim}) coefficients, got shape {arr.shape}")
    if len(arr) < MIN_FRAMES:
        raise InputError(f"a style reference needs at least {MIN_FRAMES} frames ({MIN_FRAMES / 25:.2f} s at 25 fps) "
                         f"to show a talking style; got {len(arr)}")
    arr = np.ascontiguousarray(arr, np.float32)
    if not np.isfinite(arr).all():
        raise InputError("the style reference contains NaN or infinite coefficients")
    if len(arr) > MAX_FRAMES:
        arr = arr[:MAX_FRAMES]
    return arr


@dataclass(frozen=True, slots=True)
class ReferenceScale:
    """Per-channel statistics (each (C,)) of the two scales a style reference can come on.

    levels: the training corpus's mean level per utterance (the unit of the articulation gain); tempo: its mean
    engine.motion.amplitude.mouth_tempo per utterance (the unit of the articulation tempo); corpus_mean/corpus_std:
    the corpus's frames; fitted_mean/fitted_std: the face tracker's fits of real clips; spread: the corpus's mean
    engine.motion.amplitude.reference_spread per utterance (the unit of the lip widening; None in files written
    before session 13, which then widen nothing)."""

    levels: np.ndarray
    tempo: np.ndarray
    corpus_mean: np.ndarray
    corpus_std: np.ndarray
    fitted_mean: np.ndarray
    fitted_std: np.ndarray
    spread: np.ndarray | None = None

    FIELDS = ("levels", "tempo", "corpus_mean", "corpus_std", "fitted_mean", "fitted_std")
    OPTIONAL = ("spread",)

    def to_json(self, **provenance: object) -> str:
        """One line per field: a reviewable file."""
        keys = self.FIELDS + tuple(k for k in self.OPTIONAL if getattr(self, k) is not None)
        d = {k: [round(float(v), 6) for v in getattr(self, k)] for k in keys} | provenance
        return "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in d.items()) + "\n}"

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> "ReferenceScale":
        keys = cls.FIELDS + tuple(k for k in cls.OPTIONAL if k in d)
        arrays = [np.asarray(d[k], np.float32) for k in keys]
        if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1 or not all(np.isfinite(a).all() for a in arrays):
            raise ValueError("a reference scale needs equal-length finite vectors: " + ", ".join(keys))
        return cls(*arrays)


def load_reference_scale(weights_dir: str | Path) -> ReferenceScale | None:
    """The weights folder's reference_scale.json, or None (logged) where it has none or it is unreadable."""
    path = Path(weights_dir) / REFERENCE_SCALE_FILE
    if not path.is_file():
        log.info("no %s in %s: style references are taken on the model's scale as given", REFERENCE_SCALE_FILE,
                 weights_dir)
        return None
    try:
        return ReferenceScale.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        log.warning("ignoring %s (%s): style references are taken on the model's scale as given", path, e)
        return None


def to_model_scale(coeffs: np.ndarray, scale: ReferenceScale, spec: MotionSpec = DEFAULT_SPEC) -> np.ndarray:
    """A clip fitted by the face tracker, mapped channel by channel from the fitted population's mean and spread
    onto the corpus's (expression channels kept in 0..1). A channel that never moves in one of the two populations
    is set to the corpus's mean: there is no scale to carry its motion across."""
    c = np.asarray(coeffs, np.float64)
    fs, cs = scale.fitted_std.astype(np.float64), scale.corpus_std.astype(np.float64)
    ok = (fs > 1e-4) & (cs > 1e-4)
    ratio = np.where(ok, cs / np.maximum(fs, 1e-4), 0.0)
    out = scale.corpus_mean + (c - scale.fitted_mean) * ratio
    return spec.clip(out)


def default_weights_dir() -> Path:
    """The Style-E weights folder: $S2T_STYLE_E_WEIGHTS, else the ones shipped beside this module."""
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env) if env else Path(__file__).resolve().parent / "weights"


def read_style_reference(path: str | Path, max_frames: int = STYLE_VIDEO_MAX_FRAMES,
                         scale: ReferenceScale | None = None) -> np.ndarray:
    """A style reference from a file, on the model's scale: .npz (a `coeffs` array; an `s2t data fit` output,
    recognised by its `valid` array, is a face-tracker fit), .npy (taken as given), or a video (its first
    `max_frames` frames fitted with the face tracker; frames without a face are left out; the fit is cached by the
    file's content, engine.data.fit_cache). Face-tracker fits are mapped onto the model's scale with `scale`
    (default: the reference_scale.json of the default weights folder; without one they are passed as fitted, with a
    warning)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"style reference not found: {p}")
    if p.suffix.lower() == ".npz":
        with np.load(p, allow_pickle=False) as z:
            if "coeffs" not in z.files:
                raise InputError(f"{p}: no 'coeffs' array (have {', '.join(z.files)})")
            coeffs = np.asarray(z["coeffs"], np.float32)
            if "valid" not in z.files:
                return coeffs
            valid = np.asarray(z["valid"], bool).reshape(-1)
            if valid.shape == (len(coeffs),):
                coeffs = coeffs[valid]
        return _fitted_to_model_scale(coeffs, p, scale)
    if p.suffix.lower() == ".npy":
        return np.asarray(np.load(p, allow_pickle=False), np.float32)
    cached = read_cached_style_reference(p, max_frames, scale)  # this clip fitted before: seconds saved
    if cached is not None:
        return cached
    from engine.data.fit import fit_video  # a video: fit coefficients with the face tracker

    fit = fit_video(p, max_frames=max_frames, max_side=STYLE_VIDEO_MAX_SIDE)
    if not fit.valid.any():
        raise InputError(f"{p}: no face found in the style reference video")
    fitted = fit.coeffs[fit.valid]
    fit_cache.store(p, max_frames, STYLE_VIDEO_MAX_SIDE, fitted)
    return _fitted_to_model_scale(fitted, p, scale)


def read_cached_style_reference(path: str | Path, max_frames: int = STYLE_VIDEO_MAX_FRAMES,
                                scale: ReferenceScale | None = None) -> np.ndarray | None:
    """A video reference as read_style_reference gives it, where its fit is in the cache (engine.data.fit_cache);
    None where it would have to be fitted."""
    fitted = fit_cache.load(path, max_frames, STYLE_VIDEO_MAX_SIDE)
    return None if fitted is None else _fitted_to_model_scale(fitted, Path(path), scale)


def _fitted_to_model_scale(coeffs: np.ndarray, path: Path, scale: ReferenceScale | None) -> np.ndarray:
    scale = scale or load_reference_scale(default_weights_dir())
    if scale is None:
        log.warning("%s is a face-tracker fit and the weights have no reference scale: it is used on the tracker's "
                    "scale (its brows and head may be matched several times too lively)", path.name)
        return coeffs
    if len(coeffs) == 0 or coeffs.ndim != 2 or coeffs.shape[1] != len(scale.levels):
        return coeffs  # check_reference says what is wrong with it
    return to_model_scale(coeffs, scale)
