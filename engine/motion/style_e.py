"""Style-E front door: load the shipped (or a user's) weights and serve `load_motion` (offline) and `load_stage` (runtime).

Nothing here imports torch: ONNX Runtime graphs + a numpy text projection + the numpy sampler loop.
    motion = load_motion(fps=25, emotion="calm but slightly amused", style_ref="ref.npz", seed=0)
    coeffs = motion.generate(samples_16k)            # (T, 34)
    runtime: [motion] kind = "engine.motion.style_e:load_stage"
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import InputError, NotAvailableError
from engine.motion.amplitude import ARTICULATION_CHANNELS, Articulation, articulation, mouth_tempo, reference_spread
from engine.motion.stream import PHONE_WEIGHT, SAMPLES_PER_FRAME, Graphs, OrtGraph, StreamConfig, StyleEStream
from engine.motion.reference import (WEIGHTS_ENV, ReferenceScale, check_reference, default_weights_dir,
                                    load_reference_scale, read_style_reference)
from engine.motion.text_encoder import (TextEncoder, check_prompt, clip_embed, default_lexicon, load_projection,
                                        minilm_embed)
from engine.spec import DEFAULT_SPEC

if TYPE_CHECKING:
    from engine.config import EngineConfig
    from engine.runtime.budget import QualityLevel

log = logging.getLogger(__name__)
FPS = 25.0
STYLE_DIM = 32


@dataclass(frozen=True, slots=True)
class StyleRef:
    """A style reference as a stream uses it: the style encoder's (32,) code, the clip's (34,) motion spread per
    channel (engine.motion.amplitude.reference_spread), which the stream's motion is scaled toward, and its mouth's
    articulation, range and tempo (engine.motion.amplitude.articulation; None where the weights have no reference
    scale)."""

    code: np.ndarray
    spread: np.ndarray | None = None
    articulation: Articulation | None = None


@dataclass(frozen=True, slots=True)
class StyleEModel:
    """Everything loaded once and shared by every stream: graphs, text encoder, style encoder, neutral style."""

    graphs: Graphs
    text: TextEncoder
    style_graph: OrtGraph
    neutral_style: np.ndarray
    coef_std: np.ndarray  # (34,) training spread per channel: the unit for motion statistics
    meta: dict[str, object]
    scale: ReferenceScale | None = None  # the corpus's and the face tracker's scales (reference_scale.json)

    def emotion_code(self, prompt: str, pace_s: float = 0.0) -> np.ndarray:
        """(8,) emotion weights of a prompt; `pace_s` > 0 spreads a new prompt's encoder work out (live use)."""
        return self.text.encode(prompt, pace_s)

    def style_code(self, coeffs: np.ndarray) -> np.ndarray:
        """(T, 34) reference coefficients -> (32,) style code; InputError if the clip cannot give a style."""
        return self._code(check_reference(coeffs))

    def _code(self, ref: np.ndarray) -> np.ndarray:
        return self.style_graph.run({"ref": ref[None]})[0][0].astype(np.float32)

    def style(self, coeffs: np.ndarray) -> StyleRef:
        """(T, 34) reference coefficients on the model's scale (a fitted clip goes through `to_model_scale` first,
        as read_style_reference does) -> its code, motion spread and articulation; InputError if it cannot give a
        style."""
        return self.read_style(coeffs)[0]

    def style_logits(self, coeffs: np.ndarray) -> np.ndarray:
        return self.style_graph.run({"ref": check_reference(coeffs)[None]})[1][0]

    def explain_style(self, coeffs: np.ndarray) -> dict[str, object]:
        """How a (T, 34) reference on the model's scale is read (`s2t style`); see read_style."""
        return self.read_style(coeffs)[1]

    def read_style(self, coeffs: np.ndarray) -> tuple[StyleRef, dict[str, object]]:
        """A reference read once: the StyleRef a stream uses (`style`) and how it is read (`explain_style`): the
        training styles its code is nearest to (the style encoder's softmax, from the same pass as the code), and
        its articulation per channel: gain, tempo against the corpus's (`ReferenceScale.tempo`), smoothing pole, lip
        boost, spread against the corpus's (`ReferenceScale.spread`) and lip widening (None where the weights have no
        reference scale)."""
        ref = check_reference(coeffs)
        code, logits = self.style_graph.run({"ref": ref[None]})
        art = articulation(ref, self.scale.levels, self.scale.tempo, self.scale.spread) \
            if self.scale is not None else None
        style = StyleRef(code[0].astype(np.float32), reference_spread(ref), art)
        p = np.exp(logits[0] - logits[0].max()).astype(np.float64)
        p /= p.sum()
        names = [str(n) for n in self.meta.get("styles", [])]  # type: ignore[union-attr]
        if len(names) != len(p):
            names = [f"style {i}" for i in range(len(p))]
        out: dict[str, object] = {"frames": len(ref), "seconds": round(len(ref) / FPS, 2),
                                  "styles": {names[i]: round(float(p[i]), 3) for i in np.argsort(-p)},
                                  "articulation": None}
        if art is not None and self.scale is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                pace = mouth_tempo(ref) / self.scale.tempo
                wide = style.spread / self.scale.spread if self.scale.spread is not None else None
            boost = art.boost if art.boost is not None else np.zeros_like(art.gain)
            widen = art.widen if art.widen is not None else np.zeros_like(art.gain)
            out["articulation"] = {
                DEFAULT_SPEC.expression[c]: {"gain": round(float(art.gain[c]), 3),
                                             "tempo": round(float(pace[c]), 3) if np.isfinite(pace[c]) else None,
                                             "pole": round(float(art.pole[c]), 3), "boost": round(float(boost[c]), 3),
                                             "spread": round(float(wide[c]), 3)
                                             if wide is not None and np.isfinite(wide[c]) else None,
                                             "widen": round(float(widen[c]), 3)}
                for c in ARTICULATION_CHANNELS}
        return style, out

    def stream(self, cfg: StreamConfig, emotion: str = "neutral", style: StyleRef | np.ndarray | None = None
               ) -> StyleEStream:
        """A new stream; `style`: a reference (code, spread, articulation), a bare code (no matching) or None
        (the neutral style)."""
        ref = style if isinstance(style, StyleRef) else StyleRef(self.neutral_style if style is None else style)
        return StyleEStream(self.graphs, cfg, self.emotion_code(emotion), ref.code, ref.spread, ref.articulation)


