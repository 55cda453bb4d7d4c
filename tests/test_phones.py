"""Streaming phone recognition (engine.audio.phones) and its share of Style-E's jaw (StreamConfig.phone_weight)."""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pytest

from engine.errors import InputError, NotAvailableError

pytest.importorskip("pocketsphinx", reason="pocketsphinx not installed (pip install pocketsphinx)")

from engine.audio.phones import JAW_BIAS, PhoneTracker  # noqa: E402

SPF = 640  # samples per 25 fps frame at 16 kHz


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    from engine.assets import asset_path
    from engine.audio.ingest import decode_audio

    return decode_audio(asset_path("demo_speech.wav"))


def streamed_jaw(tr: PhoneTracker, audio: np.ndarray, look: int = 2, k: int = 2) -> np.ndarray:
    """Frame f's jaw as known once frame f + look has arrived (the runtime's timing)."""
    n = len(audio) // SPF
    x = np.pad(audio[: n * SPF], (0, (look + k) * SPF))
    out = []
    for f in range(0, n + look, k):
        tr.push(x[f * SPF : (f + k) * SPF])
        out.append(tr.jaw(f + k - k - look, k))
    return np.concatenate(out)[look : look + n]


def test_tracker_hears_speech_and_rests_in_silence(speech: np.ndarray) -> None:
    tr = PhoneTracker()
    audio = np.concatenate([np.zeros(16000, np.float32), speech])
    jaw = streamed_jaw(tr, audio)
    phones = [w for w, _, _ in tr.segments() if w != "SIL"]
    assert len(phones) > 20 and len(set(phones)) > 10  # a real phone sequence, not one label
    quiet, talk = jaw[3:20], jaw[30:]
    assert abs(float(quiet.mean()) - JAW_BIAS) < 0.05 and quiet.std() < 0.02
    assert talk.std() > 0.08 and talk.mean() > quiet.mean() + 0.1
    starts = [b for _, b, _ in tr.segments()]
    assert starts == sorted(starts) and max(e for _, _, e in tr.segments()) <= tr.seconds + 0.05


def test_streamed_jaw_agrees_with_the_whole_utterance_decoded(speech: np.ndarray) -> None:
    """Two frames of lookahead lose little against decoding with the whole future known."""
    tr = PhoneTracker()
    live = streamed_jaw(tr, speech)
    whole = PhoneTracker()
    whole.push(speech)
    offline = whole.jaw(0, len(live))
    assert np.corrcoef(live, offline)[0, 1] > 0.7


