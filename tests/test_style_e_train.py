"""Style-E training pieces: time-warped encoder windows, real-clip jaw-lead alignment, mouth pass-through decoder."""

from __future__ import annotations

import numpy as np
import torch

from engine.motion.audio_encoder import N_MOUTH, AudioEncoder, AudioEncoderConfig
from engine.motion.audio_train import calibrate_jaw, train_audio_encoder, warped_segment
from engine.motion.train import Corpus, TrainConfig, Utt, align_reals, motion_target
from engine.motion.vae import LatentDecoder, MotionVAE


def _utt(mel: np.ndarray, coeffs: np.ndarray, voice: str, audio: np.ndarray | None = None, split: str = "train") -> Utt:
    return Utt(mel.astype(np.float16), coeffs.astype(np.float32), np.eye(8, dtype=np.float32)[0], 0, 0, -1, split,
               voice, audio)


def test_warped_segment_speed_one_is_a_slice_and_speed_two_skips() -> None:
    t, past, look, seg = 40, 3, 2, 10
    sub = np.arange(4 * (t + past + look) * 80, dtype=np.float32).reshape(-1, 80)
    target = np.arange(t, dtype=np.float32)[:, None]
    mel, y = warped_segment(sub, target, 5.0, 1.0, seg, past, look)
    np.testing.assert_array_equal(mel, sub[20 : 20 + 4 * (seg + past + look)].reshape(-1, 320))
    np.testing.assert_array_equal(y[:, 0], np.arange(5, 5 + seg))  # output frame i <-> padded frame 5 + past + i
    mel2, y2 = warped_segment(sub, target, 5.0, 2.0, seg, past, look)
    np.testing.assert_allclose(mel2[:, ::80][:, 0], sub[20::8][: seg + past + look, 0])
    np.testing.assert_allclose(y2[:, 0], 5 + 2 * (past + np.arange(seg)) - past, atol=1e-5)  # same warp as the mel


def test_align_reals_brings_every_clip_to_the_median_lead() -> None:
    rng = np.random.default_rng(0)
    clips = []
    for i, lead in enumerate((1, 3, 3, 6)):  # the jaw leads the loudness by `lead` frames
        env = np.convolve(rng.random(300), np.ones(5) / 5, "same")
        audio = (rng.standard_normal(300 * 640) * np.repeat(env, 640)).astype(np.float32)
        jaw = np.concatenate([env[lead:], np.repeat(env[-1:], lead)])
        clips.append(_utt(np.zeros((300, 320)), np.tile(jaw[:, None], (1, 34)), f"c{i}", audio))
    out, target = align_reals(clips)
    assert target == 3
    from engine.motion.train import av_offset

    assert [av_offset(u.audio, u.coeffs[:, 0]) for u in out] == [3, 3, 3, 3]  # type: ignore[arg-type]
    assert align_reals(clips, lead=0)[1] == 0


def test_the_tracked_mouth_opening_drives_alignment_and_the_jaw_target() -> None:
    from engine.motion.audio_train import _zjaw

    rng = np.random.default_rng(1)
    env = np.convolve(rng.random(300), np.ones(5) / 5, "same")
    audio = (rng.standard_normal(300 * 640) * np.repeat(env, 640)).astype(np.float32)
    mouth = np.concatenate([env[2:], np.repeat(env[-1:], 2)])  # leads the loudness by 2 frames
    u = _utt(np.zeros((300, 320)), np.zeros((300, 34)), "c0", audio)  # a constant fitted jaw
    assert _zjaw(u) is None
    u.mouth = mouth
    (out,), target = align_reals([u], lead=0)
    assert target == 0
    np.testing.assert_array_equal(out.mouth[2:], mouth[:-2])  # delayed by its lead, with the coefficients
    z = _zjaw(out)
    assert z is not None and z.shape == (300, 1) and abs(float(z.mean())) < 1e-5 and abs(float(z.std()) - 1) < 1e-4