def load_model(weights_dir: str | Path | None = None, clip_path: str | None = None, threads: int = 1) -> StyleEModel:
    """Load a Style-E weights folder (NotAvailableError with the fix when it is missing or incomplete)."""
    d = Path(weights_dir) if weights_dir else default_weights_dir()
    need = ["style_e.json", "style_e.npz", "audio_encoder.onnx", "style_encoder.onnx", "decoder.onnx",
            "denoiser_teacher.onnx"]
    missing = [n for n in need if not (d / n).is_file()]
    if missing:
        raise NotAvailableError(f"Style-E weights incomplete in {d} (missing {', '.join(missing)}); train with "
                                "`s2t train style-e` or set " + WEIGHTS_ENV)
    meta = json.loads((d / "style_e.json").read_text())
    key = "text_clip" if clip_path else "text"
    with np.load(d / "style_e.npz", allow_pickle=False) as z:
        if f"{key}.0.weight" not in z.files:
            raise NotAvailableError(f"these Style-E weights have no projection for the {'CLIP' if clip_path else 'MiniLM'} "
                                    "text encoder (only a MiniLM projection is shipped); train one with "
                                    "engine.motion.text_train.retrain_text_projection(weights, key='text_clip', "
                                    "embed=clip_embed(path))")
        proj, span = load_projection(z, key), load_projection(z, f"{key}_span")
        assert proj is not None  # checked above
        neutral = z["neutral_style"] if "neutral_style" in z.files else np.zeros(STYLE_DIM, np.float32)
        coef_std = z["coef_std"].astype(np.float32)
    students = {int(s): OrtGraph(d / f"denoiser_student{s}.onnx", threads) for s in meta["students"]}
    graphs = Graphs(OrtGraph(d / "audio_encoder.onnx", threads), OrtGraph(d / "decoder.onnx", threads),
                    OrtGraph(d / "denoiser_teacher.onnx", threads), students, int(meta["teacher_steps"]),
                    int(meta["config"]["lookahead"]))
    text = TextEncoder(proj, clip_embed(clip_path) if clip_path else minilm_embed, span, lexicon=default_lexicon())
    return StyleEModel(graphs, text, OrtGraph(d / "style_encoder.onnx", threads), neutral.astype(np.float32), coef_std,
                       meta, load_reference_scale(d))




