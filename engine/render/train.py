"""Style-A training recipe: self-reenactment on real clips + procedural art styles; weights saved as .npz (no pickle).

One run trains the style encoder (classification of generated art pictures), the content encoder,
mapping and generator (masked L1 + SSIM + gradient structure on the face, a patch discriminator
with hinge loss and feature matching). CPU recipe: 128-px patches of 256-px frames, batch 4; on a GPU
the same recipe runs with larger batches (`--batch`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import InputError
from engine.render.data import ReenactSet
from engine.render.networks import N_STYLES, Discriminator, StyleA, StyleAConfig
from engine.render.stylize import STYLES, stylize

log = logging.getLogger(__name__)

PORTRAITS_DIR = "portraits"
# Photos never used to make training style pictures: their stylised versions are the held-out art test set.
HELDOUT_PHOTOS: tuple[str, ...] = ("photo_anne_aligned", "photo_macron", "photo_woman_sad", "photo_dicaprio",
                                   "photo_asian_woman", "statue_david")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Recipe knobs; defaults are the shipped CPU run."""

    steps: int = 2400
    batch: int = 4
    patch: int = 128
    lr: float = 2e-3
    style_prob: float = 0.5
    w_ssim: float = 0.5
    w_grad: float = 0.5
    w_adv: float = 0.02
    w_fm: float = 0.5
    gan_start: int = 600
    jitter: float = 0.15  # colour augmentation strength (0 = off)
    w_flow: float = 0.1  # L1 on the residual flow (per pixel of displacement): keeps the geometry the coefficients set
    w_keep: float = 2.0  # L1 between output and warp gradients on the face, weighted by (1 - strength): structure stays the warp's
    # L1 between output and warp off the face (hair, neck, clothes, background), weighted by (1 - strength): the refiner
    # fixes the face; elsewhere it keeps the warp (its halos at the jaw and neck moved the tracked face outline).
    # 4 = the shipped weights' last run (runs 9-12 warm-started at 1, 2, 3, 4)
    w_still: float = 4.0
    seed: int = 0
    minutes: float = 22.0  # wall-clock cap
    log_every: int = 100
    model: StyleAConfig = field(default_factory=StyleAConfig)


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """(…, H, W, 3) uint8 -> (…, 3, H, W) float in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(img)).float().div_(127.5).sub_(1.0)
    return t.movedim(-1, -3)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """(…, 3, H, W) in [-1, 1] -> (…, H, W, 3) uint8."""
    return ((t.detach().clamp(-1, 1) + 1.0) * 127.5 + 0.5).to(torch.uint8).movedim(-3, -1).cpu().numpy()


def fit_square(img: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to square and resize (area filter when shrinking) to size×size."""
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    sq = img[y0 : y0 + s, x0 : x0 + s]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_CUBIC
    return cv2.resize(sq, (size, size), interpolation=interp)


def style_bank(bases: list[np.ndarray], size: int, seed: int, scales: tuple[int, ...] = (256, 160)) -> tuple[np.ndarray, np.ndarray]:
    """Art pictures (N, size, size, 3) uint8 and labels (N,): every base × style × working scale."""
    pics, labels = [], []
    for b, base in enumerate(bases):
        for k in range(N_STYLES):
            for s in scales:
                img = stylize(fit_square(base, s), k, seed=seed + 31 * b + s)
                pics.append(fit_square(img, size))
                labels.append(k)
    return np.stack(pics), np.asarray(labels, np.int64)


def portrait_bases(data_root: Path, holdout: bool) -> list[np.ndarray]:
    """Photo portraits from shared/data (held-out ones or the rest), loaded RGB."""
    from engine.face.image import load_image

    d = data_root / PORTRAITS_DIR
    if not d.is_dir():
        return []
    out = []
    for p in sorted(d.iterdir()):
        if not p.stem.startswith(("photo_", "statue_")):
            continue
        if (p.stem in HELDOUT_PHOTOS) == holdout:
            out.append(load_image(p, max_side=512))
    return out


def _gauss_window(sigma: float = 1.5, k: int = 11) -> torch.Tensor:
    x = torch.arange(k, dtype=torch.float32) - k // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM (B×1×H×W, channel mean) of images in [-1, 1], Gaussian window σ=1.5."""
    g = _gauss_window().to(a)
    c = a.shape[1]
    gx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    gy = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (5, 5, 5, 5), mode="reflect")
        return F.conv2d(F.conv2d(x, gx, groups=c), gy, groups=c)

    a, b = (a + 1) / 2, (b + 1) / 2
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma**2, blur(b * b) - mb**2, blur(a * b) - ma * mb
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return s.mean(1, keepdim=True)


