"""Talking-style references from files for a live session: video fitting runs in a child process, off the hub.

Fitting a video (face tracking + coefficient fit, seconds for a few seconds of clip) inside the hub or the
motion worker would stall the paced stream, so it runs in a spawned process the session waits on without
blocking its event loop. Coefficient files (.npz / .npy), and videos fitted before (engine.data.fit_cache), are
read in place, on a thread.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from engine.errors import InputError, S2TError, error_from_text, error_text

log = logging.getLogger(__name__)

FIT_TIMEOUT_S = 180.0  # a 20 s 720p clip fits in well under a minute on 2 cores
COEFF_SUFFIXES = (".npz", ".npy")


def _read(path: str) -> np.ndarray:
    from engine.motion.reference import read_style_reference  # no ONNX Runtime in the hub

    return read_style_reference(path)


def _read_cached(path: str) -> np.ndarray | None:
    """A video fitted before, from the cache (engine.data.fit_cache); None: it needs a fit (never done here)."""
    from engine.motion.reference import read_cached_style_reference

    return read_cached_style_reference(path)


def _child(path: str, conn: Connection) -> None:
    """Child process: fit, send ("ok", coeffs) or ("error", error_text line)."""
    try:
        conn.send(("ok", _read(path)))
    except S2TError as e:
        conn.send(("error", error_text(e)))
    except Exception as e:  # noqa: BLE001 - reported to the parent as a failed fit, with its reason
        conn.send(("error", f"fitting the style reference video failed: {error_text(e)}"))
    finally:
        conn.close()


async def read_style_reference_async(path: str | Path, timeout_s: float = FIT_TIMEOUT_S) -> np.ndarray:
    """(T, 34) coefficients from a .npz/.npy file, or from a video fitted in a child process.

    Raises what the fit raises (InputError for an unreadable file, NoFaceError), and S2TError when the child
    dies or takes longer than `timeout_s` (it is killed); the caller's session is untouched either way.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"style reference not found: {p}")
    if p.suffix.lower() in COEFF_SUFFIXES:  # file reads (a video's hash: tens of ms) run off the event loop
        return await asyncio.to_thread(_read, str(p))
    cached = await asyncio.to_thread(_read_cached, str(p))
    if cached is not None:
        return cached
    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(str(p), send), name="s2t-style-fit", daemon=True)
    t0 = time.perf_counter()
    proc.start()
    send.close()  # the child holds the only writer: its death reads as EOF here
    try:
        if not await asyncio.to_thread(recv.poll, timeout_s):
            raise S2TError(f"fitting the style reference video took longer than {timeout_s:.0f} s; "
                           "send a shorter clip or its coefficients (.npy)")
        try:
            reply = recv.recv()
        except EOFError:
            raise S2TError("the process fitting the style reference video died (out of memory?); "
                           "send a shorter or smaller clip, or its coefficients (.npy)") from None
    finally:
        recv.close()
        if proc.is_alive():
            proc.kill()
        await asyncio.to_thread(proc.join, 5.0)
    if reply[0] != "ok":
        raise error_from_text(reply[1])
    log.info("style reference video %s: %d frames fitted in %.1f s", p.name, len(reply[1]), time.perf_counter() - t0)
    return np.asarray(reply[1], np.float32)
