"""`s2t stream`: speech (file or microphone) -> engine -> RTMP, WHIP and/or mp4/mkv, with reconnects.

Also home of the pieces every local client shares: `AudioSource` (a file paced in real time, or the
microphone through sounddevice with a clear message when there is none) and `run_live`, which starts
an engine, feeds it and hands each paced frame to a consumer until the input ends or time is up.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engine.clock import AUDIO_RATE, Pacer
from engine.config import EngineConfig, check_phone_weight, load_config
from engine.errors import DeviceUnavailableError, InputError
from engine.messages import VideoFrame

log = logging.getLogger(__name__)

CHUNK = AUDIO_RATE // 50  # 20 ms
NO_MIC_FIX = ("no audio input device found; connect a microphone (Linux: check `arecord -l` / PulseAudio), "
              "or give speech with --audio FILE")


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """What a local client session needs: input, identity, emotion, limits."""

    audio: str = ""  # file path; empty = microphone
    mic_device: str = ""  # sounddevice input name or index; empty = default
    loop: bool = False
    duration_s: float = 0.0  # 0 = until the input ends (file) or Ctrl-C (mic)
    tail_s: float = 1.0  # keep streaming this long after a file ends (the delayed audio drains)
    portrait: str = ""
    emotion: str = ""
    style_ref: str = ""  # talking-style clip: a video, or .npz/.npy coefficients


def open_sounddevice() -> Any:
    """Import sounddevice, turning a missing PortAudio into a clear DeviceUnavailableError."""
    try:
        import sounddevice as sd
    except OSError as e:
        raise DeviceUnavailableError(f"PortAudio is not available ({e}); install it: sudo apt-get install libportaudio2") from None
    return sd


def check_device(kind: str, device: str = "") -> Any:
    """The sounddevice device spec for an input/output `kind`, or DeviceUnavailableError with the fix."""
    sd = open_sounddevice()
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    devices = [d for d in sd.query_devices() if d.get(key, 0) > 0]
    if not devices:
        if kind == "input":
            raise DeviceUnavailableError(NO_MIC_FIX)
        raise DeviceUnavailableError(
            "no audio output device found; connect one (Linux: `aplay -l`; a virtual sink: "
            "`pactl load-module module-null-sink sink_name=s2t`), or drop --audio-out")
    if not device:
        return None
    spec: Any = int(device) if device.isdigit() else device
    try:
        sd.query_devices(spec, kind)
    except (ValueError, sd.PortAudioError) as e:
        names = ", ".join(str(d["name"]) for d in devices)
        raise DeviceUnavailableError(f"audio {kind} device {device!r} not found ({e}); available: {names}") from None
    return spec


class AudioSource:
    """Feeds an engine in real time: a decoded file on a 20 ms pacer, or the microphone callback."""

    def __init__(self, opts: LiveOptions) -> None:
        self.opts = opts
        self.samples: np.ndarray | None = None
        self.mic: Any = None
        self.done = asyncio.Event()
        if opts.audio:
            from engine.audio.ingest import decode_audio

            self.samples = decode_audio(opts.audio)
            if self.samples.size == 0:
                raise InputError(f"{opts.audio}: no audio samples")
        else:
            self.mic_spec = check_device("input", opts.mic_device)

    async def run(self, engine: Any) -> None:
        if self.samples is not None:
            await self._file(engine, self.samples)
        else:
            await self._microphone(engine)
        self.done.set()

    async def _file(self, engine: Any, x: np.ndarray) -> None:
        pacer = Pacer(AUDIO_RATE / CHUNK)
        sent = 0
        total = x.size
        while True:
            k = await pacer.wait()
            due = (k + 1) * CHUNK
            if not self.opts.loop and sent >= total:
                return
            if due > sent:
                idx = np.arange(sent, due) % total if self.opts.loop else np.arange(sent, min(due, total))
                now = time.monotonic()
                engine.push_audio(x[idx], capture_time=now - idx.size / AUDIO_RATE)
                sent += idx.size

    async def _microphone(self, engine: Any) -> None:
        sd = open_sounddevice()
        loop = asyncio.get_running_loop()

        def callback(data: np.ndarray, frames: int, t: Any, status: Any) -> None:
            # capture time of the first sample on our monotonic clock, from PortAudio's ADC time
            capture = time.monotonic() - max(0.0, stream.time - t.inputBufferAdcTime) if t.inputBufferAdcTime else time.monotonic() - frames / AUDIO_RATE
            loop.call_soon_threadsafe(engine.push_audio, data[:, 0].copy(), capture)

        try:
            stream = sd.InputStream(samplerate=AUDIO_RATE, channels=1, dtype="float32", blocksize=CHUNK,
                                    device=self.mic_spec, callback=callback)
        except sd.PortAudioError as e:
            raise DeviceUnavailableError(f"cannot open the microphone: {e}. {NO_MIC_FIX}") from None
        with stream:
            await asyncio.Event().wait()  # runs until cancelled


async def run_live(cfg: EngineConfig, opts: LiveOptions, consume: Callable[[VideoFrame], None]) -> dict[str, Any]:
    """Start an engine, feed it from `opts`, pass every frame to `consume`; returns the engine's final stats."""
    from engine.runtime import Engine
    from engine.runtime.style_ref import read_style_reference_async

    source = AudioSource(opts)  # fails fast on a bad file / no microphone, before any worker starts
    # a style video takes seconds to fit: before the workers start, so neither waits for the other
    style = await read_style_reference_async(opts.style_ref) if opts.style_ref else None
    engine = Engine(cfg)
    await engine.start()
    feeder: asyncio.Task[None] | None = None
    try:
        if opts.portrait:
            await engine.set_portrait(Path(opts.portrait))
        if opts.emotion:
            await engine.set_emotion(opts.emotion)
        if style is not None:
            await engine.set_style_reference(style)
        feeder = asyncio.create_task(source.run(engine), name="s2t-feed")
        t0 = time.monotonic()
        ended_at: float | None = None
        async for frame in engine.frames():
            consume(frame)
            now = time.monotonic()
            if feeder.done() and feeder.exception() is not None:
                raise feeder.exception()  # type: ignore[misc]
            if source.done.is_set() and ended_at is None:
                ended_at = now
            if ended_at is not None and now - ended_at >= opts.tail_s:
                break
            if opts.duration_s and now - t0 >= opts.duration_s:
                break
        return engine.stats()
    finally:
        if feeder is not None:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
        await engine.close()


