"""`s2t train <model>`: training recipes (Style-A renderer; other models add their own sub-command here)."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import InputError

if TYPE_CHECKING:
    from engine.motion.train import TrainConfig

log = logging.getLogger("s2t.train")


def _style_a(args: argparse.Namespace) -> int:
    import torch

    from engine.render.networks import StyleAConfig
    from engine.render.train import TrainConfig, run_recipe

    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cfg = TrainConfig(steps=args.steps, batch=args.batch, minutes=args.minutes, seed=args.seed, model=StyleAConfig(),
                      style_prob=args.style_prob, w_keep=args.w_keep, w_still=args.w_still)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stats = run_recipe(args.data, args.cache, out, cfg, device=device, max_samples=args.max_samples,
                       extra_caches=tuple(args.extra_cache), init=args.init, style_clips=args.style_clips)
    if args.export:
        from exporters.onnx_style_a import export_all

        export_all(out, out.parent)
    log.info("%s", json.dumps({k: stats[k] for k in ("steps", "seconds", "eval_heldout", "eval_unseen")}))
    return 0


def register_style_a(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    s = sub.add_parser("style-a", help="train the Style-A renderer (self-reenactment on real clips + art styles)")
    s.add_argument("--data", default="../shared/data", help="shared data root (talking/, portraits/)")
    s.add_argument("--cache", default="out/style_a/clips", help="where extracted frames/fits are cached")
    s.add_argument("--out", default="engine/render/weights/style_a.npz", help="weights file to write")
    s.add_argument("--steps", type=int, default=2400, help="optimizer steps (CPU default; raise on a GPU)")
    s.add_argument("--batch", type=int, default=4, help="patches per step")
    s.add_argument("--minutes", type=float, default=22.0, help="wall-clock cap; the LR schedule follows it")
    s.add_argument("--max-samples", type=int, default=100, help="frames sampled per clip")
    s.add_argument("--style-prob", type=float, default=0.5, help="share of training samples with an art style on the target")
    s.add_argument("--w-keep", type=float, default=2.0, help="weight of the keep-the-warp's-structure loss (photographic samples)")
    s.add_argument("--w-still", type=float, default=4.0,
                   help="weight of the loss on any change outside the tracked face (photographic samples; 0: off)")
    s.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    s.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--extra-cache", action="append", default=[], metavar="DIR",
                   help="more cached clips (e.g. from shared/data/style_clips via engine.render.data.build_cache)")
    s.add_argument("--init", metavar="NPZ", help="start from these weights (fine-tune)")
    s.add_argument("--style-clips", action="store_true",
                   help="also train on 6 clips from shared/data/style_clips (as the shipped weights did)")
    s.add_argument("--export", action="store_true", help="export the ONNX encode/render graphs beside the weights")
    s.set_defaults(func=_style_a)


def style_e_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig that `s2t train style-e` runs: the recipe's defaults with the flags given."""
    from engine.motion.train import TrainConfig

    if args.audio_only + args.denoiser_only + args.students_only + args.reference_scale_only > 1:
        raise InputError("--audio-only, --denoiser-only, --students-only and --reference-scale-only retrain "
                         "different parts: give one")
    cfg = TrainConfig(corpus=args.corpus, real=args.real, lookahead=args.lookahead, shards=args.shards,
                      audio_steps=args.audio_steps, denoise_steps=args.denoise_steps, seed=args.seed,
                      minutes=args.minutes)
    given = {k: getattr(args, k) for k in ("no_past", "past_noise", "real_share", "synth_velocity", "distill_data",
                                           "skip") if getattr(args, k) is not None}
    return replace(cfg, **given)  # TrainConfig is frozen


