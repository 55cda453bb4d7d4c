"""Corpus format: determinism from the seed, voice/engine splits, card, loader windows, augmentation, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import argparse
import sys

from clients import data as data_cli
from engine.data.augment import AugmentConfig, augment
from engine.data.corpus import CorpusDataset, build_synth_corpus
from engine.errors import InputError, S2TError

HOURS = 0.006  # ~22 s of speech: a few utterances per split


def main(argv: list[str]) -> int:
    """`s2t` with only the data subcommand registered (as clients.cli.main does: one error line, rc 1)."""
    parser = argparse.ArgumentParser(prog="s2t")
    data_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([a for a in argv if a != "-q"])
    try:
        return int(args.func(args))
    except S2TError as e:
        sys.stderr.write(f"s2t {args.command}: error: {e}\n")
        return 1


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    rc = main(["-q", "data", "synth", "--hours", str(HOURS), "--seed", "3", "--out", str(out), "--workers", "2",
               "--texts-per-label", "4", "--style-refs", "1"])
    assert rc == 0
    return out


def test_card_has_required_fields(corpus: Path) -> None:
    card = json.loads((corpus / "card.json").read_text())
    for key in ("hours", "utterances", "voices", "emotions", "styles", "splits"):
        assert key in card
    assert card["hours"] >= HOURS * 0.5 and card["utterances"] >= 5
    assert set(card["splits"]) == {"train", "val", "test"}
    assert sum(s["utterances"] for s in card["splits"].values()) == card["utterances"]
    stats = card["channel_stats_train"]
    assert stats["jawOpen"]["max"] > 0.3 and stats["scale"]["mean"] == pytest.approx(1.0, abs=0.05)
    assert card["texts"]["embedding_dim"] == 384 and card["texts"]["heldout_paraphrases"] > 0


def test_splits_hold_out_voices_and_engines(corpus: Path) -> None:
    card = json.loads((corpus / "card.json").read_text())
    sp = {k: set(v["voices"]) for k, v in card["splits"].items()}
    assert not sp["train"] & sp["val"] and not sp["train"] & sp["test"] and not sp["val"] & sp["test"]
    assert all(v.startswith("espeak:") for v in sp["train"] | sp["val"])
    assert all(v.startswith("flite:") for v in sp["test"])
    with np.load(corpus / "texts.npz", allow_pickle=False) as t:
        held = t["heldout"].astype(bool)
        assert t["embedding"].shape == (len(held), 384)
        norms = np.linalg.norm(t["embedding"].astype(np.float32), axis=1)
        assert np.allclose(norms, 1.0, atol=0.01)
    index = json.loads((corpus / "index.json").read_text())
    for r in index["utterances"]:
        assert held[r["text_id"]] == (r["split"] == "test")


def test_same_seed_same_corpus(corpus: Path, tmp_path: Path) -> None:
    # one worker instead of two: shards must still come out bit-identical
    build_synth_corpus(tmp_path, HOURS, seed=3, workers=1, texts_per_label=4, style_refs_per_style=1)
    for shard in sorted(corpus.glob("shard_*.npz")):
        with np.load(shard) as a, np.load(tmp_path / shard.name) as b:
            assert a.files == b.files
            for k in a.files:
                assert np.array_equal(a[k], b[k]), (shard.name, k)
    a = json.loads((corpus / "index.json").read_text())["utterances"]
    b = json.loads((tmp_path / "index.json").read_text())["utterances"]
    assert a == b


def test_loader_windows(corpus: Path) -> None:
    ds = CorpusDataset(corpus, "train", window=25, augment_cfg=AugmentConfig(p_noise=1.0))
    assert len(ds) > 0
    w = ds[0]
    assert w.mel.shape == (25, 4, 80) and w.coeffs.shape == (25, 34) and w.text_embedding.shape == (384,)
    assert np.isfinite(w.mel).all() and 0 <= w.style_id < 7 and 0 <= w.emotion_id < 8
    assert w.emotion_weights.sum() == pytest.approx(1.0, abs=1e-5)
    clean = CorpusDataset(corpus, "train", window=25, augment_cfg=None, resample_text=False)[0]
    assert np.array_equal(clean.coeffs, w.coeffs)
    assert not np.allclose(clean.mel, w.mel)  # augmentation happened at load time
    ds.set_epoch(1)
    assert not np.allclose(ds[0].mel, w.mel)  # and differs per epoch
    test = CorpusDataset(corpus, "test", window=25)
    assert len(test) > 0
    with pytest.raises(InputError):
        CorpusDataset(corpus, "holdout")
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_augment_keeps_length_and_changes_signal() -> None:
    rng = np.random.default_rng(0)
    x = (0.3 * np.sin(np.arange(16000) * 2 * np.pi * 220 / 16000)).astype(np.float32)
    cfg = AugmentConfig(p_gain=1, p_reverb=1, p_bandlimit=1, p_noise=1)
    y = augment(x, rng, cfg)
    assert y.shape == x.shape and y.dtype == np.float32 and np.abs(y).max() <= 1.0
    assert not np.allclose(x, y)
    assert np.array_equal(augment(x, np.random.default_rng(5), cfg), augment(x, np.random.default_rng(5), cfg))


def test_cli_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "fit", "--videos", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "must be a directory" in capsys.readouterr().err
    assert main(["data", "fit", "--videos", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "no videos" in capsys.readouterr().err
    assert main(["data", "synth", "--hours", "0", "--out", str(tmp_path / "c")]) == 1
    assert "--hours" in capsys.readouterr().err
    with pytest.raises(InputError):
        CorpusDataset(tmp_path)
