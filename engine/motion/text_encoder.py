"""Style-E emotion text encoder: a prompt -> sentence embedding (bundled MiniLM, or a local CLIP) -> emotion code.

The emotion code is 8 per-emotion weights (EMOTIONS order, summing to 1; neutral takes what the
prompt does not claim), predicted by a small learned projection: raw MiniLM cosine does not separate
emotions (LEARNINGS), the projection trained on the labour-free descriptions plus a large training lexicon
does (engine.motion.text_train, which also retrains it inside an existing style_e.npz).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engine.errors import InputError, NotAvailableError

log = logging.getLogger(__name__)
MAX_PROMPT_CHARS = 1000  # longer prompts are refused: the encoders read ~256 tokens and a wall of text is a mistake
NEUTRAL_CODE = np.eye(8, dtype=np.float32)[0]
_WORD = re.compile(r"[A-Za-z]")


@dataclass(frozen=True, slots=True)
class Projection:
    """Two-layer MLP (GELU) from the sentence embedding to 8 emotion logits; numpy at run time."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def __call__(self, emb: np.ndarray) -> np.ndarray:
        h = emb @ self.w1 + self.b1
        h = 0.5 * h * (1.0 + np.tanh(0.7978845608 * (h + 0.044715 * h**3)))
        z = h @ self.w2 + self.b2
        z = np.exp(z - z.max(-1, keepdims=True))
        return (z / z.sum(-1, keepdims=True)).astype(np.float32)


def check_prompt(text: str) -> str:
    """Normalise a prompt; InputError when it cannot be an emotion description."""
    if not isinstance(text, str):
        raise InputError(f"the emotion prompt must be text, got {type(text).__name__}")
    t = " ".join(text.split())
    if len(t) > MAX_PROMPT_CHARS:
        raise InputError(f"emotion prompt too long: {len(t)} characters (at most {MAX_PROMPT_CHARS}); "
                         "describe the emotion in a sentence, e.g. \"calm but slightly amused\"")
    return t


@lru_cache(maxsize=2)
def _clip(path: str) -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers import CLIPModel, CLIPTokenizer
    except ImportError as e:
        raise NotAvailableError(f"the CLIP text encoder needs transformers: {e}") from None
    if not Path(path, "config.json").is_file():
        raise NotAvailableError(f"no CLIP model at {path} (expected a local Hugging Face CLIP folder)")
    return CLIPTokenizer.from_pretrained(path), CLIPModel.from_pretrained(path).eval()


def clip_embed(path: str) -> Callable[[list[str]], np.ndarray]:
    """An embed function over a local CLIP checkpoint (L2-normalised text features)."""

    def embed(texts: list[str]) -> np.ndarray:
        import torch

        tok, model = _clip(path)
        with torch.no_grad():
            f = model.get_text_features(**tok(texts, padding=True, truncation=True, return_tensors="pt"))
        f = f / f.norm(dim=-1, keepdim=True)
        return f.numpy().astype(np.float32)

    return embed


def minilm_embed(texts: list[str]) -> np.ndarray:
    from engine.data.texts import embed_texts

    return embed_texts(texts)


class TextEncoder:
    """Prompt -> (8,) emotion code; caches the last prompts (a session changes emotion rarely)."""

    def __init__(self, projection: Projection, embed: Callable[[list[str]], np.ndarray] = minilm_embed) -> None:
        self.projection = projection
        self._embed = embed
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, text: str) -> np.ndarray:
        t = check_prompt(text)
        if not t:
            log.info("empty emotion prompt: neutral")
            return NEUTRAL_CODE.copy()
        if t in self._cache:
            return self._cache[t].copy()
        letters = sum(c.isalpha() for c in t)
        if letters and len(_WORD.findall(t)) < 0.5 * letters:
            log.warning("emotion prompt %r does not look English; the text encoder was trained on English "
                        "descriptions, so the emotion it reads may be wrong", t[:60])
        code = self.projection(self._embed([t]))[0]
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[t] = code
        return code.copy()