def _grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def save_weights(model: StyleA, path: str | Path, meta: dict[str, object]) -> None:
    """State dict as float32 arrays + JSON config/meta in one .npz (loadable without pickle)."""
    arrays = {f"p/{k}": v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    np.savez_compressed(Path(path), config=np.array(json.dumps(model.cfg.to_dict())), meta=np.array(json.dumps(meta)), **arrays)


def load_weights(path: str | Path) -> tuple[StyleA, dict[str, object]]:
    """Rebuild a StyleA from `save_weights` output; InputError if missing or malformed."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"Style-A weights not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as z:
            cfg = StyleAConfig.from_dict(json.loads(str(z["config"])))
            meta = json.loads(str(z["meta"]))
            state = {k[2:]: torch.from_numpy(z[k]) for k in z.files if k.startswith("p/")}
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"cannot read Style-A weights {p}: {e}") from None
    model = StyleA(cfg)
    model.load_state_dict(state)
    return model.eval(), meta


def warm_start(model: StyleA, path: str | Path) -> StyleA:
    """Copy every parameter of `path` whose name and shape match into `model` (new layers keep their init)."""
    with np.load(Path(path), allow_pickle=False) as z:
        old = {k[2:]: z[k] for k in z.files if k.startswith("p/")}
    state = model.state_dict()
    same = {k: torch.from_numpy(v) for k, v in old.items() if k in state and tuple(state[k].shape) == v.shape}
    state.update(same)
    model.load_state_dict(state)
    log.info("warm start from %s: %d/%d tensors copied", path, len(same), len(state))
    return model


class _Batcher:
    """Random training batches: face-biased patches, optional art style on the target."""

    def __init__(self, data: ReenactSet, bank: tuple[np.ndarray, np.ndarray], cfg: TrainConfig, content_size: int) -> None:
        self.d, self.cfg = data, cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.bank_pics, self.bank_labels = bank
        self.by_style = [np.flatnonzero(self.bank_labels == k) for k in range(N_STYLES)]
        self.portraits = np.stack([cv2.resize(p, (content_size, content_size), interpolation=cv2.INTER_AREA)
                                   for p in data.portraits])
        ys, xs = np.nonzero(data.masks.max(0))
        self.centre = (float(ys.mean()), float(xs.mean())) if len(ys) else (data.targets.shape[1] / 2,) * 2

    def __call__(self) -> dict[str, torch.Tensor]:
        cfg, rng, d = self.cfg, self.rng, self.d
        n, size, ps = cfg.batch, d.targets.shape[1], cfg.patch
        idx = rng.integers(0, len(d), n)
        warped, target, mask, strength, pics = [], [], [], np.zeros((n, 1), np.float32), []
        for j, i in enumerate(idx):
            # the same random colour/brightness change on input and target: corrections must be relative
            gain = rng.uniform(1.0 - cfg.jitter, 1.0 + cfg.jitter, 3) * rng.uniform(1.0 - cfg.jitter, 1.0 + cfg.jitter)
            bias = rng.normal(0.0, 40.0 * cfg.jitter)
            tgt = np.clip(d.targets[i] * gain + bias, 0, 255).astype(np.uint8)
            wrp = np.clip(d.warped[i] * gain + bias, 0, 255).astype(np.uint8)
            style = int(rng.integers(0, N_STYLES))
            if rng.random() < cfg.style_prob:
                s = 1.0 if rng.random() < 0.4 else float(rng.uniform(0.2, 1.0))
                styled = stylize(tgt, style, seed=int(rng.integers(0, 1000))).astype(np.float32)
                tgt = np.clip(tgt + s * (styled - tgt) + 0.5, 0, 255).astype(np.uint8)
                strength[j] = s
            pics.append(self.bank_pics[rng.choice(self.by_style[style])])
            cy = int(np.clip(self.centre[0] + rng.normal(0, size / 8) - ps / 2, 0, size - ps))
            cx = int(np.clip(self.centre[1] + rng.normal(0, size / 8) - ps / 2, 0, size - ps))
            sl = (slice(cy, cy + ps), slice(cx, cx + ps))
            warped.append(wrp[sl])
            target.append(tgt[sl])
            mask.append(d.masks[i][sl])
        flip = rng.random() < 0.5
        t = {
            "warped": to_tensor(np.stack(warped)), "target": to_tensor(np.stack(target)),
            "mask": torch.from_numpy(np.stack(mask)).float()[:, None],
            "coeffs": torch.from_numpy(d.coeffs[idx]), "strength": torch.from_numpy(strength),
            "portrait": to_tensor(self.portraits[d.portrait_id[idx]]), "picture": to_tensor(np.stack(pics)),
        }
        if flip:  # mirror the art pictures only: style is mirror-invariant, geometry is not
            t["picture"] = t["picture"].flip(-1)
        k = rng.integers(0, len(self.bank_labels), 3 * n)
        t["cls_pics"] = to_tensor(self.bank_pics[k])
        t["cls_labels"] = torch.from_numpy(self.bank_labels[k])
        return t


def recon_loss(out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Face-weighted L1 + (1 - SSIM) + gradient-structure L1."""
    wgt = 0.25 + 0.75 * mask
    l1 = ((out - target).abs() * wgt).mean()
    ss = ((1.0 - ssim_map(out, target)) * wgt).mean()
    (ox, oy), (tx, ty) = _grad(out), _grad(target)
    gl = ((ox - tx).abs() * wgt[..., :, 1:]).mean() + ((oy - ty).abs() * wgt[..., 1:, :]).mean()
    return l1 + cfg.w_ssim * ss + cfg.w_grad * gl


def still_loss(out: torch.Tensor, warped: torch.Tensor, mask: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """Mean L1 between output and warp off the face (mask 0), weighted by (1 − strength): photographic frames keep
    the warp's hair, neck, clothes and background."""
    off = (1.0 - strength)[:, :, None, None] * (1.0 - mask)
    return ((out - warped).abs() * off).mean()


def train(data: ReenactSet, bank: tuple[np.ndarray, np.ndarray], cfg: TrainConfig, device: str = "cpu",
          model: StyleA | None = None) -> tuple[StyleA, dict[str, object]]:
    """Run the recipe on the train split of `data`; returns the model (eval mode) and training stats."""
    torch.manual_seed(cfg.seed)
    train_set = data.subset("train")
    if len(train_set) == 0:
        raise InputError("no training samples")
    net = (model or StyleA(cfg.model)).to(device).train()
    disc = Discriminator(16).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.5, 0.99))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.99))
    batcher = _Batcher(train_set, bank, cfg, content_size=128)
    t0, hist, step = time.monotonic(), [], 0
    for step in range(cfg.steps):
        progress = max(step / cfg.steps, (time.monotonic() - t0) / (cfg.minutes * 60))
        if progress >= 1.0:
            log.info("wall-clock cap reached at step %d", step)
            break
        lr = cfg.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + np.cos(np.pi * progress))  # warm-up, cosine by steps or time
        for g in (*opt.param_groups, *opt_d.param_groups):
            g["lr"] = lr
        b = {k: v.to(device) for k, v in batcher().items()}
        id_code, style_code, _ = net.encode(b["portrait"], b["picture"])
        _, cls_logits = net.style(b["cls_pics"])
        w = net.mapping(b["coeffs"], id_code, style_code, b["strength"])
        out, flow = net.generator(b["warped"], w, net.keep(b["strength"]))
        loss_rec = recon_loss(out, b["target"], b["mask"], cfg)
        loss_cls = F.cross_entropy(cls_logits, b["cls_labels"])
        loss = loss_rec + 0.2 * loss_cls + cfg.w_flow * flow.abs().mean()
        if cfg.w_keep > 0:
            (ox, oy), (wx, wy) = _grad(out), _grad(b["warped"])
            kw = (1.0 - b["strength"])[:, :, None, None] * b["mask"]
            loss = loss + cfg.w_keep * (((ox - wx).abs() * kw[..., :, 1:]).mean() + ((oy - wy).abs() * kw[..., 1:, :]).mean())
        if cfg.w_still > 0:
            loss = loss + cfg.w_still * still_loss(out, b["warped"], b["mask"], b["strength"])
        use_gan = step >= cfg.gan_start and cfg.w_adv > 0
        if use_gan:
            logit_f, feat_f = disc(out)
            with torch.no_grad():
                _, feat_r = disc(b["target"])
            fm = sum(F.l1_loss(a, r) for a, r in zip(feat_f, feat_r))
            loss = loss + cfg.w_adv * F.softplus(-logit_f).mean() + cfg.w_fm * cfg.w_adv * 10 * fm
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if use_gan:
            lr_, lf_ = disc(b["target"])[0], disc(out.detach())[0]
            loss_d = F.relu(1 - lr_).mean() + F.relu(1 + lf_).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        acc = float((cls_logits.argmax(1) == b["cls_labels"]).float().mean())
        hist.append((loss_rec.item(), loss_cls.item(), acc))
        if (step + 1) % cfg.log_every == 0:
            h = np.mean(hist[-cfg.log_every :], axis=0)
            log.info("step %d  rec %.4f  cls %.3f  acc %.2f  (%.1f s)", step + 1, h[0], h[1], h[2], time.monotonic() - t0)
    stats = {"steps": step + 1, "seconds": round(time.monotonic() - t0, 1), "final_rec_loss": float(np.mean([h[0] for h in hist[-100:]])),
             "final_cls_acc_train": float(np.mean([h[2] for h in hist[-100:]]))}
    return net.eval().cpu(), stats


