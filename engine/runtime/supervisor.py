"""Worker handles for the hub: spawn, notice death (process sentinel) or hangs, kill and restart.

Death is noticed without polling: the process sentinel is watched by the event loop. A hang is a
worker that has had work outstanding for longer than `worker_timeout_s`; the hub checks this on
its pacing tick and calls `kill()`, after which the sentinel path restarts it like any death.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Callable

from engine.config import EngineConfig
from engine.runtime.workers import spawn_worker

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WorkerHandle:
    """The hub's view of one worker process (mutable: it changes with every restart)."""

    name: str
    role: str
    proc: BaseProcess | None = None
    ready: bool = False
    pid: int = 0
    restarts: int = 0
    spawned_at: float = 0.0
    ready_at: float = 0.0
    inflight: dict[int, float] = field(default_factory=dict)  # frame index -> send time
    ready_future: asyncio.Future[None] | None = None

    @property
    def identity(self) -> bytes:
        return self.name.encode()

    def oldest_inflight(self) -> float | None:
        return min(self.inflight.values()) if self.inflight else None


class Supervisor:
    """Owns the worker processes of one engine: start, watch, restart, stop."""

    def __init__(
        self,
        cfg: EngineConfig,
        endpoint: str,
        now: Callable[[], float],
        on_exit: Callable[[WorkerHandle, int | None], None],
    ) -> None:
        self.cfg = cfg
        self.endpoint = endpoint
        self.now = now
        self.on_exit = on_exit
        self.closing = False
        self.workers: dict[str, WorkerHandle] = {"motion": WorkerHandle("motion", "motion")}
        for i in range(max(1, cfg.runtime.render_workers)):
            self.workers[f"render-{i}"] = WorkerHandle(f"render-{i}", "render")

    def by_role(self, role: str) -> list[WorkerHandle]:
        return [w for w in self.workers.values() if w.role == role]

    def spawn(self, w: WorkerHandle) -> None:
        loop = asyncio.get_running_loop()
        w.ready = False
        w.inflight.clear()
        w.ready_future = loop.create_future()
        w.proc = spawn_worker(w.role, w.name, self.endpoint, self.cfg)
        w.pid = w.proc.pid or 0
        w.spawned_at = self.now()
        loop.add_reader(w.proc.sentinel, self._exited, w, w.proc)
        log.info("started %s (pid %d)", w.name, w.pid)

    def _exited(self, w: WorkerHandle, proc: BaseProcess) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(proc.sentinel)
        proc.join()  # the sentinel is readable: it has exited, this only reaps it
        code = proc.exitcode
        if w.proc is not proc:
            return
        w.ready = False
        w.inflight.clear()
        self.on_exit(w, code)
        if w.ready_future is not None and not w.ready_future.done():
            w.ready_future.set_exception(RuntimeError(f"{w.name} exited with code {code} before it was ready"))
        if self.closing:
            w.proc = None
            return
        log.warning("%s (pid %d) exited with code %s; restarting", w.name, w.pid, code)
        w.restarts += 1
        self.spawn(w)

    def kill(self, w: WorkerHandle, reason: str) -> None:
        """Kill a worker (hung or misbehaving); the exit path restarts it."""
        if w.proc is not None and w.proc.is_alive():
            log.warning("killing %s (pid %d): %s", w.name, w.pid, reason)
            w.ready = False
            w.proc.kill()

    def check_hung(self, timeout_s: float) -> None:
        now = self.now()
        for w in self.workers.values():
            oldest = w.oldest_inflight()
            if w.ready and oldest is not None and now - oldest > timeout_s:
                self.kill(w, f"no reply for {now - oldest:.2f} s with work outstanding")

    async def stop(self, timeout_s: float = 3.0) -> None:
        """Ask nicely has been done by the caller (stop messages); wait for exits, kill stragglers."""
        self.closing = True
        loop = asyncio.get_running_loop()
        waits = []
        for w in self.workers.values():
            if w.proc is not None and w.proc.exitcode is None:
                fut: asyncio.Future[None] = loop.create_future()
                proc = w.proc
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
        for w in self.workers.values():
            if w.proc is not None:  # already exited: just reap
                loop.remove_reader(w.proc.sentinel)
                w.proc.join()
                w.proc.close()
                w.proc = None
