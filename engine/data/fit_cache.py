"""Fitted style-reference videos cached by content: a clip used again skips its face fit (seconds -> milliseconds).

A video style reference costs a face track and a coefficient fit every time it is read (4-8 s for a 5 s clip on
2 cores), and users pick the same few clips again and again (a vcam restarted, a stream's look switched back). The
fit depends only on the file's bytes, the frames and size it was read at, and the fitter's code, so it is stored
under a key made of exactly those: sha256 of the file, max_frames, max_side, and sha256 of the fitter's source
files (a changed fitter never serves an old fit). Stored in `$S2T_STYLE_CACHE_DIR` (default
`$S2T_CACHE_DIR/style_refs`, i.e. `~/.cache/style2talker/style_refs`), written to a temporary file and renamed;
`S2T_STYLE_CACHE=0` turns the cache off. An unreadable entry is refitted and replaced; a cache that cannot be written only costs the saving.
"""

from __future__ import annotations

import hashlib
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.data.minilm_onnx import cache_dir

log = logging.getLogger(__name__)
CACHE_ENV = "S2T_STYLE_CACHE"
DIR_ENV = "S2T_STYLE_CACHE_DIR"
STYLE_VIDEO_MAX_FRAMES = 500  # a video reference is fitted over its first 500 frames (20 s at 25 fps)
STYLE_VIDEO_MAX_SIDE = 720  # ... decoded at most 720 px on its longer side
_FITTER = ("engine/data/fit.py", "engine/face/model.py", "engine/face/tracker.py")


def enabled() -> bool:
    return os.environ.get(CACHE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def folder() -> Path:
    return Path(os.environ.get(DIR_ENV) or cache_dir() / "style_refs")


@lru_cache(maxsize=1)
def _fitter_digest() -> str:
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for rel in _FITTER:
        f = root / rel
        h.update(f.read_bytes() if f.is_file() else rel.encode())
    return h.hexdigest()[:16]


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


def entry(path: str | Path, max_frames: int, max_side: int) -> Path:
    """Where the fit of this file's bytes, read at `max_frames` / `max_side` by this fitter, is stored."""
    return folder() / f"{_file_digest(Path(path))}-{max_frames}-{max_side}-{_fitter_digest()}.npz"


def load(path: str | Path, max_frames: int, max_side: int) -> np.ndarray | None:
    """The cached (T, 34) fit (valid frames only, on the face tracker's scale), or None (not cached, cache off, or
    an entry that cannot be read)."""
    if not enabled():
        return None
    try:
        e = entry(path, max_frames, max_side)
        if not e.is_file():
            return None
    except OSError as err:  # the clip cannot be read: the fit will say so
        log.debug("no cache lookup for %s: %s", path, err)
        return None
    try:
        with np.load(e, allow_pickle=False) as z:
            coeffs = np.asarray(z["coeffs"], np.float32)
        if coeffs.ndim != 2 or not len(coeffs) or not np.isfinite(coeffs).all():
            raise ValueError(f"shape {coeffs.shape}")
    except (OSError, ValueError, KeyError) as err:
        log.warning("ignoring the cached fit %s (%s): fitting %s again", e.name, err, Path(path).name)
        return None
    log.info("style reference %s: fit read from the cache (%s)", Path(path).name, e)
    return coeffs


def store(path: str | Path, max_frames: int, max_side: int, coeffs: np.ndarray) -> Path | None:
    """Keep a fit for next time; None (logged) where the cache is off or cannot be written."""
    if not enabled():
        return None
    tmp: Path | None = None
    try:
        e = entry(path, max_frames, max_side)
        tmp = e.with_name(f".{e.name}.{os.getpid()}.tmp")
        e.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, coeffs=np.asarray(coeffs, np.float32))
        os.replace(tmp, e)
    except OSError as err:
        log.info("style reference fit not cached (%s): the next use fits again", err)
        if tmp is not None:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
        return None
    return e
