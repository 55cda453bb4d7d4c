"""The live engine (the hub): audio in, paced A/V frames out, workers supervised, latency budgeted.

One asyncio task receives every worker message on one ROUTER socket; one task ticks at the session
fps (Pacer on the injected monotonic clock): it releases audio slots (live, paced bursts, or silence
when nobody speaks), plays out one (image, audio) pair, watches for hung workers and moves the
quality ladder. Audio goes to the motion worker, its coefficients to the least-busy render worker
(never queued past `MAX_RENDER_INFLIGHT`; dropped instead; frames the ladder level does not render
are skipped and repeat the previous image), images back to the playout buffer. A dead or hung
worker's slot is taken over by a warm spare (see supervisor.py) or restarted.
`push_audio` and the setters must be called from the engine's event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import shutil
import tempfile
from collections import deque
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, AsyncIterator

import numpy as np
import zmq
import zmq.asyncio

import engine.errors as errors
from engine.clock import AUDIO_RATE, Clock, MonotonicClock, Pacer, video_pts
from engine.config import EngineConfig, budget_ms_for
from engine.errors import InputError, S2TError, error_from_text
from engine.messages import AudioChunk, Control, Message, MotionChunk, VideoFrame
from engine.runtime import transport
from engine.runtime.budget import DEFAULT_LADDER, BudgetController, QualityLevel, RollingWindow
from engine.runtime.stages import check_stage_kinds, check_style_reference
from engine.runtime.supervisor import Supervisor, WorkerHandle
from engine.runtime.timeline import AudioTimeline, Playout, Slot, prepare_pcm

log = logging.getLogger(__name__)

MAX_RENDER_INFLIGHT = 2  # per render worker: one rendering, one waiting
OUTPUT_DEPTH = 2  # frames waiting for a slow consumer before the oldest is dropped
OUTBOX_MAX = 256  # messages held for one worker whose pipe is full (~10 s of audio frames)
START_TIMEOUT_S = 90.0
REQUEST_TIMEOUT_S = 30.0
SESSION_KEEP = 30_000  # per-frame samples kept for session percentiles (20 min at 25 fps)


class Engine:
    """A live avatar session. `await start()`, `push_audio(...)`, `async for f in frames()`, `await close()`."""

    def __init__(
        self,
        config: EngineConfig | None = None,
        clock: Clock | None = None,
        session: str = "s0",
        ladder: tuple[QualityLevel, ...] = DEFAULT_LADDER,
    ) -> None:
        self.cfg = config or EngineConfig()
        check_stage_kinds(self.cfg)
        if self.cfg.fps <= 0:
            raise InputError("fps must be positive")
        self.clock = clock or MonotonicClock()
        self.session = session
        self.budget_ms = budget_ms_for(self.cfg)
        self.budget = BudgetController(self.budget_ms, self.clock, ladder)
        self._ctx: zmq.asyncio.Context | None = None
        self._sock: zmq.asyncio.Socket | None = None
        self._auth: Any = None
        self._auth_tasks: set[asyncio.Task[Any]] = set()
        self._tmp_dir: Path | None = None  # ipc socket files and the face model cache
        self._sup: Supervisor | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._closed = False
        self._seq = itertools.count(1)
        self._acks: dict[int, tuple[asyncio.Future[None], set[str], list[str]]] = {}
        # session state replayed to restarted workers
        self._emotion: str | None = None
        self._style: np.ndarray | None = None
        self._portrait: np.ndarray | None = None
        self._art: np.ndarray | None = None
        self._level = 0
        # timing and A/V
        spf = AUDIO_RATE / self.cfg.fps
        self.samples_per_frame = int(round(spf))
        self.timeline = AudioTimeline(self.cfg.fps, AUDIO_RATE, self.clock.now())
        self._max_delay_s = max(self.budget_ms / 1e3 - 1.0 / self.cfg.fps, 1.0 / self.cfg.fps)
        self.playout = Playout(self.cfg.fps, self.samples_per_frame, delay_s=1.5 / self.cfg.fps)
        self._meta: dict[int, Slot] = {}
        self._interrupt_mark = -1
        self._motion_lag = 0  # frames the motion stage's pictures trail their audio (MotionChunk.lag)
        self._vad: Any = None
        self._vad_carry = np.zeros(0, np.float32)
        self._out: deque[VideoFrame] = deque()
        self._out_event = asyncio.Event()
        # measurements
        w = 1.0
        self._e2e = RollingWindow(self.clock, w)
        self._e2e_all: deque[float] = deque(maxlen=SESSION_KEEP)
        self._stage_all: dict[str, deque[float]] = {}
        self._av_all: deque[float] = deque(maxlen=SESSION_KEEP)
        self._stage_win: dict[str, RollingWindow] = {}
        self._ready_lag = RollingWindow(self.clock, 2.0)
        self._emitted = RollingWindow(self.clock, w)
        self._av = RollingWindow(self.clock, w)
        self.counts = {"frames_out": 0, "fresh_out": 0, "dropped_busy": 0, "dropped_output": 0,
                       "discarded_interrupt": 0, "sanitized_pushes": 0, "resampled_pushes": 0,
                       "restarts": 0, "failovers": 0, "ticks_missed": 0, "skipped_ladder": 0,
                       "lost_in_worker": 0, "dropped_outbox": 0}
        self._pacer: Pacer | None = None
        self._ticks = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Bind the hub socket, spawn the workers, wait for every ready handshake, start pacing."""
        if self._started:
            raise InputError("engine already started")
        self._started = True
        rt = self.cfg.runtime
        self._ctx = zmq.asyncio.Context()
        keys = transport.CurveKeys.from_config(rt) if rt.transport == "tcp" else None
        if keys is not None:
            self._auth, self._auth_tasks = transport.start_authenticator(self._ctx, keys)
        self._tmp_dir = Path(tempfile.mkdtemp(prefix="s2t-"))
        ipc_dir = self._tmp_dir if rt.transport == "ipc" else None
        self._sock, endpoint = transport.bind_hub(self._ctx, rt, ipc_dir, keys)  # type: ignore[arg-type]
        self._sup = Supervisor(self.cfg, endpoint, self.clock.now, self._on_worker_exit, self._on_promote,
                               cache_dir=str(self._tmp_dir / "face-cache"))
        self._tasks.append(asyncio.create_task(self._recv_loop(), name="s2t-recv"))
        try:
            for w in self._sup.workers.values():
                self._sup.spawn(w)
            futs = [w.ready_future for w in self._sup.workers.values()]
            spares = self._sup.start_spares(("motion",))  # loads beside the first workers
            await asyncio.wait_for(asyncio.gather(*futs), START_TIMEOUT_S)  # type: ignore[arg-type]
            # The render spare starts once the first renderer is up (it loads that one's cached face model).
            # The session starts when the spares are warm too: a spare loading beside a live session took
            # the CPU its first seconds needed (Style-E: ~6 s of model loading on a 2-core box).
            spares += self._sup.start_spares(("render",))
            await self._await_spares(spares)
        except BaseException as e:
            await self.close()
            if isinstance(e, TimeoutError):
                raise errors.DeviceUnavailableError(f"workers not ready within {START_TIMEOUT_S:.0f} s") from None
            raise
        from engine.audio.vad import StreamingVad

        self._vad = StreamingVad(AUDIO_RATE, self.cfg.audio.frame_ms, self.cfg.audio.vad_mode)
        now = self.clock.now()
        self.timeline = AudioTimeline(self.cfg.fps, AUDIO_RATE, now)
        self.budget.restart_warmup()
        self._tasks.append(asyncio.create_task(self._tick_loop(), name="s2t-tick"))
        log.info("engine started: %s", ", ".join(f"{w.name}={w.pid}" for w in self._sup.workers.values()))

    async def _await_spares(self, futs: list[asyncio.Future[None]]) -> None:
        """Wait for the spares' ready handshakes; one that fails or is slow leaves the session without it."""
        if not futs:
            return
        done, pending = await asyncio.wait(futs, timeout=START_TIMEOUT_S)
        for f in done:
            if f.exception() is not None:
                log.warning("a spare failed to start (%s); running without it", f.exception())
        if pending:
            log.warning("%d spare(s) not ready within %.0f s; starting without waiting", len(pending), START_TIMEOUT_S)

    async def close(self) -> None:
        """Stop pacing, stop and reap the workers, close every socket. Safe to call twice. Cancelled part-way (a
        server shutting down while a session closes), it still closes its sockets and context: a context left
        with an open socket blocks whoever collects it."""
        if self._closed:
            return
        self._closed = True
        try:
            self._out_event.set()
            tick = [t for t in self._tasks if t.get_name() == "s2t-tick"]
            for t in tick:
                t.cancel()
            if self._sup is not None:
                if self._sock is not None:
                    for w in self._sup.handles():
                        if w.ready:
                            transport.send_nowait(self._sock, Control(self.session, 0, "stop"), w.identity)
                await self._sup.stop()
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks.clear()
            for fut, _, _ in self._acks.values():
                if not fut.done():
                    fut.set_exception(S2TError("engine closed"))
                    fut.exception()
            if self._auth is not None:
                self._auth.stop()
                await asyncio.gather(*self._auth_tasks, return_exceptions=True)
        finally:
            if self._sock is not None:
                self._sock.close(0)
            if self._ctx is not None:
                self._ctx.destroy(linger=0)  # term() after closing whatever socket is still open on it
            if self._tmp_dir is not None:
                shutil.rmtree(self._tmp_dir, ignore_errors=True)

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ input
    def push_audio(self, pcm: np.ndarray, capture_time: float | None = None, sample_rate: int = AUDIO_RATE) -> None:
        """Queue mono float32 PCM (any length). `capture_time`: monotonic time of its first sample.

        Other rates are resampled to 16 kHz; int16 is scaled; NaN/inf are zeroed and samples beyond
        ±1 clipped (counted in stats). Audio pushed faster than real time plays out in real time
        (up to 30 s queued; more raises AudioError).
        """
        self._check_live()
        x, resampled, sanitized = prepare_pcm(pcm, sample_rate)
        self.counts["resampled_pushes"] += int(resampled)
        if sanitized:
            if not self.counts["sanitized_pushes"]:
                log.warning("push_audio: non-finite or out-of-range samples were zeroed/clipped")
            self.counts["sanitized_pushes"] += 1
        if x.size == 0:
            return
        now = self.clock.now()
        capture = float(capture_time) if capture_time is not None else now - x.size / AUDIO_RATE
        self.timeline.push(x, capture)
        self._release(now)

    async def set_emotion(self, text: str) -> None:
        """Emotion prompt ("calm but slightly amused"); empty text raises InputError."""
        text = str(text).strip()
        if not text:
            raise InputError("the emotion prompt is empty; give a description such as 'calm' or 'happy'")
        await self._request("motion", "set_emotion", text=text)
        self._emotion = text

    async def set_style_reference(self, clip: np.ndarray | str | Path) -> None:
        """Talking style from (T, 34) coefficients on the model's scale, a .npz/.npy file of them, or a video of a
        talking face (fitted in a child process; the stream keeps its pace meanwhile). Face-tracker fits (videos,
        `s2t data fit` outputs) are mapped onto the model's scale as they are read (engine.motion.reference)."""
        if isinstance(clip, (str, Path)):
            from engine.runtime.style_ref import read_style_reference_async

            clip = await read_style_reference_async(clip)
        arr = check_style_reference(clip)
        await self._request("motion", "set_style_reference", data=arr)
        self._style = arr

    async def set_portrait(self, image: np.ndarray | str | Path | bytes) -> None:
        """New identity; raises NoFaceError (and keeps the current face) when no face is found."""
        arr = self._image(image)
        try:
            await self._request("render", "set_portrait", data=arr)
        except S2TError:
            self._broadcast("render", "set_portrait", data=self._portrait)  # keep every worker on one face
            raise
        self._portrait = arr

    async def set_art_style(self, image: np.ndarray | str | Path | bytes | None) -> None:
        """Art-style picture (None clears it)."""
        arr = None if image is None else self._image(image)
        await self._request("render", "set_art_style", data=arr)
        self._art = arr

    def interrupt(self) -> None:
        """Barge-in: drop queued speech audio and motion at once; the avatar returns to idle."""
        self._check_live()
        now = self.clock.now()
        self.timeline.clear(now)
        mark = self.timeline.next_index - 1
        self._interrupt_mark = mark
        self.playout.clear(mark)
        for k in [k for k in self._meta if k <= mark]:
            del self._meta[k]
        self._broadcast("motion", "interrupt")
        assert self._sup is not None
        for w in self._sup.by_role("motion"):
            w.inflight.clear()

    # ------------------------------------------------------------------ output
    async def frames(self) -> AsyncIterator[VideoFrame]:
        """Paced frames with their audio; ends when the engine closes. Slow readers lose old frames."""
        while True:
            while self._out:
                yield self._out.popleft()
            if self._closed:
                return
            self._out_event.clear()
            await self._out_event.wait()

    def worker_pids(self) -> dict[str, int]:
        """Process id of each active worker slot ("motion", "render-0", ...); spares are not listed."""
        assert self._sup is not None
        return {w.name: w.pid for w in self._sup.workers.values()}

    def stats(self) -> dict[str, Any]:
        """Last-second figures (latency percentiles, stage shares, fps) plus session counters."""
        p50, p95, p99 = self._e2e.percentiles()
        stages: dict[str, dict[str, float]] = {}
        means = {n: float(np.mean(v)) if (v := w.values()).size else 0.0 for n, w in self._stage_win.items()}
        total = sum(means.values()) or 1.0
        for name, win in self._stage_win.items():
            s50, s95 = win.percentiles((50.0, 95.0))
            stages[name] = {"p50": s50, "p95": s95, "share": means[name] / total}
        av = self._av.values()
        allv = np.asarray(self._e2e_all)
        pl = self.playout
        sup = self._sup
        return {
            "fps": float(len(self._emitted)) / self._emitted.window_s,
            "e2e_ms": {"p50": p50, "p95": p95, "p99": p99},
            "e2e_ms_session": {k: float(np.percentile(allv, q)) if allv.size else math.nan
                               for k, q in (("p50", 50), ("p95", 95), ("p99", 99))},
            "stages": stages,
            "stages_session": {n: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95))}
                               for n, v in self._stage_all.items() if v},
            "av_offset_ms_session": float(np.mean(np.abs(self._av_all))) if self._av_all else 0.0,
            "dropped": pl.dropped_late + pl.dropped_catchup + self.counts["dropped_busy"] + self.counts["dropped_output"],
            "dropped_by": {"late": pl.dropped_late, "catchup": pl.dropped_catchup,
                           "busy": self.counts["dropped_busy"], "output": self.counts["dropped_output"]},
            "repeated": pl.repeated,
            "underruns": pl.underruns,
            "level": self.budget.level,
            "level_name": self.budget.current.name,
            "render_size": self.budget.current.render_size(self.cfg.render.size),
            "playout_delay_ms": pl.delay_s * 1e3,
            "budget_ms": self.budget_ms,
            "motion_lag_frames": self._motion_lag,
            "av_offset_ms": float(np.mean(av)) if av.size else 0.0,
            "av_offset_ms_p50": float(np.median(av)) if av.size else 0.0,
            "queues": {
                "input_samples": self.timeline.backlog_samples,
                "playout_slots": pl.depth,
                "images_waiting": pl.images_waiting,
                "output": len(self._out),
                **{f"{w.name}_inflight": len(w.inflight) for w in (sup.workers.values() if sup else ())},
            },
            "workers": {w.name: {"pid": w.pid, "ready": w.ready, "restarts": w.restarts}
                        for w in (sup.workers.values() if sup else ())},
            "spares": {w.role: {"pid": w.pid, "ready": w.ready} for w in (sup.spares.values() if sup else ())},
            "counts": dict(self.counts),
            "silence_slots": self.timeline.silence_slots,
        }

    # ------------------------------------------------------------------ internals: requests
    def _check_live(self) -> None:
        if not self._started or self._closed or self._sup is None:
            raise InputError("the engine is not running (call and await start() first)")

    def _image(self, image: np.ndarray | str | Path | bytes) -> np.ndarray:
        from engine.face.image import as_rgb_array

        return as_rgb_array(image)

    def _control(self, op: str, seq: int, text: str, data: np.ndarray | None) -> Control:
        payload = np.zeros(0, np.uint8) if data is None else np.ascontiguousarray(data)
        return Control(self.session, seq, op, text=text, data=payload, sent_time=self.clock.now())

    def _broadcast(self, role: str, op: str, text: str = "", data: np.ndarray | None = None) -> None:
        """Fire-and-forget control to every worker of `role` (seq 0: no acknowledgement)."""
        self._check_live()
        assert self._sup is not None and self._sock is not None
        for w in self._sup.by_role(role):
            self._send(w, self._control(op, 0, text, data))

    async def _request(self, role: str, op: str, text: str = "", data: np.ndarray | None = None) -> None:
        """Send a control to every worker of `role` and await their acknowledgements."""
        self._check_live()
        assert self._sup is not None and self._sock is not None
        targets = self._sup.by_role(role)
        waiting = [w.ready_future for w in targets if not w.ready and w.ready_future is not None]
        if waiting:  # a worker is restarting: let it come up first
            await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), START_TIMEOUT_S)
        seq = next(self._seq)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        pending = {w.name for w in targets if w.ready}
        errs: list[str] = []
        self._acks[seq] = (fut, pending, errs)
        for w in targets:
            if w.ready:
                self._send(w, self._control(op, seq, text, data))
        if not pending:
            fut.set_result(None)
        try:
            await asyncio.wait_for(fut, REQUEST_TIMEOUT_S)
        except TimeoutError:
            raise errors.DeviceUnavailableError(f"{role} workers did not answer {op} in {REQUEST_TIMEOUT_S:.0f} s") from None
        finally:
            self._acks.pop(seq, None)
        if errs:
            raise error_from_text(errs[0])

    def _ack(self, name: str, seq: int, error: str | None) -> None:
        entry = self._acks.get(seq)
        if entry is None:
            return
        fut, pending, errs = entry
        pending.discard(name)
        if error:
            errs.append(error)
        if not pending and not fut.done():
            fut.set_result(None)

    def _on_worker_exit(self, w: WorkerHandle, code: int | None) -> None:
        self.counts["restarts"] += 0 if self._closed else 1
        for seq in list(self._acks):
            self._ack(w.name, seq, None)

    def _on_promote(self, w: WorkerHandle) -> None:
        self.counts["failovers"] += 1
        self._replay(w)

    def _replay(self, w: WorkerHandle) -> None:
        """Bring a (re)started worker to the session's current state before it gets work."""
        assert self._sock is not None
        quality = self._control("set_quality", 0, json.dumps(asdict(self.budget.current)), None)
        msgs: list[Control] = [quality]
        if w.role == "motion":
            if self._emotion is not None:
                msgs.append(self._control("set_emotion", 0, self._emotion, None))
            if self._style is not None:
                msgs.append(self._control("set_style_reference", 0, "", self._style))
        else:
            if self._portrait is not None:
                msgs.append(self._control("set_portrait", 0, "", self._portrait))
            if self._art is not None:
                msgs.append(self._control("set_art_style", 0, "", self._art))
        for m in msgs:
            self._send(w, m)

    def _send(self, w: WorkerHandle, msg: Message) -> None:
        """Send to worker `w` in order; what its pipe cannot take now waits in its outbox (sent each tick)."""
        assert self._sock is not None
        if self._flush(w) and transport.send_nowait(self._sock, msg, w.identity):
            return
        if len(w.outbox) >= OUTBOX_MAX:
            w.outbox.popleft()
            self.counts["dropped_outbox"] += 1
        w.outbox.append(msg)

    def _flush(self, w: WorkerHandle) -> bool:
        """Send what waits in `w`'s outbox; True when it is empty."""
        assert self._sock is not None
        while w.outbox:
            if not transport.send_nowait(self._sock, w.outbox[0], w.identity):  # type: ignore[arg-type]
                return False
            w.outbox.popleft()
        return True

    # ------------------------------------------------------------------ internals: message flow
    async def _recv_loop(self) -> None:
        assert self._sock is not None and self._sup is not None
        while True:
            frames = await self._sock.recv_multipart(copy=False)
            try:
                sender, msg = transport.decode_routed(frames)
            except (ValueError, KeyError, TypeError) as e:
                log.warning("dropping a malformed message: %s", e)
                continue
            w = self._sup.lookup(sender)
            if w is not None:
                w.heard()
                self._handle(w, msg)

    def _handle(self, w: WorkerHandle, msg: Message) -> None:
        now = self.clock.now()
        if isinstance(msg, Control):
            if msg.op == "ready":
                assert self._sup is not None
                if not w.spare:  # a spare gets the session state when it takes a slot over
                    self._replay(w)
                else:  # its start-up competed for CPU: latencies until now say little about the ladder
                    self.budget.restart_warmup()
                self._sup.mark_ready(w)
                log.info("%s ready (pid %d) %.2f s after spawn", w.name, w.pid, now - w.spawned_at)
            elif msg.op == "error" and msg.seq == 0:
                log.error("%s failed to start: %s", w.name, msg.text)
                if w.ready_future is not None and not w.ready_future.done():
                    w.ready_future.set_exception(error_from_text(msg.text))
                    w.ready_future.exception()  # retrieved here; start() re-raises it
            elif msg.op in ("pong", "error"):
                self._ack(w.name, msg.seq, msg.text if msg.op == "error" else None)
        elif isinstance(msg, MotionChunk):
            w.answered = True
            self._on_motion(w, msg, now)
        elif isinstance(msg, VideoFrame):
            w.answered = True
            self._on_video(w, msg, now)

    def _on_motion(self, w: WorkerHandle, msg: MotionChunk, now: float) -> None:
        assert self._sup is not None and self._sock is not None
        self._forget_lost(w, msg.seq + msg.lag)  # the worker's bookkeeping is by the audio it was sent
        if msg.lag != self._motion_lag:
            self._hold_audio(msg.lag)
        level = self.budget.current
        for i in range(len(msg.coeffs)):
            idx = msg.seq + i  # the audio frame this row depicts
            w.inflight.pop(idx + msg.lag, None)
            if idx < 0:
                continue  # a lookahead stage's first rows depict audio before the session began
            if idx <= self._interrupt_mark or idx not in self._meta:
                self.counts["discarded_interrupt"] += 1
                continue
            ms = dict(msg.timings).get("motion", 0.0) / max(1, len(msg.coeffs))
            self._stage("motion", ms)
            if idx <= self.playout.played_until:
                self.playout.dropped_late += 1
                continue
            if not level.renders(idx):
                self.counts["skipped_ladder"] += 1  # this level renders fewer frames: the last one repeats
                continue
            free = [r for r in self._sup.by_role("render") if r.ready and len(r.inflight) < MAX_RENDER_INFLIGHT]
            if not free:
                self.counts["dropped_busy"] += 1
                self.budget.observe_drop()
                continue
            r = min(free, key=lambda x: len(x.inflight))
            one = replace(msg, seq=idx, pts=video_pts(idx, self.cfg.fps), coeffs=msg.coeffs[i : i + 1],
                          speech=msg.speech[i : i + 1], timings=(("motion", ms),))
            if transport.send_nowait(self._sock, one, r.identity):
                r.inflight[idx] = now
            else:
                self.counts["dropped_busy"] += 1

    def _hold_audio(self, lag: int) -> None:
        """The motion stage's lookahead is `lag` frames: its pictures come that much later after their audio,
        so the playout starts out waiting that much longer (it adapts from measured lateness after that)."""
        extra = (lag - self._motion_lag) / self.cfg.fps
        self._motion_lag = lag
        self.playout.delay_s = min(max(self.playout.delay_s + extra, 1.5 / self.cfg.fps), self._max_delay_s)
        log.info("motion lookahead %d frames: playout delay %.0f ms", lag, self.playout.delay_s * 1e3)

    def _forget_lost(self, w: WorkerHandle, seq: int) -> None:
        """A worker answers in order: work sent before `seq` and still outstanding was lost (its HWM)."""
        if w.inflight and min(w.inflight) < seq:
            for k in [k for k in w.inflight if k < seq]:
                del w.inflight[k]
                self.counts["lost_in_worker"] += 1

    def _on_video(self, w: WorkerHandle, msg: VideoFrame, now: float) -> None:
        self._forget_lost(w, msg.seq)
        w.inflight.pop(msg.seq, None)
        slot = self._meta.get(msg.seq)
        if slot is None or msg.seq <= self._interrupt_mark:
            self.counts["discarded_interrupt"] += 1
            return
        frame = msg
        size = self.cfg.render.size
        if msg.image.shape[0] != size or msg.image.shape[1] != size:
            import cv2

            frame = replace(msg, image=cv2.resize(np.asarray(msg.image), (size, size), interpolation=cv2.INTER_LINEAR))
        since_release = (now - slot.release_time) * 1e3
        self._ready_lag.add(since_release)  # late ones too: they are what the playout delay must cover
        if not self.playout.add_image(msg.seq, frame):
            if self.playout.delay_s >= self._max_delay_s - 1e-3:
                self.budget.observe_drop()  # late although the playout already waits all it may
            return
        e2e = (now - slot.capture_time) * 1e3
        self._e2e.add(e2e)
        self._e2e_all.append(e2e)
        self.budget.observe(e2e)
        t = dict(msg.timings)
        motion, render = t.get("motion", 0.0), t.get("render", 0.0)
        self._stage("buffer", (slot.release_time - slot.capture_time) * 1e3)
        self._stage("render", render)
        self._stage("transport", max(0.0, since_release - motion - render))

    def _stage(self, name: str, ms: float) -> None:
        win = self._stage_win.get(name)
        if win is None:
            win = self._stage_win[name] = RollingWindow(self.clock, 1.0)
        win.add(ms)
        self._stage_all.setdefault(name, deque(maxlen=SESSION_KEEP)).append(ms)

    def _release(self, now: float) -> None:
        assert self._sup is not None and self._sock is not None
        motion = self._sup.workers["motion"]
        for slot in self.timeline.release(now):
            self.playout.add_slot(slot)
            self._meta[slot.index] = slot
            speech = False if slot.silence else self._speech(slot.samples)
            if slot.silence and self._vad is not None:
                self._vad.reset()
            if not motion.ready:
                continue
            chunk = AudioChunk(self.session, slot.index, slot.index * self.samples_per_frame,
                               slot.capture_time, slot.samples, AUDIO_RATE, speech)
            self._send(motion, chunk)  # never dropped: the motion stream needs every audio frame
            motion.inflight[slot.index] = now

    def _speech(self, samples: np.ndarray) -> bool:
        if self._vad is None:
            return True
        x = np.concatenate([self._vad_carry, samples]) if self._vad_carry.size else samples
        n = self._vad.n
        k = x.size // n
        flags = [self._vad.push(x[i * n : (i + 1) * n]) for i in range(k)]
        self._vad_carry = x[k * n :].copy()
        return any(flags)

    # ------------------------------------------------------------------ internals: pacing
    async def _tick_loop(self) -> None:
        assert self._sup is not None
        self._pacer = Pacer(self.cfg.fps, self.clock)
        while True:
            k = await self._pacer.wait()
            now = self.clock.now()
            for w in self._sup.handles():
                self._flush(w)
            self._release(now)
            self._emit(k, now)
            self._sup.check_hung(self.cfg.runtime.worker_timeout_s, max_step_s=2.0 / self.cfg.fps)
            self._ticks += 1
            if self._ticks % max(1, int(self.cfg.fps)) == 0:
                self._adapt(now)

    def _emit(self, k: int, now: float) -> None:
        em, image = self.playout.tick(now)
        for idx in [i for i in self._meta if i <= self.playout.played_until - 2 * int(self.cfg.fps)]:
            del self._meta[idx]  # keep the table bounded (a couple of seconds of history)
        if not isinstance(image, VideoFrame):
            return  # nothing rendered yet: the first frame has not arrived
        out = VideoFrame(
            session=self.session, seq=k, pts=video_pts(k, self.cfg.fps),
            capture_time=em.capture_time if not math.isnan(em.capture_time) else image.capture_time,
            image=image.image, audio=em.audio, coeffs=image.coeffs, timings=image.timings, repeated=em.repeated,
        )
        if em.slot_index >= 0:
            offset = (em.slot_index - em.image_index) * 1e3 / self.cfg.fps
            self._av.add(offset)
            self._av_all.append(offset)
        self.counts["frames_out"] += 1
        self.counts["fresh_out"] += 0 if em.repeated else 1
        self._emitted.add(1.0)
        if len(self._out) >= OUTPUT_DEPTH:
            self._out.popleft()
            self.counts["dropped_output"] += 1
        self._out.append(out)
        self._out_event.set()

    def _adapt(self, now: float) -> None:
        """Once a second: playout delay from measured lateness; quality ladder from the budget."""
        lag = self._ready_lag.values()
        if lag.size >= 5:
            want = min(float(np.percentile(lag, 95)) / 1e3 + 0.005, self._max_delay_s)
            d = self.playout.delay_s
            self.playout.delay_s = want if want > d else max(want, d - 0.005)
        if self._pacer is not None:
            self.counts["ticks_missed"] = self._pacer.missed
        level = self.budget.update()
        if level != self._level:
            self._level = level
            log.info("quality ladder -> %d (%s), p95 %.0f ms", level, self.budget.current.name, self.budget.p95())
            q = json.dumps(asdict(self.budget.current))
            self._broadcast("motion", "set_quality", text=q)
            self._broadcast("render", "set_quality", text=q)
