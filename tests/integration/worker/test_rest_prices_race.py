"""A REST price never undoes a feed tick that arrived while it was asking: the worker's
fill fallback, the jobs' MarketData and the gap replay's price after a (re)connect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from cogmora.cli.worker import RestPrices
from cogmora.domain.enums import Market
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import PriceQuote
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.engine.engine import Engine
from cogmora.engine.gap_replay import GapReplay
from cogmora.engine.metrics import EngineMetrics
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.jobs.market import MarketData
from cogmora.services.clock import SystemClock
from cogmora.services.prices import LivePrices
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.sqlite import SqliteStore

from .conftest import Live


async def test_a_tick_during_the_rest_call_wins_over_the_older_rest_answer(live: Live) -> None:
    """REST is held back by a rate limit; a live price arrives meanwhile; the answer and
    the live cache are that live price, not the simulator's REST price."""
    rest = live.worker.rests[Market.SPOT]
    prices = RestPrices(live.worker)
    await prices.latest("BTC-USDT", Market.SPOT)  # follows it: the feed's start is done first

    async def followed() -> bool:
        feed = live.worker.health()["feeds"]["spot"]
        gaps = live.worker.gaps
        return bool(feed["subscribed"] >= 1 and "BTC-USDT" not in gaps.held | gaps.recovering)

    await live.until(followed)
    live.sim.force_rate_limit(1, 500, Market.SPOT)
    asking = asyncio.create_task(prices.latest("BTC-USDT", Market.SPOT))

    async def held_back() -> bool:
        return rest.rate_limited >= 1

    await live.until(held_back)
    tick = PriceQuote("BTC-USDT", Decimal("12345"), datetime.now(UTC))
    live.system.live.put(tick)  # what the engine does with a feed tick
    answer = await asyncio.wait_for(asking, 60)
    assert answer is not None and answer.price == Decimal("12345")
    cached = live.system.live.get("BTC-USDT")
    assert cached is not None and cached.price == Decimal("12345")


# The same rule, one piece of code (services.prices.unless_overtaken), at the two other
# places that mix a REST price into the feed's: the jobs' MarketData and the gap replay.

SYM = "BTC-USDT"


@pytest.fixture
async def sim() -> AsyncIterator[KucoinSimulator]:
    s = await KucoinSimulator(SimulatorConfig(tick_rate=0, seed=11, spot={SYM: "60000"})).start()
    yield s
    await s.stop()


async def until(check: Callable[[], bool], within: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_market_data_keeps_a_tick_that_arrived_while_rest_answered(
    sim: KucoinSimulator,
) -> None:
    """The jobs' REST price (a fill fallback, and in `cogmora run` beside the worker's
    feed) never puts the live price back to REST's older answer."""
    live = LivePrices()
    market = MarketData.connect(sim.spot_url, sim.futures_url, SystemClock(), live)
    try:
        sim.force_rate_limit(1, 500, Market.SPOT)
        asking = asyncio.create_task(market.latest(SYM, Market.SPOT))
        await until(lambda: market.rest(Market.SPOT).rate_limited >= 1)
        live.put(PriceQuote(SYM, Decimal("12345"), datetime.now(UTC)))  # a feed tick
        answer = await asyncio.wait_for(asking, 60)
        assert answer is not None and answer.price == Decimal("12345")
        cached = live.get(SYM)
        assert cached is not None and cached.price == Decimal("12345")

        # Nothing heard meanwhile: REST's answer is the price, and is kept.
        fresh = await market.latest(SYM, Market.SPOT)
        assert fresh is not None and fresh.price == Decimal("60000")
        cached = live.get(SYM)
        assert cached is not None and cached.price == Decimal("60000")
    finally:
        await market.aclose()


@dataclass
class Replaying:
    gaps: GapReplay
    rest: KucoinRest
    live: LivePrices
    seen: list[Tick]
    registry: CollectorRegistry

    def overtaken(self) -> float:
        value = self.registry.get_sample_value(
            "cogmora_engine_gap_replays_total", {"result": "rest_overtaken"}
        )
        return value or 0.0


@pytest.fixture
async def replaying(sim: KucoinSimulator, tmp_path: Path) -> AsyncIterator[Replaying]:
    """A gap replay in front of a real engine (whose live prices are what the API fills
    at), against the simulator's REST; `seen` is every tick the engine was given."""
    store = SqliteStore(tmp_path / "gap.db")
    await store.start()
    registry = CollectorRegistry()
    live = LivePrices()
    engine = Engine(store, FeeSchedule(), SystemClock(), live, EngineMetrics(registry))
    seen: list[Tick] = []

    def downstream(ticks: list[Tick]) -> None:
        seen.extend(ticks)
        engine.on_ticks(ticks)

    rest = KucoinRest(sim.spot_url, Market.SPOT)
    gaps = GapReplay(engine, downstream, {Market.SPOT: rest}, lambda _: Market.SPOT,
                     engine.metrics)
    try:
        yield Replaying(gaps, rest, live, seen, registry)
    finally:
        await gaps.aclose()
        await rest.aclose()
        await store.close()


async def test_gap_replay_drops_its_rest_price_when_a_trade_arrived_during_the_call(
    sim: KucoinSimulator, replaying: Replaying
) -> None:
    """(Re)acknowledged symbol: its REST price is asked; a trade heard while REST is held
    back by a rate limit is newer, so the engine is never given the older REST price and
    the live price ends at the trade's."""
    r = replaying
    sim.force_rate_limit(1, 500, Market.SPOT)
    r.gaps.live([SYM])
    await until(lambda: r.rest.rate_limited >= 1)
    r.gaps.on_ticks([Tick(SYM, Market.SPOT, Decimal("12345"))])  # held: the replay runs
    await asyncio.wait_for(r.gaps.idle(), 60)

    assert [t.price for t in r.seen] == [Decimal("12345")]
    quote = r.live.get(SYM)
    assert quote is not None and quote.price == Decimal("12345")
    assert r.overtaken() == 1.0


async def test_gap_replay_gives_held_older_ticks_first_and_its_rest_price_last(
    replaying: Replaying,
) -> None:
    """A trade held before REST was asked is older than REST's answer: it reaches the
    engine first, and the live price ends at REST's (the newest known)."""
    r = replaying
    r.gaps.live([SYM])
    r.gaps.on_ticks([Tick(SYM, Market.SPOT, Decimal("12345"))])  # before the task asks
    await asyncio.wait_for(r.gaps.idle(), 60)

    assert [t.price for t in r.seen] == [Decimal("12345"), Decimal("60000")]
    quote = r.live.get(SYM)
    assert quote is not None and quote.price == Decimal("60000")
    assert r.overtaken() == 0.0


async def test_a_mark_price_heard_during_the_call_does_not_drop_the_rest_trade_price(
    sim: KucoinSimulator, replaying: Replaying
) -> None:
    """Only a trade supersedes REST's trade price: a mark tick held meanwhile does not."""
    r = replaying
    sim.force_rate_limit(1, 500, Market.SPOT)
    r.gaps.live([SYM])
    await until(lambda: r.rest.rate_limited >= 1)
    r.gaps.on_ticks([Tick(SYM, Market.SPOT, Decimal("59990"), PriceKind.MARK)])
    await asyncio.wait_for(r.gaps.idle(), 60)

    assert [t.price for t in r.seen] == [Decimal("59990"), Decimal("60000")]
    quote = r.live.get(SYM)
    assert quote is not None and quote.price == Decimal("60000")
