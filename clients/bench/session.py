"""One benchmark session's recording, and the in-process / virtual-camera drivers that fill it.

Every time here is on this process's monotonic clock. The sent audio is recorded as the capture
time of each 20 ms chunk's first sample (as a microphone would have captured it); each received
frame as the time it reached us (in-process: out of `Engine.frames()`; virtual camera: after the
camera took it). `Sampler` records engine stats, CPU and memory (psutil) and the GPU
(nvidia-smi, when present) once a second.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from clients import g2g
from clients.bench.scenario import Scenario, SpeechPlan
from engine.clock import AUDIO_RATE, Pacer
from engine.messages import VideoFrame

log = logging.getLogger(__name__)

CHUNK = AUDIO_RATE // 50  # 20 ms
MAX_KEPT_IMAGES = 3000  # 2 minutes at 25 fps kept for the face tracker


@dataclass(slots=True)
class Recording:
    """What one session sent and saw (filled while it runs; analysed afterwards)."""

    label: str
    plan: SpeechPlan
    keep_images: bool = True
    chunk_times: list[float] = field(default_factory=list)  # capture time of each sent chunk's first sample
    frame_times: list[float] = field(default_factory=list)
    markers: list[float] = field(default_factory=list)  # marker grey level per frame (NaN: none)
    fresh: list[bool] = field(default_factory=list)
    delivered_ms: list[float] = field(default_factory=list)  # in-process: arrival - capture time, fresh frames
    images: list[np.ndarray] = field(default_factory=list)
    image_times: list[float] = field(default_factory=list)
    stats: list[dict[str, Any]] = field(default_factory=list)  # per-second engine stats samples
    system: list[dict[str, float]] = field(default_factory=list)  # per-second CPU / memory / GPU
    final_stats: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    barge_ins: int = 0
    barge_in_times: list[float] = field(default_factory=list)  # when each barge-in (interrupt) was issued
    legs: dict[str, float] = field(default_factory=dict)  # our own server: uplink / engine / downlink lags
    started: float = field(default_factory=time.monotonic)

    def add_frame(self, t: float, image: np.ndarray | None, marker: float, fresh: bool = True) -> None:
        self.frame_times.append(t)
        self.markers.append(marker)
        self.fresh.append(fresh)
        if self.keep_images and image is not None and len(self.images) < MAX_KEPT_IMAGES:
            self.images.append(image)
            self.image_times.append(t)

    def audio_level(self) -> tuple[np.ndarray, np.ndarray]:
        """Level series (dB, 5 ms hops) of the audio actually sent, at its capture times."""
        n = len(self.chunk_times)
        if n == 0:
            return np.zeros(0), np.zeros(0)
        rel_t, db = g2g.level_series(self.plan.pcm[: n * CHUNK], AUDIO_RATE)
        k = np.minimum((rel_t * 50).astype(np.int64), n - 1)
        return np.asarray(self.chunk_times)[k] + (rel_t - k / 50.0), db


async def feed(plan: SpeechPlan, push: Callable[[np.ndarray, float], None], rec: Recording,
               on_barge_in: Callable[[], None] | None = None) -> None:
    """Push the plan's PCM in 20 ms chunks in real time; call `on_barge_in` at each barge-in."""
    pcm = plan.pcm
    n = -(-pcm.size // CHUNK)
    barge_chunks = {int(round(b * 50)) for b in plan.barge_ins}
    pacer = Pacer(50.0)
    sent = 0
    while sent < n:
        due = min(n, await pacer.wait() + 1)
        now = time.monotonic()
        for i in range(sent, due):
            if i in barge_chunks and on_barge_in is not None:
                on_barge_in()
                rec.barge_ins += 1
                rec.barge_in_times.append(time.monotonic())
            capture = now - (due - i) * CHUNK / AUDIO_RATE
            push(pcm[i * CHUNK : (i + 1) * CHUNK], capture)
            rec.chunk_times.append(capture)
        sent = due


class Sampler:
    """Once a second: `stats()` of the engine (if any), CPU% and RSS of this process tree, GPU."""

    def __init__(self, rec: Recording, stats: Callable[[], dict[str, Any] | None]) -> None:
        import psutil

        self.rec = rec
        self.stats = stats
        self.me = psutil.Process()
        self.procs: dict[int, Any] = {}
        self.nvidia = shutil.which("nvidia-smi")
        psutil.cpu_percent(None)

    def _tree(self) -> list[Any]:
        import psutil

        procs = [self.me]
        try:
            procs += self.me.children(recursive=True)
        except psutil.Error:
            pass
        for p in procs:
            if p.pid not in self.procs:
                self.procs[p.pid] = p
                try:
                    p.cpu_percent(None)  # primes the counter
                except psutil.Error:
                    continue
        return [self.procs[p.pid] for p in procs]

    async def _gpu(self) -> dict[str, float]:
        if not self.nvidia:
            return {}
        try:
            proc = await asyncio.create_subprocess_exec(
                self.nvidia, "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
            out, _ = await asyncio.wait_for(proc.communicate(), 5.0)
            util, mem = out.decode().splitlines()[0].split(",")[:2]
            return {"gpu_pct": float(util), "gpu_mem_mb": float(mem)}
        except (OSError, ValueError, IndexError, TimeoutError):
            return {}

    async def sample(self) -> None:
        """One sample of the process tree (this process and its worker children), the system and the GPU."""
        import psutil

        t = time.monotonic() - self.rec.started
        cpu = rss = 0.0
        for p in self._tree():
            try:
                cpu += p.cpu_percent(None)
                rss += p.memory_info().rss
            except psutil.Error:
                continue
        sample = {"t": t, "cpu_pct": cpu, "rss_mb": rss / 2**20, "system_cpu_pct": psutil.cpu_percent(None),
                  "load1": psutil.getloadavg()[0], **(await self._gpu())}
        self.rec.system.append(sample)
        s = self.stats()
        if s:
            self.rec.stats.append({"t": t, **s})

    async def run(self) -> None:
        self._tree()
        nxt = time.monotonic()
        while True:
            nxt += 1.0
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))  # paced sampling, not synchronisation
            await self.sample()


