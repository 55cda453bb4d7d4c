"""Talking-style references from files in a live session: a face video is fitted in a child process while
the stream keeps its pace; unreadable, faceless, too slow or missing clips are refused with their reason."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from engine.errors import InputError, NoFaceError, S2TError
from engine.runtime import Engine
from engine.runtime.style_ref import read_style_reference_async
from runtime_fakes import assert_no_leaks, collect, fake_config
from test_data_fit import _write_video

pytestmark = pytest.mark.timeout(120)
PORTRAIT = Path(__file__).resolve().parents[1] / "engine" / "assets" / "portrait.png"


def _face_video(path: Path, n: int = 20) -> Path:
    """The bundled portrait, drifting a few pixels sideways: a face in every frame."""
    from engine.face.image import load_image

    img = load_image(PORTRAIT)
    img = np.ascontiguousarray(img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2])
    _write_video(path, [np.roll(img, 2 * (i % 5), axis=1) for i in range(n)])
    return path


async def test_face_video_reference_is_fitted_while_the_stream_keeps_pace(tmp_path: Path) -> None:
    clip = _face_video(tmp_path / "style.mp4")
    eng = Engine(fake_config())
    await eng.start()
    try:
        t0 = time.monotonic()
        fit = asyncio.create_task(eng.set_style_reference(clip))
        got = []
        while not fit.done():
            got += await collect(eng, 0.5)
        await fit
        elapsed = time.monotonic() - t0
        assert elapsed > 1.0, "a spawned fit takes seconds; the stream below must have run through it"
        assert len(got) >= 0.75 * 25 * elapsed, f"{len(got)} frames in {elapsed:.1f} s while the clip was fitted"
        style = eng._style
        assert style is not None and style.shape == (20, 34) and np.isfinite(style).all()
        assert style[:, :28].min() >= 0.0 and style[:, :28].max() <= 1.0  # expression channels in the MotionSpec
        t1 = time.monotonic()
        await eng.set_style_reference(clip)  # the same clip again: its fit comes from the cache, no child process
        assert time.monotonic() - t1 < 1.0 and eng._style is not style
        np.testing.assert_array_equal(eng._style, style)
        style = eng._style
        with pytest.raises(NoFaceError):  # refused: the session keeps its style and goes on
            await eng.set_style_reference(_write_gray(tmp_path / "gray.mp4"))
        assert eng._style is style
        assert len(await collect(eng, 0.5)) >= 10
    finally:
        await eng.close()
        await assert_no_leaks()


def _write_gray(path: Path) -> Path:
    _write_video(path, [np.full((128, 128, 3), 120, np.uint8) for _ in range(4)])
    return path


async def test_bad_style_clips_are_refused_with_their_reason(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        await read_style_reference_async(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0" * 100)
    with pytest.raises(InputError, match="cannot read video"):
        await read_style_reference_async(junk)
    with pytest.raises(S2TError, match="longer than"):  # the child is killed, not left running
        await read_style_reference_async(_face_video(tmp_path / "slow.mp4"), timeout_s=0.05)
    coeffs = np.random.default_rng(0).random((30, 34)).astype(np.float32)
    np.save(tmp_path / "c.npy", coeffs)
    np.testing.assert_array_equal(await read_style_reference_async(tmp_path / "c.npy"), coeffs)
    await assert_no_leaks()