def test_decoder_adds_the_encoder_mouth_to_the_residual() -> None:
    torch.manual_seed(0)
    dec = LatentDecoder(MotionVAE().eval(), torch.zeros(34), torch.ones(34))
    z, cond = torch.randn(1, 7, 16), torch.rand(1, 7, 15)
    with torch.no_grad():
        diff = (dec(z, cond) - dec(z, torch.zeros_like(cond))).numpy()[0]
    np.testing.assert_allclose(diff[:, :N_MOUTH], cond[0, :, :N_MOUTH].numpy(), atol=1e-6)
    assert np.abs(diff[:, N_MOUTH:]).max() == 0.0  # eyes, brows, pose come from the latent only
    with torch.no_grad():
        other = dec(torch.randn(1, 7, 16), cond).numpy()[0]
    np.testing.assert_allclose(other[:, 0], cond[0, :, 0].numpy(), atol=1e-6)  # jawOpen: the encoder's (+ mean 0)
    assert np.abs(other[:, 1:N_MOUTH] - dec(z, cond).detach().numpy()[0, :, 1:N_MOUTH]).max() > 1e-3  # residual
    coeffs = np.random.default_rng(1).random((7, 34)).astype(np.float32)
    res = motion_target(coeffs, cond[0].numpy())
    np.testing.assert_allclose(res[:, :N_MOUTH] + cond[0, :, :N_MOUTH].numpy(), coeffs[:, :N_MOUTH], atol=1e-6)


def test_encoder_recipe_runs_and_calibrates_the_jaw_to_the_synthetic_scale() -> None:
    rng = np.random.default_rng(0)
    real = [_utt(rng.standard_normal((90, 320)) - 8, rng.random((90, 34)), "r0", split="a")]
    synth = [_utt(rng.standard_normal((90, 320)) - 8, 0.2 + 0.05 * rng.random((90, 34)), f"s{i}") for i in range(3)]
    c = Corpus(synth, real, np.zeros((1, 384), np.float32), np.zeros(1, np.int64), np.zeros(1, bool),
               np.zeros(1, np.int64))
    enc = train_audio_encoder(c, TrainConfig(batch=4, real_share=0.5), lookahead=2, steps=3, seconds=60.0)
    assert enc.cfg.past == 14 and not enc.training
    from engine.motion.audio_train import encode_audio

    pred = np.concatenate([encode_audio(enc, u)[:, 0] for u in synth])
    gt = np.concatenate([u.coeffs[:, 0] for u in synth])
    assert abs(pred.mean() - gt.mean()) < 1e-3 and abs(pred.std() - gt.std()) < 1e-3  # moments matched
    plain = AudioEncoder(AudioEncoderConfig(lookahead=2))
    calibrate_jaw(plain, [])
    assert float(plain.mouth_scale[0]) == 1.0 and float(plain.mouth_bias[0]) == 0.0


def test_encoder_streaming_windows_equal_the_offline_output() -> None:
    torch.manual_seed(0)
    enc = AudioEncoder(AudioEncoderConfig(lookahead=2)).eval()
    mel = torch.randn(1, 60 + 16, 320) - 8
    with torch.no_grad():
        full = enc(mel)[0]
        chunks = torch.cat([enc(mel[:, i : i + 2 + 16])[0] for i in range(0, 60, 2)])
    torch.testing.assert_close(chunks, full, atol=1e-5, rtol=1e-5)  # no statistics pooled over the window


def test_linear_jaw_head_learns_a_held_out_speakers_mouth_and_streams_exactly() -> None:
    """The ridge jaw head: fitted on some speakers, it predicts another speaker's mouth when the mouth is a linear
    function of the mel; the strength comes from leave-one-speaker-out; chunks equal the offline output."""
    from engine.motion.audio_train import encode_audio, fit_linear_jaw

    rng = np.random.default_rng(0)
    taps = rng.standard_normal((3, 80))  # mouth(t) = sum over frames t-1, t, t+1 of taps . frame-mean mel

    def clip(speaker: str) -> tuple[Utt, np.ndarray]:
        mel = rng.standard_normal((600, 320)) - 8
        m = mel.reshape(600, 4, 80).mean(1)
        y = sum(np.pad(m, ((1, 1), (0, 0)))[k : k + 600] @ taps[k] for k in range(3))
        y = y + 0.3 * y.std() * rng.standard_normal(600)
        return _utt(mel, np.zeros((600, 34)), speaker, split=speaker), ((y - y.mean()) / y.std())[:, None]

    train = [clip(f"s{i}") for i in range(4)]
    enc = AudioEncoder(AudioEncoderConfig(lookahead=2)).eval()
    enc.mel_mean.fill_(-8.0)
    conv_jaw = encode_audio(enc, train[0][0])[:, 0]
    info = fit_linear_jaw(enc, train, grid=(1e1, 1e3, 1e6))
    assert info["speakers"] == 4 and info["ridge"] in (1e1, 1e3)  # 1e6 flattens the map: CV must not pick it
    u, z = clip("held")
    pred = encode_audio(enc, u)[:, 0]
    assert np.corrcoef(pred, z[:, 0])[0, 1] > 0.8  # noise caps it near 0.96; 1360 weights from 2400 frames
    assert np.corrcoef(encode_audio(enc, train[0][0])[:, 0], conv_jaw)[0, 1] < 0.5  # the head replaced the conv's jaw
    x = torch.from_numpy(np.pad(u.mel.astype(np.float32), ((14, 2), (0, 0)), constant_values=-11.5))[None]
    with torch.no_grad():
        chunks = torch.cat([enc(x[:, i : i + 2 + 16])[0] for i in range(0, 600, 2)])
        torch.testing.assert_close(chunks, enc(x)[0], atol=1e-5, rtol=1e-5)


