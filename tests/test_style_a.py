"""Style-A with the shipped weights: rendering, control, batching, art style, bad input, runtime stage, CLI hook."""

from __future__ import annotations

import argparse
import logging

import cv2
import numpy as np
import pytest

from engine.assets import asset_path
from engine.errors import ImageError, InputError, NoFaceError
from engine.face.image import load_image
from engine.render.renderer import STYLES, StyleAGraphs, StyleARenderer, load_renderer, prepare_picture
from engine.render.stylize import stylize
from engine.spec import DEFAULT_SPEC

JAW = DEFAULT_SPEC.index("jawOpen")


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return load_image(asset_path("portrait.png"))


@pytest.fixture(scope="module")
def renderer(portrait: np.ndarray) -> StyleARenderer:
    return load_renderer(portrait, size=256, strength=0.0)


def _coeffs(jaw: float = 0.0) -> np.ndarray:
    c = DEFAULT_SPEC.neutral(1)[0]
    c[JAW] = jaw
    return c


def test_render_shape_and_refines_reference(renderer: StyleARenderer) -> None:
    # the shipped refiner is conservative (off-face still loss): near the portrait's own expression it keeps the
    # warp almost as is, and corrects where the warp has to invent (open mouth, smile, puffed cheeks)
    expressive = []
    for name, value in (("jawOpen", 0.8), ("mouthSmileLeft", 0.7), ("cheekPuff", 0.8)):
        c = _coeffs(0.3)
        c[DEFAULT_SPEC.index(name)] = value
        expressive.append(c)
    out = renderer.render_batch(np.stack(expressive))
    ref = np.stack([renderer.reference.render(c) for c in expressive])
    assert out.shape == (3, 256, 256, 3) and out.dtype == np.uint8
    diff = np.abs(out.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() >= 4  # a correction, not a no-op
    assert diff.mean(axis=(1, 2, 3)).max() < 25.0  # and not a repaint


def test_mouth_follows_jaw(renderer: StyleARenderer) -> None:
    from engine.face.tracker import FaceTracker, mouth_aperture

    with FaceTracker(static_image_mode=True, max_faces=1) as trk:
        ap = [mouth_aperture(trk.track(renderer.render(_coeffs(j))).landmarks) for j in (0.0, 0.3, 0.6)]
    assert ap[0] < ap[1] < ap[2]


def test_batch_equals_single(renderer: StyleARenderer) -> None:
    cs = np.stack([_coeffs(j) for j in (0.0, 0.2, 0.5)])
    batch = renderer.render_batch(cs)
    single = np.stack([renderer.render(c) for c in cs])
    assert np.abs(batch.astype(np.int16) - single.astype(np.int16)).max() <= 1


def test_graph_dynamic_batch_and_size() -> None:
    g = StyleAGraphs.shared()
    rng = np.random.default_rng(0)
    for b, s in ((3, 256), (1, 128), (2, 512)):
        out = g.render(rng.integers(0, 256, (b, s, s, 3), dtype=np.uint8), DEFAULT_SPEC.neutral(b),
                       np.zeros((b, 1), np.float32), rng.standard_normal((b, g.id_dim)).astype(np.float32),
                       np.zeros((b, g.style_dim), np.float32))
        assert out.shape == (b, s, s, 3) and out.dtype == np.uint8


def test_onnx_matches_torch() -> None:
    from exporters.onnx_style_a import parity
    from engine.render.renderer import WEIGHTS_DIR

    res = parity(WEIGHTS_DIR / "style_a.npz", WEIGHTS_DIR, batch=2, size=128)
    assert res["encode_max_abs"] < 1e-4
    assert res["render_max_abs_u8"] <= 1.0 and res["render_mean_abs_u8"] < 0.01


def test_art_style_and_strength(portrait: np.ndarray, renderer: StyleARenderer) -> None:
    c = _coeffs(0.2)
    plain = renderer.render(c)
    art = stylize(renderer.model.crop, "pop")
    r = StyleARenderer(portrait, size=256, art_style=art, strength=0.0, graphs=renderer.graphs)
    assert np.array_equal(r.render(c), plain)  # strength 0: the art picture has no effect
    r.set_strength(1.0)
    styled = r.render(c)
    r.set_strength(0.5)
    half = r.render(c)
    d_full = np.abs(styled.astype(np.int16) - plain).mean()
    d_half = np.abs(half.astype(np.int16) - plain).mean()
    assert d_full > 10.0 and 0.2 * d_full < d_half < d_full


def test_strength_needs_an_art_picture(portrait: np.ndarray, renderer: StyleARenderer) -> None:
    """Without an art picture the frame is photographic whatever the strength (strength is the art's share)."""
    c = _coeffs(0.2)
    r = StyleARenderer(portrait, size=256, strength=1.0, graphs=renderer.graphs)
    assert r.effective_strength == 0.0
    assert np.array_equal(r.render(c), renderer.render(c))


def test_style_encoder_names_styles_of_an_unseen_portrait(renderer: StyleARenderer) -> None:
    crop = renderer.model.crop  # the bundled portrait is not among the training style pictures
    hits = [renderer.graphs.encode(crop, prepare_picture(stylize(crop, k, seed=5))).nearest_style == s
            for k, s in enumerate(STYLES)]
    assert sum(hits) >= 5, hits


def test_bad_inputs(portrait: np.ndarray, renderer: StyleARenderer, caplog: pytest.LogCaptureFixture) -> None:
    gray = cv2.cvtColor(portrait, cv2.COLOR_RGB2GRAY)
    assert StyleARenderer(gray, graphs=renderer.graphs).render(_coeffs()).shape == (256, 256, 3)
    rgba = np.concatenate([portrait, np.full(portrait.shape[:2] + (1,), 255, np.uint8)], axis=2)
    assert StyleARenderer(rgba, graphs=renderer.graphs).render(_coeffs()).shape == (256, 256, 3)
    with caplog.at_level(logging.WARNING):
        tiny = prepare_picture(cv2.resize(stylize(renderer.model.crop, "sketch"), (64, 64)))
    assert tiny.shape == (128, 128, 3) and "small" in caplog.text
    huge = prepare_picture(np.full((3000, 2000, 3), 200, np.uint8))
    assert huge.shape == (128, 128, 3)
    with pytest.raises(ImageError):
        prepare_picture(np.zeros((10, 10, 3), np.uint8))
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(InputError):
            renderer.set_strength(bad)
        with pytest.raises(InputError):
            load_renderer(portrait, strength=bad)
    with pytest.raises(InputError):
        renderer.render(np.full(34, np.nan, np.float32))
    with pytest.raises(InputError):
        renderer.render(np.zeros(10, np.float32))
    with pytest.raises(InputError):
        renderer.set_size(250)
    with pytest.raises(NoFaceError):
        renderer.set_portrait(np.full((256, 256, 3), 90, np.uint8))
    assert renderer.render(_coeffs()).shape == (256, 256, 3)  # the old face is kept


def test_render_stage_protocol() -> None:
    from engine.config import EngineConfig
    from engine.render.renderer import StyleARenderStage
    from engine.runtime.budget import DEFAULT_LADDER
    from engine.runtime.stages import RenderStage

    stage = StyleARenderStage(EngineConfig())
    assert isinstance(stage, RenderStage)
    full = stage.render(_coeffs(0.3))
    stage.set_quality(DEFAULT_LADDER[-1])  # small, refinement off: the reference warp at half size
    low = stage.render(_coeffs(0.3))
    assert low.shape == (128, 128, 3)
    stage.set_quality(DEFAULT_LADDER[0])
    assert np.array_equal(stage.render(_coeffs(0.3)), full)
    stage.set_art_style(stylize(full, "sketch"))
    assert np.abs(stage.render(_coeffs(0.3)).astype(np.int16) - full).mean() > 5.0


def test_cli_factory_builds_style_a(tmp_path: object, portrait: np.ndarray) -> None:
    from pathlib import Path

    from clients.render import build_stages

    pic = Path(str(tmp_path)) / "art.png"
    cv2.imwrite(str(pic), cv2.cvtColor(stylize(portrait, "watercolour"), cv2.COLOR_RGB2BGR))
    args = argparse.Namespace(style_ref=None, motion="baseline", renderer="style-a", art_style=str(pic),
                              style_strength=0.7, fps=25.0, emotion="neutral", seed=0, size=256)
    _, r = build_stages(args, portrait)
    assert isinstance(r, StyleARenderer) and r.strength == pytest.approx(0.7)
    assert r.render(_coeffs()).shape == (256, 256, 3)
