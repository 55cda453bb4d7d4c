"""Style-A training pieces: stylisers, metrics, a few-step smoke run on tiny tensors, weight round trip, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import ImageError, InputError
from engine.render.data import ReenactSet, face_mask, masked_psnr, masked_ssim
from engine.render.networks import N_STYLES, ModConv, StyleA, StyleAConfig
from engine.render.stylize import STYLES, stylize
from engine.render.train import (TrainConfig, load_weights, save_weights, ssim_map, still_loss, style_bank, to_tensor,
                                train)


def _face(size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.stack([128 + 60 * np.sin(xx / 7.0), 100 + 50 * np.cos(yy / 5.0), 90 + 0 * xx], axis=2)
    img += rng.normal(0, 10, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_stylisers_differ_and_are_deterministic() -> None:
    img = _face(96)
    outs = [stylize(img, s, seed=3) for s in STYLES]
    assert len(STYLES) >= 6
    for o in outs:
        assert o.shape == img.shape and o.dtype == np.uint8
        assert np.abs(o.astype(np.int16) - img).mean() > 5
    for a in range(len(outs)):
        for b in range(a + 1, len(outs)):
            assert np.abs(outs[a].astype(np.int16) - outs[b]).mean() > 3, (STYLES[a], STYLES[b])
    assert np.array_equal(stylize(img, "halftone", seed=3), outs[STYLES.index("halftone")])
    with pytest.raises(ImageError):
        stylize(img, "cubism")
    with pytest.raises(ImageError):
        stylize(img[..., 0], "sketch")


def test_metrics() -> None:
    a = _face(64)
    m = np.zeros((64, 64), np.uint8)
    m[16:48, 16:48] = 1
    assert masked_psnr(a, a, m) > 90 and masked_ssim(a, a, m) == pytest.approx(1.0, abs=1e-6)
    b = a.copy()
    b[:8] = 0  # damage outside the mask only
    assert masked_psnr(b, a, m) > 90
    b[20:30, 20:30] = 0
    assert masked_psnr(b, a, m) < 30 and masked_ssim(b, a, m) < 0.95
    t = to_tensor(np.stack([a, b]))
    s = ssim_map(t, t)
    assert torch.allclose(s, torch.ones_like(s), atol=1e-4)


def test_face_mask_is_hull() -> None:
    pts = np.zeros((478, 3))
    ang = np.linspace(0, 2 * np.pi, 468, endpoint=False)
    pts[:468, 0] = 32 + 10 * np.cos(ang)
    pts[:468, 1] = 32 + 10 * np.sin(ang)
    m = face_mask(pts, 64)
    assert m[32, 32] == 1 and m[5, 5] == 0
    assert abs(int(m.sum()) - np.pi * 100) < 40


def test_modconv_batch_rows_independent() -> None:
    torch.manual_seed(0)
    conv = ModConv(4, 5, 8)
    with torch.no_grad():
        conv.affine.weight.normal_()
    x, w = torch.randn(3, 4, 8, 8), torch.randn(3, 8)
    full = conv(x, w)
    for i in range(3):
        assert torch.allclose(conv(x[i : i + 1], w[i : i + 1]), full[i : i + 1], atol=1e-5)


def test_untrained_generator_is_near_identity() -> None:
    net = StyleA(StyleAConfig()).eval()
    x = to_tensor(_face(64)[None])
    with torch.no_grad():
        ids, code, logits = net.encode(to_tensor(_face(128)[None]), x.new_zeros(1, 3, 128, 128))
        out = net.render(x, torch.zeros(1, 34), torch.zeros(1, 1), ids, code)
    assert logits.shape == (1, N_STYLES) and out.shape == x.shape
    assert (out - x).abs().mean() < 0.05


def test_keep_detail_low_passes_the_correction() -> None:
    """At strength 0 the frame is the warp plus a low-passed correction; at strength 1 the raw output."""
    from engine.render.networks import lowpass

    torch.manual_seed(0)
    net = StyleA(StyleAConfig(detail_blur=3)).eval()
    for prm in net.generator.h2.parameters():  # a non-trivial correction (h2 starts at zero)
        torch.nn.init.normal_(prm, std=0.3)
    x = to_tensor(_face(64)[None])
    w = torch.randn(1, net.cfg.w_dim)
    with torch.no_grad():
        raw = net.generator(x, w)[0]  # flow weights start at zero: the re-warp is the identity
        kept = net.generator(x, w, torch.ones(1, 1))[0]
        half = net.generator(x, w, torch.full((1, 1), 0.5))[0]
    lo = lowpass(raw - x, 3)
    assert (raw - x).abs().mean() > 0.05  # the correction is real, and has detail to remove
    torch.testing.assert_close(kept, x + lo, atol=1e-5, rtol=0)
    torch.testing.assert_close(half, 0.5 * (raw + kept), atol=1e-5, rtol=0)
    assert ((kept - x) - lo).abs().max() < 1e-5 and (raw - x - lo).abs().mean() > 0.01


def test_still_loss_counts_off_face_changes_of_photographic_frames_only() -> None:
    warped = torch.zeros(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1.0
    s0, s1 = torch.zeros(2, 1), torch.ones(2, 1)
    on_face = warped + 0.5 * mask  # a face-only correction is free
    assert still_loss(on_face, warped, mask, s0).item() == 0.0
    off_face = warped + 0.5 * (1.0 - mask)
    assert still_loss(off_face, warped, mask, s0).item() == pytest.approx(0.5 * (1 - 16 / 64))
    assert still_loss(off_face, warped, mask, s1).item() == 0.0  # full art style: restyle everything
    assert still_loss(off_face, warped, mask, torch.tensor([[0.0], [1.0]])).item() == pytest.approx(0.25 * (1 - 16 / 64))


def _tiny_set(n: int = 6, size: int = 64) -> ReenactSet:
    rng = np.random.default_rng(1)
    tg = np.stack([_face(size, i) for i in range(n)])
    wp = np.clip(tg.astype(np.int16) + rng.integers(-20, 20, tg.shape), 0, 255).astype(np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    masks[:, 16:48, 16:48] = 1
    return ReenactSet(tg[:1].copy(), np.zeros(n, np.int64), tg, wp, masks, DEFAULT_COEFFS(n),
                      np.array(["train"] * (n - 2) + ["heldout", "unseen"]), np.array(["clip"] * n))


def DEFAULT_COEFFS(n: int) -> np.ndarray:  # noqa: N802 - reads like a constant table
    from engine.spec import DEFAULT_SPEC

    return DEFAULT_SPEC.neutral(n)


def test_train_smoke_and_weight_round_trip(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = _tiny_set()
    bank = style_bank([_face(64, 9)], 32, seed=0, scales=(64,))
    assert bank[0].shape == (N_STYLES, 32, 32, 3)
    cfg = TrainConfig(steps=4, batch=2, patch=32, gan_start=2, log_every=2, minutes=2.0)
    model, stats = train(data, bank, cfg)
    assert stats["steps"] == 4 and np.isfinite(stats["final_rec_loss"])
    path = tmp_path / "w.npz"
    save_weights(model, path, {"note": "smoke"})
    again, meta = load_weights(path)
    assert meta == {"note": "smoke"}
    x = to_tensor(data.warped[:2])
    with torch.no_grad():
        ids, code, _ = model.encode(to_tensor(np.stack([_face(128)] * 2)), to_tensor(bank[0][:2]))
        a = model.render(x, torch.from_numpy(data.coeffs[:2]), torch.ones(2, 1), ids, code)
        b = again.render(x, torch.from_numpy(data.coeffs[:2]), torch.ones(2, 1), ids, code)
    assert torch.equal(a, b)
    with pytest.raises(InputError):
        load_weights(tmp_path / "missing.npz")


def test_warm_start_copies_matching_tensors(tmp_path: Path) -> None:
    from engine.render.train import warm_start

    torch.manual_seed(0)
    src = StyleA(StyleAConfig())
    save_weights(src, tmp_path / "a.npz", {})
    torch.manual_seed(1)
    dst = warm_start(StyleA(StyleAConfig(id_dim=32)), tmp_path / "a.npz")  # content head / mapping differ in shape
    assert torch.equal(dst.generator.m1.weight, src.generator.m1.weight)
    assert not torch.equal(dst.mapping.net[0].weight[:, :10], src.mapping.net[0].weight[:, :10])
