"""Style-E emotion text encoder: a prompt -> sentence embedding (bundled MiniLM, or a local CLIP) -> emotion code.

The emotion code is 8 per-emotion weights (EMOTIONS order, summing to 1; neutral takes what the
prompt does not claim), predicted by a small learned projection: raw MiniLM cosine does not separate
emotions (LEARNINGS), the projection trained on the labour-free descriptions plus a large training lexicon
does (engine.motion.text_train, which also retrains it inside an existing style_e.npz).

A mean-pooled sentence embedding dilutes the one emotion word in its template ("what a very elated mood"), so
when the weights carry a span classifier (`text_span.*`) the prompt's short word spans are embedded too, in one
encoder call with the prompt, and the most emotion-bearing span not scoped by a negation re-splits the
sentence's emotional share (`combine`); the sentence keeps the intensity. ~30 ms per new prompt on this CPU.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, NamedTuple, Protocol

import numpy as np

from engine.errors import InputError, NotAvailableError

log = logging.getLogger(__name__)
MAX_PROMPT_CHARS = 1000  # longer prompts are refused: the encoders read ~256 tokens and a wall of text is a mistake
NEUTRAL_CODE = np.eye(8, dtype=np.float32)[0]
_WORD = re.compile(r"[A-Za-z]")
_TOKEN = re.compile(r"[a-z][a-z'-]*")
MAX_SPAN_WORDS = 3  # emotion words and short idioms ("caught off guard") are read as spans of 1..3 words
MAX_SPANS = 12  # at most this many spans (shortest first) are embedded per prompt: ~2-4 ms each on this CPU
# Function words a span may not start or end with (a span is the emotion word, not "a very" or "is so")
_STOP = frozenset("""a an the and or but of to in on at by for with from as is are was were be been being am i i'm
you he she it we they them their his her my our your this that these those who whom which what so very
too quite rather just really also then than there here while when after before about into under
not no through all""".split())
_NEGATORS = frozenset({"not", "never", "no", "without", "nor", "free", "nothing", "none", "hardly"})
SPAN_FRAME = "an emotion: {}"
SPAN_WEIGHT = 0.5  # exponent of the span classifier's emotion in the product with the sentence's (dev-chosen) ...
SPAN_WEIGHT_LEXICON = 2.0  # ... and when spans are also read through a dictionary (dev-chosen on sentence shapes no net saw)


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


class Span(NamedTuple):
    """A candidate emotion span of a prompt and whether a negation ("not", "never", "without", ...) scopes it."""

    text: str
    negated: bool


def spans(text: str, max_words: int = MAX_SPAN_WORDS, limit: int = MAX_SPANS) -> list[Span]:
    """Candidate emotion spans of a prompt: lower-case word n-grams (n <= max_words) that neither start nor end
    with a function word, shortest first, at most `limit`, each marked negated when one of the three words
    before it is a negation (the prompt's emotion word is read on its own, not diluted in the whole sentence's
    mean-pooled embedding)."""
    words = _TOKEN.findall(text.lower())
    neg = np.array([w in _NEGATORS or w.endswith("n't") for w in words], bool)
    out: list[Span] = []
    seen: set[str] = set()
    for n in range(1, max_words + 1):
        for i in range(len(words) - n + 1):
            w = words[i:i + n]
            if w[0] in _STOP or w[-1] in _STOP:
                continue
            sp = " ".join(w)
            if sp not in seen:
                seen.add(sp)
                out.append(Span(sp, bool(neg[max(0, i - 3):i].any())))
    return out[:limit]


def span_inputs(items: list[str]) -> list[str]:
    """What the span classifier embeds for each span: the span in a short fixed frame (MiniLM places a word by
    its meaning better in "an emotion: X" than alone, where spelling dominates; measured on a leave-words-out
    split of the training lexicon)."""
    return [SPAN_FRAME.format(s) for s in items]


def minilm_embed(texts: list[str]) -> np.ndarray:
    from engine.data.texts import embed_texts

    return embed_texts(texts)


def default_lexicon() -> "Lexicon | None":
    """The dictionary unseen prompt words are read through: a local WordNet (engine.data.wordnet), or None when
    there is none or S2T_WORDNET=0."""
    if os.environ.get("S2T_WORDNET", "1") == "0":
        return None
    from engine.data import wordnet

    return wordnet.load()


def load_projection(arrays: Any, key: str) -> Projection | None:
    """The projection stored under `key` (`{key}.0.weight` ... `{key}.2.bias`, torch layout) in an npz, or None."""
    if f"{key}.0.weight" not in arrays:
        return None
    return Projection(arrays[f"{key}.0.weight"].T.copy(), arrays[f"{key}.0.bias"], arrays[f"{key}.2.weight"].T.copy(),
                      arrays[f"{key}.2.bias"])


def combine(sentence: np.ndarray, span_probs: np.ndarray, weight: float = SPAN_WEIGHT) -> np.ndarray:
    """(N, 8) emotion weights from the sentence projection's (N, 8) and the span classifier's (N, 8) emotion
    probabilities: the sentence keeps its neutral share (the intensity it read from adverbs, negations and
    blends) and its emotional share is re-split by the product sentence * span**weight (a product of experts:
    the span names the emotion word's emotion undiluted by the rest of the sentence)."""
    lw = np.log(sentence[:, 1:] + 1e-6) + weight * np.log(span_probs[:, 1:] + 1e-4)
    w = np.exp(lw - lw.max(-1, keepdims=True))
    w *= (1.0 - sentence[:, :1]) / w.sum(-1, keepdims=True)
    return np.concatenate([sentence[:, :1], w], 1).astype(np.float32)


LEXICON_LEMMAS = 8  # at most this many synonyms, 4 cluster-head lemmas and 3 glosses per span (set once; dev word
# level 65 % -> 75 % with all three groups, 71 % without glosses)
LEXICON_GLOSS_WORDS = 10  # a gloss is read up to this many words (its head: the genus and the first qualifier)
PACE_TEXTS = 4  # a paced reading embeds this many texts per slice (~10-20 ms of one core each)
LEXICON_FILLER = 0.9  # a span the classifier reads as filler with at least this probability is not looked up


class Lexicon(Protocol):
    """A dictionary the encoder reads unseen words through (engine.data.wordnet.WordNet)."""

    def senses(self, word: str, max_per_pos: int = 3) -> list[Any]: ...


def lexicon_texts(lexicon: Lexicon, span: str) -> tuple[list[str], list[str], list[str]]:
    """What a dictionary says a span means, as three groups of short texts the span classifier reads: synonyms
    (its synsets' other lemmas), the heads of its adjective clusters, and its glosses; empty when it has none."""
    senses = lexicon.senses(span)
    lemmas = list(dict.fromkeys(x for s in senses for x in s.lemmas[:4]))[:LEXICON_LEMMAS]
    heads = list(dict.fromkeys(x for s in senses for x in s.head[:2]))[:4]
    glosses = [" ".join(re.sub(r"\([^)]*\)", " ", s.gloss).split()[:LEXICON_GLOSS_WORDS]) for s in senses[:3]]
    return lemmas, heads, [g for g in glosses if g]


CALM_EXPONENT = 2.0  # neutral against emotion evidence in calm_down, squared (dev: neutral prompts 69/66 % -> 88/75 %
# in training/new sentence shapes, all dev sets 70.8 -> 71.9 %, neutral + emotion blends 72.6 -> 71.4 %; 3 gives
# neutral 91/83 % but blends 70.2 %)


def calm_down(code: np.ndarray, calm: np.ndarray, emotion: np.ndarray) -> np.ndarray:
    """Scale an (8,) code's emotional share by 1 - d, d = n^a / (n^a + e^a), a = CALM_EXPONENT: n the neutral
    share of the `calm` span's reading (9 classes: filler, neutral, 7 emotions; the prompt's most emotion-bearing
    span), e the emotion evidence of the `emotion` span (the one whose emotion was used). A prompt whose strongest
    word names no emotion ("deadpan", "impassive") is neutral, which `combine` cannot make (it only re-splits the
    emotional share), while "calm but slightly amused" keeps its amusement in proportion. Used with a lexicon,
    where unseen neutral words read reliably (dev: neutral 16 % -> 66-81 %; neutral + emotion blends 65 % -> 73 %
    against scaling by the calm span alone). The exponent makes the contest decisive: a word read 0.7 neutral
    against 0.3 emotion leaves 16 % of the emotional share, not 30 %."""
    n = float(calm[1]) ** CALM_EXPONENT
    d = n / max(n + float(emotion[2:].sum()) ** CALM_EXPONENT, 1e-12)
    out = code.copy()
    out[1:] *= 1.0 - d  # n, e >= 0, so d is in [0, 1]
    out[0] = 1.0 - out[1:].sum()
    return out


class TextEncoder:
    """Prompt -> (8,) emotion code; caches the last prompts (a session changes emotion rarely).

    `projection` maps the whole prompt's embedding to emotion weights. With `span` (a 9-way classifier: filler,
    then the 8 emotions) the prompt's word spans are embedded too; the most emotion-bearing span that no negation
    scopes sharpens the sentence's reading (`combine`). With `lexicon` (a local WordNet, engine.data.wordnet) each
    span is also read through what the dictionary says it means (`lexicon_texts`: synonyms, cluster head, gloss)
    and its reading is the mean of those readings and its own, so a word the classifier never saw is placed by
    the words it did. Without `span`, the sentence projection alone.
    """

    def __init__(self, projection: Projection, embed: Callable[[list[str]], np.ndarray] = minilm_embed,
                 span: Projection | None = None, span_weight: float | None = None,
                 lexicon: "Lexicon | None" = None) -> None:
        self.projection = projection
        self.span = span
        self.span_weight = span_weight if span_weight is not None else (
            SPAN_WEIGHT if lexicon is None else SPAN_WEIGHT_LEXICON)
        self.lexicon = lexicon
        self._embed = embed
        self._cache: dict[str, np.ndarray] = {}
        self._span_cache: dict[str, np.ndarray] = {}  # span -> span classifier probabilities (edits reuse them)

    def _unit(self, span: str) -> bool:
        """Whether a span is read on its own: every single word; a phrase only when the lexicon lists it (with no
        lexicon, every phrase). An unlisted phrase ("decidedly chipper") is its words, read one by one."""
        return self.lexicon is None or " " not in span or bool(self.lexicon.senses(span))

    def _embed_paced(self, texts: list[str], pace_s: float) -> np.ndarray:
        """self._embed, in slices of PACE_TEXTS texts with `pace_s` of sleep after each when pace_s > 0: the same
        work spread out, so a live worker's prompt reading never holds a core for long (0: one call)."""
        if pace_s <= 0 or len(texts) <= PACE_TEXTS:
            return self._embed(texts)
        parts = []
        for i in range(0, len(texts), PACE_TEXTS):
            parts.append(self._embed(texts[i:i + PACE_TEXTS]))
            time.sleep(pace_s)
        return np.concatenate(parts)

    def _span_readings(self, new: list[str], texts: list[str], pace_s: float = 0.0) -> np.ndarray:
        """Embed `texts` and the framed `new` spans together and store the spans' readings in the span cache; with
        a lexicon, the spans not plainly filler are then read through their lexicon texts too (a second, smaller
        pass). Returns the prompts' embeddings."""
        emb = self._embed_paced(texts + span_inputs(new), pace_s)
        assert self.span is not None
        own = self.span(emb[len(texts):]) if new else np.zeros((0, 9), np.float32)
        self._span_cache.update(zip(new, own))
        if self.lexicon is None:
            return emb[: len(texts)]
        look = [i for i in range(len(new)) if own[i, 0] < LEXICON_FILLER]
        groups = {i: lexicon_texts(self.lexicon, new[i]) for i in look}
        extra = sorted({t for g in groups.values() for part in g for t in part})
        if extra:
            row = dict(zip(extra, self.span(self._embed_paced(span_inputs(extra), pace_s))))
            for i, g in groups.items():
                parts = [own[i]] + [np.mean([row[t] for t in part], 0) for part in g if part]
                self._span_cache[new[i]] = np.mean(parts, 0).astype(np.float32)
        return emb[: len(texts)]

    def encode_batch(self, texts: list[str], pace_s: float = 0.0) -> np.ndarray:
        """(N, 8) emotion codes of normalised, non-empty prompts (no prompt cache; span readings are cached);
        `pace_s`: see _embed_paced."""
        return self._read(texts, pace_s)[0]

    def _read(self, texts: list[str], pace_s: float = 0.0
              ) -> tuple[np.ndarray, np.ndarray, list[tuple[str | None, str | None]]]:
        """(codes, the sentence projection's own codes, per prompt the spans that decided: see _read_spans)."""
        if not texts:
            return np.zeros((0, 8), np.float32), np.zeros((0, 8), np.float32), []
        if self.span is None:
            sentence = self.projection(self._embed_paced(texts, pace_s))
            return sentence, sentence.copy(), [(None, None)] * len(texts)
        items = [[s for s in spans(t) if not s.negated and self._unit(s.text)] for t in texts]
        needed = {s.text for it in items for s in it}
        if len(self._span_cache) + len(needed) > 4096:
            self._span_cache.clear()
        new = sorted(needed - self._span_cache.keys())
        sentence = self.projection(self._span_readings(new, texts, pace_s))
        codes = sentence.copy()
        decided = [self._read_spans(codes, i, [s.text for s in it]) for i, it in enumerate(items)]
        return codes, sentence, decided

    def _read_spans(self, codes: np.ndarray, i: int, items: list[str]) -> tuple[str | None, str | None]:
        """Sharpen codes[i] with its spans' readings; returns (the span whose emotion was used, the span whose
        neutral share calmed the code), None where none."""
        if not items:
            return None, None
        p = np.stack([self._span_cache[s] for s in items])
        j = int(np.argmax(p[:, 2:].sum(1)))  # the span with the most evidence for an emotion
        best = p[j, 1:]
        codes[i] = combine(codes[i:i + 1], (best / max(float(best.sum()), 1e-12))[None], self.span_weight)[0]
        if self.lexicon is None:
            return items[j], None
        k = int(np.argmax(1.0 - p[:, 0]))
        codes[i] = calm_down(codes[i], p[k], p[j])
        return items[j], items[k]

    def explain(self, text: str) -> dict[str, Any]:
        """How a prompt is read, for people choosing prompts (`s2t emotion`): the code as {emotion: weight}, the
        sentence projection's own reading, the span that named the emotion and what the dictionary says of it."""
        from engine.data.emotions import EMOTIONS, primary_of

        t = check_prompt(text)
        out: dict[str, Any] = {"prompt": t, "lexicon": self.lexicon is not None}
        if not t:
            return out | {"reads": "neutral", "weights": dict(zip(EMOTIONS, NEUTRAL_CODE.tolist())), "span": None}
        codes, sentence, decided = self._read([t])
        out["reads"] = EMOTIONS[int(primary_of(codes)[0])]
        out["weights"] = {e: round(float(w), 4) for e, w in zip(EMOTIONS, codes[0])}
        out["sentence_weights"] = {e: round(float(w), 4) for e, w in zip(EMOTIONS, sentence[0])}
        span, calm = decided[0]
        out["span"] = span
        if span is not None:
            out["span_reading"] = {e: round(float(w), 4) for e, w in
                                   zip(("filler",) + EMOTIONS, self._span_cache[span])}
            if self.lexicon is not None:
                lemmas, heads, glosses = lexicon_texts(self.lexicon, span)
                out["dictionary"] = {"synonyms": lemmas, "heads": heads, "glosses": glosses}
        if calm is not None and calm != span:
            out["calmed_by"] = calm
        return out

    def encode(self, text: str, pace_s: float = 0.0) -> np.ndarray:
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
        code = self.encode_batch([t], pace_s)[0]
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[t] = code
        return code.copy()
