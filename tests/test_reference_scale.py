"""Style references on the right scale: articulation (gain and tempo) from a reference's mouth, the face
tracker's fits mapped onto the corpus's scale (engine.motion.reference), and the recipe step measuring both."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from engine.motion import amplitude as A
from engine.motion.reference import (REFERENCE_SCALE_FILE, ReferenceScale, load_reference_scale,
                                     to_model_scale)

LEVELS = np.full(34, 0.2, np.float32)
TEMPO = np.full(34, 0.3, np.float32)


def _scale(fitted_mean: float = 0.5, fitted_std: float = 0.25) -> ReferenceScale:
    return ReferenceScale(LEVELS.copy(), TEMPO.copy(), np.full(34, 0.2, np.float32), np.full(34, 0.1, np.float32),
                          np.full(34, fitted_mean, np.float32), np.full(34, fitted_std, np.float32))


def _ref(frames: int = 400, period: float = 10.0) -> np.ndarray:
    """Every channel at the corpus level 0.2, moving as a sine of `period` frames."""
    t = np.arange(frames)[:, None]
    return (0.2 + 0.1 * np.sin(2 * np.pi * t / period) * np.ones((1, 34))).astype(np.float32)


def test_articulation_reads_the_mouth_levels_caps_them_and_leaves_the_rest() -> None:
    ref = _ref()
    ref[:, 0] *= 1.5  # opens the jaw 1.5x the corpus level
    ref[:, 1] *= 0.5  # closes the lips half as much: capped at 1/1.5
    ref[:, 4] = 0.8  # smiles a lot: emotion's channel, not articulation
    ref[:, 20] = 0.9  # blinks: not articulation
    art = A.articulation(ref, LEVELS, TEMPO)
    g = art.gain
    assert g.shape == (34,) and g.dtype == np.float32
    assert g[0] == pytest.approx(1.5, rel=1e-3) and g[1] == pytest.approx(1 / A.ARTICULATION_CAP)
    assert g[4] == 1.0 and g[20] == 1.0 and g[28] == 1.0
    assert all(g[c] == pytest.approx(1.0, rel=1e-3) for c in A.ARTICULATION_CHANNELS[2:])
    quiet = _ref()
    quiet[:, 0] *= 0.5  # a whisperer's jaw: the jaw alone may go below 1/1.5, down to JAW_GAIN_FLOOR
    assert A.articulation(quiet, LEVELS, TEMPO).gain[0] == pytest.approx(0.5, rel=1e-3)
    quiet[:, 0] *= 0.2
    assert A.articulation(quiet, LEVELS, TEMPO).gain[0] == pytest.approx(A.JAW_GAIN_FLOOR)
    still = LEVELS.copy()
    still[2] = 0.0  # a channel the corpus never uses: no ratio to read, gain 1
    assert A.articulation(ref, still, TEMPO).gain[2] == 1.0
    with pytest.raises(ValueError):
        A.articulation(ref[:, :10], LEVELS, TEMPO)


def test_articulation_tempo_smooths_a_slow_reference_only() -> None:
    brisk, slow = _ref(period=8.0), _ref(period=40.0)
    t_brisk = A.mouth_tempo(brisk)
    # against a corpus exactly as brisk: no smoothing; a 5x slower clip: the largest pole, articulation channels only
    assert (A.articulation(brisk, LEVELS, t_brisk).pole == 0).all()
    pole = A.articulation(slow, LEVELS, t_brisk).pole
    assert all(pole[c] == pytest.approx(A.MAX_TEMPO_POLE) for c in A.ARTICULATION_CHANNELS)
    assert (np.delete(pole, list(A.ARTICULATION_CHANNELS)) == 0).all()
    slower = _ref(period=10.0)  # a little slower than the corpus: a pole of 1 - its tempo ratio
    ratio = A.mouth_tempo(slower)[0] / t_brisk[0]
    assert 0.7 < ratio < 0.9
    assert A.articulation(slower, LEVELS, t_brisk).pole[0] == pytest.approx(1 - ratio, rel=1e-4)
    still = slow.copy()
    still[:, 3] = 0.2  # a reference whose pucker never moves says nothing about its tempo
    assert A.articulation(still, LEVELS, t_brisk).pole[3] == 0.0
    assert A.articulation(still, LEVELS, t_brisk).boost[3] == 0.0


def test_articulation_boost_lifts_a_brisk_reference_s_lips_only() -> None:
    brisk, slow = _ref(period=8.0), _ref(period=40.0)
    t_slow = A.mouth_tempo(slow)
    assert (A.articulation(slow, LEVELS, t_slow).boost == 0).all()  # as brisk as the corpus: nothing
    b = A.articulation(brisk, LEVELS, t_slow).boost  # 5x as brisk: the largest boost, on the lips only
    lips = [c for c in A.ARTICULATION_CHANNELS if c != 0]
    assert all(b[c] == pytest.approx(A.MAX_BOOST) for c in lips)
    assert b[0] == 0.0 and (np.delete(b, lips) == 0).all()
    assert (A.articulation(brisk, LEVELS, t_slow).pole == 0).all()  # brisker: never smoothed
    t_mid = A.mouth_tempo(_ref(period=10.0))  # a corpus a little slower than the clip: boost = tempo ratio - 1
    ratio = A.mouth_tempo(brisk)[1] / t_mid[1]
    assert 1.1 < ratio < 1.5
    assert A.articulation(brisk, LEVELS, t_mid).boost[1] == pytest.approx(ratio - 1, rel=1e-4)


def test_articulation_widens_a_wide_reference_s_lips_only() -> None:
    ref = _ref(period=40.0)
    unit = A.reference_spread(ref)  # a corpus whose utterances move exactly as much: nothing
    lips = [c for c in A.ARTICULATION_CHANNELS if c != 0]
    assert (A.articulation(ref, LEVELS, TEMPO, unit).widen == 0).all()
    unknown = A.articulation(ref, LEVELS, TEMPO).widen  # no corpus spread given: nothing widened
    assert unknown is not None and (unknown == 0).all()
    widen = A.articulation(ref, LEVELS, TEMPO, unit / 1.2).widen  # 1.2x the corpus's spread: WIDEN_SLOPE * 0.2
    assert widen is not None
    assert all(widen[c] == pytest.approx(A.WIDEN_SLOPE * 0.2, rel=1e-3) for c in lips)
    assert widen[0] == 0.0 and (np.delete(widen, lips) == 0).all()  # never the jaw, never outside the lips
    wide = A.articulation(ref, LEVELS, TEMPO, unit / 3).widen
    assert wide is not None and all(wide[c] == pytest.approx(A.MAX_WIDEN) for c in lips)
    narrow = A.articulation(ref, LEVELS, TEMPO, unit * 2).widen  # moves less than the corpus: left alone
    assert narrow is not None and (narrow == 0).all()
    zero = unit.copy()
    zero[1] = 0.0  # a channel that never moves in the corpus: no ratio to read
    still = A.articulation(ref, LEVELS, TEMPO, zero / 1.2).widen
    assert still is not None and still[1] == 0.0 and still[2] > 0
    with pytest.raises(ValueError):
        A.articulation(ref, LEVELS, TEMPO, unit[:10])


def test_stream_articulation_scales_smooths_and_glides_to_a_new_one() -> None:
    rng = np.random.default_rng(0)
    x = (0.3 + 0.1 * rng.random((200, 34))).astype(np.float32)
    gain, pole = np.ones(34, np.float32), np.zeros(34, np.float32)
    gain[0], gain[8] = 1.4, 0.8
    pole[1] = 0.5
    am = A.AmplitudeMatch(34, None, A.Articulation(gain, pole))
    out = np.concatenate([am(x[i:i + 2]) for i in range(0, 100, 2)])
    np.testing.assert_allclose(out[:, 0], 1.4 * x[:100, 0], rtol=1e-5)  # taken at once before the first chunk
    np.testing.assert_allclose(out[:, 8], 0.8 * x[:100, 8], rtol=1e-5)
    want = [x[0, 1]]
    for v in x[1:100, 1]:
        want.append(0.5 * v + 0.5 * want[-1])  # causal one-pole, across chunk seams
    np.testing.assert_allclose(out[:, 1], want, rtol=1e-5)
    np.testing.assert_array_equal(out[:, 14:], x[:100, 14:])  # no spread target: the rest passes through
    am.set_target(None, None)  # the reference taken away: back to gain 1, no smoothing, gliding
    out2 = np.concatenate([am(x[i:i + 2]) for i in range(100, 200, 2)])
    ratio = out2[:, 0] / x[100:, 0]
    assert 1.0 < ratio[0] < 1.4 and abs(ratio[-1] - 1.0) < 1e-3 and (np.diff(ratio) <= 1e-6).all()
    with pytest.raises(ValueError):
        am.set_target(None, A.Articulation(np.zeros(34), np.zeros(34)))
    with pytest.raises(ValueError):
        am.set_target(None, A.Articulation(np.ones(34), np.ones(34)))
    with pytest.raises(ValueError):
        am.set_target(None, A.Articulation(np.ones(34), np.zeros(34), -np.ones(34)))


def test_stream_boost_lifts_fast_motion_causally_across_chunks() -> None:
    rng = np.random.default_rng(2)
    x = (0.3 + 0.1 * rng.random((120, 34))).astype(np.float32)
    boost = np.zeros(34, np.float32)
    boost[9] = 0.5
    am = A.AmplitudeMatch(34, None, A.Articulation(np.ones(34, np.float32), np.zeros(34, np.float32), boost))
    out = np.concatenate([am(x[i:i + 2]) for i in range(0, 120, 2)])
    low, want = float(x[0, 9]), []
    for v in x[:, 9].astype(np.float64):
        low = A.BOOST_POLE * low + (1 - A.BOOST_POLE) * v
        want.append(v + 0.5 * (v - low))  # unsharp mask: the signal plus half its fast part
    np.testing.assert_allclose(out[:, 9], want, rtol=1e-5)
    assert out[:, 9].std() > 1.1 * x[:, 9].std()  # livelier
    np.testing.assert_array_equal(out[:, 8], x[:, 8])  # other channels untouched
    np.testing.assert_array_equal(A.AmplitudeMatch(34)(x), x)  # nothing given: identity


def test_stream_widens_the_slower_motion_causally_across_chunks() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(300)
    x = (0.3 + 0.05 * rng.standard_normal((300, 34)) + 0.1 * np.sin(2 * np.pi * t / 20)[:, None]).astype(np.float32)
    widen = np.zeros(34, np.float32)
    widen[10] = 1.0
    am = A.AmplitudeMatch(34, None, A.Articulation(np.ones(34, np.float32), np.zeros(34, np.float32), None, widen))
    out = np.concatenate([am(x[i:i + 3]) for i in range(0, 300, 3)])
    band = level = float(x[0, 10])
    want = []
    for v in x[:, 10].astype(np.float64):  # the band between a ~0.2 s low-pass and the ~1 s running mean
        band = A.WIDEN_POLE * band + (1 - A.WIDEN_POLE) * v
        level = A.MEAN_POLE * level + (1 - A.MEAN_POLE) * v
        want.append(v + (band - level))
    np.testing.assert_allclose(out[:, 10], want, rtol=1e-5)
    slow = np.sin(2 * np.pi * t / 20)
    gain = np.dot(out[50:, 10] - out[50:, 10].mean(), slow[50:]) / np.dot(x[50:, 10] - x[50:, 10].mean(), slow[50:])
    assert gain > 1.3  # the 0.8 s sway grows
    speed = np.abs(np.diff(out[:, 10])).mean() / np.abs(np.diff(x[:, 10])).mean()
    assert speed < 1.15  # the frame-to-frame jitter hardly does
    np.testing.assert_array_equal(out[:, 11], x[:, 11])  # other channels untouched
    am.reset()  # a new utterance: band and level start again from its first frame
    np.testing.assert_allclose(am(x[:30])[:, 10], want[:30], rtol=1e-5)
    with pytest.raises(ValueError):
        am.set_target(None, A.Articulation(np.ones(34), np.zeros(34), None, -np.ones(34)))


def test_a_reference_after_none_starts_its_filters_afresh() -> None:
    one = np.ones(34, np.float32)
    pole, widen = np.zeros(34, np.float32), np.zeros(34, np.float32)
    pole[1], widen[2] = 0.5, 1.0
    am = A.AmplitudeMatch(34, None, A.Articulation(one, pole, None, widen))
    am(np.full((50, 34), 0.3, np.float32))
    am.set_target(None, None)  # the reference taken away: glides back to identity
    am(np.full((200, 34), 0.3, np.float32))
    low = np.full((100, 34), 0.8, np.float32)  # the mouth moved while no reference was set
    np.testing.assert_array_equal(am(low), low)
    am.set_target(None, A.Articulation(one, pole, None, widen))  # a new reference: nothing carried from 0.3
    np.testing.assert_allclose(am(low[:10]), low[:10], rtol=1e-6)


def test_fitted_clips_are_mapped_from_the_tracker_population_onto_the_corpus() -> None:
    rng = np.random.default_rng(1)
    scale = _scale(fitted_mean=0.5, fitted_std=0.25)
    scale.corpus_std[25] = 0.0  # a channel that never moves in the corpus
    fitted = (0.5 + 0.25 * rng.standard_normal((4000, 34))).astype(np.float32)
    out = to_model_scale(fitted, scale)
    expr = slice(0, 25)
    assert np.abs(out[:, expr].mean(0) - 0.2).max() < 0.01 and np.abs(out[:, expr].std(0) - 0.1).max() < 0.01
    assert np.allclose(out[:, 25], 0.2)  # no scale to carry its motion: held at the corpus's mean
    assert out[:, :28].min() >= 0.0 and out[:, :28].max() <= 1.0
    lively = fitted.copy()
    lively[:, 0] = 0.5 + 0.5 * (fitted[:, 0] - 0.5)  # a speaker who moves half as much as the typical fit
    assert to_model_scale(lively, scale)[:, 0].std() == pytest.approx(0.05, rel=0.05)


def test_reference_scale_file_round_trips_and_a_bad_one_is_ignored(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    s = _scale()
    (tmp_path / REFERENCE_SCALE_FILE).write_text(s.to_json(fitted_clips=3))
    back = load_reference_scale(tmp_path)
    assert back is not None and np.allclose(back.fitted_mean, s.fitted_mean)
    assert json.loads((tmp_path / REFERENCE_SCALE_FILE).read_text())["fitted_clips"] == 3
    assert load_reference_scale(tmp_path / "none") is None
    (tmp_path / REFERENCE_SCALE_FILE).write_text(json.dumps({"levels": [1.0, float("nan")]}))
    with caplog.at_level(logging.WARNING):
        assert load_reference_scale(tmp_path) is None
    assert "ignoring" in caplog.text
    old = json.loads(s.to_json())  # a file from before session 13 has no corpus spread: read, widening nothing
    assert "spread" not in old
    (tmp_path / REFERENCE_SCALE_FILE).write_text(json.dumps(old))
    back = load_reference_scale(tmp_path)
    assert back is not None and back.spread is None
    wide = ReferenceScale(*(getattr(s, k) for k in ReferenceScale.FIELDS), spread=np.full(34, 0.05, np.float32))
    (tmp_path / REFERENCE_SCALE_FILE).write_text(wide.to_json())
    back = load_reference_scale(tmp_path)
    assert back is not None and back.spread is not None and np.allclose(back.spread, 0.05)


def test_read_style_reference_maps_tracker_fits_only(tmp_path: Path) -> None:
    from engine.motion.style_e import read_style_reference

    rng = np.random.default_rng(2)
    coeffs = (0.5 + 0.25 * rng.standard_normal((60, 34))).astype(np.float32)
    valid = np.ones(60, bool)
    valid[:10] = False
    np.savez(tmp_path / "fit.npz", coeffs=coeffs, valid=valid)  # an `s2t data fit` output
    np.savez(tmp_path / "plain.npz", coeffs=coeffs)  # coefficients on the model's scale
    np.save(tmp_path / "plain.npy", coeffs)
    scale = _scale()
    got = read_style_reference(tmp_path / "fit.npz", scale=scale)
    np.testing.assert_allclose(got, to_model_scale(coeffs[10:], scale), atol=1e-6)  # untracked frames dropped
    np.testing.assert_array_equal(read_style_reference(tmp_path / "plain.npz", scale=scale), coeffs)
    np.testing.assert_array_equal(read_style_reference(tmp_path / "plain.npy", scale=scale), coeffs)
    shipped = read_style_reference(tmp_path / "fit.npz")  # the default weights' reference_scale.json
    assert not np.allclose(shipped, coeffs[10:])


def test_shipped_weights_read_a_reference_with_its_articulation_gain() -> None:
    from engine.motion.style_e import StyleRef, load_model
    from engine.motion.stream import StreamConfig

    model = load_model()
    assert model.scale is not None, "the shipped weights need reference_scale.json"
    rng = np.random.default_rng(4)
    ref = model.scale.levels * (1 + 0.5 * rng.standard_normal((400, 34))).astype(np.float32)  # brisk: no smoothing
    ref[:, 0] *= 1.3 * model.scale.levels[0] / ref[:, 0].mean()  # a clip that opens the jaw 1.3x the corpus's
    style = model.style(ref)
    art = style.articulation
    assert art is not None and art.gain[0] == pytest.approx(1.3, rel=1e-3) and (art.pole == 0).all()
    audio = (0.1 * np.sin(np.arange(16000 * 2) * 2 * np.pi * 220 / 16000)).astype(np.float32).reshape(-1, 640)
    cfg = StreamConfig(chunk=2, seed=3, phone_weight=0.0)

    def run(s: StyleRef) -> np.ndarray:
        stream = model.stream(cfg, "calm", s)
        return np.concatenate([stream.step(audio[i:i + 2]) for i in range(0, len(audio), 2)])

    a, b = run(style), run(StyleRef(style.code, style.spread, None))
    open_ = b[:, 0] < 0.7  # where the wider jaw is not clipped at 1
    np.testing.assert_allclose(a[open_, 0], 1.3 * b[open_, 0], rtol=1e-3, atol=1e-5)
    np.testing.assert_array_equal(a[:, 4:8], b[:, 4:8])  # smile and frown: emotion's, untouched


def test_recipe_step_measures_both_scales(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clients.cli import build_parser
    from clients.train import style_e_config
    from engine.errors import InputError
    from engine.motion import train as T

    rng = np.random.default_rng(3)
    synth = [T.Utt(np.zeros((60, 320), np.float16), (0.3 + 0.1 * rng.random((60, 34))).astype(np.float32),
                   np.eye(8, dtype=np.float32)[0], 0, 0, -1, "train", "v", None) for _ in range(4)]
    corpus = T.Corpus(synth, [], np.zeros((1, 384), np.float32), np.zeros(1, np.int64), np.zeros(1, bool),
                      np.zeros(1, np.int64))
    monkeypatch.setattr(T, "load_corpus", lambda *a, **k: corpus)
    real = tmp_path / "real"
    real.mkdir()
    with pytest.raises(InputError, match="s2t data fit"):
        T.fit_reference_scale("corpus", real, 1)
    valid = np.ones(30, bool)
    valid[0] = False
    fit = np.full((30, 34), 0.7, np.float32)
    fit[0] = 100.0  # an untracked frame: left out
    np.savez(real / "a.npz", coeffs=fit, valid=valid)
    path = T.write_reference_scale(tmp_path, "corpus", real, 1)
    s = load_reference_scale(tmp_path)
    assert path.name == REFERENCE_SCALE_FILE and s is not None
    assert np.allclose(s.fitted_mean, 0.7) and np.allclose(s.fitted_std, 0.0)
    frames = np.concatenate([u.coeffs for u in synth])
    assert np.allclose(s.corpus_mean, frames.mean(0), atol=1e-6) and np.allclose(s.levels, frames.mean(0), atol=1e-6)
    assert np.allclose(s.tempo, np.mean([A.mouth_tempo(u.coeffs) for u in synth], 0), atol=1e-6)
    assert s.spread is not None
    assert np.allclose(s.spread, np.mean([A.reference_spread(u.coeffs) for u in synth], 0), atol=1e-6)
    p = build_parser()
    args = p.parse_args(["train", "style-e", "--reference-scale-only"])
    assert args.reference_scale_only
    with pytest.raises(InputError, match="give one"):
        style_e_config(p.parse_args(["train", "style-e", "--reference-scale-only", "--audio-only"]))
