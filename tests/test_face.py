"""Face image loading, tracking, model and reference renderer: errors, warnings, round trips, fidelity."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.errors import ImageError, InputError, NoFaceError
from engine.face.image import load_image
from engine.face.model import FaceModel
from engine.face.reference_renderer import ReferenceRenderer
from engine.face.tracker import FaceTracker, mouth_aperture, mouth_aperture_series
from engine.spec import DEFAULT_SPEC

PORTRAIT = "portraits/photo_macron.png"


@pytest.fixture(scope="module")
def tracker() -> FaceTracker:
    with FaceTracker(static_image_mode=True, max_faces=4) as t:
        yield t


@pytest.fixture(scope="module")
def portrait(shared_data: Path) -> np.ndarray:
    return load_image(shared_data / PORTRAIT)


@pytest.fixture(scope="module")
def model(portrait: np.ndarray, tracker: FaceTracker) -> FaceModel:
    return FaceModel.from_portrait(portrait, size=256, tracker=tracker)


# ---- image loading ----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.png")


def test_corrupt_image(tmp_path: Path) -> None:
    good = io.BytesIO()
    from PIL import Image

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(good, format="PNG")
    p = tmp_path / "broken.png"
    p.write_bytes(good.getvalue()[:60])
    with pytest.raises(ImageError, match="corrupt|truncated|unknown"):
        load_image(p)


def test_unknown_format(tmp_path: Path) -> None:
    p = tmp_path / "notes.png"
    p.write_text("this is not an image\n" * 20)
    with pytest.raises(ImageError, match="unknown or unsupported"):
        load_image(p)
    with pytest.raises(ImageError):
        load_image(b"")


def test_modes_and_exif_orientation() -> None:
    from PIL import Image

    gray = Image.fromarray(np.tile(np.arange(40, dtype=np.uint8), (30, 1)))
    buf = io.BytesIO()
    gray.save(buf, format="PNG")
    arr = load_image(buf.getvalue())
    assert arr.shape == (30, 40, 3) and arr.dtype == np.uint8
    rgba = Image.fromarray(np.zeros((20, 30, 4), np.uint8))  # fully transparent -> white
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    assert load_image(buf.getvalue()).min() == 255
    # EXIF orientation 6 (rotate 90° clockwise on display): a 40×20 (w×h) file shows as 20×40.
    im = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif.tobytes())
    assert load_image(buf.getvalue()).shape == (40, 20, 3)


def test_huge_photo_downscaled(portrait: np.ndarray, tracker: FaceTracker, tmp_path: Path,
                               caplog: pytest.LogCaptureFixture) -> None:
    # ~50 megapixels (8660×5774), written as a fast low-quality JPEG
    big = cv2.resize(portrait, (8660, 5774), interpolation=cv2.INTER_NEAREST)
    p = tmp_path / "big.jpg"
    ok, enc = cv2.imencode(".jpg", cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    p.write_bytes(enc.tobytes())
    del big
    with caplog.at_level(logging.WARNING):
        arr = load_image(p)
    assert max(arr.shape[:2]) == 2048
    assert any("downscaled" in r.message for r in caplog.records)
    assert tracker.track(arr).inter_ocular > 50


# ---- tracking ---------------------------------------------------------------------------------


def test_no_face(tracker: FaceTracker) -> None:
    grad = np.tile(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None], (256, 1, 3))
    with pytest.raises(NoFaceError):
        tracker.track(grad)
    with pytest.raises(NoFaceError):
        FaceModel.from_portrait(grad, tracker=tracker)


def test_track_portrait(portrait: np.ndarray, tracker: FaceTracker) -> None:
    t = tracker.track(portrait)
    assert t.landmarks.shape == (478, 3) and t.landmarks.dtype == np.float32
    assert t.n_faces == 1
    x0, y0, x1, y1 = t.bbox
    assert 0 <= x0 < x1 <= portrait.shape[1] and 0 <= y0 < y1 <= portrait.shape[0]
    assert abs(t.yaw) < 0.2 and abs(t.pitch) < 0.2 and abs(t.roll) < 0.1  # a frontal photo
    assert 0.2 * portrait.shape[1] < t.inter_ocular < 0.5 * portrait.shape[1]
    assert 0.0 <= mouth_aperture(t.landmarks) < 0.2


def test_roll_recovered(portrait: np.ndarray, tracker: FaceTracker) -> None:
    h, w = portrait.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -15.0, 1.0)  # clockwise on screen
    rotated = cv2.warpAffine(portrait, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    base, rot = tracker.track(portrait), tracker.track(rotated)
    assert rot.roll - base.roll == pytest.approx(np.deg2rad(15.0), abs=np.deg2rad(3.0))


def test_two_faces_warns(shared_data: Path, tracker: FaceTracker, caplog: pytest.LogCaptureFixture) -> None:
    a = load_image(shared_data / PORTRAIT)
    b = load_image(shared_data / "portraits/photo_woman_happy.png")
    b = cv2.resize(b, (a.shape[0] * b.shape[1] // b.shape[0], a.shape[0]))
    both = np.concatenate([a, b], axis=1)
    with caplog.at_level(logging.WARNING):
        t = tracker.track(both)
    assert t.n_faces == 2
    assert any("2 faces" in r.message for r in caplog.records)
    def area(tr: object) -> float:
        x0, y0, x1, y1 = tr.bbox  # type: ignore[attr-defined]
        return (x1 - x0) * (y1 - y0)

    right_is_larger = area(tracker.track(b)) > area(tracker.track(a))
    assert (t.bbox[0] >= a.shape[1]) == right_is_larger  # the largest face was chosen


# ---- model ------------------------------------------------------------------------------------


def test_model_neutral_and_shapes(model: FaceModel) -> None:
    spec = DEFAULT_SPEC
    assert model.crop.shape == (256, 256, 3) and model.size == 256
    n = spec.neutral(1)[0]
    np.testing.assert_allclose(model.deform(n), model.neutral[:, :2], atol=1e-4)
    c = np.repeat(n[None], 3, axis=0)
    c[1, spec.index("jawOpen")] = 1.0
    c[2, spec.index("yaw")] = 0.3
    out = model.deform_batch(c)
    assert out.shape == (3, 478, 2)
    np.testing.assert_allclose(out[1], model.deform(c[1]), atol=1e-4)
    # jawOpen moves the lower lip down and the chin down (and back, unseen here), not the eyes
    d = out[1] - out[0]
    assert d[152, 1] > 0.04 * model.iod and d[14, 1] > 0.1 * model.iod and d[14, 1] > d[152, 1]
    assert np.abs(d[[33, 263, 159, 386]]).max() < 1e-3
    with pytest.raises(InputError):
        model.deform(np.zeros(5))


def test_fit_round_trip(model: FaceModel) -> None:
    spec = DEFAULT_SPEC
    truth = spec.neutral(1)[0]
    for name, v in (("jawOpen", 0.6), ("mouthSmileLeft", 0.8), ("eyeBlinkRight", 0.9), ("browInnerUp", 0.5)):
        truth[spec.index(name)] = v
    truth[spec.index("yaw")] = 0.15
    truth[spec.index("pitch")] = -0.1
    truth[spec.index("roll")] = 0.05
    truth[spec.index("tx")] = 0.02
    truth[spec.index("scale")] = 1.05
    coeffs, err = model.fit(model.deform(truth))
    assert err < 0.005
    np.testing.assert_allclose(coeffs[spec.n_expression :], truth[spec.n_expression :], atol=0.01)
    np.testing.assert_allclose(coeffs[: spec.n_expression], truth[: spec.n_expression], atol=0.08)
    seq = np.stack([model.deform(truth * 0 + spec.neutral(1)[0]), model.deform(truth)])
    cs, errs = model.fit_sequence(seq)
    assert cs.shape == (2, spec.dim) and np.all(errs < 0.005)


def test_save_load(model: FaceModel, tmp_path: Path) -> None:
    p = tmp_path / "face.npz"
    model.save(p)
    again = FaceModel.load(p)
    c = DEFAULT_SPEC.neutral(1)[0]
    c[0] = 0.7
    np.testing.assert_array_equal(again.deform(c), model.deform(c))
    np.testing.assert_array_equal(again.crop, model.crop)
    with pytest.raises(InputError):
        FaceModel.load(tmp_path / "missing.npz")


# ---- renderer ---------------------------------------------------------------------------------


def test_render_neutral_is_crop(model: FaceModel) -> None:
    r = ReferenceRenderer(model)
    frame = r.render(DEFAULT_SPEC.neutral(1)[0])
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, model.crop)
    small = ReferenceRenderer(model, size=128).render(DEFAULT_SPEC.neutral(1)[0])
    assert small.shape == (128, 128, 3)
    assert np.abs(small.astype(int) - cv2.resize(model.crop, (128, 128), interpolation=cv2.INTER_AREA)).mean() < 2


def test_render_changes_where_expected(model: FaceModel) -> None:
    r = ReferenceRenderer(model)
    base = r.render(DEFAULT_SPEC.neutral(1)[0]).astype(int)
    c = DEFAULT_SPEC.neutral(1)[0]
    c[DEFAULT_SPEC.index("eyeBlinkLeft")] = 1.0
    diff = np.abs(r.render(c).astype(int) - base).sum(axis=2)
    ys, xs = np.nonzero(diff > 30)
    eye = model.neutral[[263, 362, 386, 374], :2]
    assert len(xs) > 20
    # all strong changes lie around the subject's left eye
    assert xs.min() > eye[:, 0].min() - 0.3 * model.iod and xs.max() < eye[:, 0].max() + 0.3 * model.iod
    c = DEFAULT_SPEC.neutral(2)
    c[1, DEFAULT_SPEC.index("yaw")] = 0.3
    frames = r.render_batch(c)
    assert frames.shape == (2, 256, 256, 3)
    assert np.abs(frames[1].astype(int) - base).mean() > 3
    with pytest.raises(InputError):
        r.render(np.full(DEFAULT_SPEC.dim, np.nan))


def test_jaw_open_fidelity(model: FaceModel, tracker: FaceTracker) -> None:
    """Mouth aperture tracked on rendered frames follows commanded jawOpen (Pearson >= 0.9)."""
    rng = np.random.default_rng(3)
    sweep = np.linspace(0.0, 1.0, 8)
    speech = np.clip(np.abs(np.convolve(rng.normal(0, 0.5, 30), np.ones(3) / 3, mode="same")), 0, 1)
    jaw = np.concatenate([sweep, speech])
    c = DEFAULT_SPEC.neutral(len(jaw))
    c[:, DEFAULT_SPEC.index("jawOpen")] = jaw
    c[:, DEFAULT_SPEC.index("yaw")] = 0.1 * np.sin(np.arange(len(jaw)) / 5)
    frames = ReferenceRenderer(model).render_batch(c)
    ap = mouth_aperture_series(frames, tracker=tracker)
    assert np.isfinite(ap).all()
    r = float(np.corrcoef(jaw, ap)[0, 1])
    assert r >= 0.9, f"Pearson r = {r:.3f}"
    assert ap[7] > ap[0] + 0.1  # fully open is clearly open


def test_aperture_series_nan_without_face(model: FaceModel) -> None:
    grad = np.tile(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None], (256, 1, 3))
    ap = mouth_aperture_series([model.crop, grad])
    assert np.isfinite(ap[0]) and np.isnan(ap[1])


def test_open_mouth_portrait_keeps_own_interior(model: FaceModel) -> None:
    """A portrait whose mouth is already open keeps its own interior by the lips; cavity fills only the new gap."""
    from engine.face import topology as tp

    neutral = model.neutral.copy()
    inner = tp.LIP_LOWER_INNER[1:-1]
    neutral[inner, 1] += 0.15 * model.iod  # pretend the portrait's mouth is open
    crop = model.crop.copy()
    hole = np.concatenate([neutral[tp.LIP_UPPER_INNER, :2], neutral[tp.LIP_LOWER_INNER[::-1][1:-1], :2]])
    cv2.fillPoly(crop, [np.round(hole).astype(np.int32)], (0, 255, 0))  # its "teeth": pure green
    opened = FaceModel(crop=crop, neutral=neutral, crop_matrix=model.crop_matrix)
    c = DEFAULT_SPEC.neutral(1)[0]
    c[DEFAULT_SPEC.index("jawOpen")] = 1.0
    frame = ReferenceRenderer(opened).render(c).astype(int)
    xy = opened.deform(c)
    up, lo = xy[13], xy[14]
    near_upper = np.round(up + (0.03 * model.iod) * (lo - up) / np.linalg.norm(lo - up)).astype(int)
    middle = np.round(0.5 * (up + lo)).astype(int)
    g = frame[near_upper[1], near_upper[0]]
    assert g[1] > 200 and g[0] < 60 and g[2] < 60, g  # own interior moved with the upper lip
    m = frame[middle[1], middle[0]]
    assert m[1] < 60 and m[0] < 90, m  # the newly opened band is painted cavity
