"""SlotScheduler: claiming due slots with a lease, completing them, retrying crashed ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cogmora.domain.models import Doc
from cogmora.jobs.scheduler import WATCHLIST_JOB, Completion, SlotScheduler, leased
from cogmora.store.sqlite import SqliteStore

T0 = datetime(2026, 1, 1, 0, 15, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def config(next_run: str | None = "2026-01-01T00:15:00.000000Z", **changes: object) -> Doc:
    doc: Doc = {
        "enabled": True,
        "schedule": "every 15m",
        "provider": "builtin",
        "symbols": ["BTC-USDT"],
        "nextRunAt": next_run,
    }
    doc.update(changes)
    return doc


async def put(store: SqliteStore, uid: str, doc: Doc) -> str:
    path = f"users/{uid}/agent/config"
    await store.transact(lambda tx: tx.set(path, doc))
    return path


async def get(store: SqliteStore, path: str) -> Doc:
    doc = await store.read(lambda tx: tx.get(path))
    assert doc is not None
    return doc


@pytest.fixture
def scheduler(store: SqliteStore) -> SlotScheduler:
    return SlotScheduler(store, lease=LEASE, max_attempts=2)


async def test_a_due_slot_is_claimed_once(store: SqliteStore, scheduler: SlotScheduler) -> None:
    """The claim moves nextRunAt to the lease expiry and records the slot; asking again
    at the same moment finds nothing due."""
    path = await put(store, "ann", config())
    [claim] = await scheduler.claim_agents(at(0.5), 10)
    assert (claim.path, claim.slot, claim.attempt) == (path, T0, 1)
    assert not claim.exhausted
    doc = await get(store, path)
    assert doc["nextRunAt"] == "2026-01-01T00:20:30.000000Z" == doc["run"]["leaseUntil"]
    assert doc["run"]["slot"] == "2026-01-01T00:15:00.000000Z"
    assert leased(doc)
    assert await scheduler.claim_agents(at(0.5), 10) == []
    assert await SlotScheduler(store, lease=LEASE).claim_agents(at(1), 10) == []


async def test_slots_not_due_or_switched_off_are_not_claimed(
    store: SqliteStore, scheduler: SlotScheduler
) -> None:
    """Future slots, disabled agents and agents without a nextRunAt wait."""
    await put(store, "ann", config("2026-01-01T00:30:00.000000Z"))
    await put(store, "bob", config(enabled=False))
    await put(store, "cat", config(None))
    assert await scheduler.claim_agents(at(1), 10) == []


async def test_completing_schedules_the_first_slot_after_now(
    store: SqliteStore, scheduler: SlotScheduler
) -> None:
    """A run finished late (slots missed) is followed by the next slot after now, once."""
    path = await put(store, "ann", config())
    [claim] = await scheduler.claim_agents(at(181), 10)  # three hours late
    decision = ("users/ann/agentDecisions/d1", {"uid": "ann", "createdAt": "x"})
    assert await scheduler.complete([Completion(claim, "ok", (decision,))], at(182)) == [True]
    doc = await get(store, path)
    assert doc["nextRunAt"] == "2026-01-01T03:30:00.000000Z"
    assert doc["run"]["leaseUntil"] is None and doc["run"]["owner"] is None
    assert doc["run"]["lastSlot"] == "2026-01-01T00:15:00.000000Z"
    assert doc["run"]["lastOutcome"] == "ok"
    assert not leased(doc)
    assert await store.read(lambda tx: tx.get(decision[0])) == decision[1]


async def test_an_expired_lease_retries_the_same_slot_until_the_attempts_run_out(
    store: SqliteStore, scheduler: SlotScheduler
) -> None:
    """A claim never completed is claimed again after its lease, for the same slot; past
    max_attempts the claim comes back exhausted."""
    await put(store, "ann", config())
    [first] = await scheduler.claim_agents(at(1), 10)
    assert await scheduler.claim_agents(at(5.9), 10) == []
    [second] = await scheduler.claim_agents(at(6), 10)
    assert (second.slot, second.attempt, second.run_key) == (T0, 2, first.run_key)
    assert not second.exhausted
    [third] = await scheduler.claim_agents(at(11), 10)
    assert third.attempt == 3 and third.exhausted
    assert await scheduler.complete([Completion(third, "gave up")], at(11)) == [True]


async def test_a_run_that_lost_its_lease_logs_but_does_not_reschedule(
    store: SqliteStore, scheduler: SlotScheduler
) -> None:
    """The overtaken run's documents are written; the schedule stays with the new claim."""
    path = await put(store, "ann", config())
    [slow] = await scheduler.claim_agents(at(1), 10)
    [retry] = await scheduler.claim_agents(at(7), 10)
    log = ("users/ann/agentDecisions/slow", {"uid": "ann"})
    assert await scheduler.complete([Completion(slow, "ok", (log,))], at(8)) == [False]
    doc = await get(store, path)
    assert doc["run"]["owner"] == retry.token and leased(doc)
    assert await store.read(lambda tx: tx.get(log[0])) == log[1]
    assert await scheduler.complete([Completion(retry)], at(8)) == [True]


