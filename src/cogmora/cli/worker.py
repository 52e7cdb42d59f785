"""Starting the real-time worker: feeds, engine, book sync and their housekeeping tasks.

Everything is owned by the system's supervisor, so a crashed feed or commit loop is
restarted with backoff and shows in /healthz.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import structlog

from cogmora.cli.catalog import kucoin_rests, start_catalog
from cogmora.cli.compose import System
from cogmora.domain.enums import Market
from cogmora.domain.models import Doc, PriceQuote
from cogmora.domain.paths import price_path
from cogmora.engine.engine import Committed, Engine
from cogmora.engine.gap_replay import GapReplay
from cogmora.engine.lag import BookLag
from cogmora.engine.metrics import EngineMetrics
from cogmora.engine.price_filter import PriceFilter, PriceFilterMetrics
from cogmora.engine.subscriptions import BookReloads, ResubscribeWatch, Subscriptions
from cogmora.errors import NotFound
from cogmora.feeds.kucoin.client import FeedOptions, KucoinFeed
from cogmora.feeds.kucoin.metrics import FeedMetrics
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.health import GRACE_SECONDS, Problem, Report
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
            # A feed tick that arrived while REST answered wins (services/prices.py).
            return await w.system.live.put_rest(
                symbol, lambda: w.rests[market].last_price(symbol), w.system.clock.now
            )
        except NotFound:
            return None


@dataclass(slots=True)
class Worker:
    system: System
    engine: Engine
    feeds: dict[Market, KucoinFeed]
    rests: dict[Market, KucoinRest]
    subscriptions: Subscriptions
    price_filter: PriceFilter
    gaps: GapReplay
    book_lag: BookLag
    reloads: BookReloads | None = None

    @property
    def recovering(self) -> frozenset[str]:
        """Symbols whose feed gap is being replayed (SPEC 5.1: /healthz "recovering")."""
        return self.gaps.recovering

    def health(self) -> dict[str, Any]:
        return self.report().body

    def report(self) -> Report:
        """Feeds, commits and the book, judged against SPEC 5.1."""
        now = time.monotonic()
        problems: list[Problem] = []
        feeds = {}
        for m, f in self.feeds.items():
            wanted = len(f.wanted_symbols)
            silence = f.silence()
            feeds[m.value] = {
                "connected": f.connected,
                "connections": f.connections,
                "lagSeconds": f.lag_seconds,
                "wanted": wanted,
                "subscribed": len(f.subscribed_symbols),
                "reconnects": f.reconnects,
                "silentSeconds": None if silence is None else round(silence[0], 3),
            }
            if not wanted:
                continue  # a feed nobody needs may come and go
            if not f.connected:
                problems.append(Problem(
                    "feed_disconnected", m.value,
                    f"{m.value} feed disconnected with {wanted} symbols to watch "
                    f"({f.reconnects} reconnects so far)",
                ))
            elif silence is not None and silence[0] > silence[1]:
                problems.append(Problem(
                    "feed_silent", m.value,
                    f"{m.value} feed silent for {silence[0]:.1f} s "
                    f"(ping interval plus timeout: {silence[1]:.0f} s)",
                ))
        engine = self.engine
        since = engine.unconfirmed_since
        failing = 0.0 if since is None else now - since
        if failing > GRACE_SECONDS:
            problems.append(Problem(
                "commits_failing", "engine",
                f"crossing commits have not succeeded for {failing:.1f} s "
                f"(last error: {engine.last_commit_error or 'none yet: still in flight'})",
            ))
        lag = self.book_lag.seconds(now)
        if lag > GRACE_SECONDS:
            why = f": {self.book_lag.error}" if self.book_lag.error else ""
            problems.append(Problem(
                "book_lag", "book",
                f"the book trails the store's change feed by {lag:.1f} s{why}",
            ))
        body = {
            "feeds": feeds,
            "book": {
                "levels": engine.book.levels_count(),
                "entries": len(engine.book),
                "cursor": engine.cursor,
                "lagSeconds": round(lag, 3),
            },
            "commits": {
                "failingSeconds": round(failing, 3),
                "lastError": engine.last_commit_error,
            },
        }
        recovering = tuple(sorted(self.recovering))
        return Report(body, tuple(problems), recovering)


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


def _unreadable(path: str, exc: Exception) -> None:
    log.error("skipping unreadable document", path=path, error=str(exc))


def build_worker(
    system: System, options: FeedOptions | None = None, on_committed: Committed | None = None
) -> Worker:
    settings = system.settings
    rests = kucoin_rests(system)
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
    # A resubscribed symbol's levels are reloaded with the seed's per-symbol queries.
    reloads = BookReloads(system.store, engine.index, engine.index.inflight, _unreadable)
    watch = ResubscribeWatch(gaps, reloads.request)
    # Spot frames take the float prefilter in front of the same chain: a Tick only for a
    # frame near a level, a filter edge, or of a symbol whose gap is being replayed.
    hot = engine.hot_path(gaps.on_ticks, plausible.regions, lambda: gaps.held)
    # An install without a compiler (the slim deploy image) runs the Python loop, ~1.5x
    # slower a frame: say which, so a deployment's figures can be read.
    log.info("spot quiet loop", loop="C" if hot.native else "Python")
    for market, rest in rests.items():
        feeds[market] = KucoinFeed(
            rest, market, gaps.on_ticks, feed_metrics, options=options, gaps=watch,
            frames=hot if market is Market.SPOT else None,
        )
    lag = BookLag(system.store, lambda: engine.cursor, system.registry)
    worker = Worker(system, engine, feeds, rests, subscriptions, plausible, gaps, lag, reloads)
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
    sup.add_probe("worker", worker.report)
    sup.start("engine-commits", engine.run_commits)
    sup.start("engine-follow", engine.follow)
    sup.start("engine-trailing", engine.trailing.run)
    sup.start("book-lag", worker.book_lag.run)
    sup.start("subscriptions", worker.subscriptions.run)
    if worker.reloads is not None:
        sup.start("book-reload", worker.reloads.run)
    for market, feed in worker.feeds.items():
        sup.start(f"feed-{market.value}", feed.run)
    sup.start("price-mirror", lambda: mirror_prices(worker))
    sup.start("trigger-expiry", lambda: expire_triggers(worker))
    return worker


# What brings new work in: stopped first when draining.
INTAKE_TASKS = (
    "subscriptions", "catalog", "price-mirror", "trigger-expiry", "book-lag", "book-reload"
)


async def drain_worker(worker: Worker, within: float) -> bool:
    """Stop the feeds (no new ticks), commit the crossings already queued, stop the engine.
    False if the deadline came first (what was left is recrossed or replayed on restart)."""
    sup = worker.system.supervisor
    await sup.cancel(n for n in sup.names() if n.startswith("feed-") or n in INTAKE_TASKS)
    try:
        async with asyncio.timeout(max(0.0, within)):
            await worker.engine.drained()
        return True
    except TimeoutError:
        log.warning("drain deadline reached with crossings not yet committed")
        return False
    finally:
        try:  # the last second's trailing peaks, so a restart resumes from them
            async with asyncio.timeout(5.0):
                await worker.engine.trailing.flush()
        except Exception:
            log.exception("trailing peaks not stored at drain")
        await sup.cancel(["engine-commits", "engine-follow", "engine-trailing"])
