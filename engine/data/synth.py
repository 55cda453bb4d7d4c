"""Synthetic utterances: TTS audio + phoneme-timed mouth, emotion, style, blinks and head pose per frame."""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass

import numpy as np

from engine.audio.features import n_video_frames, rms_envelope
from engine.data.emotions import EmotionMix, emotion_dynamics, emotion_prosody, expression_offset, level_range
from engine.data.phonemes import ESPEAK_VOICES, FLITE_VOICES, Prosody, espeak_variants, synthesize
from engine.data.styles import STYLE_NAMES, blinks, get_style, head_motion, style_expression
from engine.data.texts import Description, sentences
from engine.data.visemes import VISEME_NAMES, mouth_track, viseme_of
from engine.errors import AudioError, InputError
from engine.spec import DEFAULT_SPEC, MotionSpec

log = logging.getLogger(__name__)
FPS = 25.0
_BAD_VARIANTS = ("Demonic", "UniRobot", "anikaRobot", "Tweaky", "whisper", "whisperf", "fast", "croak")
SPLITS: tuple[str, ...] = ("train", "val", "test")
EST_SECONDS_PER_CHAR = 0.054  # measured mean over styles/emotions at the default rates (planning only)


def espeak_voice_ids() -> list[str]:
    """Every English espeak-ng voice x natural-sounding variant, as "espeak:<voice>+<variant>"."""
    variants = [v for v in espeak_variants() if not v.startswith(("robosoft", "Mr")) and v not in _BAD_VARIANTS]
    return [f"espeak:{v}" for v in ESPEAK_VOICES] + [f"espeak:{v}+{x}" for v in ESPEAK_VOICES for x in variants]


def voice_splits(seed: int, val_fraction: float = 0.08) -> dict[str, list[str]]:
    """Split by voice: train/val are disjoint espeak-ng voices; test is every flite voice (held-out engine)."""
    ids = espeak_voice_ids()
    if not ids:
        raise InputError("no espeak-ng voices found (install espeak-ng-data)")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ids))
    n_val = max(1, int(round(val_fraction * len(ids))))
    val = sorted(ids[i] for i in order[:n_val])
    train = sorted(ids[i] for i in order[n_val:])
    return {"train": train, "val": val, "test": [f"flite:{v}" for v in FLITE_VOICES]}


@dataclass(frozen=True, slots=True)
class UtteranceSpec:
    """Everything needed to make one utterance, deterministically."""

    index: int
    text: str
    voice: str
    split: str
    mix: EmotionMix
    style: str
    text_id: int  # row in the corpus's description table
    seed: int


@dataclass(frozen=True, slots=True)
class Utterance:
    """A synthesised utterance with per-frame coefficients at 25 fps."""

    spec: UtteranceSpec
    samples: np.ndarray  # (N,) float32 16 kHz
    coeffs: np.ndarray  # (T, 34) float32
    phonemes: tuple[str, ...]
    starts: np.ndarray  # (P,) s
    ends: np.ndarray  # (P,) s

    @property
    def duration(self) -> float:
        return len(self.samples) / 16000.0


def mix_for(desc: Description, rng: np.random.Generator) -> EmotionMix:
    """The labelled emotion a description stands for (intensity drawn inside its level's range)."""
    if desc.primary == "neutral" or desc.level == "none":
        return EmotionMix()
    lo, hi = level_range(desc.level)
    sec_w = float(rng.uniform(0.25, 0.5)) if desc.secondary != "neutral" else 0.0
    return EmotionMix(desc.primary, float(rng.uniform(lo, hi)), desc.secondary, sec_w)


def plan(hours: float, seed: int, train_desc: list[Description], held_desc: list[Description],
         split_share: tuple[float, float, float] = (0.84, 0.06, 0.10)) -> list[UtteranceSpec]:
    """Utterance specs totalling about `hours` (duration estimated from text length and rate).

    Test utterances use flite voices and held-out emotion paraphrases; description ids index the table
    `train_desc + held_desc`.
    """
    if hours <= 0:
        raise InputError(f"--hours must be positive, got {hours}")
    voices = voice_splits(seed)
    rng = np.random.default_rng([seed, 1])
    pools = {False: _label_pools(train_desc, 0), True: _label_pools(held_desc, len(train_desc))}
    alld = train_desc + held_desc
    target = hours * 3600.0
    total = 0.0
    specs: list[UtteranceSpec] = []
    shares = np.asarray(split_share) / np.sum(split_share)
    while total < target:
        i = len(specs)
        split = SPLITS[i] if i < len(SPLITS) else SPLITS[int(rng.choice(3, p=shares))]  # every split non-empty
        voice = voices[split][int(rng.integers(len(voices[split])))]
        style = STYLE_NAMES[int(rng.integers(len(STYLE_NAMES)))]
        n_sent = 1 + int(rng.random() < 0.35)
        text = " ".join(sentences(n_sent, rng))
        kind_pools = pools[split == "test"]
        kind = ("neutral", "single", "mixture")[int(rng.choice(3, p=(0.12, 0.70, 0.18)))]
        labels = kind_pools[kind] or kind_pools["single"]
        ids = labels[int(rng.integers(len(labels)))]
        tid = ids[int(rng.integers(len(ids)))]
        desc = alld[tid]
        mix = mix_for(desc, rng)
        useed = int(rng.integers(2**31 - 1))
        specs.append(UtteranceSpec(i, text, voice, split, mix, style, tid, useed))
        total += len(text) * EST_SECONDS_PER_CHAR / get_style(style).rate_factor
    return specs


