"""Starting the real-time worker: feeds, engine, book sync and their housekeeping tasks.

Everything is owned by the system's supervisor, so a crashed feed or commit loop is
restarted with backoff and shows in /healthz.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog

from cogmora.cli.compose import System
from cogmora.domain.enums import Market
from cogmora.domain.models import PriceQuote
from cogmora.engine.engine import Committed, Engine
from cogmora.engine.metrics import EngineMetrics
from cogmora.engine.subscriptions import Subscriptions
from cogmora.errors import CogmoraError, NotFound
from cogmora.feeds.kucoin.client import FeedOptions, KucoinFeed
from cogmora.feeds.kucoin.metrics import FeedMetrics
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.services.prices import StorePrices

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
        }


async def refresh_catalog(worker: Worker) -> None:
    """Which symbols exist, from the exchange itself (unknown symbols are refused, 422)."""
    catalog = worker.system.catalog
    tickers = await worker.rests[Market.SPOT].all_tickers()
    catalog.update(Market.SPOT, [t.symbol for t in tickers.ticker])
    contracts = await worker.rests[Market.FUTURES].contracts_active()
    catalog.update(Market.FUTURES, [c.symbol for c in contracts])
    log.info(
        "symbol catalog loaded",
        spot=len(catalog.symbols(Market.SPOT)),
        futures=len(catalog.symbols(Market.FUTURES)),
    )


async def keep_catalog(worker: Worker, period: float = 3600.0) -> None:
    backoff = 1.0
    while True:
        try:
            await refresh_catalog(worker)
        except CogmoraError as exc:
            log.warning("symbol catalog refresh failed", error=str(exc), retry_in=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)
            continue
        backoff = 1.0
        await asyncio.sleep(period)


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
    for market, rest in rests.items():
        feeds[market] = KucoinFeed(rest, market, engine.on_ticks, feed_metrics, options=options)
    worker = Worker(system, engine, feeds, rests, subscriptions)
    system.prices.add(RestPrices(worker))
    system.worker = worker
    return worker


async def start_worker(
    system: System, options: FeedOptions | None = None, on_committed: Committed | None = None
) -> Worker:
    worker = build_worker(system, options, on_committed)
    engine, sup = worker.engine, system.supervisor
    try:
        await refresh_catalog(worker)
    except CogmoraError as exc:
        log.warning("symbol catalog not loaded yet; retrying in the background", error=str(exc))
    await engine.load()
    sup.add_probe("worker", worker.health)
    sup.start("engine-commits", engine.run_commits)
    sup.start("engine-follow", engine.follow)
    sup.start("subscriptions", worker.subscriptions.run)
    for market, feed in worker.feeds.items():
        sup.start(f"feed-{market.value}", feed.run)
    sup.start("catalog", lambda: keep_catalog(worker))
    sup.start("price-mirror", lambda: mirror_prices(worker))
    sup.start("trigger-expiry", lambda: expire_triggers(worker))
    return worker
