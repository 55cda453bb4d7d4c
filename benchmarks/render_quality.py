"""Style-A quality and speed through ONNX Runtime: fps, face-region PSNR/SSIM vs the reference renderer, mouth control, identity, art-style accuracy.

    nice -n 19 .venv/bin/python benchmarks/render_quality.py --json out/render_quality.json [--sheet docs/style_a_contact_sheet.png]

Fidelity uses self-reenactment samples cached by `s2t train style-a` (built from ../shared/data when
missing): held-out last fifth of every training clip, and whole unseen speakers.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger("bench.render_quality")

# Real art pictures whose style is unambiguous enough to label by eye (reported apart from the generated test set).
REAL_ART_LABELS = {"sketch_woman_pencil": "sketch", "sketch_cartoon_face": "sketch", "cartoon_flat_man": "cartoon",
                   "art_popart_color": "pop", "art_vangogh_selfportrait": "painterly", "art_expressive_brush": "painterly"}


def bench_speed(weights_dir: Path, size: int, repeats: int) -> dict[str, float]:
    """Median per-frame time of the render graph (batch 1) for 1 and 2 ORT threads, plus the reference warp."""
    import onnxruntime as ort

    from engine.assets import asset_path
    from engine.face.model import FaceModel
    from engine.face.reference_renderer import ReferenceRenderer
    from engine.render.renderer import RENDER_FILE
    from engine.spec import DEFAULT_SPEC

    rng = np.random.default_rng(0)
    feeds = {"warped": rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8), "coeffs": DEFAULT_SPEC.neutral(1),
             "strength": np.zeros((1, 1), np.float32), "id_code": rng.standard_normal((1, 64)).astype(np.float32),
             "style_code": np.zeros((1, 32), np.float32)}
    out: dict[str, float] = {}
    for threads in (1, 2):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(weights_dir / RENDER_FILE), opts, providers=["CPUExecutionProvider"])
        for _ in range(5):
            sess.run(None, feeds)
        t = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            sess.run(None, feeds)
            t.append(time.perf_counter() - t0)
        out[f"render_graph_ms_{threads}t"] = round(1000 * float(np.median(t)), 2)
        out[f"render_graph_ms_{threads}t_p10"] = round(1000 * float(np.percentile(t, 10)), 2)
    ref = ReferenceRenderer(FaceModel.from_portrait(asset_path("portrait.png"), size=size), size)
    c = DEFAULT_SPEC.neutral(1)[0]
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ref.render(c)
        t.append(time.perf_counter() - t0)
    out["reference_warp_ms"] = round(1000 * float(np.median(t)), 2)
    best = min(out["render_graph_ms_1t"], out["render_graph_ms_2t"])
    out["fps_256_cpu"] = round(1000.0 / best, 1)
    out["fps_256_cpu_with_warp"] = round(1000.0 / (best + out["reference_warp_ms"]), 1)
    return out


def bench_fidelity(graphs: object, cache: Path, data_root: Path) -> dict[str, float]:
    """Face-region PSNR/SSIM of Style-A (strength 0) and the reference warp on held-out and unseen samples."""
    from engine.render.data import build_cache, load_cache, masked_psnr, masked_ssim

    if not any(cache.glob("*_256.npz")):
        build_cache(data_root / "talking", cache, 256, 100)
    data = load_cache(cache, 256)
    codes = [graphs.encode(p, None).id_code for p in data.portraits]  # type: ignore[attr-defined]
    res: dict[str, float] = {}
    for split, tag in (("heldout", ""), ("unseen", "_unseen")):
        d = data.subset(split)
        ours_p, ours_s, ref_p, ref_s = [], [], [], []
        for i in range(0, len(d), 8):
            sl = slice(i, i + 8)
            n = len(d.coeffs[sl])
            frames = graphs.render(d.warped[sl], d.coeffs[sl], np.zeros((n, 1), np.float32),  # type: ignore[attr-defined]
                                   np.stack([codes[k] for k in d.portrait_id[sl]]), np.zeros((n, 32), np.float32))
            for f, t, w, m in zip(frames, d.targets[sl], d.warped[sl], d.masks[sl]):
                ours_p.append(masked_psnr(f, t, m))
                ours_s.append(masked_ssim(f, t, m))
                ref_p.append(masked_psnr(w, t, m))
                ref_s.append(masked_ssim(w, t, m))
        res[f"psnr{tag}"] = round(float(np.mean(ours_p)), 3)
        res[f"ssim{tag}"] = round(float(np.mean(ours_s)), 4)
        res[f"psnr_reference{tag}"] = round(float(np.mean(ref_p)), 3)
        res[f"ssim_reference{tag}"] = round(float(np.mean(ref_s)), 4)
        res[f"n{tag or '_heldout'}"] = len(d)
        res[f"psnr_win_rate{tag}"] = round(float(np.mean(np.asarray(ours_p) > np.asarray(ref_p))), 3)
    res["unseen_clips"] = sorted(set(data.clip[data.split == "unseen"].tolist()))  # type: ignore[assignment]
    return res


def _procrustes_dist(a: np.ndarray, b: np.ndarray) -> float:
    """Mean point distance after the best similarity alignment of a onto b, in units of b's inter-ocular distance."""
    from engine.face.tracker import inter_ocular

    a0, b0 = a - a.mean(0), b - b.mean(0)
    u, s, vt = np.linalg.svd(a0.T @ b0)
    r = u @ vt
    scale = s.sum() / (a0 * a0).sum()
    return float(np.linalg.norm(scale * a0 @ r - b0, axis=1).mean() / inter_ocular(b))


