"""Style-E text projection training: sentence embedding -> 8 emotion weights, and retraining it inside a style_e.npz.

Training texts are the corpus's training descriptions plus the large training lexicon (engine.data.texts:
adjectives with intensity adverbs, emotion nouns, face/voice/situation phrases, negations, mixtures). Targets
are the expected emotion weights of each label (what engine.data.synth.mix_for draws, averaged), so no corpus
is needed. Held-out paraphrases (other words, other sentence shapes) are only scored, never trained on.

    python -m engine.motion.text_train out/style_e_text/weights      # replaces text.* in that style_e.npz
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from engine.data.emotions import EMOTIONS, EmotionMix, level_range
from engine.data.texts import Description, descriptions, lexicon_descriptions
from engine.errors import InputError

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


def train_projection(embed: Embed, steps: int = 3000, seed: int = 0, per_label: int = 200,
                          hidden: int = 256) -> tuple[nn.Sequential, dict[str, object]]:
    """Embed the training descriptions with `embed`, fit the projection; returns it and a small report
    (training accuracy, and accuracy on the held-out paraphrase pool, which is scored only)."""
    if steps < 1:
        raise InputError(f"text projection steps must be >= 1, got {steps}")
    t0 = time.perf_counter()
    train = training_descriptions(seed, per_label)
    emb = embed([d.text for d in train])
    target = np.stack([emotion_target(d) for d in train])
    net = fit_projection(emb, target, steps, seed, hidden)
    held = descriptions(80, 0, heldout=True)  # the corpus's held-out pool (texts_per_label 400 // 5, seed 0)
    info: dict[str, object] = {
        "texts": len(train), "steps": steps, "hidden": hidden, "seed": seed,
        "train_primary_acc": round(primary_accuracy(net, emb, _primary_ids(train)), 4),
        "heldout_primary_acc": round(primary_accuracy(net, embed([d.text for d in held]), _primary_ids(held)), 4),
        "heldout_texts": len(held), "seconds": round(time.perf_counter() - t0, 1)}
    log.info("text projection: %s", info)
    return net, info


def projection_arrays(net: nn.Sequential, key: str = "text") -> dict[str, np.ndarray]:
    """The arrays style_e.npz stores for a projection (`{key}.0.weight` ... `{key}.2.bias`, torch layout)."""
    return {f"{key}.{k}": v.detach().cpu().numpy().astype(np.float32) for k, v in net.state_dict().items()}


def retrain_text_projection(npz_path: str | Path, steps: int = 3000, seed: int = 0, per_label: int = 200,
                            hidden: int = 256, key: str = "text", embed: Embed | None = None) -> dict[str, object]:
    """Train a new text projection and replace only the `{key}.*` arrays inside an existing style_e.npz
    (every other array is kept bit-identical); records the report under "text_projection" in the sibling
    style_e.json when there is one. `embed` defaults to the bundled MiniLM (key "text")."""
    p = Path(npz_path)
    if p.is_dir():
        p = p / "style_e.npz"
    if not p.is_file():
        raise InputError(f"no Style-E weights at {p}")
    if embed is None:
        from engine.motion.text_encoder import minilm_embed

        embed = minilm_embed
    net, info = train_projection(embed, steps, seed, per_label, hidden)
    with np.load(p, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if not k.startswith(f"{key}.")}
    arrays |= projection_arrays(net, key)
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


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description="Retrain the Style-E text projection inside a weights folder/npz.")
    ap.add_argument("weights", help="a Style-E weights folder or its style_e.npz")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-label", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    info = retrain_text_projection(a.weights, a.steps, a.seed, a.per_label, a.hidden)
    log.info("%s", json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
