"""Text-to-speech with phoneme timings: libespeak-ng through ctypes (event API) and Debian's flite CLI."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.audio.ingest import to_mono_16k
from engine.clock import AUDIO_RATE
from engine.errors import InputError, NotAvailableError

log = logging.getLogger(__name__)

# espeak_AUDIO_OUTPUT / options / event types / parameters, from speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002
_INIT_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4

# English espeak-ng voices that need no mbrola database (mb/* voices are skipped: no mbrola binary).
ESPEAK_VOICES: tuple[str, ...] = (
    "gmw/en-US", "gmw/en", "gmw/en-GB-scotland", "gmw/en-GB-x-gbclan", "gmw/en-GB-x-rp", "gmw/en-GB-x-gbcwmd",
    "gmw/en-029", "gmw/en-US-nyc",
)
FLITE_VOICES: tuple[str, ...] = ("slt", "kal", "awb", "rms", "kal16", "awb_time")
# flite's ARPAbet-style phone names -> IPA, so both engines feed one viseme table
FLITE_TO_IPA: dict[str, str] = {
    "pau": "_", "aa": "ɑː", "ae": "æ", "ah": "ʌ", "ao": "ɔː", "aw": "aʊ", "ax": "ə", "ay": "aɪ", "eh": "ɛ",
    "er": "ɜː", "ey": "eɪ", "ih": "ɪ", "iy": "iː", "ow": "oʊ", "oy": "ɔɪ", "uh": "ʊ", "uw": "uː",
    "b": "b", "ch": "tʃ", "d": "d", "dh": "ð", "f": "f", "g": "ɡ", "hh": "h", "jh": "dʒ", "k": "k", "l": "l",
    "m": "m", "n": "n", "ng": "ŋ", "p": "p", "r": "ɹ", "s": "s", "sh": "ʃ", "t": "t", "th": "θ", "v": "v",
    "w": "w", "y": "j", "z": "z", "zh": "ʒ",
}


@dataclass(frozen=True, slots=True)
class Prosody:
    """Speaking parameters: rate in words/min, pitch base and range 0..100 (espeak scale), volume 0..200."""

    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50
    volume: int = 100


@dataclass(frozen=True, slots=True)
class Speech:
    """One synthesised utterance: 16 kHz mono audio and its phoneme segments (IPA, seconds)."""

    samples: np.ndarray  # (N,) float32 at 16 kHz
    phonemes: tuple[str, ...]
    starts: np.ndarray  # (P,) float64 seconds
    ends: np.ndarray  # (P,) float64 seconds
    word_starts: np.ndarray  # (W,) float64 seconds (empty where the engine gives no word events)
    engine: str
    voice: str

    @property
    def duration(self) -> float:
        return len(self.samples) / AUDIO_RATE


class _EspeakEvent(ctypes.Structure):
    class _Id(ctypes.Union):
        _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_EspeakEvent))


class Espeak:
    """Process-wide libespeak-ng handle (the library keeps global state; one per process, lock-guarded)."""

    _instance: Espeak | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self._lib = ctypes.CDLL(name)
        except OSError as e:
            raise NotAvailableError(f"libespeak-ng not found ({e}); install the Debian package libespeak-ng1") from None
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        opts = _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA | _INIT_DONT_EXIT
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, opts)
        if rate <= 0:
            raise NotAvailableError("espeak_Initialize failed (espeak-ng-data missing?)")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str]] = []
        self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")  # espeak's noise uses rand()
        self._cb = _CALLBACK(self._on_synth)  # keep a reference: ctypes would free it
        lib.espeak_SetSynthCallback(self._cb)

    @classmethod
    def get(cls) -> Espeak:
        with cls._lock:
            if cls._instance is None:
                cls._instance = Espeak()
            return cls._instance

    def _on_synth(self, wav: ctypes._Pointer, n: int, events: ctypes._Pointer) -> int:  # type: ignore[type-arg]
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                self._events.append((_EVENT_PHONEME, int(ev.sample), ev.id.string.decode("utf-8", "replace")))
            elif ev.type == _EVENT_WORD:
                self._events.append((_EVENT_WORD, int(ev.sample), ""))
            i += 1
        return 0

    def synth(self, text: str, voice: str = "gmw/en-US", prosody: Prosody = Prosody(), seed: int = 0) -> Speech:
        """Speak `text` with `voice` (voice file, e.g. "gmw/en+f3"); InputError for an unknown voice or empty text.

        libespeak-ng keeps waveform state (flutter/phase counters) across calls, so output is bit-identical
        only for an identical call history in one process (the corpus builder gives each shard a fresh
        process); between histories phoneme times move by a few ms.
        """
        if not text.strip():
            raise InputError("cannot synthesise empty text")
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise InputError(f"espeak-ng voice not found: {voice!r}")
            for p, v in ((_PARAM_RATE, prosody.rate), (_PARAM_PITCH, prosody.pitch),
                         (_PARAM_RANGE, prosody.pitch_range), (_PARAM_VOLUME, prosody.volume)):
                self._lib.espeak_SetParameter(p, int(v), 0)
            self._chunks, self._events = [], []
            self._libc.srand(seed & 0x7FFFFFFF)
            raw = text.encode("utf-8")
            err = self._lib.espeak_Synth(raw, len(raw) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if err != 0:
                raise InputError(f"espeak-ng failed on {text[:40]!r} (error {err})")
            pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            events = self._events
        sr = self.sample_rate
        samples = to_mono_16k(pcm.astype(np.float32) / 32768.0, sr)
        ph = [(s, name) for kind, s, name in events if kind == _EVENT_PHONEME]
        # espeak reports each phoneme's start sample; its end is the next one's start (or the audio end)
        names = tuple(_clean_ipa(n) for _, n in ph)
        starts = np.array([s for s, _ in ph], np.float64) / sr
        ends = np.append(starts[1:], len(pcm) / sr) if len(starts) else starts
        words = np.array([s for kind, s, _ in events if kind == _EVENT_WORD], np.float64) / sr
        return Speech(samples, names, starts, ends, words, "espeak-ng", voice)


def _clean_ipa(name: str) -> str:
    """Strip stress and length-neutral marks espeak puts on IPA phoneme names."""
    return name.replace("ˈ", "").replace("ˌ", "").strip() or "_"


@lru_cache(maxsize=1)
def espeak_variants() -> tuple[str, ...]:
    """Voice variant names installed with espeak-ng (the `+name` suffixes)."""
    for root in (Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data"), Path("/usr/share/espeak-ng-data"),
                 Path("/usr/lib/aarch64-linux-gnu/espeak-ng-data")):
        d = root / "voices" / "!v"
        if d.is_dir():
            return tuple(sorted(p.name for p in d.iterdir() if p.is_file() and " " not in p.name))
    return ()


def flite_available() -> bool:
    return shutil.which("flite") is not None


def flite_synth(text: str, voice: str = "slt", prosody: Prosody = Prosody()) -> Speech:
    """Speak `text` with a flite voice; phoneme timings are flite's own segment end times (`-psdur`)."""
    if not text.strip():
        raise InputError("cannot synthesise empty text")
    exe = shutil.which("flite")
    if exe is None:
        raise NotAvailableError("flite is not installed (Debian package flite)")
    if voice not in FLITE_VOICES:
        raise InputError(f"flite voice not found: {voice!r} (have {', '.join(FLITE_VOICES)})")
    stretch = 175.0 / max(prosody.rate, 40)
    f0 = 70.0 + 1.6 * prosody.pitch  # espeak 0..100 -> roughly 70..230 Hz
    with tempfile.TemporaryDirectory(prefix="s2t-flite-") as tmp:
        wav = os.path.join(tmp, "out.wav")
        cmd = [exe, "-voice", voice, "--setf", f"duration_stretch={stretch:.3f}",
               "--setf", f"int_f0_target_mean={f0:.1f}", "-psdur", "-t", text, "-o", wav]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        except subprocess.TimeoutExpired:
            raise InputError(f"flite timed out on {text[:40]!r}") from None
        if res.returncode != 0 or not os.path.isfile(wav):
            raise InputError(f"flite failed (voice {voice!r}): {res.stderr.strip()[:200]}")
        samples, sr = _read_wav(wav)
    samples = to_mono_16k(samples * (prosody.volume / 100.0), sr)
    names, ends = [], []
    for tok in res.stdout.split():
        name, _, t = tok.rpartition(":")
        try:
            ends.append(float(t))
        except ValueError:
            continue
        names.append(FLITE_TO_IPA.get(name, name))
    e = np.minimum(np.array(ends, np.float64), len(samples) / AUDIO_RATE)  # flite's last pause outruns its wav
    s = np.concatenate([[0.0], e[:-1]]) if len(e) else e
    return Speech(samples, tuple(names), s, e, np.zeros(0), "flite", voice)


def _read_wav(path: str) -> tuple[np.ndarray, int]:
    import wave

    with wave.open(path, "rb") as w:
        sr, n, width, ch = w.getframerate(), w.getnframes(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(n)
    if width != 2:
        raise InputError(f"unexpected {8 * width}-bit wav from flite")
    x = np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0
    return (x.reshape(-1, ch).mean(axis=1) if ch > 1 else x), sr


def synthesize(text: str, voice_id: str, prosody: Prosody = Prosody(), seed: int = 0) -> Speech:
    """Dispatch on a voice id "espeak:<voice>[+variant]" or "flite:<voice>"."""
    engine, _, voice = voice_id.partition(":")
    if engine == "espeak":
        return Espeak.get().synth(text, voice, prosody, seed)
    if engine == "flite":
        return flite_synth(text, voice, prosody)
    raise InputError(f"unknown TTS voice id {voice_id!r} (expected espeak:<voice> or flite:<voice>)")
