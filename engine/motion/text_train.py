"""Style-E text projection training: sentence embedding -> 8 emotion weights, and retraining it inside a style_e.npz.

Training texts are the corpus's training descriptions plus the large training lexicon (engine.data.texts:
adjectives with intensity adverbs, emotion nouns, face/voice/situation phrases, negations, mixtures). Targets
are the expected emotion weights of each label (what engine.data.synth.mix_for draws, averaged), so no corpus
is needed. Held-out paraphrases (other words, other sentence shapes) are only scored, never trained on.

A second, span classifier (stored as text_span.*) reads single emotion words and short phrases (engine.motion.
text_encoder.spans, in the frame "an emotion: X"): 9 classes, filler (template/subject/scene/adverb spans and
everyday sentences' spans) and the 8 emotions (every training-lexicon entry and training adjective).

    python -m engine.motion.text_train out/style_e_text/weights      # replaces text.* and text_span.* there
    python -m engine.motion.text_train out/style_e_text/weights --eval-only   # held-out pool accuracy, confusion
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch import nn

from engine.data.emotions import EMOTIONS, EmotionMix, level_range, primary_of
from engine.data import texts as T
from engine.data.texts import Description, descriptions, lexicon_descriptions
from engine.errors import InputError

if TYPE_CHECKING:
    from engine.motion.text_encoder import Projection, TextEncoder

log = logging.getLogger(__name__)
Embed = Callable[[list[str]], np.ndarray]
SECONDARY_WEIGHT = 0.375  # mean of the mixture weight mix_for draws (uniform 0.25..0.5)


def emotion_target(d: Description) -> np.ndarray:
    """(8,) expected emotion weights of a description's label (mean intensity of its level)."""
    if d.primary == "neutral" or d.level == "none":
        return np.eye(len(EMOTIONS), dtype=np.float32)[0]
    lo, hi = level_range(d.level)
    sec = SECONDARY_WEIGHT if d.secondary != "neutral" else 0.0
    return EmotionMix(d.primary, 0.5 * (lo + hi), d.secondary, sec).weights()


