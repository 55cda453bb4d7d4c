"""A video style reference is fitted once per content: the cache (engine.data.fit_cache) serves it again, keyed on
the file's bytes, and never serves a fit for other bytes, a broken entry, or with the cache turned off."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np
import pytest

from engine.data import fit as F
from engine.data import fit_cache
from engine.motion.style_e import read_style_reference


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """fit_video replaced by a counting fake: 30 frames, the first 5 without a face."""
    calls: list[str] = []

    def fake(path: Path, size: int = 256, max_frames: int | None = None, max_side: int | None = None) -> F.ClipFit:
        calls.append(Path(path).name)
        seed = int.from_bytes(Path(path).read_bytes()[:4].ljust(4, b"\0"), "little")
        coeffs = np.random.default_rng(seed).random((30, 34)).astype(np.float32)
        valid = np.arange(30) >= 5
        return F.ClipFit(Path(path).stem, coeffs, valid, np.zeros(30), 25.0, None)

    monkeypatch.setattr(F, "fit_video", fake)
    return calls


def _clip(path: Path, content: bytes) -> Path:
    path.write_bytes(content + b"\0" * 2000)
    return path


def test_a_clip_is_fitted_once_and_read_back_the_same(fits: list[str], tmp_path: Path) -> None:
    clip = _clip(tmp_path / "me.mp4", b"abcd")
    first = read_style_reference(clip)
    assert fits == ["me.mp4"] and first.shape == (25, 34)  # the faceless frames left out
    again = read_style_reference(clip)
    assert fits == ["me.mp4"], "the second read must come from the cache"
    np.testing.assert_array_equal(again, first)
    moved = tmp_path / "renamed.mov"
    moved.write_bytes(clip.read_bytes())  # the same bytes under another name: still the same fit
    np.testing.assert_array_equal(read_style_reference(moved), first)
    assert fits == ["me.mp4"]
    _clip(clip, b"wxyz")  # the file changed: fitted again, not served the old fit
    changed = read_style_reference(clip)
    assert fits == ["me.mp4", "me.mp4"] and not np.array_equal(changed, first)
    read_style_reference(clip, max_frames=100)  # read over fewer frames: another fit
    assert len(fits) == 3


def test_cache_off_broken_entries_and_an_unwritable_folder(fits: list[str], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    clip = _clip(tmp_path / "me.mp4", b"abcd")
    monkeypatch.setenv(fit_cache.CACHE_ENV, "0")
    read_style_reference(clip)
    read_style_reference(clip)
    assert len(fits) == 2 and (not fit_cache.folder().exists() or not any(fit_cache.folder().iterdir()))
    monkeypatch.delenv(fit_cache.CACHE_ENV)
    want = read_style_reference(clip)
    entry = fit_cache.entry(clip, fit_cache.STYLE_VIDEO_MAX_FRAMES, fit_cache.STYLE_VIDEO_MAX_SIDE)
    assert entry.is_file() and len(fits) == 3
    entry.write_bytes(b"not an npz")
    with caplog.at_level(logging.WARNING):
        np.testing.assert_array_equal(read_style_reference(clip), want)  # refitted, and the entry replaced
    assert len(fits) == 4 and "ignoring the cached fit" in caplog.text
    np.testing.assert_array_equal(read_style_reference(clip), want)
    assert len(fits) == 4
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv(fit_cache.DIR_ENV, str(blocker / "cache"))  # cannot be created: the fit still arrives
    np.testing.assert_array_equal(read_style_reference(clip), want)
    assert len(fits) == 5


def test_a_live_session_reads_a_cached_clip_without_a_child_process(fits: list[str], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.runtime import style_ref

    clip = _clip(tmp_path / "me.mp4", b"abcd")
    want = read_style_reference(clip)

    def no_child(*_: object) -> None:
        raise AssertionError("a cached clip needs no fitting process")

    monkeypatch.setattr(style_ref.multiprocessing, "get_context", no_child)
    np.testing.assert_array_equal(asyncio.run(style_ref.read_style_reference_async(clip)), want)
    assert len(fits) == 1
    with pytest.raises(AssertionError, match="no fitting process"):  # a new clip still goes to a child
        asyncio.run(style_ref.read_style_reference_async(_clip(tmp_path / "new.mp4", b"efgh")))


def test_the_hub_reads_a_coefficient_file_without_onnx_runtime(tmp_path: Path) -> None:
    import subprocess
    import sys

    ref = tmp_path / "ref.npy"
    np.save(ref, np.random.default_rng(0).random((40, 34)).astype(np.float32))
    code = ("import asyncio, sys; from engine.runtime.style_ref import read_style_reference_async; "
            f"c = asyncio.run(read_style_reference_async({str(ref)!r})); assert c.shape == (40, 34); "
            "heavy = [m for m in ('onnxruntime', 'torch', 'engine.motion.style_e') if m in sys.modules]; "
            "assert not heavy, heavy")
    r = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