def test_encoder_weights_saved_before_the_linear_jaw_load_with_it_off() -> None:
    from engine.motion.train import load_encoder, state_arrays

    enc = AudioEncoder(AudioEncoderConfig(lookahead=2))
    arrays = {k: v for k, v in state_arrays("audio", enc).items() if ".jaw_" not in k and "linear_jaw" not in k}
    old = load_encoder(arrays, "audio", 2)
    assert float(old.linear_jaw) == 0.0
    mel = torch.randn(1, 30, 320) - 8
    with torch.no_grad():
        torch.testing.assert_close(old(mel), load_state_like(enc, arrays)(mel))


def load_state_like(enc: AudioEncoder, arrays: dict[str, np.ndarray]) -> AudioEncoder:
    """`enc` with `arrays` loaded over its own state (the jaw head left as it is: off)."""
    enc.load_state_dict({k[len("audio."):]: torch.from_numpy(v) for k, v in arrays.items()}, strict=False)
    return enc.eval()


def test_denoiser_batches_drop_the_past_and_noise_it_as_configured() -> None:
    from engine.motion.train import Batcher

    rng = np.random.default_rng(0)
    synth = [_utt(rng.standard_normal((60, 320)), rng.random((60, 34)), f"s{i}") for i in range(3)]
    for u in synth:
        u.latent, u.cond, u.motion = rng.standard_normal((60, 16)), rng.random((60, 15)), u.coeffs
    c = Corpus(synth, [], np.zeros((1, 384), np.float32), np.zeros(1, np.int64), np.zeros(1, bool),
               np.zeros(1, np.int64))
    mean, std = np.zeros(34, np.float32), np.ones(34, np.float32)
    plain = Batcher(c, mean, std, 8, np.random.default_rng(1))(64, 4)
    assert torch.equal(plain["past"], plain["z"])  # default: the true past, 10 % of windows without it
    assert 0 < int((plain["past_mask"].sum((1, 2)) == 0).sum()) < 20
    noisy = Batcher(c, mean, std, 8, np.random.default_rng(1), no_past=1.0, past_noise=0.5)(64, 4)
    assert float(noisy["past_mask"].sum()) == 0.0
    d = (noisy["past"] - noisy["z"]).std((1, 2))
    assert 0 < float(d.min()) and float(d.max()) < 0.55  # per-window noise levels drawn in (0, 0.5)


def test_train_cli_flags_reach_the_recipe_config() -> None:
    """`s2t train style-e` flags land in the (frozen) TrainConfig; recipe defaults stay where none is given."""
    import pytest

    from clients.cli import build_parser
    from clients.train import style_e_config
    from engine.errors import InputError

    p = build_parser()
    cfg = style_e_config(p.parse_args(["train", "style-e", "--denoiser-only", "--no-past", "0.5", "--past-noise", "0",
                                       "--synth-velocity", "1", "--minutes", "3"]))
    assert (cfg.no_past, cfg.past_noise, cfg.synth_velocity, cfg.minutes) == (0.5, 0.0, 1.0, 3.0)
    assert cfg.real_share == TrainConfig().real_share and cfg.past == TrainConfig().past
    assert style_e_config(p.parse_args(["train", "style-e"])) == TrainConfig()
    with pytest.raises(InputError, match="give one"):
        style_e_config(p.parse_args(["train", "style-e", "--audio-only", "--denoiser-only"]))
    args = p.parse_args(["train", "style-e", "--students-only", "--distill-data", "0"])
    assert args.students_only and style_e_config(args).distill_data == 0.0 != TrainConfig().distill_data
    with pytest.raises(InputError, match="give one"):
        style_e_config(p.parse_args(["train", "style-e", "--students-only", "--denoiser-only"]))
