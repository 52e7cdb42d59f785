"""Two scheduler replicas on one store (two store instances on the same data, each with
its own writer) race for the same agent slots."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from jobs_testkit import (
    FixedCandles,
    TwoStores,
    agent_positions,
    config_doc,
    decisions,
    jobs_for,
    rising,
    save_config,
)

from cogmora.cli.compose import build_system
from cogmora.cli.jobs import Jobs
from cogmora.domain.agent import AgentConfig
from cogmora.domain.models import PriceQuote
from cogmora.jobs.agent.runner import RunRequest, slot_decision_id
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.store.port import Store
from cogmora.testing import ManualClock

PRICE = Decimal("67000")
START = datetime(2026, 1, 1, tzinfo=UTC)
USERS = 40


def replica(store: Store, settings: Settings, clock: ManualClock, candles: FixedCandles) -> Jobs:
    system = build_system(
        settings, store, catalog=SymbolCatalog(["BTC-USDT"], ["XBTUSDTM"]), clock=clock
    )
    return jobs_for(system, candles, concurrency=4)


def quote(jobs: Jobs, clock: ManualClock) -> None:
    jobs.system.live.put(PriceQuote("BTC-USDT", PRICE, clock.now()))


async def two_replicas(
    replicas: TwoStores, settings: Settings
) -> tuple[Jobs, Jobs, ManualClock, list[str]]:
    clock = ManualClock(START)
    candles = FixedCandles({"BTC-USDT": rising(PRICE, START + timedelta(minutes=15))})
    a = replica(await replicas.open(), settings, clock, candles)
    b = replica(await replicas.open(), settings, clock, candles)
    uids = [f"u{i:03d}" for i in range(USERS)]
    for uid in uids:
        await a.system.accounts.create_user(uid, Decimal(10000))
        await save_config(a.system, uid)
    return a, b, clock, uids


async def close(*jobs: Jobs) -> None:
    for j in jobs:
        await j.system.aclose()


async def test_two_replicas_run_each_slot_exactly_once(
    replicas: TwoStores, settings: Settings
) -> None:
    """Racing replicas run every user's agent once per slot, however the claims interleave."""
    a, b, clock, uids = await two_replicas(replicas, settings)
    try:
        for n in range(1, 4):
            clock.at = START + timedelta(minutes=15 * n, seconds=1)
            quote(a, clock)
            quote(b, clock)
            ran = await asyncio.gather(a.agents.run_due(), b.agents.run_due())
            assert sum(ran) == USERS
        stats = (a.agents.stats, b.agents.stats)
        assert sum(s.completed for s in stats) == 3 * USERS
        assert sum(s.lost_leases for s in stats) == 0
        assert sum(s.retried for s in stats) == 0
        store = a.system.store
        for uid in uids:
            log = await decisions(store, uid)
            slots = Counter(d["scheduledFor"] for d in log)
            assert len(slots) == 3 and set(slots.values()) == {1}
            assert all(d["inputs"]["run"]["attempt"] == 1 for d in log)
            assert len(await agent_positions(store, uid)) == 1  # opened once, then held
            assert (await config_doc(store, uid))["nextRunAt"] == "2026-01-01T01:00:00.000000Z"
    finally:
        await close(a, b)


async def test_a_crashed_run_is_retried_after_its_lease_and_opens_nothing_twice(
    replicas: TwoStores, settings: Settings
) -> None:
    """A slot whose run died after opening is retried by the other replica once the lease
    has passed, under the same slot, and the retry does not open again."""
    a, b, clock, uids = await two_replicas(replicas, settings)
    try:
        clock.at = START + timedelta(minutes=15, seconds=1)
        quote(a, clock)
        claims = await a.agents.claim(USERS)
        assert len(claims) == USERS
        # Replica A gets as far as applying the first user's actions, then dies.
        first = claims[0]
        uid0 = first.path.split("/")[1]
        req = RunRequest(
            uid0,
            AgentConfig.from_doc(first.doc),
            slot_decision_id(first.slot),
            first.run_key,
            first.slot,
            first.attempt,
        )
        crashed = await a.runner.run(req)
        assert len(crashed.applied) == 1

        clock.at += timedelta(seconds=60)
        quote(b, clock)
        assert await b.agents.run_due() == 0  # the leases still hold
        clock.at += a.scheduler.lease
        quote(b, clock)
        assert await b.agents.run_due() == USERS
        assert b.agents.stats.retried == USERS
        store = b.system.store
        for uid in uids:
            [decision] = await decisions(store, uid)
            assert decision["scheduledFor"] == "2026-01-01T00:15:00.000000Z"
            assert decision["inputs"]["run"]["attempt"] == 2
            assert len(await agent_positions(store, uid)) == 1
            doc = await config_doc(store, uid)
            assert doc["nextRunAt"] > "2026-01-01T00:20:00"
            assert doc["run"]["lastAttempts"] == 2
    finally:
        await close(a, b)


async def test_slots_missed_while_down_run_once(replicas: TwoStores, settings: Settings) -> None:
    """After five hours without a scheduler each agent runs once, and then waits for the
    next slot after now rather than catching up on the twenty it missed."""
    a, b, clock, uids = await two_replicas(replicas, settings)
    try:
        clock.at = START + timedelta(hours=5, minutes=7)
        quote(a, clock)
        quote(b, clock)
        ran = await asyncio.gather(a.agents.run_due(), b.agents.run_due())
        assert sum(ran) == USERS
        assert sum(await asyncio.gather(a.agents.run_due(), b.agents.run_due())) == 0
        store = a.system.store
        for uid in uids[:5]:
            [decision] = await decisions(store, uid)
            assert decision["scheduledFor"] == "2026-01-01T00:15:00.000000Z"
            assert (await config_doc(store, uid))["nextRunAt"] == "2026-01-01T05:15:00.000000Z"
    finally:
        await close(a, b)


async def test_the_watchlist_slot_is_claimed_by_one_replica(
    replicas: TwoStores, settings: Settings
) -> None:
    """Both replicas ask for the global watchlist slot at once; one of them gets it."""
    a, b, clock, _ = await two_replicas(replicas, settings)
    try:
        claims = await asyncio.gather(
            a.scheduler.claim_doc("schedules/watchlist", "every 1m", clock.now()),
            b.scheduler.claim_doc("schedules/watchlist", "every 1m", clock.now()),
        )
        assert sum(c is not None for c in claims) == 1
    finally:
        await close(a, b)