class StyleEMotion:
    """Offline generator for `s2t render --motion style-e`: `.generate(samples, speech) -> (T, 34)`."""

    def __init__(self, model: StyleEModel, cfg: StreamConfig, emotion: str, style: StyleRef | np.ndarray | None,
                 fps: float) -> None:
        if not 1.0 <= fps <= 60.0:
            raise InputError(f"fps must be in 1..60, got {fps}")
        self.model, self.cfg, self.fps = model, cfg, fps
        self.emotion, self.style = emotion, style
        model.emotion_code(emotion)  # validate the prompt now, not after decoding the audio

    def generate(self, samples_all: np.ndarray, speech: np.ndarray | None = None) -> np.ndarray:
        """16 kHz mono float32 -> (T, 34) at `fps` (the model runs at 25 fps; other rates are resampled).

        `speech` flags are accepted for interface parity and not needed: silence is read from the audio.
        """
        x = np.asarray(samples_all, np.float32).reshape(-1)
        if x.size == 0:
            raise InputError("no audio to animate")
        stream = self.model.stream(self.cfg, self.emotion, self.style)
        stream.set_emotion(self.model.emotion_code(self.emotion), immediate=True)  # offline: no glide-in
        t25 = int(np.ceil(len(x) / SAMPLES_PER_FRAME))
        look, k = stream.latency_frames, self.cfg.chunk
        total = int(np.ceil((t25 + look) / k)) * k
        frames = np.pad(x, (0, total * SAMPLES_PER_FRAME - len(x))).reshape(total, SAMPLES_PER_FRAME)
        out = np.concatenate([stream.step(frames[i : i + k]) for i in range(0, total, k)])[look : look + t25]
        if abs(self.fps - FPS) < 1e-6:
            return out
        n = int(np.ceil(len(x) / 16000 * self.fps))
        src = np.arange(n) * FPS / self.fps
        return np.stack([np.interp(src, np.arange(t25), out[:, c]) for c in range(out.shape[1])], 1).astype(np.float32)


def load_motion(fps: float = 25.0, emotion: str = "neutral", style_ref: str | Path | np.ndarray | None = None,
                seed: int = 0, steps: int = 2, chunk: int = 8, guidance: float = 0.5,
                weights: str | Path | None = None, phone_weight: float = PHONE_WEIGHT) -> StyleEMotion:
    """The offline Style-E generator (clients/render.py's hook)."""
    model = load_model(weights)
    style = None
    if style_ref is not None:
        ref = style_ref if isinstance(style_ref, np.ndarray) else read_style_reference(style_ref)
        style = model.style(ref)
    cfg = StreamConfig(chunk=chunk, steps=steps, guidance=guidance, seed=seed, phone_weight=phone_weight)
    return StyleEMotion(model, cfg, emotion, style, fps)


READ_PACE_S = 0.02  # a live prompt reading sleeps this long between slices of its encoder work