@torch.no_grad()
def evaluate_psnr(model: StyleA, data: ReenactSet, split: str, batch: int = 8) -> dict[str, float]:
    """Face-region PSNR of Style-A (strength 0) and of the reference warp against real frames of one split."""
    from engine.render.data import masked_psnr

    d = data.subset(split)
    if len(d) == 0:
        return {}
    portraits = to_tensor(np.stack([cv2.resize(p, (128, 128), interpolation=cv2.INTER_AREA) for p in d.portraits]))
    none = torch.zeros(1, model.cfg.style_dim)
    ours, ref = [], []
    for i in range(0, len(d), batch):
        sl = slice(i, i + batch)
        pid = torch.from_numpy(d.portrait_id[sl])
        id_code = model.content(portraits[pid])
        n = len(pid)
        out = model.render(to_tensor(d.warped[sl]), torch.from_numpy(d.coeffs[sl]), torch.zeros(n, 1), id_code, none.expand(n, -1))
        frames = to_uint8(out)
        for f, t, w, m in zip(frames, d.targets[sl], d.warped[sl], d.masks[sl]):
            ours.append(masked_psnr(f, t, m))
            ref.append(masked_psnr(w, t, m))
    return {"psnr": float(np.mean(ours)), "psnr_reference": float(np.mean(ref)), "n": len(d)}