def test_long_stream_restarts_its_pass_and_keeps_memory_bounded(speech: np.ndarray, monkeypatch) -> None:  # noqa: ANN001
    import engine.audio.phones as ph

    monkeypatch.setattr(ph, "RESTART_S", 2.0)
    monkeypatch.setattr(ph, "MAX_UTT_S", 5.0)
    tr = PhoneTracker()
    pause = np.zeros(8000, np.float32)
    audio = np.concatenate([speech, pause] * 6)
    jaw = streamed_jaw(tr, audio)
    assert np.isfinite(jaw).all() and len(jaw) == len(audio) // SPF
    segs = tr.segments()
    assert segs[0][1] > tr.seconds - ph.WINDOW_S - 1.0 - ph.MAX_UTT_S  # old passes dropped
    assert all(b1 <= b2 + 1e-9 for (_, b1, _), (_, b2, _) in zip(segs, segs[1:]))
    # the last repetition moves the jaw as the first did: nothing lost across passes
    n = len(speech) // SPF
    first, last = jaw[5:n], jaw[len(jaw) - n + 5 - len(pause) // SPF : len(jaw) - len(pause) // SPF]
    assert last.std() > 0.5 * first.std()


def test_bad_samples_are_heard_as_silence(caplog: pytest.LogCaptureFixture) -> None:
    tr = PhoneTracker()
    x = np.zeros(4 * SPF, np.float32)
    x[100:200] = np.nan
    x[300] = np.inf
    with caplog.at_level(logging.WARNING, logger="engine.audio.phones"):
        tr.push(x)
    assert "read as silence" in caplog.text
    assert np.isfinite(tr.jaw(0, 4)).all()
    tr.push(np.zeros(0, np.float32))  # nothing to hear: no error


@pytest.fixture(scope="module")
def model():  # noqa: ANN201
    from engine.motion.style_e import load_model

    return load_model()


def run_stream(model, speech: np.ndarray, **kw) -> np.ndarray:  # noqa: ANN001, ANN003
    from engine.motion.stream import StreamConfig

    s = model.stream(StreamConfig(chunk=2, steps=2, **kw), "neutral")
    frames = speech[: len(speech) // SPF * SPF].reshape(-1, SPF)
    return np.concatenate([s.step(frames[i : i + 2]) for i in range(0, len(frames) - 1, 2)])


def test_phone_weight_moves_only_the_mouth(model, speech: np.ndarray) -> None:  # noqa: ANN001
    from engine.audio.phones import LIP_GAIN
    from engine.motion.amplitude import RunningDeviation, running_deviation
    from engine.motion.stream import StreamConfig

    off = run_stream(model, speech, phone_weight=0.0)
    on = run_stream(model, speech, phone_weight=0.2)
    full = run_stream(model, speech, phone_weight=1.0)
    np.testing.assert_array_equal(on[:, 14:], off[:, 14:])  # brows, eyes, head: the denoiser's, untouched
    frowns = np.flatnonzero(LIP_GAIN[1:] == 0) + 1
    np.testing.assert_array_equal(on[:, frowns], off[:, frowns])  # phones say nothing about frowns
    lips = [c for c in range(1, 14) if c not in frowns]
    assert not np.allclose(on[:, 0], off[:, 0]) and not np.allclose(on[:, lips], off[:, lips])
    # the lips take the phones' motion, not their level: levels stay within a few hundredths
    assert np.abs(on[:, lips].mean(0) - off[:, lips].mean(0)).max() < 0.03
    # the streamed running deviation is the offline one, chunk by chunk
    x = np.random.default_rng(0).random((50, 3))
    rd = RunningDeviation()
    np.testing.assert_allclose(np.concatenate([rd(x[i:i + 3]) for i in range(0, 50, 3)]), running_deviation(x))
    # weight 1 is the phones' jaw itself (the encoder's jaw cancelled; the decoder's constant residual stays)
    look = model.graphs.lookahead
    phones = streamed_jaw(PhoneTracker(), speech, look)[: len(full) - look]
    assert np.corrcoef(full[look:, 0], phones)[0, 1] > 0.98
    # a weight between is a blend: the jaw lies between the two ends frame by frame
    lo, hi = np.minimum(off[:, 0], full[:, 0]), np.maximum(off[:, 0], full[:, 0])
    assert ((on[:, 0] >= lo - 1e-5) & (on[:, 0] <= hi + 1e-5)).all()
    assert model.stream(StreamConfig(phone_weight=0.0)).phones is None
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(InputError, match="phone weight"):
            StreamConfig(phone_weight=bad)


def test_stream_without_pocketsphinx_uses_the_encoder_alone(model, speech: np.ndarray, monkeypatch,  # noqa: ANN001
                                                            caplog: pytest.LogCaptureFixture) -> None:
    import engine.motion.stream as st

    def missing() -> None:
        raise NotAvailableError("phone recognition needs pocketsphinx (test)")

    monkeypatch.setattr(st, "PhoneTracker", missing)
    with caplog.at_level(logging.WARNING, logger="engine.motion.stream"):
        out = run_stream(model, speech, phone_weight=0.2)
    assert "without phone recognition" in caplog.text
    np.testing.assert_array_equal(out, run_stream(model, speech, phone_weight=0.0))


def test_phone_weight_flags(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from clients.stream import add_live_arguments, engine_config

    p = argparse.ArgumentParser()
    add_live_arguments(p)
    assert engine_config(p.parse_args([])).motion.phone_weight == pytest.approx(0.2)
    assert engine_config(p.parse_args(["--phone-weight", "0.8"])).motion.phone_weight == pytest.approx(0.8)
    with pytest.raises(InputError, match="--phone-weight"):
        engine_config(p.parse_args(["--phone-weight", "2"]))
    from clients.cli import main
    from engine.assets import asset_path

    argv = ["render", "--audio", str(asset_path("demo_speech.wav")), "--motion", "baseline", "--phone-weight", "0.5"]
    assert main([*argv, "-q", "-o", str(tmp_path / "o.mp4")]) != 0
    assert "--phone-weight needs --motion style-e" in capsys.readouterr().err
