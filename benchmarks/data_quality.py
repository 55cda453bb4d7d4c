"""Training-data quality and speed: synthesis throughput, mouth ground truth through render+track, TTS timing accuracy.

    .venv/bin/python benchmarks/data_quality.py --json out/data_quality.json [--portrait PATH]

Writes JSON with three sections:
- throughput: hours of synthetic speech (+ coefficients) per CPU-minute, single process, and the
  projected wall time of a 10 h corpus on 2 workers;
- mouth: synthetic utterances rendered by the reference renderer and measured back by the face tracker;
  Pearson r between the tracker's mouth aperture and the pipeline's intended openness;
- timing: espeak-ng event times (and flite's -psdur times) vs an independent energy-based estimate of the
  same boundaries (pause->speech onsets and speech->pause offsets in the audio; stops excluded because
  their closure is silent), median absolute difference in ms;
- align (--align N, needs pocketsphinx): espeak-ng word starts and phone starts vs pocketsphinx forced
  alignment of the same text (engine.data.align), en-US voices at several rates; median/p90 |diff| in ms.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data.emotions import EmotionMix, random_mix  # noqa: E402
from engine.data.phonemes import Speech, flite_synth, synthesize  # noqa: E402
from engine.data.synth import UtteranceSpec, make_utterance, voice_splits  # noqa: E402
from engine.data.styles import STYLE_NAMES  # noqa: E402
from engine.data.texts import sentences  # noqa: E402
from engine.data.visemes import openness  # noqa: E402

log = logging.getLogger("bench.data_quality")
REPO = Path(__file__).resolve().parents[1]
_STOPS = set("pbtdkgɡʔ")


def _specs(n: int, seed: int, split: str = "train") -> list[UtteranceSpec]:
    rng = np.random.default_rng(seed)
    voices = voice_splits(seed)[split]
    return [UtteranceSpec(i, " ".join(sentences(1 + int(rng.random() < 0.4), rng)),
                          voices[int(rng.integers(len(voices)))], split, random_mix(rng),
                          STYLE_NAMES[int(rng.integers(len(STYLE_NAMES)))], -1, int(rng.integers(2**31 - 1)))
            for i in range(n)]


def bench_throughput(n: int, seed: int) -> dict[str, float]:
    specs = _specs(n, seed)
    make_utterance(specs[0])  # warm the library
    c0, w0 = time.process_time(), time.perf_counter()
    audio_s = sum(make_utterance(s).duration for s in specs)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    per_cpu_min = audio_s / 3600 / (cpu / 60)
    return {"utterances": n, "audio_seconds": round(audio_s, 1), "cpu_seconds": round(cpu, 2),
            "wall_seconds": round(wall, 2), "hours_per_cpu_minute": round(per_cpu_min, 3),
            "realtime_factor_per_core": round(audio_s / cpu, 1),
            "projected_10h_minutes_on_2_workers": round(10 / per_cpu_min / 2, 1)}


def bench_mouth(portrait: Path, n: int, seed: int) -> dict[str, object]:
    from engine.face.model import FaceModel
    from engine.face.reference_renderer import ReferenceRenderer
    from engine.face.tracker import FaceTracker, mouth_aperture

    model = FaceModel.from_portrait(portrait, size=256)
    renderer = ReferenceRenderer(model, 256)
    intended, measured, jaw, per_utt = [], [], [], []
    with FaceTracker(static_image_mode=False) as trk:
        for spec in _specs(n, seed + 1):
            u = make_utterance(spec)
            ap = []
            for row in u.coeffs:
                t = trk.track_or_none(renderer.render(row))
                ap.append(np.nan if t is None else mouth_aperture(t.landmarks))
            a = np.array(ap)
            ok = np.isfinite(a)
            o = openness(u.coeffs)
            intended.append(o[ok])
            measured.append(a[ok])
            jaw.append(u.coeffs[ok, 0])
            per_utt.append(float(np.corrcoef(o[ok], a[ok])[0, 1]))
    o, a, j = (np.concatenate(x) for x in (intended, measured, jaw))
    return {"portrait": portrait.name, "utterances": n, "frames": int(len(a)),
            "pearson_openness_vs_tracked_aperture": round(float(np.corrcoef(o, a)[0, 1]), 4),
            "pearson_jawOpen_vs_tracked_aperture": round(float(np.corrcoef(j, a)[0, 1]), 4),
            "per_utterance_pearson_median": round(float(np.median(per_utt)), 4),
            "per_utterance_pearson_min": round(float(np.min(per_utt)), 4),
            "intended": "engine.data.visemes.openness: (jawOpen + lip parting: lowerDown, upperUp, funnel) * (1 - mouthClose)",
            "measured": "engine.face.tracker.mouth_aperture (inner-lip gap / IOD) on rendered frames"}


def _energy_boundaries(x: np.ndarray, sr: int = 16000, floor_db: float = -40.0, min_gap_ms: int = 30
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Onsets/offsets (s) of speech between pauses >= min_gap_ms, from 5 ms-window energy at a 1 ms hop."""
    hop, win = sr // 1000, sr // 200
    n = max((len(x) - win) // hop + 1, 0)
    idx = np.arange(win)[None] + hop * np.arange(n)[:, None]
    db = 10 * np.log10(np.mean(x[idx] ** 2, axis=1) + 1e-12)
    speech = db > db.max() + floor_db
    edges = np.flatnonzero(np.diff(speech.astype(np.int8))) + 1
    runs = np.split(speech, edges)
    starts = np.concatenate([[0], edges])
    on, off = [], []
    for k, (r, s) in enumerate(zip(runs, starts)):
        if not r[0]:
            continue
        gap_before = k == 0 or len(runs[k - 1]) >= min_gap_ms
        gap_after = k == len(runs) - 1 or len(runs[k + 1]) >= min_gap_ms
        if gap_before:
            on.append(s)
        if gap_after:
            off.append(s + len(r))
    t = lambda v: (np.array(v, np.float64) * hop + win / 2) / sr  # noqa: E731
    return t(on), t(off)


def _event_boundaries(sp: Speech, min_pause: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    on, off = [], []
    ph, st, en = sp.phonemes, sp.starts, sp.ends
    real = [i for i in range(len(ph)) if ph[i] != "_" and en[i] > st[i]]
    if not real:
        return np.zeros(0), np.zeros(0)
    for k, i in enumerate(real):
        prev_gap = st[i] - (en[real[k - 1]] if k else 0.0)
        next_gap = (st[real[k + 1]] if k + 1 < len(real) else sp.duration) - en[i]
        if prev_gap >= min_pause and ph[i][0] not in _STOPS:
            on.append(st[i])
        if next_gap >= min_pause and ph[i][-1] not in _STOPS:
            off.append(en[i])
    return np.array(on), np.array(off)


def _match(ref: np.ndarray, est: np.ndarray, tol: float = 0.1) -> np.ndarray:
    if not len(ref) or not len(est):
        return np.zeros(0)
    d = ref[:, None] - est[None]
    best = d[np.arange(len(ref)), np.argmin(np.abs(d), axis=1)]
    return best[np.abs(best) <= tol]


def bench_timing(n: int, seed: int) -> dict[str, object]:
    out: dict[str, object] = {}
    for engine in ("espeak-ng", "flite"):
        specs = _specs(n, seed + 2, "train" if engine == "espeak-ng" else "test")
        on_d, off_d, n_on, n_off = [], [], 0, 0
        for s in specs:
            sp = synthesize(s.text, s.voice, seed=s.seed) if engine == "espeak-ng" else flite_synth(
                s.text, s.voice.split(":")[1])
            eo, ef = _energy_boundaries(sp.samples)
            po, pf = _event_boundaries(sp)
            on_d.append(_match(po, eo))
            off_d.append(_match(pf, ef))
            n_on, n_off = n_on + len(po), n_off + len(pf)
        on, off = np.concatenate(on_d), np.concatenate(off_d)
        both = np.abs(np.concatenate([on, off])) * 1000
        out[engine] = {"utterances": n, "onsets": n_on, "onsets_matched": int(len(on)),
                       "offsets": n_off, "offsets_matched": int(len(off)),
                       "median_abs_ms": round(float(np.median(both)), 2) if len(both) else None,
                       "p90_abs_ms": round(float(np.percentile(both, 90)), 2) if len(both) else None,
                       "median_signed_onset_ms": round(float(np.median(on) * 1000), 2) if len(on) else None,
                       "median_signed_offset_ms": round(float(np.median(off) * 1000), 2) if len(off) else None}
    out["method"] = ("TTS boundary times vs energy boundaries (-40 dB rel. max, 5 ms window, 1 ms hop) at "
                     "pauses >= 30 ms; boundaries next to stop consonants excluded; matched within 100 ms")
    return out


_ALIGN_VOICES = ("gmw/en-US", "gmw/en-US-nyc", "gmw/en-US+f3", "gmw/en-US+m3")
_ALIGN_RATES = (140, 175, 210, 240)  # above ~240 wpm espeak phones get shorter than the aligner's 30 ms HMM minimum


def _stats(d: np.ndarray) -> dict[str, float | None]:
    a = np.abs(d) * 1000
    return {"median_abs_ms": round(float(np.median(a)), 2) if len(a) else None,
            "p90_abs_ms": round(float(np.percentile(a, 90)), 2) if len(a) else None,
            "median_signed_ms": round(float(np.median(d) * 1000), 2) if len(d) else None}


def bench_align(n: int, seed: int) -> dict[str, object]:
    from engine.data.align import compare_timings
    from engine.data.phonemes import Prosody, espeak_variants
    from engine.errors import InputError

    have = set(espeak_variants())
    voices = [v for v in _ALIGN_VOICES if "+" not in v or v.split("+")[1] in have]
    rng = np.random.default_rng(seed + 3)
    wd, pd, failed = [], [], []
    n_words = n_phones = n_tts_phones = 0
    by_rate: dict[int, list[np.ndarray]] = {r: [] for r in _ALIGN_RATES}
    for i in range(n):
        text = " ".join(sentences(1 + int(rng.random() < 0.4), rng))
        voice, rate = voices[i % len(voices)], _ALIGN_RATES[(i // len(voices)) % len(_ALIGN_RATES)]
        sp = synthesize(text, f"espeak:{voice}", Prosody(rate=rate), seed=i)
        try:
            d = compare_timings(sp, text)
        except InputError as e:
            failed.append(f"{voice} @{rate}: {e}")
            continue
        n_words, n_tts_phones = n_words + d.words, n_tts_phones + d.phones_tts
        wd.append(d.word_diffs)
        pd.append(d.phone_diffs)
        by_rate[rate].append(d.word_diffs)
    w, p = (np.concatenate(x) if x else np.zeros(0) for x in (wd, pd))
    return {"utterances": n, "aligned": n - len(failed), "failed": failed, "voices": voices,
            "rates_wpm": list(_ALIGN_RATES),
            "words": {"total": n_words, "matched": int(len(w)), **_stats(w)},
            "phones": {"tts_total": n_tts_phones, "matched": int(len(p)), **_stats(p)},
            "words_by_rate": {str(r): {"matched": int(sum(map(len, v))),
                                       **_stats(np.concatenate(v) if v else np.zeros(0))}
                              for r, v in by_rate.items()},
            "method": ("pocketsphinx (bundled en-us model + CMUdict) FSG forced alignment of the same text, "
                       "10 ms frames, start = frame/100; diff = espeak minus aligner. Words paired in order "
                       "when counts agree; phones paired only inside difflib equal runs after mapping both to "
                       "one IPA spelling (AH=ʌ/ə, ER=ɜː/ɚ); phone pass missing on some fast utterances")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=None, help="write results here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--portrait", default=str(REPO.parent / "shared/data/portraits/photo_anne_aligned.png"))
    ap.add_argument("--throughput-utts", type=int, default=60)
    ap.add_argument("--mouth-utts", type=int, default=6)
    ap.add_argument("--timing-utts", type=int, default=40)
    ap.add_argument("--align", type=int, default=0, metavar="N",
                    help="also check N espeak-ng utterances against pocketsphinx forced alignment (0: off)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["throughput", "mouth", "timing"])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    res: dict[str, object] = {"seed": args.seed}
    if "throughput" not in args.skip:
        res["throughput"] = bench_throughput(args.throughput_utts, args.seed)
        log.info("throughput %s", res["throughput"])
    if "timing" not in args.skip:
        res["timing"] = bench_timing(args.timing_utts, args.seed)
        log.info("timing %s", res["timing"])
    if args.align > 0:
        res["align"] = bench_align(args.align, args.seed)
        log.info("align %s", res["align"])
    if "mouth" not in args.skip:
        p = Path(args.portrait)
        if p.is_file():
            res["mouth"] = bench_mouth(p, args.mouth_utts, args.seed)
            log.info("mouth %s", res["mouth"])
        else:
            log.warning("portrait %s not found: mouth check skipped", p)
    text = json.dumps(res, indent=1)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
