"""Worker handles for the hub: spawn, notice death (process sentinel) or hangs, fail over, restart.

Death is noticed without polling: each process sentinel is watched by the event loop. A hang is a
worker that has had work pending for longer than `worker_timeout_s` without a word; only time
with work pending counts, and each hub tick adds at most `max_step_s`, so a hub starved by a busy
machine does not mistake its own lateness for a hung worker; a fresh process's first work item gets
`FIRST_WORK_GRACE` timeouts (warm-up). The hub then calls `kill()`, and the exit path handles it
like any death.

With `runtime.standby` on, every role has one warm spare: a spawned worker with its stage built,
connected and ready but given no work. When an active worker dies its slot takes the spare over at
once (the hub replays the session state to it) and a new spare is spawned a little later, so the
stream resumes in about a frame instead of a process start. Every process gets its own routing id
(`name.generation`), so nothing still queued from a dead process is mistaken for its successor.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Callable

from engine.config import EngineConfig
from engine.runtime.workers import ROLES, spawn_worker

log = logging.getLogger(__name__)

SPARE_DELAY_S = 2.0  # after a failover, let the promoted worker settle before a new spare competes for CPU
# A fresh process's first work item may take much longer (lazy initialisation, and other processes
# starting beside it on a small machine): it gets this many timeouts before it counts as hung.
FIRST_WORK_GRACE = 3.0


@dataclass(slots=True)
class WorkerHandle:
    """The hub's view of one worker slot (mutable: its process changes with every restart)."""

    name: str
    role: str
    spare: bool = False
    proc: BaseProcess | None = None
    ready: bool = False
    pid: int = 0
    restarts: int = 0
    generation: int = 0
    identity: bytes = b""  # routing id of the current process
    spawned_at: float = 0.0
    ready_at: float = 0.0
    inflight: dict[int, float] = field(default_factory=dict)  # frame index -> send time
    # messages for the current process that its pipe could not take yet (sent in order, first, next tick)
    outbox: deque[object] = field(default_factory=deque)
    ready_future: asyncio.Future[None] | None = None
    pending_s: float = 0.0  # time with work pending since the worker was last heard from
    checked_at: float = 0.0
    answered: bool = False  # it has returned work at least once (its warm-up is over)

    def heard(self) -> None:
        """The worker sent something: it is alive and making progress."""
        self.pending_s = 0.0


