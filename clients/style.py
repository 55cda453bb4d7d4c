"""`s2t style CLIP...`: how Style-E reads a talking-style reference (nearest training styles, mouth articulation)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("style", help="show how a talking-style reference clip is read (nearest styles, articulation)")
    p.add_argument("clip", nargs="+", help="reference clips: a video, an `s2t data fit` .npz, or (T, 34) .npy/.npz "
                                           "coefficients")
    p.add_argument("--json", action="store_true", help="one JSON object per clip")
    p.add_argument("--weights", default=None, help="a Style-E weights folder (default: the shipped one)")
    p.set_defaults(func=run)


def _median(r: dict[str, Any], key: str) -> float:
    vals = sorted(float(v[key]) for k, v in r.items() if k != "jawOpen")
    return vals[len(vals) // 2]


def _short(name: str) -> str:
    return name.removeprefix("mouth").replace("Left", " L").replace("Right", " R")


def _group(art: dict[str, Any], names: list[str], key: str = "tempo") -> str:
    lo, hi = min(art[n][key] for n in names), max(art[n][key] for n in names)
    pace = f"{lo:.2f}x" if abs(hi - lo) < 0.005 else f"{lo:.2f}-{hi:.2f}x"
    return f"{', '.join(_short(n) for n in names)} ({pace})"


def describe(r: dict[str, Any]) -> str:
    """A few readable lines for an explain_style() result (plus its "clip" name)."""
    top = ", ".join(f"{k} {v:.2f}" for k, v in r["styles"].items() if v >= 0.05)
    lines = [f'{r["clip"]}: {r["frames"]} frames ({r["seconds"]:.1f} s) -> nearest training styles: {top}']
    art = r.get("articulation")
    if not art:
        lines.append("    articulation: not read (the weights have no reference_scale.json; "
                     "`s2t train style-e --reference-scale-only` makes one)")
        return "\n".join(lines)
    lines.append(f"    mouth opening: jaw x{art['jawOpen']['gain']:.2f}, lips x{_median(art, 'gain'):.2f} (median) "
                 "of the training corpus's level")
    still = [n for n, v in art.items() if not v["tempo"]]
    slow = [n for n, v in art.items() if v["tempo"] and v["pole"] > 0]
    brisk = [n for n, v in art.items() if v["tempo"] and v["boost"] > 0]
    kept = [n for n in art if n not in still + slow + brisk]
    parts = [f"smoothed {_group(art, slow)}" if slow else "", f"lifted {_group(art, brisk)}" if brisk else "",
             f"kept {_group(art, kept)}" if kept else "", f"still {', '.join(_short(n) for n in still)}" if still else ""]
    lines.append("    tempo against the corpus's: " + "; ".join(x for x in parts if x))
    if any(v.get("spread") for v in art.values()):  # weights whose reference scale has the corpus's spread
        wider = [n for n, v in art.items() if v.get("widen", 0) > 0]
        lines.append("    lip range against the corpus's: " + (f"widened {_group(art, wider, 'spread')}" if wider
                                                                 else "nothing widened"))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from engine.motion.style_e import load_model, read_style_reference

    model = load_model(args.weights)
    for clip in args.clip:
        r = {"clip": Path(clip).name} | model.explain_style(read_style_reference(clip, scale=model.scale))
        sys.stdout.write((json.dumps(r) if args.json else describe(r)) + "\n")
    return 0
