"""`s2t vcam`: microphone (or --audio FILE) -> engine -> a virtual camera (pyvirtualcam), delayed audio out.

The camera gets each paced engine frame as it comes (the engine paces; no extra sleeps). The audio
that plays with the frames (delayed to match the lips) goes to --audio-out DEVICE through
sounddevice (route it to a virtual sink for a call app) and/or to --audio-wav FILE. A missing camera
backend or audio device ends with one line saying how to fix it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import wave
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from clients.stream import LiveOptions, add_live_arguments, check_device, engine_config, live_options, open_sounddevice, run_live
from engine.clock import AUDIO_RATE
from engine.config import EngineConfig
from engine.errors import DeviceUnavailableError
from engine.messages import VideoFrame

log = logging.getLogger(__name__)


def camera_fix() -> str:
    """The one-line fix for a missing virtual-camera backend on this platform."""
    if sys.platform.startswith("linux"):
        return ("load v4l2loopback: sudo apt-get install v4l2loopback-dkms && "
                "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=s2t")
    if sys.platform == "darwin":
        return "install OBS Studio and start its Virtual Camera once (Tools > Start Virtual Camera)"
    return "install OBS Studio (26+) and start its Virtual Camera once, or install Unity Capture"


@dataclass(frozen=True, slots=True)
class VcamOptions:
    backend: str = ""  # pyvirtualcam backend name; empty = any available
    device: str = ""  # e.g. /dev/video10; empty = any
    audio_out: str = ""  # sounddevice output name/index for the delayed audio
    audio_wav: str = ""  # also write the delayed audio here


def open_camera(size: int, fps: float, opts: VcamOptions) -> Any:
    import pyvirtualcam

    try:
        return pyvirtualcam.Camera(width=size, height=size, fps=fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                   backend=opts.backend or None, device=opts.device or None)
    except KeyError:
        raise DeviceUnavailableError(f"unknown virtual camera backend {opts.backend!r} "
                                     f"(have: {', '.join(pyvirtualcam.camera.BACKENDS) or 'none'})") from None
    except RuntimeError as e:
        detail = str(e).replace("\n", " ").strip()
        raise DeviceUnavailableError(f"no virtual camera available ({detail}); fix: {camera_fix()}") from None


class AudioOut:
    """Plays the delayed audio on an output device from a short buffer (silence on underrun)."""

    def __init__(self, device: Any) -> None:
        sd = open_sounddevice()
        self.buf: deque[np.ndarray] = deque(maxlen=50)  # 2 s of frames at most
        self._carry = np.zeros(0, np.float32)
        self.underruns = 0

        def callback(out: np.ndarray, frames: int, t: Any, status: Any) -> None:
            x = self._carry
            while x.size < frames and self.buf:
                x = np.concatenate([x, self.buf.popleft()])
            if x.size < frames:
                self.underruns += 1
                x = np.concatenate([x, np.zeros(frames - x.size, np.float32)])
            out[:, 0] = x[:frames]
            self._carry = x[frames:]

        try:
            self.stream = sd.OutputStream(samplerate=AUDIO_RATE, channels=1, dtype="float32",
                                          device=device, callback=callback, latency="low")
        except sd.PortAudioError as e:
            raise DeviceUnavailableError(f"cannot open audio output {device!r}: {e}") from None
        self.stream.start()

    def put(self, audio: np.ndarray) -> None:
        self.buf.append(np.asarray(audio, np.float32).reshape(-1))

    def close(self) -> None:
        self.stream.stop()
        self.stream.close()


async def run_vcam(cfg: EngineConfig, live: LiveOptions, opts: VcamOptions) -> dict[str, Any]:
    """Checks the audio devices, opens the camera, then runs the session; returns stats."""
    if not live.audio:
        check_device("input", live.mic_device)
    out_dev = check_device("output", opts.audio_out) if opts.audio_out else None
    cam = open_camera(cfg.render.size, cfg.fps, opts)
    player: AudioOut | None = None
    wav: wave.Wave_write | None = None
    counts = {"frames": 0, "resized": 0}
    try:
        if opts.audio_out:
            player = AudioOut(out_dev)
        if opts.audio_wav:
            wav = wave.open(opts.audio_wav, "wb")
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(AUDIO_RATE)
        log.info("virtual camera %s (%s) %dx%d @ %.0f fps", cam.device, cam.backend, cam.width, cam.height, cfg.fps)

        def consume(frame: VideoFrame) -> None:
            img = frame.image
            if img.shape[0] != cam.height or img.shape[1] != cam.width:
                import cv2

                img = cv2.resize(np.asarray(img), (cam.width, cam.height), interpolation=cv2.INTER_LINEAR)
                counts["resized"] += 1
            cam.send(np.ascontiguousarray(img))
            counts["frames"] += 1
            if player is not None:
                player.put(frame.audio)
            if wav is not None and frame.audio.size:
                wav.writeframes((np.clip(frame.audio, -1, 1) * 32767).astype("<i2").tobytes())

        stats = await run_live(cfg, live, consume)
    finally:
        cam.close()
        if player is not None:
            player.close()
        if wav is not None:
            wav.close()
    return {"engine": stats, "camera": counts, "audio_underruns": player.underruns if player else 0}


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "vcam", help="the avatar as a virtual camera (v4l2loopback / OBS)",
        description="Microphone (or --audio FILE) in, the talking avatar out as a virtual camera.",
    )
    add_live_arguments(p)
    p.add_argument("--backend", default="", help="pyvirtualcam backend (v4l2loopback, obs, unitycapture)")
    p.add_argument("--device", default="", help="camera device, e.g. /dev/video10")
    p.add_argument("--audio-out", default="", metavar="DEVICE", help="play the delayed audio on this output device")
    p.add_argument("--audio-wav", default="", metavar="FILE", help="also write the delayed audio to a WAV file")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    opts = VcamOptions(backend=args.backend, device=args.device, audio_out=args.audio_out, audio_wav=args.audio_wav)
    result = asyncio.run(run_vcam(engine_config(args), live_options(args), opts))
    log.info("sent %d frames to the camera", result["camera"]["frames"])
    return 0
