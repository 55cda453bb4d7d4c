"""Export Style-A to two ONNX graphs (encode once per change, render per frame with a dynamic batch) and check parity.

encode(portrait u8 B×128×128×3, picture u8 B×128×128×3) -> id_code B×64, style_code B×32, style_logits B×6
render(warped u8 B×H×W×3, coeffs f32 B×34, strength f32 B×1, id_code, style_code) -> frame u8 B×H×W×3
H, W are dynamic (multiples of 8). TorchScript exporter, opset 17. `--fp16` exports half-precision
graphs for GPU providers (needs CUDA to trace; not tested on this CPU-only machine).

    python -m exporters.onnx_style_a --weights engine/render/weights/style_a.npz --out engine/render/weights
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.errors import NotAvailableError
from engine.render.networks import StyleA
from engine.render.train import load_weights

log = logging.getLogger(__name__)

ENCODE_FILE = "style_a_encode.onnx"
RENDER_FILE = "style_a_render.onnx"
OPSET = 17


class EncodeGraph(nn.Module):
    """uint8 NHWC in, codes out."""

    def __init__(self, model: StyleA) -> None:
        super().__init__()
        self.model = model

    def forward(self, portrait: torch.Tensor, picture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = portrait.permute(0, 3, 1, 2).to(self.model.content.out.weight.dtype) / 127.5 - 1.0
        q = picture.permute(0, 3, 1, 2).to(p.dtype) / 127.5 - 1.0
        return self.model.encode(p, q)


class RenderGraph(nn.Module):
    """uint8 NHWC warped frame + coefficients + strength + codes -> uint8 NHWC frame."""

    def __init__(self, model: StyleA) -> None:
        super().__init__()
        self.model = model

    def forward(self, warped: torch.Tensor, coeffs: torch.Tensor, strength: torch.Tensor, id_code: torch.Tensor,
                style_code: torch.Tensor) -> torch.Tensor:
        dt = id_code.dtype
        x = warped.permute(0, 3, 1, 2).to(dt) / 127.5 - 1.0
        y = self.model.render(x, coeffs.to(dt), strength.to(dt).clamp(0.0, 1.0), id_code, style_code)
        return ((y.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)


def example_inputs(model: StyleA, batch: int = 2, size: int = 256, seed: int = 0,
                   dtype: torch.dtype = torch.float32) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Deterministic random (encode inputs, render inputs) for tracing and parity checks."""
    g = torch.Generator().manual_seed(seed)
    cfg = model.cfg
    portrait = torch.randint(0, 256, (batch, 128, 128, 3), generator=g, dtype=torch.uint8)
    picture = torch.randint(0, 256, (batch, cfg.style_size, cfg.style_size, 3), generator=g, dtype=torch.uint8)
    warped = torch.randint(0, 256, (batch, size, size, 3), generator=g, dtype=torch.uint8)
    coeffs = torch.rand(batch, cfg.coeff_dim, generator=g) * 0.6
    coeffs[:, -1] = 1.0
    strength = torch.rand(batch, 1, generator=g)
    id_code = torch.randn(batch, cfg.id_dim, generator=g)
    style_code = torch.nn.functional.normalize(torch.randn(batch, cfg.style_dim, generator=g), dim=1)
    return (portrait, picture), (warped, coeffs.to(dtype), strength.to(dtype), id_code.to(dtype), style_code.to(dtype))


def export_all(weights: str | Path, out_dir: str | Path, fp16: bool = False) -> dict[str, str]:
    """Write encode/render ONNX graphs next to each other; returns {"encode": path, "render": path}."""
    model, _ = load_weights(weights)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dtype, device, suffix = torch.float32, "cpu", ""
    if fp16:
        if not torch.cuda.is_available():
            raise NotAvailableError("fp16 export traces on CUDA; no GPU here")
        dtype, device, suffix = torch.float16, "cuda", "_fp16"
    model = model.to(device=device, dtype=dtype)
    enc_in, ren_in = example_inputs(model, dtype=dtype)
    enc_in = tuple(t.to(device) for t in enc_in)
    ren_in = tuple(t.to(device) for t in ren_in)
    paths = {"encode": out / ENCODE_FILE.replace(".onnx", f"{suffix}.onnx"),
             "render": out / RENDER_FILE.replace(".onnx", f"{suffix}.onnx")}
    batch = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(EncodeGraph(model), enc_in, str(paths["encode"]), opset_version=OPSET, dynamo=False,
                          input_names=["portrait", "picture"], output_names=["id_code", "style_code", "style_logits"],
                          dynamic_axes={"portrait": batch, "picture": batch, "id_code": batch, "style_code": batch,
                                        "style_logits": batch})
        img = {0: "batch", 1: "height", 2: "width"}
        torch.onnx.export(RenderGraph(model), ren_in, str(paths["render"]), opset_version=OPSET, dynamo=False,
                          input_names=["warped", "coeffs", "strength", "id_code", "style_code"], output_names=["frame"],
                          dynamic_axes={"warped": img, "coeffs": batch, "strength": batch, "id_code": batch,
                                        "style_code": batch, "frame": img})
    for k, p in paths.items():
        log.info("exported %s graph: %s (%.0f kB, sha256 %s)", k, p, p.stat().st_size / 1024, sha256(p)[:16])
    return {k: str(p) for k, p in paths.items()}


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def parity(weights: str | Path, onnx_dir: str | Path, batch: int = 3, size: int = 256) -> dict[str, float]:
    """Max abs difference ONNX Runtime vs torch for both graphs (codes in float units, frames in uint8 levels)."""
    import onnxruntime as ort

    model, _ = load_weights(weights)
    enc_in, ren_in = example_inputs(model, batch=batch, size=size, seed=1)
    with torch.no_grad():
        t_enc = [t.numpy() for t in EncodeGraph(model)(*enc_in)]
        t_frame = RenderGraph(model)(*ren_in).numpy()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    d = Path(onnx_dir)
    enc = ort.InferenceSession(str(d / ENCODE_FILE), opts, providers=["CPUExecutionProvider"])
    ren = ort.InferenceSession(str(d / RENDER_FILE), opts, providers=["CPUExecutionProvider"])
    o_enc = enc.run(None, {"portrait": enc_in[0].numpy(), "picture": enc_in[1].numpy()})
    names = ["warped", "coeffs", "strength", "id_code", "style_code"]
    o_frame = ren.run(None, {n: t.numpy() for n, t in zip(names, ren_in)})[0]
    diff = np.abs(o_frame.astype(np.int16) - t_frame.astype(np.int16))
    return {"encode_max_abs": float(max(np.abs(a - b).max() for a, b in zip(o_enc, t_enc))),
            "render_max_abs_u8": float(diff.max()), "render_mean_abs_u8": float(diff.mean())}