def run_recipe(data_root: str | Path, cache: str | Path, out_path: str | Path, cfg: TrainConfig,
               device: str = "cpu", max_samples: int = 100, extra_caches: tuple[str | Path, ...] = (),
               init: str | Path | None = None, style_clips: bool = False) -> dict[str, object]:
    """Extract (cached), train (optionally from `init` weights), evaluate held-out/unseen, save weights + stats.

    `style_clips` also extracts the shipped model's extra identities from shared/data/style_clips
    (the five StyleTalk clips and one MEAD W009 clip, 60 frames each) into `<cache>_extra`.
    """
    from engine.render.data import build_cache, load_cache

    root = Path(data_root)
    build_cache(root / "talking", cache, 256, max_samples)
    if style_clips:
        extra = Path(f"{Path(cache)}_extra")
        build_cache(root / "style_clips" / "styletalk", extra, 256, 60)
        build_cache(root / "style_clips" / "dreamtalk", extra, 256, 60, "W009_front_happy*.mp4")
        extra_caches = (*extra_caches, extra)
    data = load_cache([cache, *extra_caches], 256)
    train_portraits = [data.portraits[p] for p in np.unique(data.subset("train").portrait_id)]
    bank = style_bank(train_portraits + portrait_bases(root, holdout=False), cfg.model.style_size, cfg.seed)
    log.info("data: %d train, %d held-out, %d unseen samples; %d style pictures", int((data.split == "train").sum()),
             int((data.split == "heldout").sum()), int((data.split == "unseen").sum()), len(bank[1]))
    start = warm_start(StyleA(cfg.model), init) if init else None
    model, stats = train(data, bank, cfg, device, model=start)
    stats["device"] = device
    stats["init"] = str(init) if init else None
    stats["eval_heldout"] = evaluate_psnr(model, data, "heldout")
    stats["eval_unseen"] = evaluate_psnr(model, data, "unseen")
    stats["clips"] = sorted(set(data.clip.tolist()))
    stats["unseen_clips"] = sorted(set(data.clip[data.split == "unseen"].tolist()))
    stats["train_config"] = {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name != "model"}
    stats["model_config"] = cfg.model.to_dict()
    stats["styles"] = list(STYLES)
    save_weights(model, out_path, stats)
    log.info("saved %s: %s", out_path, json.dumps({k: stats[k] for k in ("steps", "eval_heldout", "eval_unseen")}))
    return stats
