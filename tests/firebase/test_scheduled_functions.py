"""`agentScheduler`, `watchlistScraper` and `closingSweeper`: one pass of the scheduler per
call, with the processes' own slot claims, so a function and a `cogmora jobs` process
running at once never run a slot twice. KuCoin is the project's simulator on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from types import ModuleType

import flask
import pytest
from firebase_functions import scheduler_fn
from fs_kit import FsWorld

from cogmora.cli.catalog import refresh_catalog
from cogmora.cli.compose import System, build_system
from cogmora.cli.jobs import Jobs, JobsOptions, build_jobs
from cogmora.domain.enums import Market, PositionStatus, Side
from cogmora.domain.models import PriceQuote
from cogmora.domain.orders import OpenRequest
from cogmora.domain.paths import agent_config_path
from cogmora.domain.timeutil import to_iso
from cogmora.jobs.scheduler import WATCHLIST_JOB
from cogmora.services.agent import AgentConfigs
from cogmora.services.watchlist import Watchlists
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.rules import get_field

USERS = 5


@pytest.fixture
async def sim(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[KucoinSimulator]:
    simulator = KucoinSimulator(SimulatorConfig(tick_rate=0, seed=5))
    await simulator.start()
    monkeypatch.setenv("COGMORA_KUCOIN_SPOT_URL", simulator.spot_url)
    monkeypatch.setenv("COGMORA_KUCOIN_FUTURES_URL", simulator.futures_url)
    try:
        yield simulator
    finally:
        await simulator.stop()


def event() -> scheduler_fn.ScheduledEvent:
    return scheduler_fn.ScheduledEvent(
        job_name="projects/p/locations/l/jobs/firebase-schedule-agentScheduler",
        schedule_time=datetime.now(UTC),
    )


def process_jobs(fs: FsWorld, sim: KucoinSimulator) -> Jobs:
    """The jobs of a `cogmora jobs` process on the same store."""
    settings = Settings(
        store_url=f"firestore://{fs.project}",
        kucoin_spot_url=sim.spot_url,
        kucoin_futures_url=sim.futures_url,
    )
    system: System = build_system(settings, fs.system.store)
    return build_jobs(system, JobsOptions(poll_seconds=0.05, concurrency=4))


async def due_agents(fs: FsWorld, uids: list[str]) -> str:
    """Save each user's agent and make its slot due a minute ago; returns that slot."""
    configs: AgentConfigs = fs.system.agent_configs
    slot = to_iso(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1))
    for uid in uids:
        await fs.system.accounts.create_user(uid, D(10000))
        await configs.put(uid, {"enabled": True, "schedule": "every 15m", "symbols": ["BTC-USDT"]})

        def due(tx: object, uid: str = uid) -> None:
            doc = tx.get(agent_config_path(uid))  # type: ignore[attr-defined]
            tx.set(agent_config_path(uid), {**doc, "nextRunAt": slot})  # type: ignore[attr-defined]

        await fs.system.store.transact(due)
    return slot


async def last_slot(fs: FsWorld, uid: str) -> tuple[object, object]:
    doc = await fs.system.store.read(lambda tx: tx.get(agent_config_path(uid)))
    assert doc is not None
    return get_field(doc, "run.lastSlot")[1], get_field(doc, "run.lastAttempts")[1]


async def test_the_agent_function_runs_each_due_slot_once(
    fs: FsWorld, sim: KucoinSimulator, functions: ModuleType
) -> None:
    """A pass runs every due agent and logs its decision; a second pass finds nothing due."""
    uids = [f"a{i}" for i in range(USERS)]
    slot = await due_agents(fs, uids)
    assert await asyncio.to_thread(functions.agentScheduler.__wrapped__, event()) == USERS
    assert await asyncio.to_thread(functions.agentScheduler.__wrapped__, event()) == 0
    configs: AgentConfigs = fs.system.agent_configs
    for uid in uids:
        assert len(await configs.decisions(uid)) == 1
        assert await last_slot(fs, uid) == (slot, 1)


async def test_the_agent_function_and_a_jobs_process_share_the_slots(
    fs: FsWorld, sim: KucoinSimulator, functions: ModuleType
) -> None:
    """A function pass racing a `cogmora jobs` process: every slot runs once, by one of them."""
    uids = [f"b{i}" for i in range(USERS)]
    slot = await due_agents(fs, uids)
    process = process_jobs(fs, sim)
    try:
        await refresh_catalog(process.system.catalog, {m: process.market.rest(m) for m in Market})
        by_function, by_process = await asyncio.gather(
            asyncio.to_thread(functions.agentScheduler.__wrapped__, event()),
            process.agents.run_due(),
        )
    finally:
        await process.system.aclose()
    assert by_function + by_process == USERS
    for uid in uids:
        assert await last_slot(fs, uid) == (slot, 1)


async def test_the_watchlist_function_refreshes_once_per_slot(
    fs: FsWorld, sim: KucoinSimulator, functions: ModuleType
) -> None:
    """Called through the SDK's HTTP entry point as Cloud Scheduler calls it, racing a
    process: one of the three refreshes the slot, and the entries carry prices."""
    watchlists: Watchlists = fs.system.watchlists
    await fs.system.accounts.create_user("w", D(1))
    await watchlists.put("w", ["BTC-USDT", "XBTUSDTM"])
    process = process_jobs(fs, sim)

    def through_http() -> tuple[int, bool]:
        app = flask.Flask("scheduler")
        headers = {"X-CloudScheduler-ScheduleTime": datetime.now(UTC).isoformat()}
        with app.test_request_context(headers=headers):
            answer = functions.watchlistScraper(flask.request)
        return answer.status_code, True

    try:
        results = await asyncio.gather(
            asyncio.to_thread(functions.watchlistScraper.__wrapped__, event()),
            asyncio.to_thread(functions.watchlistScraper.__wrapped__, event()),
            process.watchlist.run_once(),
        )
        assert await asyncio.to_thread(through_http) == (200, True)
    finally:
        await process.system.aclose()
    ran = [r for r in results[:2] if r] + [r for r in results[2:] if r is not None]
    assert len(ran) == 1
    doc = await fs.system.store.read(lambda tx: tx.get(WATCHLIST_JOB))
    assert doc is not None and get_field(doc, "run.lastAttempts")[1] == 1
    entries = await watchlists.get("w")
    assert {e["symbol"] for e in entries if e.get("lastPrice")} == {"BTC-USDT", "XBTUSDTM"}


async def test_the_sweeper_settles_what_is_left_closing(fs: FsWorld, functions: ModuleType) -> None:
    """A close whose trigger event was lost is settled by the sweeper, once."""
    system = fs.system
    await system.accounts.create_user("s", D(10000))
    system.live.put(PriceQuote("BTC-USDT", D(100), system.clock.now()))
    request = OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D(1))
    pid = (await system.positions.open("s", request))["id"]
    await system.positions.request_close("s", pid)
    assert await asyncio.to_thread(functions.closingSweeper.__wrapped__, event()) == 1
    assert await asyncio.to_thread(functions.closingSweeper.__wrapped__, event()) == 0
    assert (await system.positions.get("s", pid)).status is PositionStatus.CLOSED
