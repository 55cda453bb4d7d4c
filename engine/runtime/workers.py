"""Worker processes: host one motion or render stage behind a DEALER socket and move messages.

`spawn_worker` starts one with the multiprocessing *spawn* context; its arguments are plain strings
(the config travels as JSON, never pickled objects). The worker connects, builds its stage (the
heavy imports happen here, not at module import), announces `ready` and then serves until `stop`,
until the hub's process goes away, or until it is killed. Control messages with a positive `seq`
are acknowledged with `pong` (or `error` carrying "ErrorClass: message"), so the hub can await them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import time
from multiprocessing.process import BaseProcess
from collections.abc import Iterator
from typing import Any

import numpy as np

from engine.clock import video_pts
from engine.config import EngineConfig, from_dict
from engine.errors import S2TError, error_text
from engine.messages import AudioChunk, Control, Message, MotionChunk, VideoFrame

log = logging.getLogger(__name__)

ROLES: tuple[str, ...] = ("motion", "render")
_PARENT_CHECK_MS = 500


def config_to_json(cfg: EngineConfig) -> str:
    return json.dumps(dataclasses.asdict(cfg))


def spawn_worker(role: str, name: str, endpoint: str, cfg: EngineConfig, cache_dir: str = "") -> BaseProcess:
    """Start worker `name` (its routing id; role "motion" or "render") in a fresh spawned process.

    `cache_dir`: where render stages keep fitted face models (a restarted worker loads, not refits).
    """
    if role not in ROLES:
        raise ValueError(f"unknown worker role {role!r}")
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(
        target=worker_main,
        args=(role, name, endpoint, config_to_json(cfg), os.getpid(), cache_dir),
        name=f"s2t-{name}",
        daemon=True,
    )
    proc.start()
    return proc


def quality_from_text(text: str) -> Any:
    from engine.runtime.budget import QualityLevel

    return QualityLevel(**json.loads(text))


class _MotionHost:
    """Collects per-frame AudioChunks into chunks of K frames and steps the motion stage.

    A stage with lookahead (`latency_frames` L) answers input frames [n-K, n) with the coefficients of
    frames [n-K-L, n-L): the MotionChunk is stamped with the frames it depicts (seq n-K-L, `lag` L), so the
    hub pairs each picture with the audio it shows and holds that audio back by L frames.
    """

    def __init__(self, cfg: EngineConfig) -> None:
        from engine.motion.stream import blas_controller
        from engine.runtime.stages import make_motion_stage

        # one BLAS thread in this process: a multi-threaded BLAS call (e.g. the emotion text projections) leaves
        # its threads spinning for ~100 ms, which burnt a second core, shared with the renderer, per prompt change
        self._blas_limit = blas_controller().limit(limits=1, user_api="blas")
        self.cfg = cfg
        self.stage = make_motion_stage(cfg)
        self.lag = max(0, int(getattr(self.stage, "latency_frames", 0)))
        self.chunk_frames = 1
        self._pending: list[AudioChunk] = []
        self._history: dict[int, AudioChunk] = {}  # the last L + K inputs: capture time and speech of depicted frames

    def control(self, msg: Control) -> None:
        from engine.runtime.stages import check_style_reference

        if msg.op == "set_emotion":
            self.stage.set_emotion(msg.text)
        elif msg.op == "set_style_reference":
            self.stage.set_style_reference(check_style_reference(msg.data, self.stage.spec))
        elif msg.op == "set_quality":
            level = quality_from_text(msg.text)
            self.chunk_frames = max(1, int(level.chunk_frames))
            self.stage.set_quality(level)
        elif msg.op == "interrupt":
            self._pending.clear()
            self._history.clear()
            self.stage.reset()

    def work(self, msg: Message) -> list[Message]:
        if not isinstance(msg, AudioChunk):
            raise TypeError(f"motion worker got a {type(msg).__name__}")
        self._pending.append(msg)
        if len(self._pending) < self.chunk_frames:
            return []
        chunk, self._pending = self._pending, []
        t0 = time.perf_counter()
        frames = np.stack([c.samples for c in chunk])
        speech = np.array([c.speech for c in chunk], bool)
        coeffs = np.ascontiguousarray(self.stage.step_chunk(frames, speech), np.float32)
        ms = (time.perf_counter() - t0) * 1e3
        first = chunk[0]
        seq = first.seq - self.lag
        if self.lag:
            for c in chunk:
                self._history[c.seq] = c
            for k in [k for k in self._history if k < seq]:
                del self._history[k]
            depicted = [self._history.get(seq + i) for i in range(len(chunk))]
            speech = np.array([d.speech if d is not None else False for d in depicted], bool)
        head = self._history.get(seq, first)
        return [
            MotionChunk(
                session=first.session,
                seq=seq,
                pts=video_pts(seq, self.cfg.fps),
                capture_time=head.capture_time,
                coeffs=coeffs,
                fps=self.cfg.fps,
                spec_key=self.stage.spec.key,
                speech=speech,
                timings=(("motion", ms),),
                lag=self.lag,
            )
        ]


class _RenderHost:
    """Renders every frame of each MotionChunk into a VideoFrame."""

    def __init__(self, cfg: EngineConfig, cache_dir: str = "") -> None:
        from engine.runtime.stages import make_render_stage

        self.stage = make_render_stage(cfg, cache_dir)

    def control(self, msg: Control) -> None:
        if msg.op == "set_portrait":
            self.stage.set_portrait(msg.data if msg.data.size else None)
        elif msg.op == "set_art_style":
            self.stage.set_art_style(msg.data if msg.data.size else None)
        elif msg.op == "set_quality":
            self.stage.set_quality(quality_from_text(msg.text))

    def work(self, msg: Message) -> Iterator[Message]:
        """Yields each frame as soon as it is rendered: frame i of a chunk never waits for frame i+1."""
        if not isinstance(msg, MotionChunk):
            raise TypeError(f"render worker got a {type(msg).__name__}")
        for i, row in enumerate(msg.coeffs):
            t0 = time.perf_counter()
            image = np.ascontiguousarray(self.stage.render(row), np.uint8)
            ms = (time.perf_counter() - t0) * 1e3
            yield VideoFrame(
                session=msg.session,
                seq=msg.seq + i,
                pts=video_pts(msg.seq + i, msg.fps),
                capture_time=msg.capture_time,
                image=image,
                coeffs=row,
                timings=(*msg.timings, ("render", ms)),
            )


def worker_main(role: str, name: str, endpoint: str, config_json: str, parent_pid: int, cache_dir: str = "") -> None:
    """Process entry point (also usable on another host with the hub's tcp endpoint)."""
    import zmq

    from engine.runtime import transport

    logging.basicConfig(level=logging.INFO, format=f"%(levelname)s {name}: %(message)s")
    cfg = from_dict(EngineConfig, json.loads(config_json))
    keys = transport.CurveKeys.from_config(cfg.runtime)
    ctx: zmq.Context[Any] = zmq.Context()
    sock = transport.connect_worker(ctx, endpoint, name, cfg.runtime.high_water_mark, keys)
    try:
        try:
            host: _MotionHost | _RenderHost = _MotionHost(cfg) if role == "motion" else _RenderHost(cfg, cache_dir)
        except S2TError as e:
            transport.send_sync(sock, Control(session="", seq=0, op="error", text=error_text(e)))
            return
        transport.send_sync(sock, Control(session="", seq=0, op="ready", text=role, number=float(os.getpid())))
        _serve(sock, host, parent_pid)
    finally:
        sock.close(0)
        ctx.term()


def _serve(sock: Any, host: _MotionHost | _RenderHost, parent_pid: int) -> None:
    import zmq

    from engine.messages import decode
    from engine.runtime import transport

    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while True:
        if not poller.poll(_PARENT_CHECK_MS):
            if os.getppid() != parent_pid:
                log.warning("hub process went away; exiting")
                return
            continue
        msg = decode(sock.recv_multipart(copy=False))
        if isinstance(msg, Control):
            if msg.op == "stop":
                return
            reply = Control(session=msg.session, seq=msg.seq, op="pong", sent_time=msg.sent_time)
            try:
                host.control(msg)
            except Exception as e:  # any failure of a control op goes back to the caller as text
                log.warning("%s failed: %s", msg.op, e)
                reply = Control(session=msg.session, seq=msg.seq, op="error", text=error_text(e))
            if msg.seq > 0 or msg.op == "ping":
                transport.send_sync(sock, reply)
            continue
        for out in host.work(msg):
            transport.send_sync(sock, out)