def _style_e(args: argparse.Namespace) -> int:
    import torch

    from engine.motion.train import run_recipe

    cfg = style_e_config(args)
    torch.set_num_threads(args.threads)
    if args.reference_scale_only:
        from engine.motion.train import write_reference_scale

        write_reference_scale(args.out, cfg.corpus, args.real, cfg.shards)
        return 0
    if args.denoiser_only:
        from engine.motion.train import retrain_denoiser

        meta = retrain_denoiser(Path(args.out) / "style_e.npz", cfg)
    elif args.students_only:
        from engine.motion.train import retrain_students

        meta = retrain_students(Path(args.out) / "style_e.npz", cfg)
    elif args.audio_only:
        from engine.motion.train import retrain_audio_encoder

        meta = retrain_audio_encoder(Path(args.out) / "style_e.npz", cfg)
        meta.setdefault("students", [])
    else:
        meta = run_recipe(cfg, args.out, distill_rounds=5, teacher_steps=32)
    if not args.no_export:
        from exporters.onnx_style_e import export_all, parity

        export_all(Path(args.out) / "style_e.npz")
        log.info("ONNX parity (max abs diff): %s", json.dumps(parity(Path(args.out) / "style_e.npz")))
    log.info("%s", json.dumps({k: meta.get(k) for k in ("train_seconds", "students", "synthetic_utterances")}))
    return 0


def register_style_e(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    s = sub.add_parser("style-e", help="train Style-E (audio encoder, motion VAE, text projection, teacher, "
                                       "distilled 4/2/1-step students) and export ONNX")
    s.add_argument("--corpus", default="out/corpus", help="an `s2t data synth` corpus")
    s.add_argument("--real", default="out/fit_talking", help="an `s2t data fit` folder of real clips (mouth)")
    s.add_argument("--out", default="engine/motion/weights", help="weights folder to write")
    s.add_argument("--lookahead", type=int, default=2, help="audio lookahead L in frames (0..16); 2 chosen from the L table in docs/style_e.md")
    s.add_argument("--shards", type=int, default=8, help="synthetic shards to load (~0.3 h each)")
    s.add_argument("--audio-steps", type=int, default=300, help="audio encoder steps (longer memorises the real clips)")
    s.add_argument("--denoise-steps", type=int, default=5000)
    s.add_argument("--minutes", type=float, default=20.0, help="wall-clock cap shared by the stages")
    s.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-export", action="store_true", help="skip the ONNX export")
    s.add_argument("--audio-only", action="store_true",
                   help="retrain only the audio encoder (e.g. another --lookahead) inside the weights in --out")
    s.add_argument("--denoiser-only", action="store_true",
                   help="retrain only the teacher denoiser + style encoder and distil the students, inside --out")
    s.add_argument("--students-only", action="store_true",
                   help="distil the 4/2/1-step students anew from the teacher in --out (--minutes for distillation)")
    s.add_argument("--reference-scale-only", action="store_true",
                   help="only (re)compute reference_scale.json in --out: the corpus's and the face tracker's "
                        "per-channel scales, which style references are read on (seconds)")
    s.add_argument("--distill-data", type=float, default=None, metavar="D",
                   help="share of the clean latent in each distillation target (recipe 0.3; 0: the teacher's alone)")
    s.add_argument("--no-past", type=float, default=None, metavar="P",
                   help="share of denoiser windows trained without past context (recipe default in TrainConfig)")
    s.add_argument("--past-noise", type=float, default=None, metavar="S",
                   help="max std of the noise put on the past latents in denoiser training")
    s.add_argument("--skip", action=argparse.BooleanOptionalAction, default=None,
                   help="denoiser x0 = alpha x_t + sigma F (the input passes through at low noise; v-prediction)")
    s.add_argument("--real-share", type=float, default=None, metavar="R",
                   help="share of audio-encoder segments from real clips (recipe 0.75; the rest synthetic)")
    s.add_argument("--synth-velocity", type=float, default=None, metavar="W",
                   help="weight of the velocity-matching term on the encoder's synthetic mouth channels (recipe 0)")
    s.set_defaults(func=_style_e)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("train", help="train a model with its recipe")
    sub = p.add_subparsers(dest="train_command", metavar="MODEL", required=True)
    register_style_a(sub)
    register_style_e(sub)
