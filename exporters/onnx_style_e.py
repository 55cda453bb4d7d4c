"""Export Style-E to ONNX (audio encoder, style encoder, one denoising step per model, latent decoder) + parity.

audio_encoder(mel f32 1×(T+16)×320) -> cond 1×T×15            (T dynamic; 16 = past + lookahead mel frames)
style_encoder(ref f32 1×T×34 raw coefficients) -> code 1×32, logits 1×S
denoiser_<name>(x, past 1×N×16, past_mask 1×N×1, audio 1×N×15, t 1, emotion 1×8, style 1×32, cond_mask 1×1, w 1)
    -> x0 1×N×16                                              (batch and N dynamic)
decoder(z f32 1×T×16, audio f32 1×T×15 encoder output) -> coeffs 1×T×34   (VAE decode + the encoder's mouth)
TorchScript exporter, opset 17. The text projection runs in numpy from style_e.npz.

    python -m exporters.onnx_style_e --weights engine/motion/weights/style_e.npz
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

from engine.motion.train import ALIASES, TRANSPOSED, Modules, denoiser_names, graph_arrays, load_modules
from engine.motion.vae import LatentDecoder

log = logging.getLogger(__name__)
OPSET = 17


class StyleGraph(nn.Module):
    """Raw coefficients in (normalised inside), style code and logits out."""

    def __init__(self, m: Modules) -> None:
        super().__init__()
        self.enc = m.style
        self.register_buffer("mean", torch.from_numpy(m.mean))
        self.register_buffer("std", torch.from_numpy(m.std))

    def forward(self, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.enc((ref - self.mean) / self.std)
        return code, self.enc.head(code)


DENOISER_AXES = ({k: {0: "b", 1: "n"} for k in ("x", "past", "past_mask", "audio", "x0")}
                 | {k: {0: "b"} for k in ("t", "emotion", "style", "cond_mask", "w")})


def example_inputs(n: int = 10, b: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"x": torch.randn(b, n, 16, generator=g), "past": torch.randn(b, n, 16, generator=g),
            "past_mask": (torch.arange(n) < n // 2).float()[None, :, None].expand(b, n, 1).contiguous(),
            "audio": torch.rand(b, n, 15, generator=g), "t": torch.full((b,), 0.5),
            "emotion": torch.softmax(torch.randn(b, 8, generator=g), -1), "style": torch.rand(b, 32, generator=g),
            "cond_mask": torch.ones(b, 1), "w": torch.full((b,), 0.5)}


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict[str, dict[int, str]]) -> None:
    torch.backends.mha.set_fastpath_enabled(False)  # the fused encoder-layer kernel has no ONNX symbolic
    torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=dynamic,
                      opset_version=OPSET, dynamo=False)


def name_initializers(path: Path, module: nn.Module) -> None:
    """Rename the initializers the TorchScript exporter generated (`onnx::MatMul_*`, a Linear weight stored
    transposed) after their torch keys (`key:T`), so the graph alone rebuilds the module (train.graph_arrays).
    Each is matched by exact value (an initializer that matches no weight fails the export); weights the exporter
    stored only once are listed as aliases in the graph's metadata."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    free = [k for k in state if k not in {i.name for i in model.graph.initializer}]
    renames: dict[str, str] = {}
    for init in model.graph.initializer:
        if init.name in state:
            continue
        a = numpy_helper.to_array(init).T
        hits = [k for k in free if state[k].shape == a.shape and np.array_equal(state[k], a)]
        if not hits:
            raise RuntimeError(f"{path.name}: initializer {init.name} {a.shape} matches no torch weight")
        free.remove(hits[0])
        renames[init.name] = init.name = hits[0] + TRANSPOSED
    for node in model.graph.node:
        node.input[:] = [renames.get(i, i) for i in node.input]
    # The exporter stores equal weights once (e.g. untrained LayerNorms): name the copies it dropped.
    graph = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    aliases: dict[str, str] = {}
    for k in free:
        same = [n for n, a in graph.items() if a.shape == state[k].shape and np.array_equal(a, state[k])]
        same_t = [n for n, a in graph.items() if n.endswith(TRANSPOSED) and a.T.shape == state[k].shape
                  and np.array_equal(a.T, state[k])]
        if not same and not same_t:
            raise RuntimeError(f"{path.name}: torch weight {k} {state[k].shape} is not in the graph")
        aliases[k] = same[0] if same else same_t[0]
    del model.metadata_props[:]
    if aliases:
        model.metadata_props.add(key=ALIASES, value=json.dumps(aliases))
    onnx.save(model, str(path))


