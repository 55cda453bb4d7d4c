"""`s2t data synth|fit`: build the synthetic training corpus, or fit coefficients to real videos."""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger("s2t.data")


def _synth(args: argparse.Namespace) -> int:
    from engine.data.corpus import build_synth_corpus

    card = build_synth_corpus(args.out, hours=args.hours, seed=args.seed, workers=args.workers,
                              texts_per_label=args.texts_per_label, style_refs_per_style=args.style_refs,
                              real=args.real)
    log.info("wrote %s: %.3f h, %d utterances, %s", args.out, card["hours"], card["utterances"],
             json.dumps({k: v["utterances"] for k, v in card["splits"].items()}))  # type: ignore[index,union-attr]
    return 0


def _fit(args: argparse.Namespace) -> int:
    from engine.data.fit import fit_directory

    card = fit_directory(args.videos, args.out, size=args.size, max_frames=args.max_frames, manifest=args.manifest)
    log.info("fitted %d clips into %s; median reprojection error %s of IOD (%d failed)", len(card["clips"]),  # type: ignore[arg-type]
             args.out, card["median_reprojection_error_iod"], len(card["failed"]))  # type: ignore[arg-type]
    return 0 if card["clips"] else 1


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("data", help="build training data (synthetic corpus, fitted real clips)")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = sub.add_parser("synth", help="synthesize a corpus with espeak-ng/flite speech and labelled motion")
    s.add_argument("--hours", type=float, required=True, help="approximate hours of speech to synthesize")
    s.add_argument("--seed", type=int, default=0, help="the corpus is a deterministic function of this seed")
    s.add_argument("--out", required=True, help="output directory (shards, index.json, card.json)")
    s.add_argument("--workers", type=int, default=2, help="synthesis processes")
    s.add_argument("--texts-per-label", type=int, default=400,
                   help="emotion descriptions per (emotion, intensity) label (held-out pool: a fifth of this)")
    s.add_argument("--style-refs", type=int, default=4, help="synthetic reference clips per style")
    s.add_argument("--real", default=None, help="an `s2t data fit` output to merge (clips with audio; split by speaker)")
    s.set_defaults(func=_synth)
    f = sub.add_parser("fit", help="fit per-frame coefficients to real videos (face tracker + face model)")
    f.add_argument("--videos", required=True, help="directory of videos")
    f.add_argument("--out", required=True, help="output directory (<clip>.npz + card.json)")
    f.add_argument("--size", type=int, default=256, help="face model crop size")
    f.add_argument("--max-frames", type=int, default=None, help="fit at most this many frames per video")
    f.add_argument("--manifest", default=None, help="MANIFEST.md giving sources/licences (default: found upwards)")
    f.set_defaults(func=_fit)
