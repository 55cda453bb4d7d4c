"""The MiniLM text encoder through ONNX Runtime: same embeddings as sentence-transformers, no torch at run time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.data import minilm_onnx

TEXTS = ["very happy", "", "sad and tearful " * 800, "très en colère, furieux", "a blend of jubilant and forlorn",
         "日本語のテキスト", "calm but slightly amused"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache with the graph exported into it once (the export itself is under test)."""
    d = tmp_path_factory.mktemp("s2t-cache")
    src = minilm_onnx.model_dir()
    old = os.environ.get(minilm_onnx.CACHE_ENV)
    os.environ[minilm_onnx.CACHE_ENV] = str(d)
    try:
        graph = minilm_onnx.export(src, minilm_onnx.graph_path(src))
    finally:
        if old is None:
            os.environ.pop(minilm_onnx.CACHE_ENV, None)
        else:
            os.environ[minilm_onnx.CACHE_ENV] = old
    assert graph.parent == d and graph.is_file() and not list(d.glob("*.part"))
    return d


def test_onnx_embeddings_match_sentence_transformers(cache: Path) -> None:
    from engine.data.texts import _encoder

    src = minilm_onnx.model_dir()
    enc = minilm_onnx.OnnxMiniLM(src, next(cache.glob("minilm-*.onnx")))
    got = enc.encode(TEXTS, batch_size=3)  # batches of mixed lengths: padding must not leak into the mean
    want = _encoder().encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    assert got.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert enc.encode([]).shape == (0, 384)


def test_runtime_emotion_needs_no_torch(cache: Path) -> None:
    code = ("import sys; from engine.motion.style_e import load_model; m = load_model(); "
            "c = m.emotion_code('extremely happy'); "
            "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules, 'torch was imported'; "
            "print(int(c.argmax()))")
    env = os.environ | {minilm_onnx.CACHE_ENV: str(cache)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "1"  # happy


def test_unwritable_cache_falls_back_to_sentence_transformers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    from engine.data.texts import embed_texts

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv(minilm_onnx.CACHE_ENV, str(blocker))
    minilm_onnx.load.cache_clear()
    try:
        assert minilm_onnx.load() is None
        assert "using sentence-transformers" in caplog.text
        emb = embed_texts(["quite sad"])
        assert emb.shape == (1, 384) and abs(float(np.linalg.norm(emb)) - 1.0) < 1e-5
    finally:
        minilm_onnx.load.cache_clear()


def test_corrupt_cached_graph_is_exported_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(minilm_onnx.CACHE_ENV, str(tmp_path))
    graph = minilm_onnx.graph_path(minilm_onnx.model_dir())
    graph.write_bytes(b"half a graph")  # what a full disk or a killed export leaves
    minilm_onnx.load.cache_clear()
    try:
        enc = minilm_onnx.load()
        assert enc is not None and graph.stat().st_size > 1_000_000
        assert enc.encode(["quite sad"]).shape == (1, 384)
    finally:
        minilm_onnx.load.cache_clear()
