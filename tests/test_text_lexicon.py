"""Emotion text training lexicon (disjoint from the held-out paraphrase pool) and text projection training."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine.data import texts as T
from engine.data.emotions import EMOTIONS
from engine.errors import InputError
from engine.motion.text_encoder import Projection, TextEncoder, calm_down, combine, spans
from engine.motion.text_train import (emotion_target, evaluate_weights, fit_projection, primary_accuracy,
                                      retrain_text_projection, span_training_data, training_descriptions)

_TOKEN = re.compile(r"[a-z][a-z'-]*")


def _tokens(s: str) -> list[str]:
    return _TOKEN.findall(s.lower())


def _held_out() -> tuple[set[str], set[str]]:
    """(held-out single tokens, held-out multi-word phrases and template/scene fragments)."""
    words = [w for e in EMOTIONS for w in T._ADJ[e][1]] + [a for lv in T._ADV.values() for a in lv[1] if a]
    single = {w for w in words if " " not in w}
    phrases = {w for w in words if " " in w} | set(T._SCENES_HELD)
    for tpl in T._HELD_TEMPLATES + T._MIX_HELD:  # the fixed words of each held-out sentence shape
        phrases |= {" ".join(p.split()) for p in re.split(r"\{\w+\}", tpl) if len(p.split()) >= 2}
        single |= {w for w in _tokens(re.sub(r"\{\w+\}", " ", tpl)) if len(w) >= 4}
    for s in T._SCENES_HELD:
        single |= {w for w in _tokens(s) if len(w) >= 5}
    single |= {w for p in phrases for w in _tokens(p) if len(w) >= 5 and w not in {"through"}}
    return single, phrases


def _conflicts(text: str, single: set[str], phrases: set[str]) -> list[str]:
    low = " ".join(_tokens(text))
    bad = [p for p in phrases if re.search(rf"\b{re.escape(' '.join(_tokens(p)))}\b", low)]
    for t in _tokens(text):  # same word or the same stem (first five letters: fuming/fumes, loathing/loathe)
        bad += [h for h in single if t == h or (len(t) >= 5 and len(h) >= 5 and t[:5] == h[:5])]
    return bad


def test_lexicon_is_disjoint_from_the_heldout_pool() -> None:
    single, phrases = _held_out()
    assert {"elated", "dread-filled", "mood", "imagine", "picture", "blend", "platform", "incredibly"} <= single
    parts = [w for e in EMOTIONS for w in T.lexicon_entries(e)]
    parts += [a for lv in T._LEX_ADV.values() for a in lv] + [q for lv in T._LEX_NOUN_Q.values() for q in lv]
    parts += list(T._LEX_SUBJ + T._LEX_SCENES + T._LEX_ADJ_TEMPLATES + T._LEX_NOUN_TEMPLATES + T._LEX_VP_TEMPLATES
                  + T._LEX_NEG_TEMPLATES + T._LEX_MIX_TEMPLATES)
    bad = {p: _conflicts(re.sub(r"\{\w+\}", " ", p), single, phrases) for p in parts}
    assert not {p: b for p, b in bad.items() if b}
    train = training_descriptions(0, per_label=20)
    assert not [d.text for d in train if _conflicts(d.text, single, phrases)]
    items, labels = span_training_data()  # the span classifier's emotion words and filler spans
    assert not [w for w in items if _conflicts(w, single, phrases)]
    assert set(labels) == set(range(9)) and (labels == 0).sum() > 1000
    held = T.descriptions(20, 0, heldout=True)
    assert all(_conflicts(d.text, single, phrases) for d in held)  # the check does see held-out texts


def test_lexicon_size_labels_and_determinism() -> None:
    for e in EMOTIONS:
        assert len(T.lexicon_entries(e)) >= 45, e  # dozens per emotion, vs 10 training words before
    d = T.lexicon_descriptions(40, seed=1)
    assert d == T.lexicon_descriptions(40, seed=1) and len({x.text for x in d}) == len(d)
    labels = {(x.primary, x.level) for x in d if x.secondary == "neutral"}
    assert labels == {("neutral", "none")} | {(e, lv) for e in EMOTIONS[1:] for lv in ("low", "medium", "high")}
    assert any(x.text.startswith("not ") and x.primary == "neutral" for x in d)  # negations read as neutral
    assert sum(x.secondary != "neutral" for x in d) >= 56  # every ordered pair of emotions is mixed
    skipped = T.lexicon_descriptions(40, seed=1, skip=frozenset({"ecstatic", "glee"}))
    assert not any(re.search(r"\b(ecstatic|glee)\b", x.text) for x in skipped)


def test_emotion_targets() -> None:
    d = T.Description
    np.testing.assert_allclose(emotion_target(d("x", "neutral", "none")), np.eye(8)[0])
    lo, hi = emotion_target(d("x", "happy", "low")), emotion_target(d("x", "happy", "high"))
    assert lo[1] == pytest.approx(0.325) and hi[1] == pytest.approx(0.875) and lo.sum() == pytest.approx(1)
    mix = emotion_target(d("x", "sad", "medium", "angry"))
    assert mix[2] > mix[3] > 0 and mix.sum() == pytest.approx(1)


def _hash_embed(texts: list[str]) -> np.ndarray:
    """A fast stand-in embedding: bag of hashed words (unit norm), so word identity carries the label."""
    out = np.zeros((len(texts), 64), np.float32)
    for i, t in enumerate(texts):
        for w in _tokens(t):
            out[i, zlib.crc32(w.encode()) % 64] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


def test_fit_projection_learns_soft_targets() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(8, 32)).astype(np.float32)
    y = rng.integers(0, 8, 800)
    x = centers[y] + 0.3 * rng.normal(size=(800, 32)).astype(np.float32)
    net = fit_projection(x, np.eye(8, dtype=np.float32)[y], steps=400, hidden=32, noise=0.01, mixup=0.2)
    assert primary_accuracy(net, x, y) > 0.95


def test_retrain_replaces_only_the_text_projection(tmp_path: Path) -> None:
    arrays = {"text.0.weight": np.zeros((16, 64), np.float32), "text.0.bias": np.zeros(16, np.float32),
              "text.2.weight": np.zeros((8, 16), np.float32), "text.2.bias": np.zeros(8, np.float32),
              "teacher.w": np.arange(6, dtype=np.float32), "coef_std": np.ones(34, np.float32)}
    np.savez(tmp_path / "style_e.npz", **arrays)
    (tmp_path / "style_e.json").write_text(json.dumps({"students": [2]}))
    info = retrain_text_projection(tmp_path, steps=60, per_label=6, hidden=24, embed=_hash_embed)
    span_keys = [f"text_span.{k}" for k in ("0.weight", "0.bias", "2.weight", "2.bias")]
    with np.load(tmp_path / "style_e.npz", allow_pickle=False) as z:
        assert sorted(z.files) == sorted([*arrays, *span_keys])
        assert z["text_span.2.weight"].shape[0] == 9  # filler + 8 emotions
        np.testing.assert_array_equal(z["teacher.w"], arrays["teacher.w"])
        assert z["text.0.weight"].shape == (24, 64) and z["text.2.weight"].shape == (8, 24)
        assert np.abs(z["text.2.weight"]).sum() > 0
    meta = json.loads((tmp_path / "style_e.json").read_text())
    assert meta["students"] == [2] and meta["text_projection"]["texts"] == info["texts"] > 500
    assert not list(tmp_path.glob("*.tmp.npz"))
    res = evaluate_weights(tmp_path, embed=_hash_embed)
    assert res["span_classifier"] and res["texts"] == info["heldout_texts"] and res["acc"] == info["heldout_primary_acc"]
    assert np.array(res["confusion"]).sum() == res["texts"]
    retrain_text_projection(tmp_path, steps=30, per_label=4, hidden=8, embed=_hash_embed, span=False)
    with np.load(tmp_path / "style_e.npz", allow_pickle=False) as z:
        assert not [k for k in z.files if k.startswith("text_span.")]
    with pytest.raises(InputError):
        retrain_text_projection(tmp_path / "missing", embed=_hash_embed)


def test_spans_and_negation_scope() -> None:
    assert [s.text for s in spans("What a very elated mood!")] == ["elated", "mood", "elated mood"]
    assert "caught off guard" in [s.text for s in spans("she was caught off guard")]
    neg = {s.text: s.negated for s in spans("not happy at all, just a little tired")}
    assert neg["happy"] and not neg["tired"]
    assert {s.text: s.negated for s in spans("I don't feel angry")}["angry"]
    assert spans("") == [] and spans("the and of") == [] and len(spans("word " * 300)) == 3  # n-grams deduplicated
    assert len(spans(" ".join(f"word{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(100)))) == 12  # capped


def test_combine_keeps_intensity_and_follows_the_span() -> None:
    sent = np.array([[0.5, 0.25, 0.0, 0.25, 0, 0, 0, 0]], np.float32)
    uniform = np.full((1, 8), 1 / 8, np.float32)
    np.testing.assert_allclose(combine(sent, uniform), sent, atol=1e-5)  # an undecided span changes nothing
    angry = np.array([[0.02, 0.02, 0.02, 0.86, 0.02, 0.02, 0.02, 0.02]], np.float32)
    w = combine(sent, angry)
    assert w[0, 0] == pytest.approx(0.5) and w.sum() == pytest.approx(1) and w[0, 3] > 2 * w[0, 1]


def test_calm_down_weighs_the_neutral_word_against_the_emotion_word() -> None:
    code = np.array([0.4, 0.6, 0, 0, 0, 0, 0, 0], np.float32)  # a prompt read 0.6 happy
    span = lambda neutral, emotion: np.array([0.0, neutral, emotion, 0, 0, 0, 0, 0, 0], np.float32)  # noqa: E731
    # neutral 0.7 against emotion 0.3, squared: d = 0.49 / 0.58, so 0.155 of the emotional share stays
    out = calm_down(code, span(0.7, 0.0), span(0.0, 0.3))
    assert out[1] == pytest.approx(0.6 * 0.09 / 0.58, abs=1e-5) and out.sum() == pytest.approx(1.0)
    # a strong emotion word keeps most of it ("calm but slightly amused")
    assert calm_down(code, span(0.3, 0.0), span(0.0, 0.9))[1] == pytest.approx(0.6 * 0.81 / 0.9, abs=1e-5)
    np.testing.assert_allclose(calm_down(code, span(0.0, 0.0), span(0.0, 0.9)), code, atol=1e-6)  # no neutral evidence


def _one_hot_embed(texts: list[str]) -> np.ndarray:
    """Prompts -> fixed vector 0; span frames -> 1 when they name "furious", else 2 (filler)."""
    out = np.zeros((len(texts), 3), np.float32)
    for i, t in enumerate(texts):
        out[i, 0 if not t.startswith("an emotion:") else 1 if "furious" in t else 2] = 1.0
    return out


def test_text_encoder_reads_the_emotion_span_unless_negated() -> None:
    sentence = Projection(np.zeros((3, 1), np.float32), np.zeros(1, np.float32), np.zeros((1, 8), np.float32),
                          np.log(np.array([4, 1, 1, 1, 1, 1, 1, 1], np.float32)))  # neutral 0.36, rest equal
    w2 = np.full((2, 9), -4.0, np.float32)
    w2[0, 4], w2[1, 0] = 12.0, 12.0  # unit 0 ("furious" frame) -> angry, unit 1 (other frames) -> filler
    span = Projection(np.array([[0, 0], [1, 0], [0, 1]], np.float32), np.zeros(2, np.float32), w2,
                      np.zeros(9, np.float32))
    enc = TextEncoder(sentence, _one_hot_embed, span)
    plain = TextEncoder(sentence, _one_hot_embed).encode("she is furious today")
    w = enc.encode("she is furious today")
    assert w[0] == pytest.approx(plain[0]) and w.argmax() == 3 and w[3] > 0.5
    np.testing.assert_allclose(enc.encode("she is not furious today"), plain, atol=1e-6)
    calls: list[int] = []
    counting = TextEncoder(sentence, lambda t: (calls.append(len(t)), _one_hot_embed(t))[1], span)
    first = counting.encode_batch(["she is furious today"])
    again = counting.encode_batch(["she is furious", "furious today"])  # every span already read: prompts only
    assert calls == [1 + len(spans("she is furious today")), 2]
    np.testing.assert_allclose(first[0], w, atol=1e-6)
    np.testing.assert_allclose(again, np.stack([w, w]), atol=1e-6)
    np.testing.assert_allclose(enc.encode(""), np.eye(8)[0])
    assert enc.encode_batch([]).shape == (0, 8)


def test_intensity_words_order_the_emotion_weight() -> None:
    """With the weights in use ($S2T_STYLE_E_WEIGHTS or the shipped ones): slightly < very < extremely."""
    from engine.motion.style_e import default_weights_dir
    from engine.motion.text_encoder import Projection, TextEncoder

    with np.load(default_weights_dir() / "style_e.npz", allow_pickle=False) as z:
        proj = Projection(z["text.0.weight"].T.copy(), z["text.0.bias"], z["text.2.weight"].T.copy(), z["text.2.bias"])
    enc = TextEncoder(proj)
    for i, word in ((1, "happy"), (2, "sad"), (3, "angry")):
        w = [float(enc.encode(f"{adv} {word}")[i]) for adv in ("slightly", "very", "extremely")]
        assert w[0] < w[1] < w[2] and w[2] > 0.7, (word, w)
