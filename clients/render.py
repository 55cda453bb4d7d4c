"""`s2t render`: a portrait + a speech file (+ emotion / style / art style) -> a talking-portrait mp4 offline."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import math
import sys
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.errors import InputError, NotAvailableError

log = logging.getLogger(__name__)

MOTIONS = ("baseline", "style-e")
RENDERERS = ("reference", "style-a")


class MotionSource(Protocol):
    """A whole-clip motion generator: 16 kHz mono audio (+ per-frame speech flags) -> (T, dim) coefficients."""

    def generate(self, samples_all: np.ndarray, speech: np.ndarray | None = None) -> np.ndarray: ...


class FrameRenderer(Protocol):
    """Renders coefficient frames to (size, size, 3) uint8 RGB images, one or a batch at a time."""

    def render(self, coeffs: np.ndarray) -> np.ndarray: ...

    def render_batch(self, coeffs: np.ndarray) -> np.ndarray:
        """(T, dim) -> (T, size, size, 3)."""


RENDER_BATCH = 8  # offline frames per renderer call (Style-A runs its ONNX graph once per batch)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "render",
        help="render a talking portrait to an mp4 file from a portrait and a speech recording",
        description="Offline render: speech (+ emotion text, style clip, art style) drives a portrait.",
    )
    p.add_argument("--portrait", metavar="IMAGE", help="face picture (png/jpg); default: the bundled portrait")
    p.add_argument("--audio", metavar="AUDIO", required=True, help="speech file (wav, mp3, ogg, flac, m4a, mp4)")
    p.add_argument("--emotion", default="neutral", metavar="TEXT",
                   help='emotion prompt, e.g. "calm but slightly amused"')
    p.add_argument("--style-ref", metavar="CLIP", help="talking-style reference clip (needs --motion style-e)")
    p.add_argument("--phone-weight", type=float, metavar="W", help="Style-E: share of the mouth taken from recognised phones instead of the audio "
                   "encoder, 0..1 (default 0.2; 0.8 suits synthesized voices, e.g. a voice agent's TTS)")
    p.add_argument("--motion", choices=MOTIONS, default="style-e",
                   help="motion generator (default: style-e; baseline: audio envelope + keyword emotion)")
    p.add_argument("--renderer", choices=RENDERERS, default="reference", help="frame renderer (default: reference)")
    p.add_argument("--art-style", metavar="PICTURE", help="art-style picture (needs --renderer style-a)")
    p.add_argument("--style-strength", type=float, default=1.0, metavar="X", help="art-style strength 0..1 (default 1)")
    p.add_argument("--fps", type=float, default=25.0, help="output frame rate (default 25)")
    p.add_argument("--size", type=int, choices=(256, 512), default=256, help="output frame size in px (default 256)")
    p.add_argument("--seed", type=int, default=0, help="random seed for blinks and head motion (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bar")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (.mp4, .mkv or .mov)")
    p.set_defaults(func=run)


def _stage_hook(module: str, attr: str, flag: str) -> object:
    """`module.attr` if that stage has landed in this build, else NotAvailableError naming `flag`."""
    if importlib.util.find_spec(module) is not None:
        hook = getattr(importlib.import_module(module), attr, None)
        if hook is not None:
            return hook
    raise NotAvailableError(f"{flag} is not available in this build yet ({module}.{attr} has not landed)")


def build_stages(args: argparse.Namespace, portrait: np.ndarray) -> tuple[MotionSource, FrameRenderer]:
    """The one place that maps --motion/--renderer (and the flags they own) to stage objects.

    Later stages plug in by defining `engine.motion.style_e.load_motion(fps=, emotion=, style_ref=, seed=)`
    and `engine.render.load_renderer(portrait, size=, art_style=, strength=)`.
    """
    if args.style_ref and args.motion != "style-e":
        _stage_hook("engine.motion.style_e", "load_motion", "--style-ref (talking style from a clip)")
        raise NotAvailableError("--style-ref needs --motion style-e")
    if getattr(args, "phone_weight", None) is not None and args.motion != "style-e":
        raise InputError("--phone-weight needs --motion style-e")
    if args.art_style and args.renderer != "style-a":
        _stage_hook("engine.render", "load_renderer", "--art-style (the Style-A renderer)")
        raise NotAvailableError("--art-style needs --renderer style-a")

    # the renderer first: a portrait without a face fails before the motion model loads
    renderer: FrameRenderer
    if args.renderer == "style-a":
        load_renderer = _stage_hook("engine.render", "load_renderer", "--renderer style-a")
        renderer = load_renderer(  # type: ignore[operator]
            portrait, size=args.size, art_style=args.art_style, strength=args.style_strength
        )
    else:
        from engine.face.model import FaceModel
        from engine.face.reference_renderer import ReferenceRenderer

        renderer = ReferenceRenderer(FaceModel.from_portrait(portrait, size=args.size), args.size)

    motion: MotionSource
    if args.motion == "style-e":
        load_motion = _stage_hook("engine.motion.style_e", "load_motion", "--motion style-e")
        extra = {} if getattr(args, "phone_weight", None) is None else {"phone_weight": args.phone_weight}
        motion = load_motion(  # type: ignore[operator]
            fps=args.fps, emotion=args.emotion, style_ref=args.style_ref, seed=args.seed, **extra
        )
    else:
        from engine.motion.baseline import BaselineMotion

        motion = BaselineMotion(fps=args.fps, emotion=args.emotion, seed=args.seed)
    return motion, renderer


def _check_args(args: argparse.Namespace) -> Path:
    from engine.media.writer import CONTAINERS

    out = Path(args.output)
    if out.suffix.lower() not in CONTAINERS:
        raise InputError(f"unsupported output format {out.suffix or '(none)'!r} for {out}; use {', '.join(CONTAINERS)}")
    if not (1.0 <= args.fps <= 60.0) or not math.isfinite(args.fps):
        raise InputError(f"--fps must be between 1 and 60, got {args.fps}")
    if not 0.0 <= args.style_strength <= 1.0:
        raise InputError(f"--style-strength must be in 0..1, got {args.style_strength}")
    for flag, value in (("--style-ref", args.style_ref), ("--art-style", args.art_style)):
        if value and not Path(value).is_file():
            raise InputError(f"{flag}: file not found: {value}")
    return out


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.assets import asset_path
    from engine.audio.ingest import decode_audio
    from engine.face.image import load_image
    from engine.media.writer import Mp4Writer
    from engine.motion.baseline import SAMPLE_RATE, speech_per_frame

    out = _check_args(args)
    t0 = time.perf_counter()
    portrait_path = Path(args.portrait) if args.portrait else asset_path("portrait.png")
    portrait = load_image(portrait_path)
    samples = decode_audio(args.audio)
    motion, renderer = build_stages(args, portrait)
    t_setup = time.perf_counter() - t0
    log.info("setup %.2f s (portrait %s, %.2f s of audio)", t_setup, portrait_path, len(samples) / SAMPLE_RATE)

    t1 = time.perf_counter()
    coeffs = motion.generate(samples, speech_per_frame(samples, args.fps))
    n_frames = len(coeffs)
    show = not getattr(args, "quiet", False) and sys.stderr.isatty()
    with Mp4Writer(out, args.size, args.size, fps=args.fps, sample_rate=SAMPLE_RATE) as writer:
        writer.write_audio(samples)
        with tqdm(total=n_frames, unit="frame", file=sys.stderr, disable=not show, desc="render") as bar:
            for i in range(0, n_frames, RENDER_BATCH):
                for image in renderer.render_batch(coeffs[i : i + RENDER_BATCH]):
                    writer.write_frame(image)
                bar.update(min(RENDER_BATCH, n_frames - i))
        duration = writer.duration
    elapsed = time.perf_counter() - t1
    speed = n_frames / max(elapsed, 1e-9)
    sys.stdout.write(
        f"{out}: {n_frames} frames, {duration:.2f} s at {args.fps:g} fps; rendered at {speed:.1f} fps "
        f"({duration / max(elapsed, 1e-9):.2f}x realtime)\n"
    )
    return 0
