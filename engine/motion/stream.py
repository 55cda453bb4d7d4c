"""Style-E streaming runtime: numpy loop over ONNX Runtime graphs, K new frames per chunk, L lookahead, P past.

Per chunk: log-mel of the last (K + 18) audio frames -> audio encoder (K rows) -> the sampler over a
window of P past latents (the ones this stream already emitted) + K new ones -> causal latent decoder, which
adds the audio encoder's mouth channels to the decoded residual motion.
Output frames lag the input by L frames (the lookahead): `step` returns the motion of frames
[n-K-L, n-L) after audio frames [n-K, n) arrive. With `phone_weight` > 0 a streaming phone recogniser
(engine.audio.phones) hears the same audio, and that share of the mouth comes from its phones instead of
the encoder (same frames, same lookahead): of the jaw's value, and of the lip shapes' motion within the
utterance (their levels stay the encoder's and the denoiser's, which carry emotion and style; the frowns
stay theirs). Emotion and style codes glide to a new target with
time constant `blend_s`, and every window is conditioned on the motion already sent, so chunk seams
and prompt changes never jump.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from engine.audio.features import mel_for_video
from engine.audio.phones import PhoneTracker, lip_shift, phone_jaw
from engine.config import MotionConfig, check_phone_weight
from engine.errors import InputError, NotAvailableError
from engine.motion.amplitude import AmplitudeMatch, Articulation, RunningDeviation
from engine.motion.sampler import Schedule, ddim_step, make_schedule

log = logging.getLogger(__name__)
SAMPLES_PER_FRAME = 640  # 16 kHz at 25 fps
MEL_CONTEXT = 16  # audio encoder past + lookahead (2 * radius)
DECODER_CONTEXT = 4  # causal decoder receptive field (vae.CONTEXT)
LATENT = 16
N_EXPR = 28
N_MOUTH = 14  # jawOpen .. mouthLowerDownRight: the audio encoder's mouth channels
N_COEFFS = 34  # 28 expression weights + 6 head pose
PHONE_WEIGHT = MotionConfig().phone_weight  # the mouth's share from recognised phones (engine/config.py says why)


@lru_cache(maxsize=1)
def blas_controller() -> Any:
    """The process's BLAS/OpenMP thread pools (threadpoolctl), found once: `limit(limits=1, user_api="blas")`."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class Graph(Protocol):
    """One inference graph: named numpy inputs -> list of numpy outputs (ONNX Runtime or anything alike)."""

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]: ...


