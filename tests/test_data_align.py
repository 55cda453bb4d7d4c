"""Forced-alignment check of espeak-ng timings (engine.data.align) against pocketsphinx."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data.phonemes import Prosody, Speech, synthesize

pytest.importorskip("pocketsphinx", reason="pocketsphinx not installed (pip install pocketsphinx)")

from engine.data.align import compare_timings, force_align  # noqa: E402

TEXTS = ("The quick brown fox jumps over the lazy dog, and then she walked home slowly.",
         "My sister painted the old fence yesterday.")


def _speech(text: str, rate: int) -> Speech:
    return synthesize(text, "espeak:gmw/en-US", Prosody(rate=rate), seed=1)


def test_espeak_word_starts_agree_with_forced_alignment() -> None:
    diffs = []
    for text, rate in zip(TEXTS, (175, 210)):
        d = compare_timings(_speech(text, rate), text)
        assert len(d.word_diffs) == d.words  # every word paired
        diffs.append(d.word_diffs)
    med = float(np.median(np.abs(np.concatenate(diffs))))
    assert med < 0.040, f"median word-start difference {med * 1000:.1f} ms"


def test_shifted_timings_are_caught() -> None:
    text = TEXTS[0]
    sp = _speech(text, 175)
    al = force_align(sp.samples, text)
    assert al.words[-1] == "slowly"
    shifted = Speech(sp.samples, sp.phonemes, sp.starts + 0.06, sp.ends + 0.06, sp.word_starts + 0.06,
                     sp.engine, sp.voice)
    d = compare_timings(shifted, text, al)
    assert float(np.median(np.abs(d.word_diffs))) >= 0.040
