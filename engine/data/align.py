"""Forced alignment of synthetic speech with pocketsphinx (QA only): checks TTS word/phone timings against an aligner."""

from __future__ import annotations

import difflib
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.clock import AUDIO_RATE
from engine.data.phonemes import FLITE_TO_IPA, Speech
from engine.errors import InputError, NotAvailableError

log = logging.getLogger(__name__)

FRAME_S = 0.01  # pocketsphinx frames are 10 ms (frame rate 100)
_PAD_S = 0.3  # silence padded both sides: without trailing silence the aligner loses the last words
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)*")
_NON_WORDS = frozenset({"<s>", "</s>", "<sil>"})
# espeak-ng IPA -> the symbol CMU ARPAbet (via FLITE_TO_IPA) uses for the same sound; CMU has one AH for ʌ/ə
# and one ER for ɜː/ɚ, and no length split for i/iː
_IPA_CANON: dict[str, str] = {"ə": "ʌ", "ɚ": "ɜː", "ɜ": "ɜː", "i": "iː", "g": "ɡ", "r": "ɹ", "ɐ": "ʌ", "ɑ": "ɑː",
                              "ɔ": "ɔː", "u": "uː", "e": "eɪ", "o": "oʊ"}
_ARPA_TO_IPA: dict[str, str] = {k.upper(): v for k, v in FLITE_TO_IPA.items() if k != "pau"}

_local = threading.local()


@dataclass(frozen=True, slots=True)
class Alignment:
    """Aligner output for one utterance: words and their phones (CMU ARPAbet) with times in seconds.

    Phones are empty when only the word pass succeeded (see `force_align`)."""

    words: tuple[str, ...]
    word_starts: np.ndarray  # (W,) float64 seconds
    word_ends: np.ndarray
    phones: tuple[str, ...]  # ARPAbet, e.g. "AH", silences excluded
    phone_starts: np.ndarray  # (P,) float64 seconds
    phone_ends: np.ndarray
    phone_word: np.ndarray  # (P,) int: index into words


@dataclass(frozen=True, slots=True)
class TimingDiff:
    """TTS minus aligner time differences (seconds) for one utterance; empty arrays where nothing matched."""

    words: int  # words in the text
    word_diffs: np.ndarray  # (words,) when espeak's word events and the aligner's words pair up one to one
    phones_tts: int  # TTS phonemes (pauses excluded)
    phone_diffs: np.ndarray  # phone-start differences for phones whose identity matches unambiguously


def align_words(text: str) -> list[str]:
    """Lower-case words of `text` as the aligner's dictionary spells them; InputError when none."""
    words = _WORD_RE.findall(text.lower().replace("’", "'"))
    if not words:
        raise InputError(f"no alignable words in {text[:40]!r}")
    return words


def _decoder() -> Any:
    dec = getattr(_local, "decoder", None)
    if dec is None:
        try:
            from pocketsphinx import Decoder
        except ImportError as e:
            raise NotAvailableError(f"pocketsphinx is not installed ({e}); pip install pocketsphinx") from None
        dec = Decoder(lm=None, samprate=AUDIO_RATE, loglevel="FATAL")
        _local.decoder = dec
    return dec


def force_align(samples: np.ndarray, text: str) -> Alignment:
    """Align `text` to 16 kHz mono float audio with pocketsphinx's bundled US-English model (two passes:
    word-level FSG alignment, then phone/state alignment; phones are left empty when the second pass
    fails). InputError for out-of-dictionary words or audio the aligner cannot fit to the text."""
    dec = _decoder()
    words = align_words(text)
    oov = [w for w in words if dec.lookup_word(w) is None]
    if oov:
        raise InputError(f"words not in the aligner's dictionary: {', '.join(sorted(set(oov)))}")
    pad = np.zeros(int(_PAD_S * AUDIO_RATE), np.float32)
    x = np.concatenate([pad, np.asarray(samples, np.float32), pad])
    # a little deterministic dither: all-zero frames give the MFCC front end -inf log energies
    x = x + np.random.default_rng(0).normal(0.0, 1e-4, len(x)).astype(np.float32)
    pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    try:
        dec.set_align_text(" ".join(words))
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        segs = [(s.word, s.start_frame, s.end_frame + 1) for s in (dec.seg() or [])]
    except RuntimeError as e:
        raise InputError(f"forced alignment failed for {text[:40]!r}: {e}") from None
    segs = [(re.sub(r"\(\d+\)$", "", w), b, e) for w, b, e in segs if w not in _NON_WORDS]
    if [w for w, _, _ in segs] != words:
        raise InputError(f"forced alignment did not reach the end of {text[:40]!r}")
    wn = [w for w, _, _ in segs]
    ws, we = [b for _, b, _ in segs], [e for _, _, e in segs]
    pn, ps, pe, pw = [], [], [], []
    try:  # phone pass; fails when fast speech has phones shorter than the 3-state HMM minimum (30 ms)
        dec.set_alignment()
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        al = dec.get_alignment()
    except RuntimeError as e:
        log.debug("phone alignment failed for %r: %s", text[:40], e)
        al = None
    k = -1
    for w in al or ():
        if w.name in _NON_WORDS:
            continue
        k += 1
        for p in w:
            if p.name == "SIL":
                continue
            pn.append(p.name)
            ps.append(p.start)
            pe.append(p.start + p.duration)
            pw.append(k)
    sec = lambda v: np.array(v, np.float64) * FRAME_S - _PAD_S  # noqa: E731
    return Alignment(tuple(wn), sec(ws), sec(we), tuple(pn), sec(ps), sec(pe), np.array(pw, np.int64))


def canon_ipa(sym: str) -> str:
    """Map an espeak-ng IPA phoneme to the symbol its CMU ARPAbet counterpart maps to (identity if none)."""
    return _IPA_CANON.get(sym, sym)


def compare_timings(sp: Speech, text: str, al: Alignment | None = None) -> TimingDiff:
    """TTS timings of `sp` (synthesised from `text`) minus the forced aligner's.

    Words: espeak word events paired in order with aligned words when the counts agree. Phones: TTS and
    aligner phone sequences (pauses dropped, both mapped to one IPA spelling) matched by difflib; only
    phones inside equal runs are compared, so a substitution or an insertion never pairs unrelated phones.
    """
    al = force_align(sp.samples, text) if al is None else al
    n_words = len(align_words(text))
    wd = (sp.word_starts - al.word_starts) if len(sp.word_starts) == len(al.words) == n_words else np.zeros(0)
    keep = [i for i, p in enumerate(sp.phonemes) if p != "_" and sp.ends[i] > sp.starts[i]]
    tts = [canon_ipa(sp.phonemes[i]) for i in keep]
    ali = [_ARPA_TO_IPA.get(p, p.lower()) for p in al.phones]
    sm = difflib.SequenceMatcher(a=tts, b=ali, autojunk=False)
    ti, ai = [], []
    for a0, b0, size in sm.get_matching_blocks():
        ti.extend(keep[a0 + k] for k in range(size))
        ai.extend(range(b0, b0 + size))
    pd = sp.starts[ti] - al.phone_starts[ai] if ti else np.zeros(0)
    return TimingDiff(n_words, np.asarray(wd, np.float64), len(keep), np.asarray(pd, np.float64))
