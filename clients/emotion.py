"""`s2t emotion PROMPT...`: how Style-E reads emotion prompts (weights, the deciding word, the dictionary's say)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("emotion", help="show how an emotion prompt is read (weights per emotion, deciding word)")
    p.add_argument("prompt", nargs="+", help="one or more emotion prompts, each quoted")
    p.add_argument("--json", action="store_true", help="one JSON object per prompt")
    p.add_argument("--weights", default=None, help="a Style-E weights folder (default: the shipped one)")
    p.set_defaults(func=run)


def describe(r: dict[str, Any]) -> str:
    """One readable line (plus an indented dictionary line) for an explain() result."""
    w = sorted(r["weights"].items(), key=lambda kv: -kv[1])
    top = ", ".join(f"{e} {v:.2f}" for e, v in w if v >= 0.05) or "neutral 1.00"
    line = f'"{r["prompt"]}" -> {r["reads"]}: {top}'
    if r.get("span"):
        sr = r.get("span_reading", {})
        neutral_word = sr.get("neutral", 0.0) > max((v for k, v in sr.items() if k not in ("filler", "neutral")),
                                                    default=0.0)
        line += f' (deciding word: "{r["span"]}"' + (", which reads neutral" if neutral_word else "")
        if r.get("calmed_by"):
            line += f'; "{r["calmed_by"]}" reads neutral and calmed it'
        line += ")"
    d = r.get("dictionary")
    if d and (d["synonyms"] or d["heads"] or d["glosses"]):
        said = ", ".join(d["heads"] + d["synonyms"][:4])
        line += f"\n    dictionary: {said}" + (f' - "{d["glosses"][0]}"' if d["glosses"] else "")
    elif not r.get("lexicon"):
        line += "\n    (no local WordNet: unseen words are read by the encoder alone; apt install wordnet-base)"
    return line


def run(args: argparse.Namespace) -> int:
    from engine.motion.style_e import load_model

    model = load_model(args.weights)
    for prompt in args.prompt:
        r = model.text.explain(prompt)
        sys.stdout.write((json.dumps(r) if args.json else describe(r)) + "\n")
    return 0
