"""Shared fixtures: where the real media lives (skip cleanly without it), temp dirs, leak checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("S2T_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (or $S2T_SHARED_DATA); tests needing it skip with the reason when absent."""
    if not (SHARED_DATA / "MANIFEST.md").is_file():
        pytest.skip(f"real media not found at {SHARED_DATA} (set S2T_SHARED_DATA); users need not have it")
    return SHARED_DATA


@pytest.fixture(scope="session")
def speech_files(shared_data: Path) -> list[Path]:
    files = sorted(p for p in (shared_data / "speech").iterdir() if p.is_file())
    if not files:
        pytest.skip("no speech clips in shared data")
    return files


@pytest.fixture(autouse=True)
def _fresh_style_fit_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with an empty style-reference fit cache of its own (engine.data.fit_cache), so a fit a
    test expects to run is never served from an earlier test or the user's cache."""
    monkeypatch.setenv("S2T_STYLE_CACHE_DIR", str(tmp_path_factory.mktemp("style_refs")))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Destroy, with linger 0, the zmq contexts tests left behind (and say so). A finished CI run once hung in
    pytest's last gc pass, in the term() of a collected context: an engine whose close() was cancelled part-way
    had left its hub socket open (fixed in Engine.close; this is the safety net). No gc.collect() first: that is
    what runs the blocking destructor. pyzmq's own zero-copy garbage-collector context is left to its atexit."""
    import gc
    import sys
    import warnings

    try:
        import zmq
        from zmq.utils.garbage import gc as zmq_gc
    except ImportError:
        return
    with warnings.catch_warnings():  # isinstance on some lazily deprecated module attributes warns
        warnings.simplefilter("ignore")
        contexts = [o for o in gc.get_objects() if isinstance(o, zmq.Context)]
    for ctx in contexts:
        if ctx.closed or ctx is zmq_gc._context:
            continue
        left = [s for s in list(getattr(ctx, "_sockets", ())) if not s.closed]
        if left:
            kinds = ", ".join(f"type {s.type} at {s.getsockopt(zmq.LAST_ENDPOINT)!r}" for s in left)
            sys.stderr.write(f"\nconftest: a zmq context left with {len(left)} open socket(s) ({kinds}); destroyed\n")
        ctx.destroy(linger=0)
