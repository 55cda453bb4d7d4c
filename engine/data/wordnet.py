"""Offline look-ups in a local WordNet 3.0 database (Debian `wordnet-base`): a word's senses, synonyms and glosses.

The emotion text encoder reads a prompt's words through what it learned on its training lexicon; a word it never
saw ("sniffy", "agog") is placed only as well as MiniLM's embedding of it allows. WordNet says what such a word
means in words the encoder knows: its synonyms ("sniffy": disdainful, haughty, supercilious), the head of its
adjective cluster ("chipper" -> cheerful) and its gloss. Nothing is downloaded: the database is the Debian package
(`make` installs it when root), or any WordNet 3.0 `dict` folder named by S2T_WORDNET_DIR. Without one, `load()`
returns None and the encoder works as before.

Look-ups are binary searches in the sorted index files (nothing is loaded up front) and are cached.
"""

from __future__ import annotations

import logging
import mmap
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)
WORDNET_ENV = "S2T_WORDNET_DIR"
DEFAULT_DIRS = ("/usr/share/wordnet", "/usr/share/wordnet/dict", "/usr/local/share/wordnet")
POS_FILES = {"a": "adj", "s": "adj", "n": "noun", "v": "verb", "r": "adv"}
# WordNet's own detachment rules (morphy): suffix -> replacement, per part of speech
_RULES = {"noun": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
                   ("men", "man"), ("ies", "y")),
          "verb": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"),
                   ("ing", "")),
          "adj": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
          "adv": ()}
_BRITISH = (("ising", "izing"), ("ised", "ized"), ("ise", "ize"), ("isation", "ization"), ("our", "or"))


@dataclass(frozen=True, slots=True)
class Sense:
    """One synset of a looked-up word: its part of speech, its other lemmas, the lemmas of the adjective cluster
    head it belongs to (satellites only) and its gloss (definition, without the quoted examples)."""

    pos: str
    lemmas: tuple[str, ...]
    head: tuple[str, ...]
    gloss: str


