"""`s2t vcam`: frames into a recording pyvirtualcam backend (size, pacing, content); clear one-line
messages without a camera backend or an audio device."""

from __future__ import annotations

import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvirtualcam

from clients import cli
from clients.stream import LiveOptions
from clients.vcam import VcamOptions, run_vcam
from engine.config import EngineConfig
from test_webrtc_server import speech_bursts_wav


def _fourcc_rgb() -> int:
    from pyvirtualcam.util import encode_fourcc

    return int(encode_fourcc(pyvirtualcam.PixelFormat.RGB.value))


class RecordingCamera:
    """A pyvirtualcam backend (registered with pyvirtualcam.register_backend) that keeps what it is sent."""

    sent: list[tuple[float, np.ndarray]] = []
    opened: list[dict[str, Any]] = []

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw: Any) -> None:
        self.width, self.height = width, height
        RecordingCamera.opened.append({"width": width, "height": height, "fps": fps, "fourcc": fourcc})

    def close(self) -> None:
        pass

    def send(self, frame: np.ndarray) -> None:
        RecordingCamera.sent.append((time.monotonic(), frame.reshape(self.height, self.width, 3).copy()))

    def device(self) -> str:
        return "recorder"

    def native_fourcc(self) -> int:
        return _fourcc_rgb()


@pytest.fixture
def recorder() -> Any:
    RecordingCamera.sent, RecordingCamera.opened = [], []
    pyvirtualcam.register_backend("s2t-recorder", RecordingCamera)
    yield RecordingCamera
    pyvirtualcam.camera.BACKENDS.pop("s2t-recorder", None)


async def test_vcam_sends_paced_talking_frames(tmp_path: Path, recorder: Any) -> None:
    wav_in, _ = speech_bursts_wav(tmp_path / "speech.wav", gap_s=0.5)
    out_wav = tmp_path / "delayed.wav"
    r = await run_vcam(EngineConfig(), LiveOptions(audio=str(wav_in), duration_s=5.0),
                       VcamOptions(backend="s2t-recorder", audio_wav=str(out_wav)))
    assert recorder.opened == [{"width": 256, "height": 256, "fps": 25.0, "fourcc": _fourcc_rgb()}]
    sent = recorder.sent
    assert r["camera"]["frames"] == len(sent) and len(sent) >= 5.0 * 25 * 0.85, len(sent)
    assert sent[0][1].shape == (256, 256, 3) and sent[0][1].dtype == np.uint8
    dt = np.diff([t for t, _ in sent])
    assert abs(np.median(dt) - 0.04) < 0.005 and np.percentile(dt, 95) < 0.08, (np.median(dt), np.percentile(dt, 95))
    # content: the face is there and its mouth moves with the speech
    from engine.face.tracker import mouth_aperture_series

    ap = mouth_aperture_series([im for _, im in sent[::2]])
    ok = ap[np.isfinite(ap)]
    assert ok.size >= 0.9 * ap.size and np.percentile(ok, 95) - np.percentile(ok, 10) > 0.05
    # the delayed audio is there to route: as long as the video, with the speech in it
    with wave.open(str(out_wav)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert abs(pcm.size / 16000 - len(sent) / 25) < 0.1 and np.abs(pcm).max() > 3000


def test_vcam_without_camera_backend_says_how_to_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def no_camera(**kw: Any) -> Any:
        raise RuntimeError("device /dev/video0 does not exist")

    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", {"v4l2loopback": no_camera})
    wav_in, _ = speech_bursts_wav(tmp_path / "speech.wav")
    code = cli.main(["vcam", "--audio", str(wav_in)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert "no virtual camera available" in err[0] and "modprobe v4l2loopback" in err[0]


def test_vcam_without_audio_devices_says_so(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                            recorder: Any) -> None:
    import sounddevice as sd

    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: [])
    assert cli.main(["vcam", "--backend", "s2t-recorder"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no audio input device found" in err[0] and "--audio FILE" in err[0], err
    assert cli.main(["vcam", "--backend", "s2t-recorder", "--audio", "x.wav", "--audio-out", "speakers"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "audio file not found" in err[0]
    wav_in = str(Path(__file__).resolve().parents[1] / "engine/assets/demo_speech.wav")
    assert cli.main(["vcam", "--backend", "s2t-recorder", "--audio", wav_in, "--style-ref", "nobody.mp4"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "style reference not found: nobody.mp4" in err[0], err
    assert cli.main(["vcam", "--backend", "s2t-recorder", "--audio", wav_in, "--audio-out", "speakers"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no audio output device found" in err[0], err
    assert recorder.opened == []  # refused before any camera or engine was opened
