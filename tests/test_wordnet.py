"""WordNet look-ups for the emotion text encoder: a tiny fake database (always), the Debian one (when installed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.data import wordnet
from engine.data.wordnet import WordNet
from engine.motion.text_encoder import Projection, TextEncoder, lexicon_texts

LICENCE = "  1 This software and database is being provided to you, the LICENSEE, by  \n"


def _fake_db(root: Path) -> Path:
    """Two adjective synsets (a head and a satellite pointing at it) and one noun, in WordNet 3.0's format."""
    head = "00000000 00 a 01 cheerful 0 001 & 00000100 a 0000 | being full of or promoting cheer; \"a cheerful smile\"\n"
    off_sat = len(LICENCE.encode()) + len(head.encode())
    sat = (f"{off_sat:08d} 00 s 02 chipper 0 jaunty 0 001 & {len(LICENCE.encode()):08d} a 0000 | having a cheerful, "
           "lively air; \"looking chipper\"\n")
    (root / "data.adj").write_text(LICENCE + head.replace("00000000", f"{len(LICENCE.encode()):08d}", 1) + sat)
    (root / "index.adj").write_text(LICENCE + f"cheerful a 1 1 & 1 0 {len(LICENCE.encode()):08d}  \n"
                                    f"chipper a 1 1 & 1 0 {off_sat:08d}  \njaunty a 1 1 & 1 0 {off_sat:08d}  \n")
    noun = f"{len(LICENCE.encode()):08d} 04 n 02 put_off 0 turn_off 0 000 | (informal) a cause of distaste\n"
    (root / "data.noun").write_text(LICENCE + noun)
    (root / "index.noun").write_text(LICENCE + f"put_off n 1 0 1 0 {len(LICENCE.encode()):08d}  \n")
    for name in ("verb", "adv"):
        (root / f"data.{name}").write_text(LICENCE)
        (root / f"index.{name}").write_text(LICENCE)
    (root / "adj.exc").write_text("chipperer chipper\n")
    return root


def test_fake_database_senses(tmp_path: Path) -> None:
    wn = WordNet(_fake_db(tmp_path))
    (s,) = wn.senses("Chipper")
    assert s.pos == "adj" and s.lemmas == ("jaunty",) and s.head == ("cheerful",)
    assert s.gloss == "having a cheerful, lively air"  # quoted examples dropped
    assert wn.senses("chipperer")[0].head == ("cheerful",)  # adj.exc exception form
    assert wn.senses("put off")[0].lemmas == ("turn off",)  # a phrase, underscores in the database
    assert wn.senses("nonexistent") == [] and wn.senses("a") == [] and wn.senses("zzzz") == []
    assert lexicon_texts(wn, "chipper") == (["jaunty"], ["cheerful"], ["having a cheerful, lively air"])


def test_missing_or_broken_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wordnet, "DEFAULT_DIRS", ())
    monkeypatch.setenv(wordnet.WORDNET_ENV, str(tmp_path / "nothing"))
    wordnet.load.cache_clear()
    try:
        assert wordnet.load() is None  # (and it said that the folder it was given holds no database)
        (tmp_path / "broken").mkdir()
        (tmp_path / "broken" / "index.adj").write_text("x")
        (tmp_path / "broken" / "data.adj").write_text("x")  # the other files are missing
        monkeypatch.setenv(wordnet.WORDNET_ENV, str(tmp_path / "broken"))
        wordnet.load.cache_clear()
        assert wordnet.load() is None
    finally:
        wordnet.load.cache_clear()


def _embed(texts: list[str]) -> np.ndarray:
    """A bag-of-words embedding over a tiny vocabulary (for the encoder's plumbing, not for meaning)."""
    vocab = ["cheerful", "jaunty", "chipper", "lively", "air", "emotion", "she", "is"]
    out = np.zeros((len(texts), len(vocab) + 1), np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().replace(":", " ").replace(",", " ").split():
            out[i, vocab.index(w) if w in vocab else -1] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_unseen_word_read_through_its_synonyms(tmp_path: Path) -> None:
    """A span classifier that knows only "cheerful" (-> happy) reads "chipper" as happy once the lexicon says
    chipper's cluster head is cheerful; without the lexicon "chipper" reads as filler and changes nothing."""
    d = 9
    w1 = np.eye(d, d, dtype=np.float32)
    logits = np.zeros((d, 9), np.float32)
    logits[:, 0] = 1.0  # every word leans filler (no emotion singled out) ...
    logits[0] = [-4, -4, 8, -4, -4, -4, -4, -4, -4]  # ... except the "cheerful" feature: happy
    span = Projection(w1, np.zeros(d, np.float32), logits, np.zeros(9, np.float32))
    sentence = Projection(np.zeros((d, 4), np.float32), np.zeros(4, np.float32), np.zeros((4, 8), np.float32),
                          np.zeros(8, np.float32))  # the sentence reads every emotion the same
    wn = WordNet(_fake_db(tmp_path))
    plain = TextEncoder(sentence, _embed, span).encode("she is chipper")
    read = TextEncoder(sentence, _embed, span, lexicon=wn).encode("she is chipper")
    assert np.allclose(plain[1:], plain[1])  # no emotion singled out
    assert read.argmax() == 1 and read[1] > 2 * read[2]  # happy (EMOTIONS order: neutral, happy, sad, ...)


@pytest.mark.skipif(wordnet.find_root() is None, reason="no WordNet database (apt install wordnet-base)")
def test_debian_wordnet() -> None:
    wn = wordnet.load()
    assert wn is not None
    heads = {h for s in wn.senses("chipper") for h in s.head}
    assert "cheerful" in heads
    assert any("disdainful" in s.lemmas for s in wn.senses("sniffy"))
    assert wn.senses("spooked") and wn.senses("patronising")  # verb morphology, British spelling
    assert wn.senses("qwzxv") == []


def test_paced_reading_gives_the_same_code(tmp_path: Path) -> None:
    """A paced reading (the live stage's) embeds in slices with sleeps between, and reads the same code."""
    d = 9
    logits = np.zeros((d, 9), np.float32)
    logits[:, 0] = 1.0
    logits[0] = [-4, -4, 8, -4, -4, -4, -4, -4, -4]
    span = Projection(np.eye(d, dtype=np.float32), np.zeros(d, np.float32), logits, np.zeros(9, np.float32))
    sentence = Projection(np.eye(d, 4, dtype=np.float32), np.zeros(4, np.float32),
                          np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32), np.zeros(8, np.float32))
    calls: list[int] = []

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return _embed(texts)

    wn = WordNet(_fake_db(tmp_path))
    prompt = "she is chipper and jaunty and lively today, air"
    whole = TextEncoder(sentence, _embed, span, lexicon=wn).encode(prompt)
    paced = TextEncoder(sentence, counting, span, lexicon=wn).encode(prompt, pace_s=0.001)
    np.testing.assert_allclose(paced, whole, atol=1e-6)
    assert len(calls) >= 3 and max(calls) <= 4  # sliced (PACE_TEXTS = 4)


def test_damaged_entry_reads_as_unknown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = _fake_db(tmp_path)
    (root / "index.adj").write_text(LICENCE + "chipper a 1 1 & 1 0 notanumber  \n")
    wn = WordNet(root)
    assert wn.senses("chipper") == [] and wn.senses("chipper") == []
    assert sum("damaged entry" in r.message for r in caplog.records) == 1  # said once