def training_descriptions(seed: int = 0, per_label: int = 200, skip: frozenset[str] = frozenset()) -> list[Description]:
    """The corpus's training descriptions (fewer per label) + the lexicon's; never the held-out pool."""
    return descriptions(max(1, 3 * per_label // 4), seed) + lexicon_descriptions(per_label, seed, skip)


_TOK = re.compile(r"[a-z][a-z'-]*")


@lru_cache(maxsize=1)
def _heldout_only_stems() -> frozenset[str]:
    """5-letter stems of words that occur in held-out paraphrases but in no training description."""
    def toks(ds: list[Description]) -> set[str]:
        return {t for d in ds for t in _TOK.findall(d.text.lower())}

    only = toks(heldout_pool()) - toks(descriptions(50, 0))
    return frozenset(t[:5] for t in only if len(t) >= 5)


def _held_stems(text: str) -> bool:
    stems = _heldout_only_stems()
    return any(len(t) >= 5 and t[:5] in stems for t in _TOK.findall(text.lower()))


def span_training_data(skip: frozenset[str] = frozenset(), seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Span classifier examples: (spans, labels) with 0 = filler and 1 + EMOTIONS index for emotion words.

    Emotion spans: every training-lexicon entry and training adjective (minus `skip`). Filler: the spans of the
    training sentence shapes, subjects, scenes, intensity adverbs and quantifiers (slots blanked), and of
    everyday spoken sentences. Nothing from the held-out pool.
    """
    from engine.motion.text_encoder import spans

    words: list[str] = []
    labels: list[int] = []
    for i, e in enumerate(EMOTIONS):
        ws = [w for w in dict.fromkeys(T.lexicon_entries(e) + T._ADJ[e][0]) if w not in skip]
        words += ws
        labels += [i + 1] * len(ws)
    frames = (T._LEX_ADJ_TEMPLATES + T._LEX_NOUN_TEMPLATES + T._LEX_VP_TEMPLATES + T._LEX_NEG_TEMPLATES
              + T._LEX_MIX_TEMPLATES + T._TRAIN_TEMPLATES + T._MIX_TRAIN + T._LEX_SUBJ + T._LEX_SCENES + T._SUBJ3
              + T._SCENES + tuple(a for lv in T._LEX_ADV.values() for a in lv) + T._ADV["low"][0]
              + T._ADV["medium"][0] + T._ADV["high"][0] + tuple(q for lv in T._LEX_NOUN_Q.values() for q in lv))
    filler = {sp.text for f in frames for sp in spans(re.sub(r"\{\w+\}", " , ", f))}
    filler |= {sp.text for t in T.sentences(1500, np.random.default_rng([seed, 5])) for sp in spans(t)}
    filler -= set(words)
    filler = {f for f in filler if not _held_stems(f)}  # e.g. the grammar's "described" vs a held-out shape's "describe"
    fill = sorted(filler)
    return words + fill, np.array(labels + [0] * len(fill))


def train_span_classifier(embed: Embed, seed: int = 0, skip: frozenset[str] = frozenset(), steps: int = 2000,
                          hidden: int = 128) -> nn.Sequential:
    """The 9-way span classifier (filler + 8 emotions) on framed span embeddings, classes balanced by repetition."""
    from engine.motion.text_encoder import span_inputs

    items, y = span_training_data(skip, seed)
    x = embed(span_inputs(items))
    counts = np.bincount(y, minlength=len(EMOTIONS) + 1)
    reps = np.ceil(len(y) / (len(EMOTIONS) + 1) / np.maximum(counts, 1)).astype(int)
    idx = np.concatenate([np.flatnonzero(y == c).repeat(reps[c]) for c in range(len(EMOTIONS) + 1)])
    return fit_projection(x[idx], np.eye(len(EMOTIONS) + 1, dtype=np.float32)[y[idx]], steps, seed, hidden,
                          noise=0.02, mixup=0.0)


def fit_projection(emb: np.ndarray, target: np.ndarray, steps: int = 3000, seed: int = 0, hidden: int = 256,
                   noise: float = 0.04, mixup: float = 0.3, batch: int = 256) -> nn.Sequential:
    """Two-layer GELU MLP (the runtime Projection's layout) trained with soft cross-entropy.

    Embedding-space augmentation: Gaussian noise on the (unit) embeddings, and mixup of pairs of descriptions
    (a share `mixup` of each batch) with mixed targets, which teaches blends and keeps the map smooth between
    training words.
    """
    torch.manual_seed(seed)
    x, y = torch.from_numpy(np.asarray(emb, np.float32)), torch.from_numpy(np.asarray(target, np.float32))
    net = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.GELU(), nn.Linear(hidden, y.shape[1]))
    opt = torch.optim.AdamW(net.parameters(), 3e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    n_mix = int(round(mixup * batch))
    for _ in range(steps):
        b = torch.randint(0, len(x), (batch,))
        xb, yb = x[b] + noise * torch.randn(batch, x.shape[1]), y[b]
        if n_mix:
            lam = torch.rand(n_mix, 1)
            o = torch.randint(0, len(x), (n_mix,))
            xb = torch.cat([xb[n_mix:], lam * xb[:n_mix] + (1 - lam) * x[o]])
            yb = torch.cat([yb[n_mix:], lam * yb[:n_mix] + (1 - lam) * y[o]])
        loss = -(yb * torch.log_softmax(net(xb), -1)).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def _primary_ids(ds: list[Description]) -> np.ndarray:
    return np.array([EMOTIONS.index(d.primary) for d in ds])


def primary_accuracy(net: nn.Sequential, emb: np.ndarray, primary: np.ndarray, threshold: float = 0.1) -> float:
    """Share of texts whose strongest non-neutral weight (> threshold, else neutral) is the labelled primary."""
    with torch.no_grad():
        w = torch.softmax(net(torch.from_numpy(np.asarray(emb, np.float32))), -1).numpy()
    pred = np.where(w[:, 1:].max(-1) > threshold, w[:, 1:].argmax(-1) + 1, 0)
    return float((pred == primary).mean())


def to_projection(net: nn.Sequential) -> "Projection":
    """The runtime (numpy) Projection of a trained two-layer MLP."""
    from engine.motion.text_encoder import Projection

    a = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in net.state_dict().items()}
    return Projection(a["0.weight"].T.copy(), a["0.bias"], a["2.weight"].T.copy(), a["2.bias"])


def evaluate(encoder: "TextEncoder", ds: list[Description]) -> dict[str, object]:
    """Primary-emotion accuracy of an encoder over descriptions (the benchmark's rule: the strongest non-neutral
    weight above 0.1, else neutral), per-emotion accuracy and the confusion matrix (rows: true, columns: read)."""
    true = _primary_ids(ds)
    pred = primary_of(encoder.encode_batch([d.text for d in ds]))
    conf = np.zeros((len(EMOTIONS), len(EMOTIONS)), int)
    np.add.at(conf, (true, pred), 1)
    per = {e: round(float(conf[i, i] / max(conf[i].sum(), 1)), 4) for i, e in enumerate(EMOTIONS)}
    return {"acc": round(float(np.mean(pred == true)), 4), "per_emotion": per, "confusion": conf.tolist(),
            "texts": len(ds)}


def heldout_pool() -> list[Description]:
    """The corpus's held-out paraphrase pool (texts_per_label 400 // 5, seed 0): scored only, never trained on."""
    return descriptions(80, 0, heldout=True)


def train_text_encoder(embed: Embed, steps: int = 3000, seed: int = 0, per_label: int = 200, hidden: int = 256,
                       span: bool = True) -> tuple[nn.Sequential, nn.Sequential | None, dict[str, object]]:
    """The sentence projection and (with `span`) the span classifier (2/3 of `steps`); the report scores the
    held-out pool with both and with the sentence projection alone."""
    from engine.motion.text_encoder import TextEncoder, default_lexicon

    if steps < 1:
        raise InputError(f"text projection steps must be >= 1, got {steps}")
    t0 = time.perf_counter()
    train = training_descriptions(seed, per_label)
    emb = embed([d.text for d in train])
    target = np.stack([emotion_target(d) for d in train])
    net = fit_projection(emb, target, steps, seed, hidden)
    span_net = train_span_classifier(embed, seed, steps=max(1, 2 * steps // 3)) if span else None
    held = heldout_pool()
    sentence_only = evaluate(TextEncoder(to_projection(net), embed), held)["acc"]
    full = (evaluate(TextEncoder(to_projection(net), embed, to_projection(span_net), lexicon=default_lexicon()), held)
            if span_net else None)
    info: dict[str, object] = {
        "texts": len(train), "steps": steps, "hidden": hidden, "seed": seed, "span": span,
        "train_primary_acc": round(primary_accuracy(net, emb, _primary_ids(train)), 4),
        "heldout_primary_acc": full["acc"] if full else sentence_only,
        "heldout_primary_acc_sentence_only": sentence_only,
        "heldout_texts": len(held), "seconds": round(time.perf_counter() - t0, 1)}
    log.info("text projection: %s", info)
    return net, span_net, info


def _npz_path(npz_path: str | Path) -> Path:
    p = Path(npz_path)
    if p.is_dir():
        p = p / "style_e.npz"
    if not p.is_file():
        raise InputError(f"no Style-E weights at {p}")
    return p


def retrain_text_projection(npz_path: str | Path, steps: int = 3000, seed: int = 0, per_label: int = 200,
                            hidden: int = 256, key: str = "text", embed: Embed | None = None,
                            span: bool = True) -> dict[str, object]:
    """Train a new text projection (+ span classifier) and replace only the `{key}.*` and `{key}_span.*` arrays
    inside an existing style_e.npz (every other array is kept bit-identical); records the report under
    "text_projection" in the sibling style_e.json when there is one. `embed` defaults to the bundled MiniLM."""
    from engine.motion.train import state_arrays  # train imports this module

    p = _npz_path(npz_path)
    if embed is None:
        from engine.motion.text_encoder import minilm_embed

        embed = minilm_embed
    net, span_net, info = train_text_encoder(embed, steps, seed, per_label, hidden, span)
    with np.load(p, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if not k.startswith((f"{key}.", f"{key}_span."))}
    arrays |= state_arrays(key, net)
    if span_net is not None:
        arrays |= state_arrays(f"{key}_span", span_net)
    tmp = p.with_name(p.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(p)
    meta_path = p.with_suffix(".json")
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        meta["text_projection"] = info | {"key": key}
        meta_path.write_text(json.dumps(meta, indent=1))
    log.info("replaced %s.* in %s", key, p)
    return info


def evaluate_weights(npz_path: str | Path, key: str = "text", embed: Embed | None = None) -> dict[str, object]:
    """Held-out pool accuracy and confusion of the text encoder stored in a style_e.npz (and of its sentence
    projection alone, for comparison); trains nothing."""
    from engine.motion.text_encoder import TextEncoder, default_lexicon, load_projection, minilm_embed

    with np.load(_npz_path(npz_path), allow_pickle=False) as z:
        proj, span = load_projection(z, key), load_projection(z, f"{key}_span")
    if proj is None:
        raise InputError(f"no {key}.* projection in {npz_path}")
    embed = embed or minilm_embed
    held = heldout_pool()
    lex = default_lexicon()
    out = evaluate(TextEncoder(proj, embed, span, lexicon=lex), held)
    out["lexicon"] = lex is not None
    if lex is not None and span is not None:
        out["without_lexicon_acc"] = evaluate(TextEncoder(proj, embed, span), held)["acc"]
    out["sentence_only_acc"] = evaluate(TextEncoder(proj, embed), held)["acc"] if span is not None else out["acc"]
    out["span_classifier"] = span is not None
    return out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description="Retrain the Style-E text projection inside a weights folder/npz.")
    ap.add_argument("weights", help="a Style-E weights folder or its style_e.npz")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-label", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-span", action="store_true", help="sentence projection only (no span classifier)")
    ap.add_argument("--eval-only", action="store_true",
                    help="train nothing: print the held-out pool accuracy and confusion of the stored encoder")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.eval_only:
        res = evaluate_weights(a.weights)
        log.info("held-out pool: %d texts, accuracy %.4f (WordNet %s; without it %s; sentence projection alone %.4f)",
                 res["texts"], res["acc"], "used" if res["lexicon"] else "absent", res.get("without_lexicon_acc", "-"),
                 res["sentence_only_acc"])
        log.info("per emotion: %s", json.dumps(res["per_emotion"]))
        conf = np.array(res["confusion"])
        log.info("confusion (rows true, columns read):\n%10s %s\n%s", "", " ".join(f"{e[:5]:>5}" for e in EMOTIONS),
                 "\n".join(f"{e:>10} " + " ".join(f"{v:5d}" for v in row) for e, row in zip(EMOTIONS, conf)))
        return 0
    info = retrain_text_projection(a.weights, a.steps, a.seed, a.per_label, a.hidden, span=not a.no_span)
    log.info("%s", json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