class StyleEStage:
    """Style-E behind engine.runtime.stages.MotionStage (one stream; quality level picks the step count)."""

    def __init__(self, model: StyleEModel, cfg: StreamConfig, emotion: str) -> None:
        self.spec = DEFAULT_SPEC
        self.model = model
        self._stream = model.stream(cfg, emotion)
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="s2t-emotion")
        self._emotion: Future[np.ndarray] | None = None

    @property
    def latency_frames(self) -> int:
        return self._stream.latency_frames

    def set_emotion(self, text: str) -> None:
        """Check the prompt now (a bad one is refused at once), read it on a helper thread: a new prompt costs
        30-110 ms of one core (encoder + dictionary look-ups), which must neither stall the chunk loop nor take a
        core from the renderer, so the reading is paced (READ_PACE_S) and arrives ~0.2 s later. The next chunk
        after it starts the glide to it; a newer prompt replaces one still being read."""
        check_prompt(text)
        self._emotion = self._reader.submit(self.model.emotion_code, text, READ_PACE_S)

    def _apply_emotion(self, wait: bool = False) -> None:
        f = self._emotion
        if f is None or not (wait or f.done()):
            return
        self._emotion = None
        try:
            self._stream.set_emotion(f.result())
        except Exception as e:  # noqa: BLE001 - the prompt passed check_prompt; the stream keeps its emotion
            log.warning("emotion prompt could not be read (%s: %s); keeping the current emotion",
                        type(e).__name__, e)

    def set_style_reference(self, coeffs: np.ndarray) -> None:
        ref, r = self.model.read_style(coeffs)
        self._stream.set_style(ref.code, ref.spread, ref.articulation)
        # one line in the log: what the new reference does (as `s2t style` says it)
        styles = list(r["styles"].items())  # type: ignore[attr-defined]
        near = ", ".join(f"{k} {v:.2f}" for i, (k, v) in enumerate(styles[:3]) if i == 0 or v >= 0.05)
        art = r["articulation"]
        mouth = "" if not isinstance(art, dict) else (
            f"; jaw x{art['jawOpen']['gain']:.2f}, lips brisker on {sum(v['boost'] > 0 for v in art.values())}, "
            f"wider on {sum(v['widen'] > 0 for v in art.values())} and "
            f"smoothed on {sum(v['pole'] > 0 for k, v in art.items() if k != 'jawOpen')} of {len(art) - 1} channels")
        log.info("style reference of %s frames: nearest training styles %s%s", r["frames"], near, mouth)

    def set_quality(self, level: "QualityLevel") -> None:
        steps = int(getattr(level, "steps", 2))
        have = self.model.graphs.step_counts
        self._stream.set_steps(max([s for s in have if s <= steps], default=have[0]))

    def step_chunk(self, frames: np.ndarray, speech: np.ndarray) -> np.ndarray:
        self._apply_emotion()
        return self._stream.step(frames)

    def reset(self) -> None:
        self._stream.reset()


def load_stage(cfg: "EngineConfig") -> StyleEStage:
    """Runtime factory (`kind = "engine.motion.style_e:load_stage"`): K, P, seed from cfg.motion.

    The lookahead is fixed by the trained audio encoder (see the model card); cfg.motion.lookahead_frames
    that differs only logs a warning.
    """
    if abs(cfg.fps - FPS) > 1e-6:
        raise InputError(f"the Style-E stage runs at 25 fps (640-sample audio frames); got fps={cfg.fps}")
    m = cfg.motion
    model = load_model()
    if m.lookahead_frames != model.graphs.lookahead:
        log.warning("Style-E weights were trained with lookahead L=%d; config asks L=%d (using %d)",
                    model.graphs.lookahead, m.lookahead_frames, model.graphs.lookahead)
    sc = StreamConfig(chunk=max(1, m.chunk_frames), past=max(m.context_frames, 4), steps=2, seed=m.seed,
                      phone_weight=m.phone_weight)
    return StyleEStage(model, sc, m.emotion)
