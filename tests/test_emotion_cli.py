"""`s2t emotion`: how a prompt is read, as text and as JSON, on the shipped weights."""

from __future__ import annotations

import json

import pytest

from clients.cli import main
from clients.emotion import describe


def test_describe_names_the_deciding_word_and_the_dictionary() -> None:
    r = {"prompt": "mostly chipper", "lexicon": True, "span": "chipper", "reads": "happy",
         "weights": {"neutral": 0.4, "happy": 0.5, "sad": 0.1, "angry": 0.0, "surprised": 0.0, "fearful": 0.0,
                     "disgusted": 0.0, "contempt": 0.0},
         "span_reading": {"filler": 0.1, "neutral": 0.0, "happy": 0.9},
         "dictionary": {"synonyms": ["jaunty"], "heads": ["cheerful"], "glosses": ["having a cheerful air"]}}
    text = describe(r)
    assert text.startswith('"mostly chipper" -> happy: happy 0.50, neutral 0.40, sad 0.10')
    assert 'deciding word: "chipper")' in text and 'cheerful, jaunty - "having a cheerful air"' in text
    calm = describe(r | {"reads": "neutral", "weights": dict(r["weights"], neutral=0.95, happy=0.05, sad=0.0), "dictionary": None,
                         "lexicon": False})
    assert calm.startswith('"mostly chipper" -> neutral') and "no local WordNet" in calm


def test_cli_reads_prompts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emotion", "--json", "extremely happy and joyful", "", "not angry at all"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["prompt"] for r in rows] == ["extremely happy and joyful", "", "not angry at all"]
    happy = rows[0]["weights"]
    assert max(happy, key=happy.get) == "happy" and abs(sum(happy.values()) - 1) < 1e-3
    assert rows[1]["weights"]["neutral"] == 1.0 and rows[1]["span"] is None
    assert rows[2]["weights"]["angry"] < 0.1  # a negated emotion word does not decide
    assert main(["emotion", "x" * 2000]) != 0  # too long: refused with a message, not a traceback
    assert "too long" in capsys.readouterr().err