async def stream(cfg: EngineConfig, opts: LiveOptions, outputs: list[str], whip_token: str = "",
                 reconnect_attempts: int = 0) -> dict[str, Any]:
    """Run a live session into every output; returns {"engine": stats, "outputs": [sink stats...]}."""
    from clients.sinks.live import Backoff, container_format, make_sink

    if not outputs:
        raise InputError("give at least one output with -o (rtmp://…, whip+http://…, out.mp4, out.mkv)")
    for url in outputs:
        if not url.lower().startswith(("whip+http://", "whip+https://")):
            container_format(url)  # refuse unknown outputs before starting anything
    backoff = Backoff(attempts=reconnect_attempts)
    sinks = [make_sink(u, cfg.fps, whip_token, backoff) for u in outputs]
    try:
        stats = await run_live(cfg, opts, lambda f: [s.put(f) for s in sinks])
    finally:
        for s in sinks:
            await s.close()
    return {"engine": stats, "outputs": [s.stats() for s in sinks]}


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "stream", help="stream the avatar to RTMP, WHIP, mp4/mkv",
        description="Speech in (file or microphone), the talking avatar out to every -o output, live.",
    )
    p.add_argument("-o", "--output", action="append", default=[], metavar="URL",
                   help="rtmp://host/app/key, whip+http(s)://host/whip, or out.mp4 / out.mkv (repeatable)")
    add_live_arguments(p)
    p.add_argument("--whip-token", default="", help="bearer token for the WHIP endpoint")
    p.add_argument("--reconnect-attempts", type=int, default=0, help="give up after N failed reconnects (0 = never)")
    p.set_defaults(func=_run)


def add_live_arguments(p: argparse.ArgumentParser) -> None:
    """The input/engine flags every live client shares (stream, vcam): read back by live_options/engine_config."""
    p.add_argument("--audio", default="", help="speech file instead of the microphone")
    p.add_argument("--mic-device", default="", help="sounddevice input name or index")
    p.add_argument("--loop", action="store_true", help="loop the --audio file")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds")
    p.add_argument("--portrait", default="", help="portrait image (default: the bundled one)")
    p.add_argument("--emotion", default="", help='emotion prompt, e.g. "calm but slightly amused"')
    p.add_argument("--style-ref", default="", metavar="CLIP",
                   help="talking-style reference: a video of someone talking, or .npz/.npy coefficients (Style-E)")
    p.add_argument("--config", help="engine config TOML")
    p.add_argument("--phone-weight", type=float, metavar="W", help="Style-E: share of the mouth taken from recognised phones instead of the audio "
                   "encoder, 0..1 (default 0.2; 0.8 suits synthesized voices, e.g. a voice agent's TTS)")
    p.add_argument("--budget-ms", type=float, help="end-to-end latency budget in ms (default: 250 with Style-E or Style-A, 150 for the baselines)")


def engine_config(args: argparse.Namespace) -> EngineConfig:
    cfg = load_config(args.config)
    if getattr(args, "budget_ms", None):
        cfg = replace(cfg, runtime=replace(cfg.runtime, budget_ms=float(args.budget_ms)))
    if getattr(args, "phone_weight", None) is not None:
        w = check_phone_weight(args.phone_weight, "--phone-weight")
        cfg = replace(cfg, motion=replace(cfg.motion, phone_weight=w))
    return cfg


def live_options(args: argparse.Namespace) -> LiveOptions:
    if args.audio and not Path(args.audio).is_file():
        raise InputError(f"audio file not found: {args.audio}")
    if args.portrait and not Path(args.portrait).is_file():
        raise InputError(f"portrait not found: {args.portrait}")
    if args.style_ref and not Path(args.style_ref).is_file():
        raise InputError(f"style reference not found: {args.style_ref}")
    return LiveOptions(audio=args.audio, mic_device=args.mic_device, loop=args.loop, duration_s=args.duration,
                       portrait=args.portrait, emotion=args.emotion, style_ref=args.style_ref)


def _run(args: argparse.Namespace) -> int:
    result = asyncio.run(stream(engine_config(args), live_options(args), args.output, args.whip_token,
                                args.reconnect_attempts))
    e2e = result["engine"].get("e2e_ms_session", {})
    for o in result["outputs"]:
        log.info("output %s", o)
    log.info("e2e latency p50 %.0f ms, p95 %.0f ms", e2e.get("p50", float("nan")), e2e.get("p95", float("nan")))
    return 0