class Supervisor:
    """Owns the worker processes of one engine: start, watch, fail over, restart, stop."""

    def __init__(
        self,
        cfg: EngineConfig,
        endpoint: str,
        now: Callable[[], float],
        on_exit: Callable[[WorkerHandle, int | None], None],
        on_promote: Callable[[WorkerHandle], None] | None = None,
        cache_dir: str = "",
    ) -> None:
        self.cfg = cfg
        self.endpoint = endpoint
        self.now = now
        self.on_exit = on_exit
        self.on_promote = on_promote
        self.cache_dir = cache_dir
        self.closing = False
        self.failovers = 0
        self.workers: dict[str, WorkerHandle] = {"motion": WorkerHandle("motion", "motion")}
        for i in range(max(1, cfg.runtime.render_workers)):
            self.workers[f"render-{i}"] = WorkerHandle(f"render-{i}", "render")
        self.spares: dict[str, WorkerHandle] = {}
        if cfg.runtime.standby:
            self.spares = {r: WorkerHandle(f"spare-{r}", r, spare=True) for r in ("motion", "render")}
        self._by_id: dict[bytes, WorkerHandle] = {}
        self._spare_timers: dict[str, asyncio.TimerHandle] = {}

    def by_role(self, role: str) -> list[WorkerHandle]:
        return [w for w in self.workers.values() if w.role == role]

    def handles(self) -> list[WorkerHandle]:
        """Active slots and spares."""
        return [*self.workers.values(), *self.spares.values()]

    def lookup(self, identity: bytes | str) -> WorkerHandle | None:
        """The handle whose current process has routing id `identity` (None for a dead or unknown one)."""
        key = identity.encode() if isinstance(identity, str) else identity
        return self._by_id.get(key)

    def spawn(self, w: WorkerHandle) -> None:
        loop = asyncio.get_running_loop()
        self._by_id.pop(w.identity, None)
        w.generation += 1
        w.identity = f"{w.name}.{w.generation}".encode()
        w.ready = False
        w.answered = False
        w.inflight.clear()
        w.outbox.clear()
        w.pending_s = 0.0
        w.ready_future = loop.create_future()
        w.proc = spawn_worker(w.role, w.identity.decode(), self.endpoint, self.cfg, self.cache_dir)
        w.pid = w.proc.pid or 0
        w.spawned_at = w.checked_at = self.now()
        self._by_id[w.identity] = w
        loop.add_reader(w.proc.sentinel, self._exited, w, w.proc)
        log.info("started %s (pid %d)", w.name, w.pid)

    def start_spares(self, roles: tuple[str, ...] = ROLES) -> list[asyncio.Future[None]]:
        """Spawn the spares of `roles` that are not running; returns their ready futures."""
        futs = []
        for role, s in self.spares.items():
            if role in roles and s.proc is None and not self.closing:
                self.spawn(s)
                assert s.ready_future is not None
                futs.append(s.ready_future)
        return futs

    def mark_ready(self, w: WorkerHandle) -> None:
        w.ready, w.ready_at = True, self.now()
        w.pending_s, w.checked_at = 0.0, w.ready_at
        if w.ready_future is not None and not w.ready_future.done():
            w.ready_future.set_result(None)

    def _exited(self, w: WorkerHandle, proc: BaseProcess) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(proc.sentinel)
        proc.join()  # the sentinel is readable: it has exited, this only reaps it
        code = proc.exitcode
        proc.close()
        if w.proc is not proc:
            return
        was_ready = w.ready or w.ready_at >= w.spawned_at > 0
        self._by_id.pop(w.identity, None)
        w.proc = None
        w.ready = False
        w.inflight.clear()
        w.outbox.clear()
        if w.ready_future is not None and not w.ready_future.done():
            w.ready_future.set_exception(RuntimeError(f"{w.name} exited with code {code} before it was ready"))
            w.ready_future.exception()  # retrieved here: whoever awaits it sees it too
        if self.closing:
            return
        if w.spare:
            if was_ready:
                log.warning("spare %s (pid %d) exited with code %s; replacing it", w.name, w.pid, code)
                self._spawn_spare_later(w.role)
            else:
                log.error("spare %s exited with code %s before it was ready; running without a spare", w.name, code)
            return
        self.on_exit(w, code)
        w.restarts += 1
        spare = self.spares.get(w.role)
        if spare is not None and spare.ready and spare.proc is not None:
            log.warning("%s (pid %d) exited with code %s; the warm spare (pid %d) takes over",
                        w.name, w.pid, code, spare.pid)
            self._promote(w, spare)
            self._spawn_spare_later(w.role)
            return
        log.warning("%s (pid %d) exited with code %s; restarting", w.name, w.pid, code)
        self.spawn(w)

    def _promote(self, w: WorkerHandle, spare: WorkerHandle) -> None:
        loop = asyncio.get_running_loop()
        proc = spare.proc
        assert proc is not None
        self._by_id.pop(spare.identity, None)
        loop.remove_reader(proc.sentinel)
        w.proc, w.pid, w.identity = proc, spare.pid, spare.identity
        w.spawned_at = spare.spawned_at
        w.answered = False
        w.inflight.clear()
        w.outbox.clear()
        w.ready_future = loop.create_future()
        self._by_id[w.identity] = w
        loop.add_reader(proc.sentinel, self._exited, w, proc)
        spare.proc, spare.ready, spare.pid, spare.identity = None, False, 0, b""
        self.failovers += 1
        self.mark_ready(w)
        if self.on_promote is not None:
            self.on_promote(w)

    def _spawn_spare_later(self, role: str) -> None:
        spare = self.spares.get(role)
        if spare is None or role in self._spare_timers:
            return

        def go() -> None:
            self._spare_timers.pop(role, None)
            if not self.closing and spare.proc is None:
                self.spawn(spare)

        self._spare_timers[role] = asyncio.get_running_loop().call_later(SPARE_DELAY_S, go)

    def kill(self, w: WorkerHandle, reason: str) -> None:
        """Kill a worker (hung or misbehaving); the exit path fails over or restarts it."""
        if w.proc is not None and w.proc.is_alive():
            log.warning("killing %s (pid %d): %s", w.name, w.pid, reason)
            w.ready = False
            w.proc.kill()

    def check_hung(self, timeout_s: float, max_step_s: float) -> None:
        """Count pending time (at most `max_step_s` per call) and kill workers pending past `timeout_s`."""
        now = self.now()
        for w in self.workers.values():
            step = min(max(0.0, now - w.checked_at), max_step_s)
            w.checked_at = now
            if not w.ready or not w.inflight:
                w.pending_s = 0.0
                continue
            w.pending_s += step
            if w.pending_s > (timeout_s if w.answered else timeout_s * FIRST_WORK_GRACE):
                self.kill(w, f"{w.pending_s:.2f} s with work pending and no reply")

    async def stop(self, timeout_s: float = 3.0) -> None:
        """Stop messages were sent by the caller to ready workers; wait for exits, kill the rest."""
        self.closing = True
        for t in self._spare_timers.values():
            t.cancel()
        self._spare_timers.clear()
        loop = asyncio.get_running_loop()
        waits = []
        for w in self.handles():
            proc = w.proc
            if proc is None:
                continue
            if not w.ready and proc.exitcode is None:
                proc.kill()  # not serving yet (a spare or a restart still starting): nothing to finish
            fut: asyncio.Future[None] = loop.create_future()
            loop.remove_reader(proc.sentinel)
            loop.add_reader(proc.sentinel, lambda f=fut: f.done() or f.set_result(None))
            waits.append((w, proc, fut))
        for w, proc, fut in waits:
            try:
                await asyncio.wait_for(fut, timeout_s)
            except TimeoutError:
                log.warning("%s did not stop in %.1f s; killing it", w.name, timeout_s)
                proc.kill()
                fut2: asyncio.Future[None] = loop.create_future()
                loop.remove_reader(proc.sentinel)
                loop.add_reader(proc.sentinel, lambda f=fut2: f.done() or f.set_result(None))
                await asyncio.wait_for(fut2, timeout_s)
            finally:
                loop.remove_reader(proc.sentinel)
            proc.join()
            proc.close()
            w.proc = None
            w.ready = False
        self._by_id.clear()