def _label_pools(descs: list[Description], offset: int) -> dict[str, list[list[int]]]:
    """Description ids grouped by label, the labels grouped by kind (neutral / single / mixture)."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, d in enumerate(descs):
        groups.setdefault((d.primary, d.level, d.secondary), []).append(offset + i)
    out: dict[str, list[list[int]]] = {"neutral": [], "single": [], "mixture": []}
    for (p, _, sec), ids in sorted(groups.items()):
        out["neutral" if p == "neutral" else "mixture" if sec != "neutral" else "single"].append(ids)
    return out


def _prosody(spec: UtteranceSpec, rng: np.random.Generator) -> Prosody:
    st = get_style(spec.style)
    base = Prosody(rate=int(rng.uniform(145, 195) * st.rate_factor), pitch=int(np.clip(rng.uniform(30, 70)
                   + st.pitch_shift, 0, 99)), pitch_range=int(np.clip(rng.uniform(35, 65) * st.pitch_range, 0, 100)),
                   volume=int(np.clip(100 * st.volume, 10, 200)))
    return emotion_prosody(spec.mix, base)


def _voice_for_style(voice: str, style: str) -> str:
    variant = get_style(style).variant
    if not variant or not voice.startswith("espeak:"):
        return voice
    return voice.split("+")[0] + "+" + variant


def make_utterance(spec: UtteranceSpec, mspec: MotionSpec = DEFAULT_SPEC) -> Utterance:
    """Synthesize `spec`: speech from the TTS, then mouth (phoneme timed), emotion, style, blinks, pose."""
    rng = np.random.default_rng(spec.seed)
    st = get_style(spec.style)
    speech = synthesize(spec.text, _voice_for_style(spec.voice, spec.style), _prosody(spec, rng), spec.seed)
    samples = speech.samples
    peak = check_audio(samples, f"TTS output for utterance {spec.index} ({spec.voice})")
    if peak > 0.99:
        samples = samples * (0.99 / peak)
    T = n_video_frames(len(samples), FPS)
    coeffs = np.zeros((T, mspec.dim), np.float32)
    coeffs[:, : mspec.n_expression] = mouth_track(speech.phonemes, speech.starts, speech.ends, T, FPS,
                                                  st.articulation(), mspec)
    energy = rms_envelope(samples, FPS)
    blink_f, head_f = emotion_dynamics(spec.mix)
    # emotion: offsets that ramp in over ~0.3 s and breathe slowly (+-15 %)
    ramp = np.minimum(1.0, (np.arange(T) + 1) / (0.3 * FPS))
    breathe = 1.0 + 0.15 * np.sin(2 * np.pi * (np.arange(T) / FPS) / rng.uniform(2.5, 5.0) + rng.uniform(0, 6.3))
    coeffs[:, : mspec.n_expression] += (ramp * breathe)[:, None] * expression_offset(spec.mix, mspec)[None]
    coeffs[:, : mspec.n_expression] += style_expression(st, energy, mspec)
    blink = blinks(rng, energy, st.blink_per_min * blink_f, FPS)
    lag = int(rng.integers(0, 2))  # eyes are not perfectly synchronous
    coeffs[:, mspec.index("eyeBlinkLeft")] = np.maximum(coeffs[:, mspec.index("eyeBlinkLeft")], blink)
    coeffs[:, mspec.index("eyeBlinkRight")] = np.maximum(coeffs[:, mspec.index("eyeBlinkRight")],
                                                         np.roll(blink, lag) * rng.uniform(0.9, 1.0))
    coeffs[:, mspec.n_expression :] = head_motion(rng, energy, st, head_f, FPS)
    return Utterance(spec, samples.astype(np.float32), mspec.clip(coeffs), speech.phonemes, speech.starts,
                     speech.ends)


def check_audio(samples: np.ndarray, what: str, min_peak: float = 1e-3) -> float:
    """Peak level of `samples`; AudioError when empty or silent (nothing to learn a face from)."""
    if samples.size == 0:
        raise AudioError(f"{what}: no audio samples")
    peak = float(np.max(np.abs(samples)))
    if peak < min_peak:
        raise AudioError(f"{what}: audio is silent (peak {peak:.2g})")
    return peak


def viseme_ids(phonemes: tuple[str, ...]) -> np.ndarray:
    return np.array([VISEME_NAMES.index(viseme_of(p)) for p in phonemes], np.int8)


def uid_of(spec: UtteranceSpec) -> int:
    """Stable id of an utterance (crc of its defining fields)."""
    return zlib.crc32(f"{spec.index}|{spec.voice}|{spec.text}|{spec.seed}".encode())
