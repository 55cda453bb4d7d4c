"""Style-E with the shipped weights: sampler numerics, ONNX parity, streaming seams and blending, bad input, stage."""

from __future__ import annotations

import logging
import numpy as np
import pytest

from engine.errors import InputError
from engine.motion.sampler import alpha_sigma, ddim_step, make_schedule, sample, x0_for_target

from engine.motion.style_e import default_weights_dir

WEIGHTS = default_weights_dir()  # the shipped weights ($S2T_STYLE_E_WEIGHTS overrides)


@pytest.fixture(scope="module")
def model():  # noqa: ANN201
    from engine.motion.style_e import load_model

    return load_model(WEIGHTS)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    from engine.assets import asset_path
    from engine.audio.ingest import decode_audio

    return decode_audio(asset_path("demo_speech.wav"))


def test_schedule_reference_values() -> None:
    s = make_schedule(4)
    np.testing.assert_allclose(s.times, [1.0, 0.75, 0.5, 0.25, 0.0])
    np.testing.assert_allclose(s.alphas[[0, -1]], [0.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(s.alphas**2 + s.sigmas**2, 1.0, atol=1e-12)
    a, _ = alpha_sigma(0.5)
    assert abs(float(a) - 0.7071) < 0.01  # cosine schedule: half-way is about equal signal and noise
    assert not s.times.flags.writeable


def test_ddim_exact_x0_lands_on_data_and_target_inverts() -> None:
    rng = np.random.default_rng(0)
    x0, noise = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    s = make_schedule(8)
    out = sample(lambda x, t: x0, noise, s)  # an oracle denoiser reproduces the data exactly
    np.testing.assert_allclose(out, x0, atol=1e-9)
    x_t = s.alphas[2] * x0 + s.sigmas[2] * noise
    target = ddim_step(ddim_step(x_t, x0 * 0.9, s.alphas[2], s.sigmas[2], s.alphas[3], s.sigmas[3]), x0 * 0.8,
                       s.alphas[3], s.sigmas[3], s.alphas[4], s.sigmas[4])
    x0t = x0_for_target(x_t, target, s.alphas[2], s.sigmas[2], s.alphas[4], s.sigmas[4])
    np.testing.assert_allclose(ddim_step(x_t, x0t, s.alphas[2], s.sigmas[2], s.alphas[4], s.sigmas[4]), target,
                               atol=1e-9)


def test_onnx_parity_with_torch() -> None:
    from exporters.onnx_style_e import parity

    diffs = parity(WEIGHTS / "style_e.npz")
    assert set(diffs) >= {"audio_encoder", "style_encoder", "decoder", "denoiser_teacher", "denoiser_student2"}
    assert max(diffs.values()) < 1e-4, diffs


def test_denoiser_graph_gives_back_its_torch_weights(tmp_path) -> None:  # noqa: ANN001
    """The shipped npz keeps no denoiser: the exporter names every graph initializer after its torch key (`:T`
    for the transposed MatMul weights), so the graph alone rebuilds the module exactly; a graph that differs from
    the npz is not allowed to replace it."""
    import json
    import shutil

    import torch

    from engine.motion.denoiser import Denoiser, DenoiserConfig
    from engine.motion.train import graph_arrays, load_state, state_arrays
    from exporters.onnx_style_e import DENOISER_AXES, _export, example_inputs, name_initializers, slim_weights

    torch.manual_seed(3)
    den = Denoiser(DenoiserConfig()).eval()  # untrained: its LayerNorms are equal, which the exporter stores once
    ex = example_inputs()
    with torch.no_grad():
        _export(den, tuple(ex.values()), tmp_path / "denoiser_teacher.onnx", list(ex), ["x0"], DENOISER_AXES)
    name_initializers(tmp_path / "denoiser_teacher.onnx", den)
    back = graph_arrays(tmp_path / "denoiser_teacher.onnx", "teacher")
    mine = state_arrays("teacher", den)
    assert set(back) == set(mine) and any(k.endswith("qkv.weight") for k in back)
    assert all(np.array_equal(back[k], mine[k]) for k in mine)
    with torch.no_grad():
        again = load_state(Denoiser(DenoiserConfig()), back, "teacher")
        assert torch.equal(again(**ex), den(**ex))
    # slim_weights drops the copy only when the graph matches it exactly
    shutil.copy(WEIGHTS / "style_e.json", tmp_path / "style_e.json")
    meta = json.loads((tmp_path / "style_e.json").read_text())
    (tmp_path / "style_e.json").write_text(json.dumps(meta | {"students": []}))
    wrong = mine | {"teacher.out.bias": mine["teacher.out.bias"] + 1.0}
    np.savez(tmp_path / "style_e.npz", **wrong, keep=np.zeros(2))
    with pytest.raises(RuntimeError, match="does not give back"):
        slim_weights(tmp_path / "style_e.npz")
    np.savez(tmp_path / "style_e.npz", **mine, keep=np.zeros(2))
    assert slim_weights(tmp_path / "style_e.npz") > 0
    with np.load(tmp_path / "style_e.npz") as z:
        assert z.files == ["keep"]


def test_denoiser_skip_passes_the_input_through_and_exports(tmp_path) -> None:  # noqa: ANN001
    """DenoiserConfig.skip: x0 = alpha(t) x + sigma(t) F. At t = 0 the output is the input itself; the in-graph
    schedule is the sampler's; the exported graph agrees with torch."""
    import onnxruntime as ort
    import torch

    from engine.motion.denoiser import Denoiser, DenoiserConfig, alpha_sigma_t
    from engine.motion.sampler import alpha_sigma
    from exporters.onnx_style_e import DENOISER_AXES, _export, example_inputs

    t = np.linspace(0, 1, 11)
    a, s = alpha_sigma_t(torch.from_numpy(t))
    np.testing.assert_allclose(np.stack([a.numpy(), s.numpy()]), np.stack(alpha_sigma(t)), atol=1e-6)
    torch.manual_seed(4)
    den = Denoiser(DenoiserConfig(skip=True)).eval()
    ex = example_inputs()
    with torch.no_grad():
        at0 = den(**(ex | {"t": torch.zeros_like(ex["t"])}))
        np.testing.assert_allclose(at0.numpy(), ex["x"].numpy(), atol=1e-6)
        assert not torch.allclose(den(**ex), ex["x"])  # at t > 0 the network adds its part
        _export(den, tuple(ex.values()), tmp_path / "d.onnx", list(ex), ["x0"], DENOISER_AXES)
        want = den(**ex).numpy()
    got = ort.InferenceSession(str(tmp_path / "d.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {k: v.numpy() for k, v in ex.items()})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_generate_shape_range_and_mouth_follows_speech(model, speech: np.ndarray) -> None:  # noqa: ANN001
    from engine.motion.stream import StreamConfig
    from engine.motion.style_e import StyleEMotion

    audio = np.concatenate([np.zeros(16000, np.float32), speech])
    out = StyleEMotion(model, StreamConfig(chunk=8, steps=2), "neutral", None, 25.0).generate(audio)
    assert out.shape == (int(np.ceil(len(audio) / 640)), 34) and out.dtype == np.float32
    assert np.isfinite(out).all() and out[:, :28].min() >= 0.0 and out[:, :28].max() <= 1.0
    jaw = out[:, 0]
    assert jaw[35:].std() > 2.0 * jaw[3:22].std()  # the jaw moves with the syllables, far less in the silent second
    assert jaw[35:].std() > 0.06
    # the generated mouth follows the audio encoder's mouth (the audio conditioning), not the noise
    from engine.audio.features import mel_for_video
    from engine.motion.audio_encoder import pad_mel

    look = model.graphs.lookahead
    cond = model.graphs.audio.run({"mel": pad_mel(mel_for_video(audio), 16 - look, look)[None]})[0][0]
    assert np.corrcoef(cond[: len(out), 0], jaw)[0, 1] > 0.5
    again = StyleEMotion(model, StreamConfig(chunk=8, steps=2), "neutral", None, 25.0).generate(audio)
    np.testing.assert_array_equal(out, again)  # seeded: reproducible
    at30 = StyleEMotion(model, StreamConfig(chunk=8, steps=2), "neutral", None, 30.0).generate(audio)
    assert len(at30) == int(np.ceil(len(audio) / 16000 * 30))


def test_stream_seams_no_worse_than_inside(model, speech: np.ndarray) -> None:  # noqa: ANN001
    from engine.motion.stream import StreamConfig

    frames = np.tile(speech, 3)[: len(speech) * 3 // 640 * 640].reshape(-1, 640)
    s = model.stream(StreamConfig(chunk=2, steps=2))
    c = np.concatenate([s.step(frames[i : i + 2]) for i in range(0, len(frames) - 1, 2)])
    v = np.linalg.norm(np.diff(c, axis=0) / model.coef_std, axis=1)
    seam = np.arange(len(v)) % 2 == 1
    assert np.percentile(v[seam], 99) <= 1.5 * np.percentile(v[~seam], 99)


def test_emotion_change_blends_in(model, speech: np.ndarray) -> None:  # noqa: ANN001
    from engine.motion.stream import StreamConfig

    frames = speech[: len(speech) // 640 * 640].reshape(-1, 640)[:80]
    s = model.stream(StreamConfig(chunk=2, steps=2), "neutral")
    out = [s.step(frames[i : i + 2]) for i in range(0, 40, 2)]
    s.set_emotion(model.emotion_code("extremely happy and joyful"))
    out += [s.step(frames[i : i + 2]) for i in range(40, 80, 2)]
    c = np.concatenate(out)
    smile = c[:, 4:6].mean(1)  # mouthSmileLeft/Right
    assert smile[-10:].mean() > smile[30:40].mean() + 0.05  # the new emotion arrives ...
    steps = np.abs(np.diff(smile[38:60]))
    assert steps.max() < 0.6 * (smile[-10:].mean() - smile[30:40].mean())  # ... over several frames, not one jump


def test_text_encoder_training_vocabulary(model) -> None:  # noqa: ANN001
    from engine.data.emotions import EMOTIONS

    for prompt, want in (("very happy", "happy"), ("I feel extremely angry", "angry"), ("sad and gloomy", "sad"),
                         ("neutral calm speech", "neutral")):
        code = model.emotion_code(prompt)
        assert code.shape == (8,) and abs(code.sum() - 1) < 1e-4
        top = int(np.argmax(code[1:]) + 1) if code[1:].max() > 0.1 else 0
        assert EMOTIONS[top] == want, (prompt, code.round(2))


def test_bad_prompts_and_style_clips(model, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match="too long"):
        model.emotion_code("happy " * 1700)
    np.testing.assert_array_equal(model.emotion_code("   "), np.eye(8, dtype=np.float32)[0])
    with caplog.at_level(logging.WARNING):
        code = model.emotion_code("очень радостный и немного удивлённый")
    assert "does not look English" in caplog.text and code.shape == (8,)
    with pytest.raises(InputError, match="at least"):
        model.style_code(np.zeros((1, 34), np.float32))
    with pytest.raises(InputError, match=r"\(T, 34\)"):
        model.style_code(np.zeros((50, 30), np.float32))
    with pytest.raises(InputError, match="NaN"):
        model.style_code(np.full((50, 34), np.nan, np.float32))
    assert model.style_code(np.random.default_rng(0).random((40, 34), np.float32)).shape == (32,)


def test_stage_protocol(model, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    from engine.config import EngineConfig
    from engine.runtime.budget import QualityLevel
    from engine.runtime.stages import MotionStage
    from engine.motion.style_e import load_stage

    stage = load_stage(EngineConfig())
    assert isinstance(stage, MotionStage)
    stage.set_emotion("slightly sad")
    with caplog.at_level("INFO", logger="engine.motion.style_e"):
        stage.set_style_reference(np.random.default_rng(1).random((60, 34), np.float32) * 0.3)
    said = [r.getMessage() for r in caplog.records if "style reference of 60 frames" in r.getMessage()]
    assert len(said) == 1 and "nearest training styles" in said[0] and "jaw x" in said[0] and "wider on" in said[0]
    out = stage.step_chunk(np.zeros((2, 640), np.float32), np.zeros(2, bool))
    assert out.shape == (2, 34)
    stage.set_quality(QualityLevel("fast", steps=1))
    assert stage._stream.cfg.steps == 1
    with pytest.raises(InputError):
        stage.step_chunk(np.zeros((2, 100), np.float32), np.zeros(2, bool))
    stage.reset()


def test_train_subcommands_registered() -> None:
    import argparse

    from clients.train import register

    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="command"))
    a = p.parse_args(["train", "style-e", "--lookahead", "8", "--audio-only", "--minutes", "3"])
    assert a.lookahead == 8 and a.audio_only and a.minutes == 3.0 and callable(a.func)
    assert callable(p.parse_args(["train", "style-a"]).func)  # the colleague's recipe still parses


def test_stage_reads_prompts_off_the_chunk_loop(model) -> None:  # noqa: ANN001
    """A bad prompt is refused at once; a good one is read on a helper thread and glided to from the next chunk."""
    from engine.config import EngineConfig
    from engine.motion.style_e import load_stage

    stage = load_stage(EngineConfig())
    with pytest.raises(InputError):
        stage.set_emotion("x" * 5000)
    stage.set_emotion("extremely happy and joyful")
    stage._apply_emotion(wait=True)
    assert np.allclose(stage._stream._emotion_target, model.emotion_code("extremely happy and joyful"))
    stage.set_emotion("very sad")
    stage.step_chunk(np.zeros((2, 640), np.float32), np.zeros(2, bool))  # applies it if read, never blocks
    stage._apply_emotion(wait=True)
    assert np.allclose(stage._stream._emotion_target, model.emotion_code("very sad"))


def test_style_reference_amplitude_leaves_the_mouth_its_timing(model) -> None:  # noqa: ANN001
    """A style reference given with its motion spread makes the non-mouth channels move more (toward the clip's
    spread); the mouth channels are only multiplied and smoothed as the reference's articulation says
    (bit-identical where it does nothing); a bare code does no matching."""
    from engine.motion.amplitude import FIRST_CHANNEL
    from engine.motion.stream import StreamConfig

    rng = np.random.default_rng(2)
    t = np.arange(200)[:, None]
    ref = (0.3 + 0.25 * np.sin(t / rng.uniform(2, 6, 34)) + 0.05 * rng.standard_normal((200, 34))).astype(np.float32)
    style = model.style(ref)
    assert style.spread is not None and style.spread.shape == (34,)
    assert style.articulation is not None and style.articulation.gain.shape == (34,)
    audio = (0.1 * np.sin(np.arange(16000 * 4) * 2 * np.pi * 220 / 16000)).astype(np.float32).reshape(-1, 640)
    cfg = StreamConfig(chunk=2, seed=3)
    sa, sb = model.stream(cfg, "calm", style), model.stream(cfg, "calm", style.code)
    a = np.concatenate([sa.step(audio[i:i + 2]) for i in range(0, len(audio), 2)])
    b = np.concatenate([sb.step(audio[i:i + 2]) for i in range(0, len(audio), 2)])
    from engine.motion.amplitude import AmplitudeMatch

    mouth = AmplitudeMatch(34, None, style.articulation)  # the mouth: only the reference's articulation
    want = np.concatenate([mouth(b[i:i + 2]) for i in range(0, len(b), 2)])
    inside = ((b[:, :FIRST_CHANNEL] > 0) & (b[:, :FIRST_CHANNEL] < 1)).all(0)  # channels the final clip never cut
    assert inside.sum() >= 3
    np.testing.assert_allclose(a[:, :FIRST_CHANNEL][:, inside], np.clip(want[:, :FIRST_CHANNEL], 0, 1)[:, inside],
                               rtol=1e-4, atol=1e-5)
    g, q = style.articulation.gain[:FIRST_CHANNEL], style.articulation.pole[:FIRST_CHANNEL]
    same = (g == 1.0) & (q == 0.0)
    assert same.any()  # smile and frown at least
    np.testing.assert_array_equal(a[:, :FIRST_CHANNEL][:, same], b[:, :FIRST_CHANNEL][:, same])
    assert np.diff(a[:, FIRST_CHANNEL:], axis=0).std() > 1.2 * np.diff(b[:, FIRST_CHANNEL:], axis=0).std()