def slim_stats(s: dict[str, Any]) -> dict[str, Any]:
    """The per-second fields worth keeping from Engine.stats()."""
    keep = ("fps", "e2e_ms", "level", "level_name", "render_size", "dropped", "repeated", "av_offset_ms",
            "av_offset_ms_p50")
    out = {k: s[k] for k in keep if k in s}
    if "stages" in s:
        out["stages_p50"] = {k: v.get("p50", math.nan) for k, v in s["stages"].items()}
    return out


async def run_engine_session(s: Scenario, plan: SpeechPlan, rec: Recording,
                             consume: Callable[[VideoFrame], float] | None = None) -> None:
    """In-process (or virtual-camera, via `consume`, which returns when the frame left): run one engine."""
    from engine.runtime import Engine

    eng = Engine(s.engine(), session=rec.label)
    await eng.start()
    sampler = Sampler(rec, lambda: slim_stats(eng.stats()))
    tasks: list[asyncio.Task[Any]] = []
    try:
        if s.emotion:
            await eng.set_emotion(s.emotion)
        rec.started = time.monotonic()
        tasks.append(asyncio.create_task(sampler.run(), name="s2t-bench-sampler"))
        feeder = asyncio.create_task(feed(plan, lambda x, t: eng.push_audio(x, capture_time=t), rec, eng.interrupt),
                                     name="s2t-bench-feed")
        tasks.append(feeder)
        end = rec.started + plan.seconds + s.tail_s
        async for f in eng.frames():
            t = consume(f) if consume is not None else time.monotonic()
            rec.add_frame(t, f.image, float(g2g.marker_value(g2g.block_level_db(f.audio))), not f.repeated)
            if not f.repeated:
                rec.delivered_ms.append((t - f.capture_time) * 1e3)
            if feeder.done() and feeder.exception() is not None:
                raise feeder.exception()  # type: ignore[misc]
            if t >= end:
                break
        rec.final_stats = eng.stats()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await eng.close()


class NullCamera:
    """A pyvirtualcam backend that accepts frames and keeps nothing (the bench's default camera)."""

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw: Any) -> None:
        self.width, self.height = width, height
        self.frames = 0

    def close(self) -> None:
        pass

    def send(self, frame: np.ndarray) -> None:
        self.frames += 1

    def device(self) -> str:
        return "s2t-bench-null"

    def native_fourcc(self) -> int:
        import pyvirtualcam
        from pyvirtualcam.util import encode_fourcc

        return int(encode_fourcc(pyvirtualcam.PixelFormat.RGB.value))


async def run_vcam_session(s: Scenario, plan: SpeechPlan, rec: Recording, backend: str = "") -> None:
    """The virtual-camera path: engine frames into a pyvirtualcam camera; times taken after each send."""
    import pyvirtualcam

    from clients.vcam import VcamOptions, open_camera

    if not backend:
        pyvirtualcam.register_backend("s2t-bench-null", NullCamera)
        backend = "s2t-bench-null"
    cam = open_camera(s.resolution, s.fps, VcamOptions(backend=backend))

    def consume(f: VideoFrame) -> float:
        cam.send(np.ascontiguousarray(f.image))
        return time.monotonic()

    try:
        await run_engine_session(s, plan, rec, consume)
    finally:
        cam.close()
