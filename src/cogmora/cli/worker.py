"""Starting the real-time worker: feeds, engine, book sync and their housekeeping tasks.

Everything is owned by the system's supervisor, so a crashed feed or commit loop is
restarted with backoff and shows in /healthz.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog

from cogmora.cli.catalog import start_catalog
from cogmora.cli.compose import System
from cogmora.domain.enums import Market
from cogmora.domain.models import Doc, PriceQuote
from cogmora.domain.paths import price_path
from cogmora.engine.engine import Committed, Engine
from cogmora.engine.gap_replay import GapReplay
from cogmora.engine.metrics import EngineMetrics
from cogmora.engine.price_filter import PriceFilter, PriceFilterMetrics
from cogmora.engine.subscriptions import Subscriptions
from cogmora.errors import NotFound
from cogmora.feeds.kucoin.client import FeedOptions, KucoinFeed
from cogmora.feeds.kucoin.metrics import FeedMetrics
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.services.prices import StorePrices
from cogmora.store.port import Tx

log = structlog.get_logger("cogmora.worker")


class RestPrices:
    """The last resort for a fresh price: KuCoin's REST ticker, for a symbol the feeds do
    not follow yet; asking also starts following it, so the next ask is free."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    async def latest(self, symbol: str, market: Market) -> PriceQuote | None:
        w = self._worker
        w.subscriptions.touch(symbol, market)
        try:
            price, _ = await w.rests[market].last_price(symbol)
        except NotFound:
            return None
        quote = PriceQuote(symbol, price, w.system.clock.now())
        w.system.live.put(quote)
        return quote


@dataclass(slots=True)
class Worker:
    system: System
    engine: Engine
    feeds: dict[Market, KucoinFeed]
    rests: dict[Market, KucoinRest]
    subscriptions: Subscriptions
    price_filter: PriceFilter
    gaps: GapReplay

    @property
    def recovering(self) -> frozenset[str]:
        """Symbols whose feed gap is being replayed (SPEC 5.1: /healthz "recovering")."""
        return self.gaps.recovering

    def health(self) -> dict[str, Any]:
        feeds = {
            m.value: {
                "connected": f.connected,
                "connections": f.connections,
                "lagSeconds": f.lag_seconds,
                "subscribed": len(f.subscribed_symbols),
                "reconnects": f.reconnects,
            }
            for m, f in self.feeds.items()
        }
        return {
            "feeds": feeds,
            "book": {"levels": self.engine.book.levels_count(), "entries": len(self.engine.book)},
            "recovering": sorted(self.recovering),
        }


async def mirror_prices(worker: Worker, period: float = 1.0) -> None:
    """Copy live prices to `prices/{symbol}` for processes without a feed (API replicas)."""
    store_prices = StorePrices(worker.system.store)
    written: dict[str, PriceQuote] = {}
    while True:
        await asyncio.sleep(period)
        changed = [q for s, q in worker.system.live.snapshot().items() if written.get(s) != q]
        if changed:
            await store_prices.put(changed)
            written.update({q.symbol: q for q in changed})


async def expire_triggers(worker: Worker, period: float = 1.0) -> None:
    while True:
        while await worker.system.triggers.expire_due():
            pass
        await asyncio.sleep(period)


async def seed_gaps(worker: Worker) -> None:
    """After a restart, each symbol of the book was last heard at its stored price's time:
    the gap from then to its first new tick is replayed (SPEC 5.1)."""
    symbols = sorted(worker.engine.book.symbols())
    if not symbols:
        return

    def body(tx: Tx) -> list[Doc | None]:
        return tx.get_many([price_path(s) for s in symbols])

    docs = await worker.system.store.read(body)
    seeded = 0
    for symbol, doc in zip(symbols, docs, strict=True):
        if doc is not None:
            worker.gaps.seed(symbol, PriceQuote.from_doc(doc).at)
            seeded += 1
    log.info("gaps to replay at start", symbols=seeded)


def build_worker(
    system: System, options: FeedOptions | None = None, on_committed: Committed | None = None
) -> Worker:
    settings = system.settings
    rests = {
        Market.SPOT: KucoinRest(settings.kucoin_spot_url, Market.SPOT),
        Market.FUTURES: KucoinRest(settings.kucoin_futures_url, Market.FUTURES),
    }
    for rest in rests.values():
        system.closers.append(rest.aclose)
    feeds: dict[Market, KucoinFeed] = {}

    def market_of(symbol: str) -> Market | None:
        # `engine` is bound below: the engine and the subscriptions call each other.
        return engine.index.markets.get(symbol) or system.catalog.market_of(symbol)

    subscriptions = Subscriptions(feeds, market_of)
    engine = Engine(
        system.store,
        settings.fees,
        system.clock,
        system.live,
        EngineMetrics(system.registry),
        on_symbols_changed=subscriptions.book_changed,
        on_committed=on_committed,
    )
    feed_metrics = FeedMetrics(system.registry)
    # Implausible prices (SPEC 5.1) are dropped here, before the engine sees them.
    plausible = PriceFilter(
        system.catalog, engine.on_ticks, PriceFilterMetrics(system.registry), settings.price_band
    )
    # In front of the filter: a symbol's live ticks wait while its feed gap is replayed,
    # and the REST price evaluated after the gap passes the same filter as a feed tick.
    gaps = GapReplay(engine, plausible, rests, market_of, engine.metrics)
    system.closers.append(gaps.aclose)
    for market, rest in rests.items():
        feeds[market] = KucoinFeed(
            rest, market, gaps.on_ticks, feed_metrics, options=options, gaps=gaps
        )
    worker = Worker(system, engine, feeds, rests, subscriptions, plausible, gaps)
    system.prices.add(RestPrices(worker))
    system.worker = worker
    return worker


async def start_worker(
    system: System, options: FeedOptions | None = None, on_committed: Committed | None = None
) -> Worker:
    worker = build_worker(system, options, on_committed)
    engine, sup = worker.engine, system.supervisor
    await start_catalog(system)  # before the book: the feeds subscribe by market
    await engine.load()
    await seed_gaps(worker)
    sup.add_probe("worker", worker.health)
    sup.start("engine-commits", engine.run_commits)
    sup.start("engine-follow", engine.follow)
    sup.start("subscriptions", worker.subscriptions.run)
    for market, feed in worker.feeds.items():
        sup.start(f"feed-{market.value}", feed.run)
    sup.start("price-mirror", lambda: mirror_prices(worker))
    sup.start("trigger-expiry", lambda: expire_triggers(worker))
    return worker
