"""`s2t style`: how a talking-style reference is read (nearest training styles, articulation), on the shipped weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clients.cli import main
from clients.style import describe
from engine.motion import amplitude as A
from engine.motion.style_e import load_model


@pytest.fixture(scope="module")
def model():  # noqa: ANN201
    return load_model()


def _reference(model, jaw: float, period: float, frames: int = 240) -> np.ndarray:  # noqa: ANN001
    """A clip at the corpus's mean levels, its mouth channels swinging with `period` frames, the jaw at `jaw` x."""
    assert model.scale is not None
    t = np.arange(frames)[:, None]
    ref = np.repeat(model.scale.corpus_mean[None].astype(np.float64), frames, 0)
    ch = list(A.ARTICULATION_CHANNELS)
    ref[:, ch] = model.scale.levels[ch] * (1.0 + 0.6 * np.sin(2 * np.pi * t / period + np.arange(len(ch))))
    ref[:, 0] *= jaw
    return ref.astype(np.float32)


def test_explain_style_reads_the_jaw_and_the_tempo(model) -> None:  # noqa: ANN001
    r = model.explain_style(_reference(model, 0.5, 12.0))
    p = list(r["styles"].values())
    assert abs(sum(p) - 1) < 0.01 and p == sorted(p, reverse=True) and len(p) == 7
    art = r["articulation"]
    assert art["jawOpen"]["gain"] == pytest.approx(0.5, abs=0.01)  # below the lips' 1/1.5: the jaw's own floor
    assert art["mouthClose"]["gain"] == pytest.approx(1.0, abs=0.01)
    fast = model.explain_style(_reference(model, 1.0, 3.0))["articulation"]
    slow = model.explain_style(_reference(model, 1.0, 60.0))["articulation"]
    for name in ("mouthClose", "mouthStretchLeft"):  # the same shape, faster or slower: the tempo follows
        assert fast[name]["tempo"] > 1 > slow[name]["tempo"] > 0
        assert fast[name]["boost"] > 0 and fast[name]["pole"] == 0
        assert slow[name]["pole"] > 0 and slow[name]["boost"] == 0
    assert fast["jawOpen"]["boost"] == 0  # the jaw is never boosted
    wide, narrow = _reference(model, 1.0, 12.0), _reference(model, 1.0, 12.0)
    ch = list(A.ARTICULATION_CHANNELS)
    wide[:, ch] = wide[:, ch].mean(0) + 3.0 * (wide[:, ch] - wide[:, ch].mean(0))  # lips ranging 3x as wide
    narrow[:, ch] = narrow[:, ch].mean(0) + 0.2 * (narrow[:, ch] - narrow[:, ch].mean(0))
    w, n = model.explain_style(wide)["articulation"], model.explain_style(narrow)["articulation"]
    assert w["mouthFunnel"]["spread"] > 1 > n["mouthFunnel"]["spread"] > 0  # the shipped scale has the corpus's spread
    assert w["mouthFunnel"]["widen"] > 0 and n["mouthFunnel"]["widen"] == 0
    assert w["jawOpen"]["widen"] == 0  # the jaw is never widened
    assert "lip range against the corpus's: widened " in describe({"clip": "w", **model.explain_style(wide)})


def test_cli_reads_clips_as_text_and_json(model, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    clip = tmp_path / "whisper_like.npy"
    np.save(clip, _reference(model, 0.5, 60.0))
    assert main(["style", str(clip)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("whisper_like.npy: 240 frames (9.6 s) -> nearest training styles: ")
    assert "jaw x0.50" in text and "smoothed" in text
    assert main(["style", "--json", str(clip)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["clip"] == "whisper_like.npy" and row["articulation"]["jawOpen"]["gain"] == pytest.approx(0.5, abs=0.01)
    short = tmp_path / "short.npy"
    np.save(short, _reference(model, 1.0, 12.0, frames=3))
    assert main(["style", str(short)]) == 1  # refused with the reason, not a traceback
    assert "at least 12 frames" in capsys.readouterr().err
    assert main(["style", str(tmp_path / "missing.mp4")]) == 1
    assert "not found" in capsys.readouterr().err


def test_describe_without_a_reference_scale_says_how_to_make_one() -> None:
    text = describe({"clip": "a.npy", "frames": 50, "seconds": 2.0, "styles": {"rap": 0.9, "opera": 0.1},
                     "articulation": None})
    assert text.startswith("a.npy: 50 frames (2.0 s) -> nearest training styles: rap 0.90, opera 0.10")
    assert "--reference-scale-only" in text