async def test_a_schedule_edited_during_a_run_is_left_as_the_user_set_it(
    store: SqliteStore, scheduler: SlotScheduler
) -> None:
    """Completion finds nextRunAt changed under it and leaves the user's value alone."""
    path = await put(store, "ann", config())
    [claim] = await scheduler.claim_agents(at(1), 10)
    doc = await get(store, path)
    edited = {**doc, "schedule": "every 1h", "nextRunAt": "2026-01-01T01:00:00.000000Z"}
    await put(store, "ann", edited)
    assert await scheduler.complete([Completion(claim)], at(2)) == [False]
    assert (await get(store, path))["nextRunAt"] == "2026-01-01T01:00:00.000000Z"


async def test_claims_respect_the_limit_and_drain_every_due_slot(
    store: SqliteStore, scheduler: SlotScheduler
) -> None:
    """Sixty-one due agents are claimed twenty at a time, each exactly once."""
    for i in range(60):
        await put(store, f"u{i:02d}", config())
    await put(store, "early", config("2026-01-01T00:00:00.000000Z"))
    claimed: list[str] = []
    while batch := await scheduler.claim_agents(at(1), 20):
        assert len(batch) <= 20
        claimed += [c.path for c in batch]
    assert len(claimed) == len(set(claimed)) == 61


async def test_a_window_of_one_claims_strictly_oldest_first(store: SqliteStore) -> None:
    """Without the random window the slot due longest is claimed first."""
    for i in range(5):
        await put(store, f"u{i}", config())
    await put(store, "early", config("2026-01-01T00:00:00.000000Z"))
    claims = await SlotScheduler(store, lease=LEASE, window=1).claim_agents(at(1), 2)
    assert next(c.path for c in claims) == "users/early/agent/config"


async def test_a_global_job_document_is_created_due_and_claimed(
    store: SqliteStore, scheduler: SlotScheduler
) -> None:
    """The watchlist job's document appears on first claim; later claims wait for its slot."""
    first = await scheduler.claim_doc(WATCHLIST_JOB, "every 1m", at(0.25))
    assert first is not None and first.attempt == 1
    assert await scheduler.claim_doc(WATCHLIST_JOB, "every 1m", at(0.5)) is None
    assert await scheduler.complete([Completion(first)], at(0.5)) == [True]
    doc = await get(store, WATCHLIST_JOB)
    assert doc["nextRunAt"] == "2026-01-01T00:16:00.000000Z"
    assert await scheduler.claim_doc(WATCHLIST_JOB, "every 1m", at(0.9)) is None
    assert await scheduler.claim_doc(WATCHLIST_JOB, "every 1m", at(1)) is not None