def bench_control(graphs: object, cache: Path) -> dict[str, float]:
    """Mouth aperture tracked on rendered frames vs the coefficients' own mesh; identity shape distance."""
    from engine.assets import asset_path
    from engine.face.tracker import FaceTracker, mouth_aperture
    from engine.render.data import load_cache
    from engine.render.renderer import StyleARenderer

    data = load_cache(cache, 256)
    coeffs = data.coeffs[data.split != "train"]  # real motion the renderer was not trained on
    sa = StyleARenderer(asset_path("portrait.png"), size=256, strength=0.0, graphs=graphs)  # type: ignore[arg-type]
    expect = sa.model.deform_batch(coeffs)
    want = np.array([mouth_aperture(m) for m in expect])
    portrait_lms = sa.model.neutral[:468, :2].astype(np.float64)
    out: dict[str, float] = {"control_frames": len(coeffs)}
    per_frame: dict[str, np.ndarray] = {}
    with FaceTracker(static_image_mode=True, max_faces=1) as trk:
        for name, frames in (("style_a", sa.render_batch(coeffs)), ("reference", np.stack([sa.reference.render(c) for c in coeffs]))):
            got, shape, to_portrait = (np.full(len(coeffs), np.nan) for _ in range(3))
            for i, f in enumerate(frames):
                tr = trk.track_or_none(f)
                if tr is not None:
                    got[i] = mouth_aperture(tr.landmarks)
                    shape[i] = _procrustes_dist(tr.landmarks[:468, :2], expect[i, :468].astype(np.float64))
                    to_portrait[i] = _procrustes_dist(tr.landmarks[:468, :2], portrait_lms)
            ok = np.isfinite(got)
            key = "mouth_corr" if name == "style_a" else "mouth_corr_reference"
            out[key] = round(float(np.corrcoef(got[ok], want[ok])[0, 1]), 4)
            # vs the commanded mesh (identity and geometry together; the stricter one) and vs the portrait's
            # own landmarks (the wording; same commanded expressions for both renderers)
            out[f"identity_shape_dist_{name}"] = round(float(np.nanmean(shape)), 6)
            out[f"identity_portrait_dist_{name}"] = round(float(np.nanmean(to_portrait)), 6)
            out[f"tracked_fraction_{name}"] = round(float(ok.mean()), 3)
            per_frame[f"shape_{name}"], per_frame[f"portrait_{name}"] = shape, to_portrait
    for kind in ("shape", "portrait"):  # paired: same frames, same commanded expressions
        out |= paired_difference(per_frame[f"{kind}_style_a"], per_frame[f"{kind}_reference"], f"identity_{kind}_diff")
    return out


