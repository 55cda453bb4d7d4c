"""What a real-video style reference does to the stream, read on the face tracker's scale and on the model's.

A fitted real clip (`s2t data fit` output) is one speaker's talking style on the tracker's scale. Each clip in
--real is used as the style reference of the same synthetic test utterance, (a) as fitted (what the engine did
before engine.motion.reference.to_model_scale) and (b) read through `read_style_reference`, which maps it onto
the model's scale. Reported per clip and as medians over clips:
- motion lift per channel group: the output's running-deviation spread with the reference's amplitude matching
  over the same stream given the bare style code (1 = the reference changes nothing; AmplitudeMatch caps at 4);
- articulation gain on jawOpen and the lip channels (engine.motion.amplitude.articulation_gain, capped at 1.5):
  how far the reference is read as opening the mouth more or less than the typical training utterance;
- the articulation tempo's smoothing pole (median over those channels; 0 = as brisk as the corpus or brisker) and
  its lip boost (median over the lip channels, and the share at MAX_BOOST; 0 = as slow as the corpus or slower);
- its lip widening (engine.motion.amplitude, since session 13: median over the lip channels, and the share of lip
  channels widened at all; 0 = lips ranging no wider than the corpus's typical utterance);
- the share of channel gains that sit at their caps (a clip read on the wrong scale piles up there).
The same figures for corpus utterances used as references (13 test utterances, other voices) say what an
in-domain reference does: a real clip read on the right scale should look like them, not pinned to one side.

    .venv/bin/python benchmarks/reference_scale.py --json benchmarks/results/reference_scale.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.motion import amplitude as A  # noqa: E402

log = logging.getLogger("reference_scale")
GROUPS = {"brows": range(14, 19), "blinks": range(19, 21), "eyes_cheeks_nose": range(21, 28),
          "head_rotation": range(28, 31), "head_translation": range(31, 33)}
LIPS = [c for c in A.ARTICULATION_CHANNELS if c != 0]
MEDIANS = ("jaw_gain", "lip_gain_median", "tempo_pole_median", "boost_median", "boost_at_cap_share",
           "widen_median", "widened_share", "amplitude_at_cap_share", "articulation_at_cap_share")


def _lifts(model: Any, ref: Any, audio: np.ndarray) -> dict[str, Any]:
    from engine.motion.stream import StreamConfig
    from engine.motion.style_e import StyleEMotion

    cfg = StreamConfig(chunk=8, steps=2, seed=0, phone_weight=0.0)
    on = StyleEMotion(model, cfg, "neutral", ref, 25.0).generate(audio)
    off = StyleEMotion(model, cfg, "neutral", ref.code, 25.0).generate(audio)
    s_on, s_off = A.running_deviation(on).std(0), A.running_deviation(off).std(0)
    lift = s_on / np.maximum(s_off, 1e-6)
    target = np.asarray(ref.spread)[A.FIRST_CHANNEL:]  # the amplitude gains the stream aims at, per matched channel
    moving = s_off[A.FIRST_CHANNEL:] > 1e-4
    aim = np.clip(target / np.maximum(s_off[A.FIRST_CHANNEL:], 1e-6), 1 / A.CAP, A.CAP)[moving]
    gain = ref.articulation.gain if ref.articulation is not None else np.ones(34)
    pole = ref.articulation.pole if ref.articulation is not None else np.zeros(34)
    boost = ref.articulation.boost if ref.articulation is not None and ref.articulation.boost is not None \
        else np.zeros(34)
    widen = ref.articulation.widen if ref.articulation is not None and ref.articulation.widen is not None \
        else np.zeros(34)
    art = gain[list(A.ARTICULATION_CHANNELS)]
    floor = np.where(np.asarray(A.ARTICULATION_CHANNELS) == 0, A.JAW_GAIN_FLOOR, 1 / A.ARTICULATION_CAP)
    return {"lift": {k: round(float(np.median(lift[list(v)])), 3) for k, v in GROUPS.items()},
            "jaw_gain": round(float(gain[0]), 3), "lip_gain_median": round(float(np.median(gain[LIPS])), 3),
            "tempo_pole_median": round(float(np.median(pole[list(A.ARTICULATION_CHANNELS)])), 3),
            "boost_median": round(float(np.median(boost[LIPS])), 3),
            "boost_at_cap_share": round(float(np.mean(boost[LIPS] >= A.MAX_BOOST * 0.999)), 3),
            "widen_median": round(float(np.median(widen[LIPS])), 3),
            "widened_share": round(float(np.mean(widen[LIPS] > 0)), 3),
            "amplitude_at_cap_share": round(float(np.mean((aim >= A.CAP * 0.999) | (aim <= 1.001 / A.CAP))), 3),
            "articulation_at_cap_share": round(float(np.mean((art >= A.ARTICULATION_CAP * 0.999)
                                                              | (art <= floor * 1.001))), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", required=True)
    p.add_argument("--real", default="out/fit_talking", help="an `s2t data fit` folder of real clips")
    p.add_argument("--corpus", default="out/corpus")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from engine.motion.style_e import load_model, read_style_reference
    from engine.motion.train import load_corpus

    model = load_model()
    if model.scale is None:
        raise SystemExit("the weights have no reference_scale.json: run `s2t train style-e --reference-scale-only`")
    c = load_corpus(a.corpus, None, 4, ("test",), keep_audio=True)
    utt = next(u for u in c.synth if len(u.coeffs) > 150)
    clips: dict[str, Any] = {}
    for f in sorted(Path(a.real).glob("*.npz")):
        with np.load(f, allow_pickle=False) as z:
            fitted = np.asarray(z["coeffs"], np.float32)[np.asarray(z["valid"], bool)]
        if len(fitted) < 12:
            continue
        clips[f.stem] = {"frames": len(fitted),
                         "tracker_scale": _lifts(model, model.style(fitted), utt.audio),
                         "model_scale": _lifts(model, model.style(read_style_reference(f)), utt.audio)}
        log.info("%s: %s", f.stem, json.dumps(clips[f.stem]))
    corpus_refs = [u for u in c.synth if u is not utt and u.voice != utt.voice and len(u.coeffs) >= 40][:: 3][:13]
    in_domain = [_lifts(model, model.style(u.coeffs), utt.audio) for u in corpus_refs]
    summary: dict[str, Any] = {}
    for side in ("tracker_scale", "model_scale", "corpus_references"):
        rows = in_domain if side == "corpus_references" else [v[side] for v in clips.values()]
        summary[side] = {"lift_median": {k: round(float(np.median([r["lift"][k] for r in rows])), 3) for k in GROUPS},
                         **{k: round(float(np.median([r[k] for r in rows])), 3) for k in MEDIANS},
                         "jaw_gain_range": [round(float(min(r["jaw_gain"] for r in rows)), 3),
                                            round(float(max(r["jaw_gain"] for r in rows)), 3)]}
    out = {"utterance": utt.voice, "utterance_frames": len(utt.coeffs), "clips": len(clips),
           "corpus_references": len(in_domain), "summary": summary,
           "per_clip": clips, "command": " ".join(sys.argv)}
    Path(a.json).write_text(json.dumps(out, indent=1))
    log.info("summary %s", json.dumps(summary))


if __name__ == "__main__":
    main()
