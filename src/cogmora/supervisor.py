"""Owns every long-running task: restarts it with backoff when it dies, reports it in /healthz.

A worker that silently lost its settlement loop would keep marking positions `closing`
that nobody settles; here a crashed task is logged, counted, restarted, and visible: a
task that keeps crashing for more than `GRACE_SECONDS` makes the process unhealthy.

The supervisor also gathers the components' health probes into one `Verdict`
(cogmora.health), which `/healthz`, the probe server and the `/metrics` gauges all read.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cogmora.errors import Fatal
from cogmora.health import GRACE_SECONDS, Problem, Report, Verdict

log = structlog.get_logger("cogmora.supervisor")

HealthProbe = Callable[[], Report]


@dataclass(slots=True)
class TaskState:
    name: str
    running: bool = False
    restarts: int = 0
    last_error: str | None = None
    started_at: float = field(default_factory=time.monotonic)  # of the current run
    failing_since: float | None = None  # first crash of the current run of crashes

    def problem(self, now: float) -> Problem | None:
        """Crashing for longer than the grace, and not yet running steadily again."""
        since = self.failing_since
        if since is None:
            return None
        if self.running and now - self.started_at >= GRACE_SECONDS:
            self.failing_since = None  # it has run steadily since its last restart
            return None
        if now - since <= GRACE_SECONDS:
            return None
        return Problem(
            "task_failing",
            self.name,
            f"task {self.name} has been crashing for {now - since:.1f} s "
            f"({self.restarts} restarts; last error: {self.last_error})",
        )


class Supervisor:
    def __init__(
        self, max_backoff: float = 30.0, registry: CollectorRegistry | None = None
    ) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._states: dict[str, TaskState] = {}
        self._probes: dict[str, HealthProbe] = {}
        self._max_backoff = max_backoff
        self._born = time.monotonic()
        self.fatal: asyncio.Future[BaseException] | None = None
        # What the process as a whole is doing: None while running normally, else a
        # sentence such as "starting" or "stopping", which is itself a reason for a 503.
        self.phase: str | None = None
        if registry is not None:
            registry.register(HealthCollector(self))

    def add_probe(self, name: str, probe: HealthProbe) -> None:
        self._probes[name] = probe

    def start(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        state = self._states[name] = TaskState(name)
        if self.fatal is None:
            self.fatal = asyncio.get_running_loop().create_future()
        self._tasks[name] = asyncio.create_task(self._keep(state, factory), name=name)

    def names(self) -> list[str]:
        return list(self._tasks)

    async def _keep(self, state: TaskState, factory: Callable[[], Awaitable[None]]) -> None:
        delay = 0.1
        while True:
            state.running = True
            state.started_at = began = time.monotonic()
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
                if state.failing_since is None or time.monotonic() - began >= GRACE_SECONDS:
                    state.failing_since = time.monotonic()
                log.exception("task crashed; restarting", task=state.name, delay=delay)
            if time.monotonic() - began > 60:
                delay = 0.1
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self._max_backoff)

    # ---------------------------------------------------------------- health

    def check(self) -> Verdict:
        """Every probe and task, judged now."""
        now = time.monotonic()
        problems: list[Problem] = []
        if self.phase is not None:
            problems.append(Problem("phase", "process", self.phase))
        tasks = {
            s.name: {"running": s.running, "restarts": s.restarts, "lastError": s.last_error}
            for s in self._states.values()
        }
        problems += [p for s in self._states.values() if (p := s.problem(now)) is not None]
        details: dict[str, Any] = {"tasks": tasks}
        recovering: list[str] = []
        for name, probe in self._probes.items():
            try:
                report = probe()
            except Exception as exc:  # a broken probe must not break /healthz
                details[name] = {"error": str(exc)}
                problems.append(Problem("probe_failed", name, f"health probe {name}: {exc}"))
                continue
            details[name] = report.body
            problems += report.problems
            recovering += report.recovering
        return Verdict(tuple(problems), tuple(sorted(set(recovering))), details)

    def health(self) -> dict[str, Any]:
        return self.check().body()

    def liveness(self) -> dict[str, Any]:
        """The event loop answers: that is all /livez claims."""
        return {"status": "alive", "uptimeSeconds": round(time.monotonic() - self._born, 3)}

    # ---------------------------------------------------------------- stopping

    async def cancel(self, names: Iterable[str]) -> None:
        """Stop these tasks (cancelled at their next await) and wait until they have."""
        tasks = [self._tasks.pop(n) for n in list(names) if n in self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_finished(self, name: str, within: float) -> bool:
        """Wait for a task to end by itself; False if it is still running after `within` s."""
        task = self._tasks.get(name)
        if task is None:
            return True
        done, _ = await asyncio.wait({task}, timeout=max(0.0, within))
        if done:
            self._tasks.pop(name, None)
        return bool(done)

    async def stop(self) -> None:
        await self.cancel(list(self._tasks))


class HealthCollector(Collector):
    """The verdict as Prometheus gauges, judged at each scrape: `cogmora_healthy`,
    `cogmora_health_recovering_symbols`, and `cogmora_health_problem{code,subject}` (1 while
    the problem lasts, 0 once it has cleared, so an alert can see it go)."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        self._seen: set[tuple[str, str]] = set()

    def collect(self) -> Iterator[Metric]:
        verdict = self._supervisor.check()
        healthy = GaugeMetricFamily(
            "cogmora_healthy", "1 when /healthz answers 200 (ok or recovering), else 0"
        )
        healthy.add_metric([], 1.0 if verdict.http_status == 200 else 0.0)
        yield healthy
        recovering = GaugeMetricFamily(
            "cogmora_health_recovering_symbols", "Symbols whose feed gap is being replayed"
        )
        recovering.add_metric([], float(len(verdict.recovering)))
        yield recovering
        active = {(p.code, p.subject) for p in verdict.problems}
        self._seen |= active
        problem = GaugeMetricFamily(
            "cogmora_health_problem",
            "1 while a /healthz reason holds (feed_disconnected, feed_silent, commits_failing, "
            "book_lag, task_failing, phase, probe_failed, store_unreachable), by what it concerns",
            labels=["code", "subject"],
        )
        for key in sorted(self._seen):
            problem.add_metric(list(key), 1.0 if key in active else 0.0)
        yield problem
