"""The supervisor's verdict: reasons make a 503, recovery a 200 `recovering`, crash loops
count only past the grace, and the same verdict shows in the metrics."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, generate_latest

from cogmora.health import GRACE_SECONDS, Problem, Report, Verdict, http_status
from cogmora.supervisor import Supervisor, TaskState


def test_no_problem_and_nothing_recovering_is_ok_200() -> None:
    """An empty verdict is `ok` with HTTP 200 and no reasons."""
    v = Verdict((), ())
    assert (v.status, v.http_status, v.body()["reasons"]) == ("ok", 200, [])


def test_recovering_is_200_with_the_symbols_listed() -> None:
    """A replay in progress answers 200 with `recovering` and the symbols."""
    sup = Supervisor()
    sup.add_probe("worker", lambda: Report({}, recovering=("XBTUSDTM", "BTC-USDT")))
    body = sup.health()
    assert body["status"] == "recovering"
    assert body["recovering"] == ["BTC-USDT", "XBTUSDTM"]
    assert http_status(body) == 200


def test_a_problem_outranks_recovery_and_answers_503_with_its_reason() -> None:
    """Any problem makes the status `unhealthy` (503), even during a replay."""
    sup = Supervisor()
    sup.add_probe(
        "worker",
        lambda: Report({}, (Problem("feed_disconnected", "spot", "spot feed down"),), ("X",)),
    )
    body = sup.health()
    assert (body["status"], body["reasons"], http_status(body)) == (
        "unhealthy", ["spot feed down"], 503,
    )


def test_a_probe_that_raises_is_a_reason_not_a_crash() -> None:
    """A broken probe becomes a reason naming it; the other probes still report."""
    sup = Supervisor()

    def broken() -> Report:
        raise RuntimeError("boom")

    sup.add_probe("jobs", broken)
    sup.add_probe("worker", lambda: Report({"fine": True}))
    body = sup.health()
    assert body["reasons"] == ["health probe jobs: boom"]
    assert body["worker"] == {"fine": True}


def test_the_phase_is_a_reason_while_starting_or_stopping() -> None:
    """A process still starting (or draining) is not ready."""
    sup = Supervisor()
    sup.phase = "starting"
    assert sup.health()["reasons"] == ["starting"]
    sup.phase = None
    assert sup.health()["status"] == "ok"


def test_a_task_crashing_is_a_reason_only_after_the_grace() -> None:
    """A crash loop younger than the grace is tolerated; older, it names the task."""
    now = time.monotonic()
    state = TaskState("close-handler", restarts=3, last_error="Temporary: away")
    state.failing_since = now - 1.0
    assert state.problem(now) is None
    state.failing_since = now - GRACE_SECONDS - 1.0
    problem = state.problem(now)
    assert problem is not None and problem.subject == "close-handler"
    assert "Temporary: away" in problem.detail


def test_a_task_running_steadily_after_a_crash_is_healthy_again() -> None:
    """Once a restarted task has run for the grace, its old crashes stop counting."""
    now = time.monotonic()
    state = TaskState("engine-follow", running=True, started_at=now - GRACE_SECONDS - 0.1)
    state.failing_since = now - 60
    assert state.problem(now) is None
    assert state.failing_since is None


async def test_a_crashing_task_is_restarted_and_its_crashes_recorded() -> None:
    """A task that raises is restarted with backoff; its restarts and error show in health."""
    sup = Supervisor()
    runs = 0
    third = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise ValueError(f"crash {runs}")
        third.set()
        await asyncio.Event().wait()

    sup.start("flaky", flaky)
    async with asyncio.timeout(30):
        await third.wait()
    task = sup.health()["tasks"]["flaky"]
    assert task == {"running": True, "restarts": 2, "lastError": "ValueError: crash 2"}
    await sup.stop()


def test_metrics_carry_the_same_verdict_and_clear_to_zero() -> None:
    """/metrics shows each problem as 1 while it lasts and 0 after, and cogmora_healthy."""
    registry = CollectorRegistry()
    sup = Supervisor(registry=registry)
    problems: list[Problem] = [Problem("book_lag", "book", "the book trails")]
    sup.add_probe("worker", lambda: Report({}, tuple(problems)))
    text = generate_latest(registry).decode()
    assert 'cogmora_health_problem{code="book_lag",subject="book"} 1.0' in text
    assert "cogmora_healthy 0.0" in text
    problems.clear()
    text = generate_latest(registry).decode()
    assert 'cogmora_health_problem{code="book_lag",subject="book"} 0.0' in text
    assert "cogmora_healthy 1.0" in text