class WordNet:
    """A read-only WordNet 3.0 database folder (index.adj/noun/verb/adv, data.*, *.exc)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._warned = False
        self._cache: dict[tuple[str, int], list[Sense]] = {}
        self._index: dict[str, mmap.mmap] = {}
        self._data: dict[str, mmap.mmap] = {}
        self._exc: dict[str, dict[str, tuple[str, ...]]] = {}
        for name in ("adj", "noun", "verb", "adv"):
            for kind, store in (("index", self._index), ("data", self._data)):
                with open(self.root / f"{kind}.{name}", "rb") as f:
                    store[name] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            exc: dict[str, tuple[str, ...]] = {}
            p = self.root / f"{name}.exc"
            if p.is_file():
                for line in p.read_text(encoding="latin-1").splitlines():
                    parts = line.split()
                    if len(parts) >= 2:
                        exc[parts[0]] = tuple(parts[1:])
            self._exc[name] = exc

    def _find(self, name: str, key: str) -> list[str] | None:
        """The index line of `key` (lower case, spaces as underscores) in index.`name`, split; binary search."""
        m = self._index[name]
        target = key.encode("latin-1", "replace") + b" "
        lo, hi = 0, len(m)
        while lo < hi:  # find the first line start >= target among sorted lines (licence lines start with "  ")
            mid = (lo + hi) // 2
            start = m.rfind(b"\n", 0, mid) + 1
            end = m.find(b"\n", start)
            end = len(m) if end < 0 else end
            line = m[start:end]
            if line[:2] == b"  " or line < target:
                lo = end + 1
            else:
                hi = start
        end = m.find(b"\n", lo)
        line = m[lo:(len(m) if end < 0 else end)]
        return line.decode("latin-1").split() if line.startswith(target) else None

    def _synset(self, name: str, offset: int) -> tuple[str, list[str], list[int], str]:
        """(type, lemmas, similar-to offsets, gloss) of the synset at `offset` in data.`name`."""
        m = self._data[name]
        end = m.find(b"\n", offset)
        text = m[offset:(len(m) if end < 0 else end)].decode("latin-1")
        head, _, gloss = text.partition(" | ")
        f = head.split()
        n = int(f[3], 16)
        lemmas = [f[4 + 2 * i].split("(")[0].replace("_", " ") for i in range(n)]
        k = 4 + 2 * n
        similar = [int(f[k + 2 + 4 * j]) for j in range(int(f[k])) if f[k + 1 + 4 * j] == "&"]
        definition = "; ".join(p.strip() for p in gloss.split(";") if p.strip() and not p.strip().startswith('"'))
        return f[2], lemmas, similar, definition

    def _entry(self, word: str, name: str) -> tuple[str, list[str]] | None:
        """(dictionary form, index line) of `word` for part of speech `name`: the first of the word, its listed
        exceptions, morphy's suffix rules and British -ise spellings that the index has (for a phrase, the first
        word is reduced); None when none is."""
        w = "_".join(word.lower().split())
        first, sep, rest = w.partition("_")
        cands = [w, *(c + sep + rest for c in self._exc[name].get(first, ()))]
        cands += [first[: len(first) - len(a)] + b + sep + rest for a, b in _RULES[name] if first.endswith(a)]
        cands += [w[: len(w) - len(a)] + b for a, b in _BRITISH if w.endswith(a)]
        for c in dict.fromkeys(cands):
            row = self._find(name, c) if c else None
            if row is not None:
                return c, row
        return None

    def senses(self, word: str, max_per_pos: int = 3) -> list[Sense]:
        """Senses of a word or phrase: adjective ones first, then noun, verb and adverb ones (at most
        `max_per_pos` each, the index's order); the word itself is left out of each sense's lemmas. Cached: a
        prompt's spans are looked up again when it is read again or explained."""
        key = (" ".join(word.lower().split()), max_per_pos)
        if key in self._cache:
            return self._cache[key]
        if len(self._cache) > 4096:
            self._cache.clear()
        try:
            self._cache[key] = self._senses(*key)
            return self._cache[key]
        except (ValueError, IndexError, UnicodeError) as e:  # a damaged database file: this word has no senses
            if not self._warned:
                log.warning("WordNet at %s has a damaged entry (%s: %s); such words are read without it",
                            self.root, type(e).__name__, e)
                self._warned = True
            return []

    def _senses(self, key: str, max_per_pos: int) -> list[Sense]:
        out: list[Sense] = []
        for name in ("adj", "noun", "verb", "adv"):
            entry = self._entry(key, name)
            if entry is not None:
                base, row = entry
                n_ptr = int(row[3])
                n_sense = int(row[4 + n_ptr])
                offsets = [int(x) for x in row[6 + n_ptr: 6 + n_ptr + n_sense]]
                for off in offsets[:max_per_pos]:
                    kind, lemmas, similar, gloss = self._synset(name, off)
                    head: list[str] = []
                    if kind == "s":
                        for s in similar[:1]:
                            head = self._synset(name, s)[1]
                    own = {key, base.replace("_", " ")}
                    out.append(Sense(name, tuple(x for x in lemmas if x.lower() not in own),
                                     tuple(x for x in head if x.lower() not in own), gloss))
        return out


def find_root() -> Path | None:
    """The first folder holding a WordNet 3.0 database: S2T_WORDNET_DIR, then the Debian locations."""
    env = os.environ.get(WORDNET_ENV)
    if env and not (Path(env, "index.adj").is_file() and Path(env, "data.adj").is_file()):
        log.warning("%s=%s holds no WordNet database (index.adj, data.adj); trying the Debian locations",
                    WORDNET_ENV, env)
    for d in ([env] if env else []) + list(DEFAULT_DIRS):
        if d and Path(d, "index.adj").is_file() and Path(d, "data.adj").is_file():
            return Path(d)
    return None


@lru_cache(maxsize=1)
def load() -> WordNet | None:
    """The local WordNet, or None (logged once) when there is none or it cannot be read."""
    root = find_root()
    if root is None:
        log.info("no WordNet database found (apt install wordnet-base, or set %s): the emotion text encoder "
                 "reads unseen words without it", WORDNET_ENV)
        return None
    try:
        return WordNet(root)
    except (OSError, ValueError) as e:
        log.warning("WordNet at %s cannot be read (%s): the emotion text encoder reads unseen words without it",
                    root, e)
        return None