def slim_weights(weights: str | Path) -> int:
    """Drop from style_e.npz the denoisers whose graphs beside it give back every array exactly (they were
    stored twice); returns the bytes saved. Refuses (RuntimeError) when a graph differs from the npz."""
    weights = Path(weights)
    meta = json.loads(weights.with_suffix(".json").read_text())
    with np.load(weights, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    before = weights.stat().st_size
    dropped = 0
    for name in denoiser_names(meta):
        mine = {k: v for k, v in arrays.items() if k.startswith(f"{name}.")}
        if not mine:
            continue
        back = graph_arrays(weights.parent / f"denoiser_{name}.onnx", name)
        if set(back) != set(mine) or any(not np.array_equal(mine[k], back[k]) for k in mine):
            raise RuntimeError(f"denoiser_{name}.onnx does not give back {name} exactly; keeping the npz as it is")
        for k in mine:
            del arrays[k]
        dropped += 1
    if dropped:
        tmp = weights.with_name(weights.stem + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(weights)
    return before - weights.stat().st_size


def export_all(weights: str | Path, out: str | Path | None = None, slim: bool = True) -> dict[str, str]:
    """Write every graph beside the weights (or into `out`); returns {file: sha256}. With `slim` (and the
    graphs beside the weights) the denoisers then leave the npz: their graphs hold them (slim_weights)."""
    m = load_modules(weights)
    out = Path(out) if out else Path(weights).parent
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    with torch.no_grad():
        _export(m.audio, (torch.randn(1, 26, 320) - 9.0,), out / "audio_encoder.onnx", ["mel"], ["cond"],
                {"mel": {1: "t_in"}, "cond": {1: "t"}})
        _export(StyleGraph(m), (torch.rand(1, 40, 34),), out / "style_encoder.onnx", ["ref"], ["code", "logits"],
                {"ref": {1: "t"}})
        dec = LatentDecoder(m.vae, torch.from_numpy(m.mean), torch.from_numpy(m.std))
        _export(dec, (torch.randn(1, 12, 16), torch.rand(1, 12, 15)), out / "decoder.onnx", ["z", "audio"], ["coeffs"],
                {"z": {1: "t"}, "audio": {1: "t"}, "coeffs": {1: "t"}})
        ex = example_inputs()
        names = list(ex)
        for name, den in m.denoisers.items():
            _export(den, tuple(ex.values()), out / f"denoiser_{name}.onnx", names, ["x0"], DENOISER_AXES)
            name_initializers(out / f"denoiser_{name}.onnx", den)
    if slim and out.resolve() == Path(weights).parent.resolve():
        log.info("style_e.npz: %.1f MB of denoisers left to their graphs", slim_weights(weights) / 1e6)
    for p in sorted(out.glob("*.onnx")):
        files[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    log.info("exported %s", ", ".join(files))
    return files


def parity(weights: str | Path, onnx_dir: str | Path | None = None) -> dict[str, float]:
    """Max abs difference torch vs ONNX Runtime for every graph on fixed inputs."""
    import onnxruntime as ort

    m = load_modules(weights)
    d = Path(onnx_dir) if onnx_dir else Path(weights).parent
    sess = lambda f: ort.InferenceSession(str(d / f), providers=["CPUExecutionProvider"])  # noqa: E731
    res: dict[str, float] = {}
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        mel = torch.randn(1, 40, 320, generator=g) * 2 - 9
        res["audio_encoder"] = float(np.abs(sess("audio_encoder.onnx").run(None, {"mel": mel.numpy()})[0]
                                            - m.audio(mel).numpy()).max())
        ref = torch.rand(1, 57, 34, generator=g) * 0.5
        res["style_encoder"] = float(np.abs(sess("style_encoder.onnx").run(None, {"ref": ref.numpy()})[0]
                                            - StyleGraph(m)(ref)[0].numpy()).max())
        z, cond = torch.randn(1, 9, 16, generator=g), torch.rand(1, 9, 15, generator=g)
        dec = LatentDecoder(m.vae, torch.from_numpy(m.mean), torch.from_numpy(m.std))
        res["decoder"] = float(np.abs(sess("decoder.onnx").run(None, {"z": z.numpy(), "audio": cond.numpy()})[0]
                                      - dec(z, cond).numpy()).max())
        ex = example_inputs(n=13, b=3)
        for name, den in m.denoisers.items():
            o = sess(f"denoiser_{name}.onnx").run(None, {k: v.numpy() for k, v in ex.items()})[0]
            res[f"denoiser_{name}"] = float(np.abs(o - den(**ex).numpy()).max())
    return res


def write_model_card(weights_dir: str | Path, metrics: dict[str, object] | None = None) -> Path:
    """The model card beside the weights (style_e.md, named after style_e.npz): data, recipe, metrics (a motion_quality.py JSON), sha256 of every file."""
    d = Path(weights_dir)
    meta = json.loads((d / "style_e.json").read_text())
    files = sorted(p for p in d.iterdir() if p.suffix in (".npz", ".onnx", ".json"))
    lines = ["# Style-E default weights — model card", "",
             "Motion generator: 16 kHz speech + emotion prompt + talking-style reference -> 34 coefficients/frame "
             "(DEFAULT_SPEC) at 25 fps. See docs/style_e.md.", "",
             "This card covers every file in this folder. `style_e.npz` holds the torch weights of the audio encoder, "
             "VAE, text projection, span classifier and style encoder as plain arrays (`np.load(..., "
             "allow_pickle=False)`); the teacher and the 4/2/1-step students live only in their graphs "
             "(`denoiser_*.onnx`, every initializer named after its torch key, `key:T` where stored transposed), from "
             "which `engine.motion.train.load_modules` rebuilds them exactly for the exporter, the parity test and "
             "retraining. At run time the `.onnx` graphs and `style_e.json` do the work; from `style_e.npz` the "
             "runtime reads only the text projection and the normalisation arrays. Made by `s2t train style-e` "
             "(recipe below).", "",
             f"Mouth: {meta.get('mouth', 'VAE decode')}; jawOpen comes from the audio encoder alone "
             "(engine/motion/vae.py ENCODER_ONLY).", "",
             "## Data", "",
             f"- synthetic corpus `{meta['config']['corpus']}` ({meta['config']['shards']} shards, "
             f"{meta['synthetic_utterances']} training utterances; espeak-ng voices only, flite voices held out); in "
             "the audio encoder only for the 13 mouth channels other than jawOpen",
             f"- real clips `{meta['config']['real']}` (audio encoder jawOpen trained on the tracked mouth opening: "
             "inner-lip gap / inter-ocular distance, `aperture` in the fit (fitted jawOpen for fits without it), "
             "z-scored per clip, MSE + (1 - r) over 3 s segments; each clip shifted so its mouth leads the audio "
             f"envelope by {meta.get('real_jaw_lead', '?')} frames, train.align_reals): "
             f"{len(meta['real_clips'])} clips, all speakers"
             + ("; the jaw output is a ridge head over the encoder's window of mel frames, fitted on the same targets "
                "after the conv, its strength chosen by leave-one-speaker-out (audio_train.fit_linear_jaw): "
                f"{meta['linear_jaw']}" if meta.get("linear_jaw") else ""),
             "- emotion prompts: the labour-free training descriptions (held-out paraphrases never trained on)"
             + (f"; text projection: {meta['text_projection']}" if "text_projection" in meta else ""), "",
             "## Recipe", "", "```", json.dumps(meta["config"], indent=1), "```", "",
             f"teacher: {meta['teacher_steps']} DDIM steps (x0-prediction, cosine schedule, CFG by condition dropout); "
             f"students {meta['students']} by progressive distillation (`distill_data` in the recipe: the share of the "
             f"clean latent mixed into each target); total training {meta['train_seconds']} s on "
             "a shared 2-core CPU.", ""]
    if "audio_encoder" in meta:
        ae = meta["audio_encoder"]
        lines += [f"Audio encoder later retrained alone (`s2t train style-e --audio-only --audio-steps {ae.get('steps_cap')} "
                  f"--minutes {ae.get('minutes')} --real-share {ae.get('real_share', 0.75)} --synth-velocity "
                  f"{ae.get('synth_velocity', 0.0)}`): {ae}.", ""]
    if "denoiser" in meta:
        den, cfg = meta["denoiser"], meta["config"]
        lines += ["Teacher denoiser + style encoder later retrained against the current audio encoder and the students "
                  f"distilled again (`s2t train style-e --denoiser-only --minutes {den.get('minutes')} --no-past "
                  f"{cfg.get('no_past', 0.1)} --past-noise {cfg.get('past_noise', 0.0)}`): {den}.", ""]
    if "students_retrained" in meta:
        st = meta["students_retrained"]
        lines += ["Students later distilled again from this teacher, each target mixing in the clean training latent "
                  f"(`s2t train style-e --students-only --minutes {st.get('minutes')} --distill-data "
                  f"{st.get('distill_data')}`): {st}.", ""]
    if meta.get("text_projection", {}).get("span"):
        lines += ["Text encoder later retrained alone (`python -m engine.motion.text_train DIR`): sentence projection "
                  "+ span classifier (`text_span.*`).", ""]
    scale = d / "reference_scale.json"
    if scale.is_file():
        sc = json.loads(scale.read_text())
        lines += [f"`reference_scale.json` (`s2t train style-e --reference-scale-only`, or the last step of the recipe): "
                  f"per-channel statistics, no learned weights: the corpus's mean level per utterance (the unit of a "
                  f"style reference's articulation gain), its mean motion spread per utterance (the unit of the lip "
                  f"widening{'' if 'spread' in sc else ': not in this file, so nothing is widened'}) and "
                  f"mean/spread ({sc.get('synthetic_utterances')} training "
                  f"utterances of `{sc.get('corpus')}`), and the face tracker's mean/spread over "
                  f"{sc.get('fitted_clips')} fitted real clips (`{sc.get('real')}`, {sc.get('fitted_frames')} frames), "
                  "which a video reference is mapped from onto the corpus's scale (engine/motion/reference.py).", ""]
    lines += ["Run time, not weights (all in the metrics below): emotion prompts' words are also read through a local "
              "WordNet when one is installed (engine/data/wordnet.py; Debian wordnet-base, `S2T_WORDNET=0` turns it "
              "off), a style reference's motion spread is matched online on the non-mouth channels and its "
              "articulation (range, tempo and lip spread) scales, smooths, sharpens and widens the jaw and lip "
              "channels (engine/motion/amplitude.py), "
              "and a share of the mouth (`StreamConfig.phone_weight`, 0.2 by default: the jaw's value, the lips' "
              "motion) comes from phones recognised by pocketsphinx's bundled acoustic model (engine/audio/phones.py; "
              "no weights of ours).", ""]
    if metrics:
        lines += ["## Metrics (benchmarks/motion_quality.py)", "", "```", json.dumps(metrics, indent=1), "```", ""]
    lines += ["## Files", "", "| file | bytes | sha256 |", "|---|---|---|"]
    lines += [f"| {p.name} | {p.stat().st_size} | `{hashlib.sha256(p.read_bytes()).hexdigest()}` |" for p in files]
    out = d / "style_e.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="engine/motion/weights/style_e.npz")
    p.add_argument("--out", default=None, help="output folder (default: beside the weights)")
    p.add_argument("--metrics", default=None, help="a motion_quality.py JSON to put in the model card")
    a = p.parse_args(argv)
    files = export_all(a.weights, a.out)
    log.info("parity (max abs diff): %s", json.dumps(parity(a.weights, a.out)))
    log.info("sha256: %s", json.dumps(files, indent=1))
    metrics = json.loads(Path(a.metrics).read_text()) if a.metrics else None
    log.info("wrote %s", write_model_card(Path(a.out) if a.out else Path(a.weights).parent, metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
