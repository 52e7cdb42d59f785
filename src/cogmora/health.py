"""What `/healthz` answers, and why (SPEC 5.1, "Health tells the truth").

A probe (the worker's feeds and book, the jobs, the supervisor's own tasks) reports a
`Report`: what it wants shown, the problems it sees, and what it is recovering. The
verdict is decided once, here, so the API's `/healthz`, the worker's probe server and the
`/metrics` gauges cannot disagree:

- any problem: `"status": "unhealthy"`, HTTP 503, `"reasons"` lists them;
- otherwise, something recovering (a gap being replayed): `"status": "recovering"`,
  HTTP 200: the process is doing what it must, and an orchestrator that pulled or
  restarted it would only lengthen the gap;
- otherwise `"status": "ok"`, HTTP 200.

`/livez` is separate: 200 whenever the event loop answers, so a recovering or briefly
unhealthy worker is not restarted, while a wedged one is.

Every process also probes its store (`StoreProbe`): an unreachable store is a reason,
`store_unreachable`, whatever the process runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from cogmora.store.port import Store

# Commits failing, the book trailing the change feed, a task crash-looping: each becomes a
# reason only once it has lasted this long (SPEC 5.1: "more than 5 s").
GRACE_SECONDS = 5.0

Status = Literal["ok", "recovering", "unhealthy"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason for a 503. `code` and `subject` are stable (metric labels); `detail` is
    the sentence an operator reads."""

    code: str  # feed_disconnected, feed_silent, commits_failing, book_lag, task_failing, ...
    subject: str  # spot, futures, engine, book, a task's name, process
    detail: str


@dataclass(frozen=True, slots=True)
class Report:
    """What one probe found."""

    body: dict[str, Any]
    problems: tuple[Problem, ...] = ()
    recovering: tuple[str, ...] = ()  # e.g. the symbols whose gap is being replayed


@dataclass(frozen=True, slots=True)
class Verdict:
    problems: tuple[Problem, ...]
    recovering: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        if self.problems:
            return "unhealthy"
        return "recovering" if self.recovering else "ok"

    @property
    def http_status(self) -> int:
        return _http_status(self.status)

    def body(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reasons": [p.detail for p in self.problems],
            "recovering": list(self.recovering),
            **self.details,
        }


def http_status(body: dict[str, Any]) -> int:
    """The HTTP status of a `/healthz` body."""
    return _http_status(body.get("status"))


def _http_status(status: object) -> int:
    """503 only for `unhealthy`: a recovering process still serves."""
    return 503 if status == "unhealthy" else 200


# A read of a document nobody writes: the cheapest question every backend must answer
# over its real connection (a get by path, never a query, so no index is involved).
PROBE_PATH = "prices/_healthz-probe"


class StoreProbe:
    """Whether the store answers at all, for `/healthz` (SPEC 5.1's reasons are about what
    the worker does; a store that cannot be read makes every route fail, whatever the
    worker's own probes say, and an API-only process has no other sign of it).

    Judged from one cheap read, `PROBE_PATH`, started when a verdict is asked for and the
    last answer is older than `max_age`: probes and scrapes, however many, cost the store
    at most one read per `max_age` seconds, and none while nobody asks. Only one read is
    ever in flight, so a store that hangs is not sent a pile of them; the verdict does not
    wait for it either (`/healthz` answers from what is known):

    - a read that failed is a reason at once (the backends retry transient errors
      themselves; what surfaces is the store saying no);
    - a read still unanswered after `timeout` seconds is a reason too, while it lasts;
    - the first read that succeeds clears it (recovery shows within `max_age` of it).

    A read stuck past `give_up` is abandoned (its thread may finish later; the next probe
    is a new read), so a connection that hangs for ever cannot freeze the verdict.
    """

    def __init__(
        self,
        store: Store,
        *,
        timeout: float = GRACE_SECONDS,
        max_age: float = 5.0,
        give_up: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._timeout = timeout
        self._max_age = max_age
        self._give_up = max(give_up, timeout)
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._asked_at: float | None = None  # when the read in flight was started
        self._answered_at: float | None = None  # when the last read ended, either way
        self._failing_since: float | None = None  # first failed read of the current run
        self._error: str | None = None  # of the last read, None when it succeeded
        self._latency: float | None = None  # of the last read that succeeded
        self.reads = 0  # reads started, for tests

    def report(self) -> Report:
        now = self._clock()
        self._probe_if_due(now)
        name = self._store.name
        problems: list[Problem] = []
        failing_since = self._failing_since
        asked = self._asked_at
        if self._task is not None and asked is not None and now - asked > self._timeout:
            since = asked if failing_since is None else failing_since
            problems.append(Problem(
                "store_unreachable", "store",
                f"store {name} has not answered a read for {now - asked:.1f} s "
                f"(failing for {now - since:.1f} s; limit {self._timeout:.0f} s)",
            ))
        elif self._error is not None and failing_since is not None:
            problems.append(Problem(
                "store_unreachable", "store",
                f"store {name} unreachable for {now - failing_since:.1f} s: {self._error}",
            ))
        answered = self._answered_at
        body = {
            "name": name,
            "reachable": None if answered is None and not problems else not problems,
            "checkedSecondsAgo": None if answered is None else round(now - answered, 3),
            "latencySeconds": None if self._latency is None else round(self._latency, 4),
            "error": self._error,
        }
        return Report(body, tuple(problems))

    def _probe_if_due(self, now: float) -> None:
        if self._task is not None:
            return
        if self._answered_at is not None and now - self._answered_at < self._max_age:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # asked outside the event loop: judge what is known
            return
        self._asked_at = now
        self.reads += 1
        self._task = loop.create_task(self._read(), name="store-probe")

    async def _read(self) -> None:
        began = self._clock()
        try:
            async with asyncio.timeout(self._give_up):
                await self._store.read(lambda tx: tx.get(PROBE_PATH))
        except Exception as exc:  # whatever the backend raises is the reason shown
            why = "no answer" if isinstance(exc, TimeoutError) else type(exc).__name__
            self._error = f"{why}: {exc}" if str(exc) else why
            if self._failing_since is None:
                self._failing_since = began
        else:
            self._error = None
            self._failing_since = None
            self._latency = self._clock() - began
        finally:
            self._answered_at = self._clock()
            self._task = None

    async def aclose(self) -> None:
        """Cancel a read in flight (before the store closes under it)."""
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