class OrtGraph:
    """An ONNX Runtime session behind the Graph protocol (CPU provider unless told otherwise)."""

    def __init__(self, path: str | Path, threads: int = 1, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(path), opts, providers=list(providers))

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, inputs)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Streaming knobs: K, P, steps (1/2/4 students or the teacher's count), guidance strength, blending."""

    chunk: int = 2
    past: int = 8
    steps: int = 2
    guidance: float = 0.5
    blend_s: float = 0.25
    seed: int = 0
    teacher: bool = False  # sample the teacher with `steps` steps (for comparisons), not a student
    phone_weight: float = PHONE_WEIGHT  # share of the mouth from recognised phones (0: the encoder alone)

    def __post_init__(self) -> None:
        if not 1 <= self.chunk <= 32 or not 0 <= self.past <= 32 or self.past < DECODER_CONTEXT:
            raise InputError(f"chunk must be 1..32 and past {DECODER_CONTEXT}..32, got K={self.chunk} P={self.past}")
        if not 0.0 <= self.guidance <= 4.0 or not math.isfinite(self.guidance):
            raise InputError(f"guidance strength must be in 0..4, got {self.guidance}")
        check_phone_weight(self.phone_weight)


@dataclass(frozen=True, slots=True)
class Graphs:
    """The loaded model: ONNX graphs per part, denoisers by step count, and the trained lookahead."""

    audio: Graph
    decoder: Graph
    teacher: Graph  # many-step, classifier-free guidance by two passes
    students: dict[int, Graph]  # steps -> distilled graph (guidance strength is an input)
    teacher_steps: int
    lookahead: int

    @property
    def step_counts(self) -> list[int]:
        return sorted(set(self.students) | {self.teacher_steps})


def _phone_tracker() -> PhoneTracker | None:
    """A phone recogniser for one stream, or None (with a warning) where pocketsphinx is missing."""
    try:
        return PhoneTracker()
    except NotAvailableError as e:
        log.warning("Style-E runs without phone recognition, on the audio encoder's mouth alone: %s", e)
        return None


class StyleEStream:
    """One stream's state; `step(frames)` -> coefficients. Not thread-safe; one per session."""

    def __init__(self, graphs: Graphs, cfg: StreamConfig, emotion: np.ndarray, style: np.ndarray,
                 spread: np.ndarray | None = None, articulation: Articulation | None = None) -> None:
        self.g, self.cfg = graphs, cfg
        # the style reference's motion spread and mouth articulation (None: off)
        self.amplitude = AmplitudeMatch(N_COEFFS, spread, articulation)
        self._check(cfg)
        self.schedule: Schedule = make_schedule(cfg.steps)
        self._emotion_target = np.asarray(emotion, np.float32)
        self._style_target = np.asarray(style, np.float32)
        self.emotion = self._emotion_target.copy()
        self.style = self._style_target.copy()
        self.phones = _phone_tracker() if cfg.phone_weight > 0 else None
        self._lips_heard, self._lips_encoded = RunningDeviation(), RunningDeviation()  # the lips' motion
        self.reset()

    @property
    def latency_frames(self) -> int:
        """Frames by which the output lags the input audio (the lookahead)."""
        return self.g.lookahead

    def reset(self) -> None:
        """Forget audio and motion history (emotion and style stay)."""
        self._audio = np.zeros((MEL_CONTEXT + 2) * SAMPLES_PER_FRAME, np.float32)
        self._cond = np.zeros((self.cfg.past, 15), np.float32)
        self._lat = np.zeros((self.cfg.past, LATENT), np.float32)
        self._have = 0  # frames of history (capped at past)
        self._frames = 0  # audio frames received since reset
        self._rng = np.random.default_rng(self.cfg.seed)
        self.amplitude.reset()
        if self.phones is not None:
            self.phones.reset()
        self._lips_heard.reset()
        self._lips_encoded.reset()

    def _check(self, cfg: StreamConfig) -> None:
        if not cfg.teacher and cfg.steps not in self.g.step_counts:
            raise InputError(f"no Style-E sampler with {cfg.steps} steps (have {self.g.step_counts})")

    @property
    def uses_teacher(self) -> bool:
        return self.cfg.teacher or self.cfg.steps not in self.g.students

    def set_steps(self, steps: int) -> None:
        cfg = replace(self.cfg, steps=steps, teacher=False)
        self._check(cfg)
        self.cfg = cfg
        self.schedule = make_schedule(steps)

    def set_emotion(self, code: np.ndarray, immediate: bool = False) -> None:
        """New emotion code; it glides in over ~blend_s unless `immediate` (e.g. before the first chunk)."""
        self._emotion_target = np.asarray(code, np.float32)
        if immediate:
            self.emotion = self._emotion_target.copy()

    def set_style(self, code: np.ndarray, spread: np.ndarray | None = None,
                  articulation: Articulation | None = None) -> None:
        """New style code (glides in like emotion) and its reference clip's motion spread and articulation
        (engine.motion.amplitude; None turns that matching off, as for the neutral style; all glide)."""
        self._style_target = np.asarray(code, np.float32)
        self.amplitude.set_target(spread, articulation)

    def _glide(self, k: int) -> None:
        a = 1.0 - math.exp(-k / (25.0 * max(self.cfg.blend_s, 1e-3)))
        self.emotion += a * (self._emotion_target - self.emotion)
        self.style += a * (self._style_target - self.style)

    def _audio_cond(self, frames: np.ndarray) -> np.ndarray:
        k = len(frames)
        self._audio = np.concatenate([self._audio, frames.reshape(-1)])[-(MEL_CONTEXT + 2 + k) * SAMPLES_PER_FRAME :]
        # a (~20 x 257) @ (257 x 80) product: multi-threaded BLAS only spins and waits on a busy CPU
        with blas_controller().limit(limits=1, user_api="blas"):
            mel = mel_for_video(self._audio, 25.0)[-(MEL_CONTEXT + k) :].reshape(1, MEL_CONTEXT + k, 320)
        return self.g.audio.run({"mel": mel.astype(np.float32)})[0][0]

    def _x0(self, den: Graph, x: np.ndarray, t: float, base: dict[str, np.ndarray]) -> np.ndarray:
        if self.uses_teacher:
            # the teacher needs classifier-free guidance as two passes: cond and uncond in one batch of 2
            feed = {k: np.concatenate([v, v]) for k, v in base.items()}
            feed |= {"x": np.concatenate([x, x]), "t": np.full(2, t, np.float32),
                     "cond_mask": np.array([[1.0], [0.0]], np.float32), "w": np.zeros(2, np.float32)}
            xc, xu = den.run(feed)[0]
            return (xc + self.cfg.guidance * (xc - xu))[None]
        feed = base | {"x": x, "t": np.full(1, t, np.float32), "cond_mask": np.ones((1, 1), np.float32),
                       "w": np.full(1, self.cfg.guidance, np.float32)}
        return den.run(feed)[0]

    def step(self, frames: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """(K, 640) float32 audio -> (K, 34) coefficients of frames [n-K-L, n-L)."""
        frames = np.asarray(frames, np.float32)
        if frames.ndim != 2 or frames.shape[1] != SAMPLES_PER_FRAME or len(frames) < 1:
            raise InputError(f"Style-E needs (K, {SAMPLES_PER_FRAME}) audio frames at 16 kHz / 25 fps, got {frames.shape}")
        k, p = len(frames), self.cfg.past
        self._glide(k)
        cond = self._audio_cond(frames)
        self._frames += k
        if self.phones is not None:
            self.phones.push(frames)
        n = p + k
        mask = np.zeros((1, n, 1), np.float32)
        mask[0, p - self._have : p] = 1.0
        past = np.zeros((1, n, LATENT), np.float32)
        past[0, :p] = self._lat
        base = {"past": past, "past_mask": mask, "audio": np.concatenate([self._cond, cond])[None],
                "emotion": self.emotion[None], "style": self.style[None]}
        x = self._rng.standard_normal((1, n, LATENT)).astype(np.float32) if noise is None else noise.astype(np.float32)
        den = self.g.teacher if self.uses_teacher else self.g.students[self.cfg.steps]
        sch = self.schedule
        for i in range(sch.steps):
            x0 = self._x0(den, x, float(sch.times[i]), base)
            x = ddim_step(x, x0, float(sch.alphas[i]), float(sch.sigmas[i]), float(sch.alphas[i + 1]),
                          float(sch.sigmas[i + 1])).astype(np.float32)
        new = x[0, p:]
        z = np.concatenate([self._lat[p - DECODER_CONTEXT :], new])[None]
        a = np.concatenate([self._cond[p - DECODER_CONTEXT :], cond])[None].astype(np.float32)
        coeffs = self.g.decoder.run({"z": z, "audio": a})[0][0, DECODER_CONTEXT:]  # + the encoder's mouth
        if self.phones is not None:  # that share of the encoder's mouth handed to the phones'
            w = self.cfg.phone_weight
            heard = self.phones.mouth(self._frames - k - self.g.lookahead, k)[:, :N_MOUTH]
            coeffs[:, 0] += w * (phone_jaw(heard) - cond[:, 0])
            shift = lip_shift(self._lips_heard(heard), self._lips_encoded(cond[:, :N_MOUTH]))
            coeffs[:, 1:N_MOUTH] += w * shift[:, 1:].astype(np.float32)
        self._lat = np.concatenate([self._lat, new])[-p:]
        self._cond = np.concatenate([self._cond, cond])[-p:]
        self._have = min(self._have + k, p)
        coeffs = self.amplitude(coeffs)
        coeffs[:, :N_EXPR] = np.clip(coeffs[:, :N_EXPR], 0.0, 1.0)
        return coeffs.astype(np.float32, copy=False)
