"""Audio in: every format decodes, long files stream with bounded memory, VAD agrees with the envelope."""

from __future__ import annotations

import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest

from audio_util import FORMATS, tone, write_audio
from engine.audio.features import StreamingLogMel, log_mel, mel_for_video, n_video_frames, rms_envelope
from engine.audio.ingest import decode_audio, iter_frames, probe_audio, to_mono_16k
from engine.audio.vad import StreamingVad, smooth_flags, vad_flags
from engine.errors import AudioError


@pytest.mark.parametrize("ext", sorted(FORMATS))
@pytest.mark.parametrize("rate,channels", [(44100, 2), (16000, 1), (48000, 1)])
def test_every_format_decodes_to_16k_mono(tmp_path: Path, ext: str, rate: int, channels: int) -> None:
    src = tone(1.0, rate)
    path = write_audio(tmp_path / f"a{ext}", src, rate, channels)
    info = probe_audio(path)
    assert info.channels == channels
    y = decode_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) / 16000 - 1.0) < 0.06, len(y)
    # same tone: the decoded spectrum peaks at 440 Hz and the level is preserved (no +3 dB downmix)
    spec = np.abs(np.fft.rfft(y[:16000] * np.hanning(min(16000, len(y)))))
    assert abs(np.argmax(spec) * 16000 / (2 * (len(spec) - 1)) - 440) < 5
    assert 0.25 < np.abs(y).max() < 0.36


def test_ten_minute_file_streams_in_20ms_frames_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    seconds = 600
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        block = (tone(10.0) * 32767).astype("<i2").tobytes()
        for _ in range(seconds // 10):
            w.writeframes(block)
    tracemalloc.start()
    count = 0
    for frame in iter_frames(path, frame_ms=20):
        assert frame.shape == (320,)
        count += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == seconds * 50
    assert peak < 4 * 1024 * 1024, f"peak traced memory {peak / 1e6:.1f} MB for a {seconds} s file"


def test_vad_agrees_with_envelope_on_real_speech(speech_files: list[Path]) -> None:
    agreements = []
    for f in speech_files:
        x = decode_audio(f)
        v = vad_flags(x)
        n = len(v)
        db = 10 * np.log10((x[: n * 320].reshape(n, 320) ** 2).mean(1) + 1e-12)
        env = smooth_flags(db > np.percentile(db, 95) - 30, hangover=0, min_speech=3)
        agree = float((v == env).mean())
        assert agree > 0.7, f"{f.name}: VAD agrees with the energy envelope on only {agree:.2f} of frames"
        agreements.append(agree)
    assert np.mean(agreements) > 0.85


def test_vad_silence_and_streaming_match() -> None:
    assert not vad_flags(np.zeros(16000, np.float32)).any()
    sv = StreamingVad(hangover=0)
    x = np.zeros(3200, np.float32)
    assert [sv.push(x[i : i + 320]) for i in range(0, 3200, 320)] == [False] * 10


def test_logmel_streaming_equals_offline_and_video_alignment() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(16000 * 2) * 0.1).astype(np.float32)
    offline = log_mel(x)
    s = StreamingLogMel()
    stream = np.concatenate([s.push(x[i : i + 317]) for i in range(0, len(x), 317)] + [s.flush()])
    assert offline.shape == stream.shape == (201, 80)
    np.testing.assert_allclose(offline, stream, atol=1e-4)
    v = mel_for_video(x, fps=25)
    assert v.shape == (50, 4, 80)
    # at 25 fps the 4 sub-frames land on the 10 ms grid at +0.5 offsets: mean of neighbours
    np.testing.assert_allclose(v[3, 0], 0.5 * (offline[12] + offline[13]), atol=1e-5)
    assert n_video_frames(16000, 30) == 30 and n_video_frames(16001, 30) == 31
    env = rms_envelope(np.r_[np.zeros(640), np.ones(640)].astype(np.float32))
    np.testing.assert_allclose(env, [0.0, 1.0], atol=1e-6)


def test_to_mono_16k_resamples_in_memory_audio() -> None:
    x = np.stack([tone(1.0, 48000)] * 2, axis=1)
    y = to_mono_16k(x, 48000)
    assert y.shape == (16000,)
    with pytest.raises(AudioError):
        to_mono_16k(np.zeros((2, 2, 2)), 16000)


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("missing.wav", None, "not found"),
        ("empty.wav", b"", "empty"),
        ("corrupt.wav", b"RIFF\x00\x00garbage" * 50, "corrupt"),
        ("text.mp3", b"this is not audio at all\n" * 20, "corrupt"),
        ("noise.xyz", bytes(range(256)) * 10, "unknown audio format"),
    ],
)
def test_bad_audio_raises_clear_error(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=message):
        decode_audio(path)


def test_video_without_audio_is_refused(tmp_path: Path) -> None:
    import av

    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width = s.height = 64
        for i in range(5):
            f = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 40, np.uint8), format="rgb24")
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with pytest.raises(AudioError, match="no audio stream"):
        decode_audio(path)