def paired_difference(a: np.ndarray, b: np.ndarray, key: str, n_boot: int = 2000) -> dict[str, float]:
    """Mean of a - b over frames where both are finite, its paired bootstrap 95 % CI, and the share of frames a < b."""
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    if not len(d):
        return {}
    boot = d[np.random.default_rng(0).integers(0, len(d), (n_boot, len(d)))].mean(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {f"{key}_mean": round(float(d.mean()), 7), f"{key}_ci95_lo": round(float(lo), 7),
            f"{key}_ci95_hi": round(float(hi), 7), f"{key}_style_a_closer_fraction": round(float((d < 0).mean()), 3)}


def heldout_art(data_root: Path) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Generated art pictures from held-out photos (every style, two scales): pictures, labels, names."""
    from engine.render.stylize import STYLES, stylize
    from engine.render.train import fit_square, portrait_bases

    pics, labels, names = [], [], []
    for b, base in enumerate(portrait_bases(data_root, holdout=True)):
        for k, style in enumerate(STYLES):
            for s in (300, 200):
                pics.append(stylize(fit_square(base, s), k, seed=9000 + 7 * b + s))
                labels.append(style)
                names.append(f"heldout{b}_{style}_{s}")
    return pics, labels, names


def bench_style(graphs: object, data_root: Path) -> dict[str, object]:
    """Nearest-style accuracy of the style encoder on held-out generated pictures and on labelled real art."""
    from engine.face.image import load_image
    from engine.render.renderer import prepare_picture

    crop = np.full((128, 128, 3), 128, np.uint8)
    pics, labels, _ = heldout_art(data_root)
    pred = [graphs.encode(crop, prepare_picture(p)).nearest_style for p in pics]  # type: ignore[attr-defined]
    per = {s: round(float(np.mean([p == s for p, lab in zip(pred, labels) if lab == s])), 3) for s in sorted(set(labels))}
    real = {}
    for stem, lab in REAL_ART_LABELS.items():
        f = next((data_root / "portraits").glob(f"{stem}.*"), None)
        if f is not None:
            real[stem] = {"label": lab, "pred": graphs.encode(crop, prepare_picture(load_image(f))).nearest_style}  # type: ignore[attr-defined]
    return {"style_acc": round(float(np.mean([p == lab for p, lab in zip(pred, labels)])), 4), "style_n": len(labels),
            "style_acc_per_style": per, "style_acc_real_art": round(float(np.mean([v["label"] == v["pred"] for v in real.values()])), 3)
            if real else None, "style_real_art": real}


def contact_sheet(graphs: object, data_root: Path, out: Path) -> None:
    """Rows: portraits; columns: no style, then art pictures (held-out generated + real). Writes a PNG."""
    from engine.assets import asset_path
    from engine.errors import ImageError, NoFaceError
    from engine.face.image import load_image
    from engine.render.renderer import StyleARenderer
    from engine.spec import DEFAULT_SPEC

    pics, labels, _ = heldout_art(data_root)
    chosen = [pics[labels.index(s)] for s in dict.fromkeys(labels)]
    real = [load_image(f) for f in sorted((data_root / "portraits").glob("art_*"))[:2]]
    arts = [None, *chosen, *real]
    ports = [load_image(asset_path("portrait.png"))]
    for stem in ("photo_woman_happy", "photo_asian_man", "photo_webcam_man_headphones"):
        f = next((data_root / "portraits").glob(f"{stem}.*"), None)
        if f is not None:
            ports.append(load_image(f))
    c = DEFAULT_SPEC.neutral(1)[0]
    c[DEFAULT_SPEC.index("jawOpen")] = 0.35
    cell = 160
    rows = []
    head = [np.full((cell, cell, 3), 255, np.uint8)] + [cv2.resize(prepare(a), (cell, cell)) for a in arts[1:]]
    head.insert(1, np.full((cell, cell, 3), 255, np.uint8))
    rows.append(np.concatenate(head, 1))
    for p in ports:
        try:
            r = StyleARenderer(p, size=256, strength=1.0, graphs=graphs)  # type: ignore[arg-type]
        except (NoFaceError, ImageError) as e:  # a faceless sample portrait just drops its row
            log.warning("contact sheet: skipping a portrait (%s)", e)
            continue
        row = [cv2.resize(r.model.crop, (cell, cell), interpolation=cv2.INTER_AREA)]
        for a in arts:
            r.set_art_style(a)
            row.append(cv2.resize(r.render(c), (cell, cell), interpolation=cv2.INTER_AREA))
        rows.append(np.concatenate(row, 1))
    sheet = np.concatenate(rows, 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    log.info("wrote %s (%dx%d)", out, sheet.shape[1], sheet.shape[0])


def prepare(a: np.ndarray) -> np.ndarray:
    from engine.render.renderer import prepare_picture

    return prepare_picture(a)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="OUT", required=True)
    ap.add_argument("--data", default="../shared/data", help="shared data root")
    ap.add_argument("--cache", default="out/style_a/clips")
    ap.add_argument("--weights", default=None, help="directory with the ONNX graphs (default: shipped)")
    ap.add_argument("--sheet", metavar="PNG", help="also write the contact sheet here")
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--skip", nargs="*", default=[], choices=["speed", "fidelity", "control", "style"])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from engine.render.renderer import WEIGHTS_DIR, StyleAGraphs

    wdir = Path(args.weights) if args.weights else WEIGHTS_DIR
    graphs = StyleAGraphs(wdir, threads=1)
    root, cache = Path(args.data), Path(args.cache)
    res: dict[str, object] = {"device": "cpu", "onnxruntime_threads_eval": 1}
    for name, fn in (("speed", lambda: bench_speed(wdir, 256, args.repeats)), ("fidelity", lambda: bench_fidelity(graphs, cache, root)),
                     ("control", lambda: bench_control(graphs, cache)), ("style", lambda: bench_style(graphs, root))):
        if name in args.skip:
            continue
        t0 = time.perf_counter()
        res.update(fn())
        log.info("%s done in %.1f s", name, time.perf_counter() - t0)
    if args.sheet:
        contact_sheet(graphs, root, Path(args.sheet))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=1))
    log.info("%s", json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