def write_model_card(weights: str | Path, out_dir: str | Path, metrics: dict[str, object] | None,
                     manifest: str | Path | None = None, lineage: list[str] | None = None) -> Path:
    """The model card (style_a.md, named after style_a.npz) + style_a_meta.json beside the graphs: data (clips, licences), recipe, metrics, sha256."""
    from engine.data.fit import manifest_rows

    _, meta = load_weights(weights)
    out = Path(out_dir)
    rows = manifest_rows(Path(manifest)) if manifest else {}
    files = [Path(weights), out / ENCODE_FILE, out / RENDER_FILE]
    sums = {p.name: sha256(p) for p in files if p.is_file()}
    info = {"styles": meta.get("styles"), "steps": meta.get("steps"), "train_seconds": meta.get("seconds"),
            "train_config": meta.get("train_config"), "sha256": sums}
    (out / "style_a_meta.json").write_text(json.dumps(info, indent=1))
    clips = meta.get("clips", [])
    unseen = set(meta.get("unseen_clips", []))  # type: ignore[arg-type]
    lines = ["# Style-A renderer — model card", "",
             "Refines the reference renderer's warped frame (bounded residual flow + per-pixel colour matrix, StyleGAN2",
             "modulated convolutions driven by coefficients, identity code and art-style code). Trained on this",
             "project's CPU recipe (`s2t train style-a`), self-reenactment on real clips plus six procedural art styles",
             f"({', '.join(meta.get('styles', []))}).", "",  # type: ignore[arg-type]
             "## Files", "", "| file | bytes | sha256 |", "|---|---|---|"]
    lines += [f"| {p.name} | {p.stat().st_size} | `{sums[p.name]}` |" for p in files if p.is_file()]
    lines += ["", "## Training data", "",
              "Real talking clips from `shared/data/talking` (first frame = portrait, later frames = targets; the last",
              "fifth of each training clip held out; whole speakers marked *unseen* never trained on). Art pictures:",
              "the project's own stylisers applied to training clip portraits and `shared/data/portraits` photos",
              "(held-out photos excluded). Licences cover the source repos, not the people shown: internal research",
              "and evaluation use only, do not redistribute frames.", "",
              "| clip | role | source | licence |", "|---|---|---|---|"]
    for c in clips:  # type: ignore[union-attr]
        r = rows.get(f"{c}.mp4", {})
        lines.append(f"| {c} | {'unseen (eval only)' if c in unseen else 'train + held-out frames'} | "
                     f"{r.get('source', 'see MANIFEST.md')} | {r.get('license', 'see MANIFEST.md')} |")
    lines += ["", "## Recipe", "", f"- last run: {meta.get('steps')} steps, {meta.get('seconds')} s on {meta.get('device', 'cpu')}"
              f"{', warm-started from ' + str(meta['init']) if meta.get('init') else ''}",
              f"- config: `{json.dumps(meta.get('train_config'))}`", ""]
    if lineage:
        lines += ["### Lineage", "", *[f"- {x}" for x in lineage], ""]
    lines += [
              "## Metrics (`benchmarks/render_quality.py`)", "", "```json", json.dumps(metrics or {}, indent=1), "```", ""]
    card = out / "style_a.md"
    card.write_text("\n".join(lines))
    return card


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="engine/render/weights/style_a.npz")
    ap.add_argument("--out", default="engine/render/weights")
    ap.add_argument("--fp16", action="store_true", help="half-precision graphs for GPU providers (needs CUDA)")
    ap.add_argument("--json", metavar="OUT", help="write parity numbers here")
    ap.add_argument("--card", metavar="METRICS_JSON", help="write the model card (style_a.md) with these benchmark metrics")
    ap.add_argument("--manifest", default="../shared/data/MANIFEST.md", help="for clip sources and licences")
    ap.add_argument("--no-export", action="store_true", help="only (re)write the model card")
    ap.add_argument("--lineage", metavar="TXT", help="training history lines for the card (one per run)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    if not args.no_export:
        export_all(args.weights, args.out, fp16=args.fp16)
    if args.card:
        metrics = json.loads(Path(args.card).read_text())
        lineage = Path(args.lineage).read_text().splitlines() if args.lineage else None
        write_model_card(args.weights, args.out, metrics, args.manifest if Path(args.manifest).is_file() else None, lineage)
    if not args.fp16 and not args.no_export:
        res = parity(args.weights, args.out)
        log.info("parity: %s", json.dumps(res))
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
