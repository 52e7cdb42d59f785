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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

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
        return 503 if self.problems else 200

    def body(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reasons": [p.detail for p in self.problems],
            "recovering": list(self.recovering),
            **self.details,
        }


def http_status(body: dict[str, Any]) -> int:
    """The HTTP status of a `/healthz` body: 503 only for `unhealthy`."""
    return 503 if body.get("status") == "unhealthy" else 200
