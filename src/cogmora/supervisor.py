"""Owns every long-running task: restarts it with backoff when it dies, reports it in /healthz.

A worker that silently lost its settlement loop would keep marking positions `closing`
that nobody settles; here a crashed task is logged, counted, restarted, and visible.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from cogmora.errors import Fatal

log = structlog.get_logger("cogmora.supervisor")

HealthProbe = Callable[[], dict[str, Any]]


@dataclass(slots=True)
class TaskState:
    name: str
    running: bool = False
    restarts: int = 0
    last_error: str | None = None
    started_at: float = field(default_factory=time.time)


class Supervisor:
    def __init__(self, max_backoff: float = 30.0) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._states: dict[str, TaskState] = {}
        self._probes: dict[str, HealthProbe] = {}
        self._max_backoff = max_backoff
        self.fatal: asyncio.Future[BaseException] | None = None

    def add_probe(self, name: str, probe: HealthProbe) -> None:
        self._probes[name] = probe

    def start(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        state = self._states[name] = TaskState(name)
        if self.fatal is None:
            self.fatal = asyncio.get_running_loop().create_future()
        self._tasks[name] = asyncio.create_task(self._keep(state, factory), name=name)

    async def _keep(self, state: TaskState, factory: Callable[[], Awaitable[None]]) -> None:
        delay = 0.1
        while True:
            state.running = True
            began = time.monotonic()
            try:
                await factory()
                log.info("task finished", task=state.name)
                state.running = False
                return
            except asyncio.CancelledError:
                state.running = False
                raise
            except Fatal as exc:
                state.running = False
                state.last_error = str(exc)
                log.error("task failed fatally", task=state.name, error=str(exc))
                if self.fatal is not None and not self.fatal.done():
                    self.fatal.set_result(exc)
                return
            except Exception as exc:
                state.running = False
                state.restarts += 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("task crashed; restarting", task=state.name, delay=delay)
            if time.monotonic() - began > 60:
                delay = 0.1
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self._max_backoff)

    def health(self) -> dict[str, Any]:
        tasks = {
            s.name: {"running": s.running, "restarts": s.restarts, "lastError": s.last_error}
            for s in self._states.values()
        }
        out: dict[str, Any] = {"tasks": tasks}
        for name, probe in self._probes.items():
            try:
                out[name] = probe()
            except Exception as exc:  # a broken probe must not break /healthz
                out[name] = {"error": str(exc)}
        healthy = all(s.running or s.last_error is None for s in self._states.values())
        out["status"] = "ok" if healthy else "degraded"
        return out

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
