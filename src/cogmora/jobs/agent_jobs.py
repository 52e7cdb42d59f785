"""The agent side of the scheduler: claim due agents, run them concurrently, complete them.

The loop claims only as many slots as it has free run slots, so a lease is never ticking
on a claim that is still waiting in a queue: with `concurrency` runs in flight, each
claim's lease starts when its run can start. A completion that cannot be written (the
store is down) is retried a few times; if it still fails, the lease expires and another
claim retries the slot, which is safe because the run's actions are idempotent per slot.

Stopping (SIGTERM) is a drain, not a cut: `stop_claiming` ends the claiming loop, and
`run_forever` returns once the runs already in flight have finished and completed their
slots. Only what is still running when the drain's deadline comes is cancelled with it;
its lease retries that slot later.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import structlog

from cogmora.domain.agent import AgentConfig, AgentDecision
from cogmora.errors import CogmoraError, Temporary
from cogmora.jobs.agent.runner import AgentRunner, RunRequest, failed, slot_decision_id
from cogmora.jobs.metrics import JobsMetrics
from cogmora.jobs.scheduler import Claim, Completion, SlotScheduler, describe
from cogmora.services.clock import Clock
from cogmora.store.paths import split
from cogmora.waits import woken_within

log = structlog.get_logger("cogmora.jobs.agent")
JOB = "agent"


@dataclass(slots=True)
class AgentJobsStats:
    claimed: int = 0
    retried: int = 0
    completed: int = 0
    failed: int = 0
    lost_leases: int = 0
    last_error: str | None = None
    in_flight: set[asyncio.Task[AgentDecision]] = field(default_factory=set)

    def health(self) -> dict[str, object]:
        return {
            "claimed": self.claimed,
            "retried": self.retried,
            "completed": self.completed,
            "failedRuns": self.failed,
            "lostLeases": self.lost_leases,
            "inFlight": len(self.in_flight),
            "lastError": self.last_error,
        }


class CompletionBatcher:
    """Completions that arrive while one is being written go out together, in one
    transaction: sixty-four runs finishing at once cost one commit, not sixty-four."""

    def __init__(self, scheduler: SlotScheduler, clock: Clock, max_batch: int = 200) -> None:
        self._scheduler = scheduler
        self._clock = clock
        self._max = max_batch
        self._pending: list[tuple[Completion, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def complete(self, done: Completion) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((done, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            try:
                results = await self._scheduler.complete(
                    [done for done, _ in batch], self._clock.now()
                )
            except Exception as exc:  # each caller decides whether to retry
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), mine in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(mine)


class AgentJobs:
    def __init__(
        self,
        scheduler: SlotScheduler,
        runner: AgentRunner,
        clock: Clock,
        *,
        concurrency: int = 32,
        poll_seconds: float = 1.0,
        metrics: JobsMetrics | None = None,
    ) -> None:
        self._scheduler = scheduler
        self._runner = runner
        self._clock = clock
        self._concurrency = max(1, concurrency)
        self._poll = poll_seconds
        self._metrics = metrics
        self._batcher = CompletionBatcher(scheduler, clock)
        self.stats = AgentJobsStats()
        self._stopping = False
        self._wake = asyncio.Event()

    def stop_claiming(self) -> None:
        """Claim nothing more; `run_forever` returns when the runs in flight are done."""
        self._stopping = True
        self._wake.set()

    async def _nap(self, seconds: float) -> None:
        await woken_within(self._wake.wait(), seconds)

    async def run_forever(self) -> None:
        inflight = self.stats.in_flight
        try:
            while not self._stopping:
                free = self._concurrency - len(inflight)
                try:
                    claims = await self.claim(free) if free > 0 else []
                except Temporary as exc:  # the store is busy or away: keep the runs going
                    self.stats.last_error = f"claiming: {exc}"
                    log.warning("could not claim due agents", error=str(exc))
                    claims = []
                for claim in claims:
                    task = asyncio.create_task(self.run_claim(claim))
                    inflight.add(task)
                    task.add_done_callback(self._reap)
                if free > 0 and len(claims) == free:
                    continue  # a full batch: more may be due; the next pass waits for room
                if len(inflight) >= self._concurrency:
                    await asyncio.wait(
                        set(inflight), timeout=self._poll, return_when=asyncio.FIRST_COMPLETED
                    )
                else:
                    await self._nap(self._poll)
            if inflight:
                log.info("draining: letting agent runs in flight finish", runs=len(inflight))
            # Cancelled at the drain's deadline: the finally below cancels what is left.
            while running := {t for t in inflight if not t.done()}:
                await asyncio.wait(running)
        finally:
            tasks = list(inflight)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)

    def _reap(self, task: asyncio.Task[AgentDecision]) -> None:
        self.stats.in_flight.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # a store failure past the retries: the lease will retry the slot
            self.stats.last_error = describe(exc)
            log.error("agent run failed outside the run", error=describe(exc))

    async def run_due(self) -> int:
        """Claim and run every slot due now, `concurrency` at a time; returns how many ran.
        For the command line, tests and benchmarks: the service runs `run_forever`."""
        done = 0
        while True:
            claims = await self.claim(self._concurrency)
            if not claims:
                return done
            await asyncio.gather(*(self.run_claim(c) for c in claims))
            done += len(claims)

    async def claim(self, limit: int) -> list[Claim]:
        claims = await self._scheduler.claim_agents(self._clock.now(), limit)
        retried = sum(1 for c in claims if c.attempt > 1)
        self.stats.claimed += len(claims)
        self.stats.retried += retried
        if self._metrics is not None and claims:
            self._metrics.claims.labels(JOB, "first").inc(len(claims) - retried)
            self._metrics.claims.labels(JOB, "retry").inc(retried)
        return claims

    async def run_claim(self, claim: Claim) -> AgentDecision:
        began = time.perf_counter()
        if self._metrics is not None:
            self._metrics.in_flight.inc()
        try:
            decision = await self._decide(claim)
            outcome = "ok" if decision.error is None else "error"
            done = Completion(claim, decision.error or "ok", ((decision.path, decision.to_doc()),))
            await self._complete(done)
        finally:
            if self._metrics is not None:
                self._metrics.in_flight.dec()
        self.stats.completed += 1
        if decision.error is not None:
            self.stats.failed += 1
            self.stats.last_error = decision.error
        if self._metrics is not None:
            self._metrics.runs.labels(JOB, outcome).inc()
            self._metrics.seconds.labels(JOB).observe(time.perf_counter() - began)
        return decision

    async def _decide(self, claim: Claim) -> AgentDecision:
        uid = split(claim.path).uid or ""
        bad: str | None = None
        try:
            config = AgentConfig.from_doc(claim.doc)
        except (CogmoraError, ValueError, KeyError) as exc:
            config = AgentConfig()
            bad = f"the stored agent config cannot be read: {describe(exc)}"
        req = RunRequest(
            uid=uid,
            config=config,
            decision_id=slot_decision_id(claim.slot),
            run_key=claim.run_key,
            scheduled_for=claim.slot,
            attempt=claim.attempt,
        )
        if bad is not None:
            return failed(req, self._clock.now(), bad)
        if claim.exhausted:
            tries = claim.attempt - 1
            why = f"gave up on this slot after {tries} attempts: each crashed or outlived its lease"
            log.error("agent slot abandoned", uid=uid, slot=claim.run_key, attempts=tries)
            return failed(req, self._clock.now(), why)
        return await self._runner.run(req)

    async def _complete(self, done: Completion) -> None:
        delay = 0.2
        for attempt in range(4):
            try:
                mine = await self._batcher.complete(done)
            except Temporary as exc:
                if attempt == 3:
                    log.error(
                        "could not complete a run; its lease will expire and retry it",
                        path=done.claim.path,
                        error=str(exc),
                    )
                    return
                await asyncio.sleep(delay)
                delay *= 2
                continue
            if not mine:
                self.stats.lost_leases += 1
                if self._metrics is not None:
                    self._metrics.lost_leases.labels(JOB).inc()
                log.warning("run finished after losing its lease", path=done.claim.path)
            return
