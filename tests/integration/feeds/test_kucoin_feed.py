"""KucoinFeed against the simulator over real loopback websockets.

Timings are shrunk (200 ms pings, 50 ms backoff) so faults and recoveries take well under
a second each; assertions wait for outcomes, never on durations.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry

from cogmora.domain.enums import Market
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.feeds.kucoin.client import FeedOptions, KucoinFeed
from cogmora.feeds.kucoin.connection import Timing
from cogmora.feeds.kucoin.metrics import FeedMetrics
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.simulator import DEFAULT_SPOT, KucoinSimulator, SimulatorConfig

WAIT_S = 60.0  # generous upper bound for any outcome; tests finish as soon as it happens
MANY_SPOT = {**DEFAULT_SPOT, **{f"C{i:03d}-USDT": "1.000" for i in range(230)}}


class Sink:
    """Collects the bursts the feed delivers and lets a test wait for a condition."""

    def __init__(self) -> None:
        self.bursts: list[list[Tick]] = []
        self._changed = asyncio.Event()

    def __call__(self, ticks: list[Tick]) -> None:
        self.bursts.append(ticks)
        self._changed.set()

    @property
    def ticks(self) -> list[Tick]:
        return [t for b in self.bursts for t in b]

    def prices(self, symbol: str, kind: PriceKind = PriceKind.TRADE) -> list[Decimal]:
        return [t.price for t in self.ticks if t.symbol == symbol and t.kind is kind]

    async def wait(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


async def eventually(predicate: Callable[[], bool]) -> None:
    """Poll state the feed exposes as properties (it has no event to wait on)."""
    async with asyncio.timeout(WAIT_S):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@pytest.fixture
async def sim() -> AsyncIterator[KucoinSimulator]:
    config = SimulatorConfig(tick_rate=0, mark_rate=0, ping_interval_ms=200,
                             ping_timeout_ms=300, spot=MANY_SPOT)
    async with KucoinSimulator(config) as simulator:
        yield simulator


class Harness:
    def __init__(self, sim: KucoinSimulator) -> None:
        self.sim = sim
        self.registry = CollectorRegistry()
        self.metrics = FeedMetrics(self.registry)
        self.rests: list[KucoinRest] = []
        self.tasks: list[asyncio.Task[None]] = []

    def feed(self, market: Market, sink: Sink, **options: object) -> KucoinFeed:
        rest = KucoinRest(self.sim.url(market), market, timeout=5)
        self.rests.append(rest)
        opts = FeedOptions(backoff_initial_s=0.05, backoff_max_s=0.2,
                           timing=Timing(welcome_timeout_s=3, ack_timeout_s=3),
                           **options)  # type: ignore[arg-type]
        return KucoinFeed(rest, market, sink, self.metrics, options=opts)

    def run(self, feed: KucoinFeed) -> None:
        self.tasks.append(asyncio.create_task(feed.run()))

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for rest in self.rests:
            await rest.aclose()


@pytest.fixture
async def harness(sim: KucoinSimulator) -> AsyncIterator[Harness]:
    h = Harness(sim)
    yield h
    await h.close()


async def started(harness: Harness, market: Market, symbols: list[str],
                  **options: object) -> tuple[KucoinFeed, Sink]:
    sink = Sink()
    feed = harness.feed(market, sink, **options)
    await feed.subscribe(symbols)
    harness.run(feed)
    await eventually(lambda: feed.connected and feed.subscribed_symbols >= set(symbols))
    return feed, sink


async def test_spot_ticks_flow_after_token_welcome_and_ack(harness: Harness) -> None:
    """Subscribed symbols deliver their trade prices as spot ticks."""
    sim = harness.sim
    feed, sink = await started(harness, Market.SPOT, ["BTC-USDT", "ETH-USDT"])
    await sim.set_price("BTC-USDT", "61000.5")
    await sim.set_price("ETH-USDT", "3400.25")
    await sink.wait(lambda: sink.prices("ETH-USDT") == [Decimal("3400.25")])
    assert sink.prices("BTC-USDT") == [Decimal("61000.5")]
    tick = sink.ticks[0]
    assert tick.market is Market.SPOT and tick.exchange_ns > 0 and tick.received_ns > 0
    assert feed.connections == 1
    assert feed.last_tick_ns == sink.ticks[-1].received_ns
    assert feed.lag_seconds is not None
    assert harness.metric("cogmora_feed_connected", market="spot") == 1
    assert harness.metric("cogmora_feed_subscribed_topics", market="spot") == 2


async def test_a_burst_is_delivered_in_order_in_few_lists(harness: Harness) -> None:
    """Frames read together reach on_ticks together, in the order they were sent."""
    sim = harness.sim
    _, sink = await started(harness, Market.SPOT, ["BTC-USDT"])
    prices = [str(60000 + i) for i in range(50)]
    await sim.publish_burst("BTC-USDT", prices)
    await sink.wait(lambda: len(sink.prices("BTC-USDT")) == 50)
    assert sink.prices("BTC-USDT") == [Decimal(p) for p in prices]
    assert len(sink.bursts) < 50  # at least some frames arrived in a shared burst


async def test_futures_trades_and_mark_prices(harness: Harness) -> None:
    """Futures feeds deliver execution trades and instrument mark prices (kind MARK)."""
    sim = harness.sim
    _, sink = await started(harness, Market.FUTURES, ["XBTUSDTM", "ETHUSDTM"])
    assert sim.subscribed_topics(Market.FUTURES) == {
        "/contractMarket/execution:XBTUSDTM", "/contractMarket/execution:ETHUSDTM",
        "/contract/instrument:XBTUSDTM", "/contract/instrument:ETHUSDTM"}
    await sim.set_price("XBTUSDTM", "65000.1")
    await sim.set_mark_price("XBTUSDTM", "64990.5")
    await sink.wait(lambda: bool(sink.prices("XBTUSDTM", PriceKind.MARK)))
    assert sink.prices("XBTUSDTM") == [Decimal("65000.1")]
    assert sink.prices("XBTUSDTM", PriceKind.MARK) == [Decimal("64990.5")]


async def test_many_symbols_are_batched_by_100_and_spread_over_connections(
    harness: Harness,
) -> None:
    """250 symbols with a 100-topic cap use 3 connections, subscribed in frames of <= 100."""
    sim = harness.sim
    symbols = sorted(MANY_SPOT)[:250]
    feed, sink = await started(harness, Market.SPOT, symbols, topic_cap=100)
    assert feed.connections == 3
    assert sorted(sim.topics_per_connection(Market.SPOT)) == [50, 100, 100]
    assert max(sim.hosts[Market.SPOT].request_sizes) <= 100
    await sim.set_price(symbols[-1], "2.5")
    await sink.wait(lambda: sink.prices(symbols[-1]) == [Decimal("2.5")])


async def test_a_large_subscription_on_one_connection_uses_several_frames(
    harness: Harness,
) -> None:
    """Under the default 400-topic cap, 250 symbols share one connection, 3 frames."""
    sim = harness.sim
    symbols = sorted(MANY_SPOT)[:250]
    feed, _ = await started(harness, Market.SPOT, symbols)
    assert feed.connections == 1
    assert sim.hosts[Market.SPOT].request_sizes == [100, 100, 50]


async def test_server_drop_reconnects_with_a_fresh_token_and_resubscribes(
    harness: Harness,
) -> None:
    """After the server closes every connection, the feed reconnects and ticks flow again."""
    sim = harness.sim
    feed, sink = await started(harness, Market.SPOT, ["BTC-USDT", "SOL-USDT"])
    tokens_before = sim.hosts[Market.SPOT].tokens.issued
    sim.expire_tokens()  # the old token must not be reused
    await sim.drop_connections()
    await eventually(lambda: feed.reconnects >= 1 and feed.connected
                     and feed.subscribed_symbols == {"BTC-USDT", "SOL-USDT"})
    assert sim.hosts[Market.SPOT].tokens.issued > tokens_before
    await sim.set_price("SOL-USDT", "155.5")
    await sink.wait(lambda: Decimal("155.5") in sink.prices("SOL-USDT"))
    assert harness.metric("cogmora_feed_reconnects_total", market="spot") >= 1


async def test_stalled_pongs_mark_the_link_dead_and_reconnect(harness: Harness) -> None:
    """With no pong within pingTimeout, the feed drops the link and reconnects."""
    sim = harness.sim
    feed, sink = await started(harness, Market.SPOT, ["BTC-USDT"])
    opened = sim.hosts[Market.SPOT].connections_opened
    sim.stall_pongs(True)
    await eventually(lambda: feed.reconnects >= 1)
    sim.stall_pongs(False)
    await eventually(lambda: feed.connected
                     and sim.hosts[Market.SPOT].connections_opened > opened)
    await sim.wait_subscribed(["BTC-USDT"])
    await sim.set_price("BTC-USDT", "59000")
    await sink.wait(lambda: Decimal("59000") in sink.prices("BTC-USDT"))


async def test_malformed_frames_are_counted_and_skipped(harness: Harness) -> None:
    """A garbage frame is counted in the metric and the ticks around it still arrive."""
    sim = harness.sim
    feed, sink = await started(harness, Market.SPOT, ["BTC-USDT"])
    await sim.set_price("BTC-USDT", "1000")
    await sim.send_malformed()
    await sim.send_malformed('{"type":"message","topic":"/market/ticker:BTC-USDT",'
                             '"data":{"price":"-1","time":1}}')
    await sim.set_price("BTC-USDT", "1001")
    await sink.wait(lambda: sink.prices("BTC-USDT") == [Decimal(1000), Decimal(1001)])
    await eventually(lambda: harness.metric("cogmora_feed_malformed_frames_total",
                                            market="spot") == 2)
    assert feed.connected and feed.reconnects == 0


async def test_unknown_symbol_is_rejected_and_the_rest_of_its_batch_subscribed(
    harness: Harness,
) -> None:
    """A symbol KuCoin refuses (404) is reported; the others in its batch still subscribe."""
    sink = Sink()
    feed = harness.feed(Market.SPOT, sink)
    await feed.subscribe(["BTC-USDT", "NOPE-USDT", "ETH-USDT"])
    harness.run(feed)
    await eventually(lambda: feed.subscribed_symbols == {"BTC-USDT", "ETH-USDT"})
    assert "NOPE-USDT" in feed.rejected_symbols
    assert "not found" in feed.rejected_symbols["NOPE-USDT"]
    assert harness.metric("cogmora_feed_errors_total", market="spot", kind="subscribe_404") >= 1


async def test_dynamic_subscribe_and_unsubscribe_while_running(harness: Harness) -> None:
    """Symbols added while running are acked before subscribe returns; removed ones stop."""
    sim = harness.sim
    feed, sink = await started(harness, Market.SPOT, ["BTC-USDT"])
    await feed.subscribe(["ADA-USDT"])
    assert "ADA-USDT" in feed.subscribed_symbols
    assert "/market/ticker:ADA-USDT" in sim.subscribed_topics(Market.SPOT)
    await feed.unsubscribe(["BTC-USDT"])
    assert "/market/ticker:BTC-USDT" not in sim.subscribed_topics(Market.SPOT)
    await sim.set_price("BTC-USDT", "1")
    await sim.set_price("ADA-USDT", "0.5")
    await sink.wait(lambda: bool(sink.prices("ADA-USDT")))
    assert sink.prices("BTC-USDT") == []


async def test_emptied_extra_connection_is_closed(harness: Harness) -> None:
    """When an extra connection loses its last symbol it is closed; the first one stays."""
    sim = harness.sim
    symbols = sorted(MANY_SPOT)[:150]
    feed, _ = await started(harness, Market.SPOT, symbols, topic_cap=100)
    assert feed.connections == 2
    await feed.unsubscribe(symbols[100:])
    await eventually(lambda: sim.connections(Market.SPOT) == 1)
    assert feed.connections == 1 and feed.connected


async def test_fresh_price_comes_from_rest(harness: Harness) -> None:
    """fresh_price reads the level-1 ticker of a symbol that has no subscription."""
    sim = harness.sim
    sink = Sink()
    feed = harness.feed(Market.SPOT, sink)
    await sim.set_price("LINK-USDT", "14.75")
    price, _ = await feed.fresh_price("LINK-USDT")
    assert price == Decimal("14.75")


async def test_a_failing_consumer_does_not_stop_the_feed(harness: Harness) -> None:
    """An exception in on_ticks is counted and the next burst is still delivered."""
    sim = harness.sim
    seen: list[Decimal] = []

    def consumer(ticks: list[Tick]) -> None:
        seen.extend(t.price for t in ticks)
        if len(seen) == 1:
            raise RuntimeError("engine bug")

    feed = harness.feed(Market.SPOT, consumer)  # type: ignore[arg-type]
    await feed.subscribe(["BTC-USDT"])
    harness.run(feed)
    await eventually(lambda: feed.subscribed_symbols == {"BTC-USDT"})
    await sim.set_price("BTC-USDT", "1")
    await eventually(lambda: len(seen) == 1)
    await sim.set_price("BTC-USDT", "2")
    await eventually(lambda: seen == [Decimal(1), Decimal(2)])
    assert harness.metric("cogmora_feed_errors_total", market="spot", kind="on_ticks") == 1
