"""The watchlist scraper: one exchange snapshot per run, mapped onto every user's watchlist.

A run reads every watched symbol of every user (the registered ALL_WATCHLISTS query),
fetches each needed market's all-tickers ONCE, and writes the refreshed entries in
batches of at most one transaction's worth. Each batch re-reads its documents first and
writes only those that still exist, keeping the user's `order`: a user who removes a
symbol while a run is writing must not see it come back. An unknown or delisted symbol
keeps its entry with an `error` (see `cogmora.domain.watchlist`).

The job itself runs on a global schedule (`schedules/watchlist`, every minute by default),
claimed like an agent's slot, so one replica refreshes per slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

import structlog

from cogmora.domain.enums import Market
from cogmora.domain.models import Doc
from cogmora.domain.timeutil import from_iso
from cogmora.domain.watchlist import (
    NO_DATA,
    UNKNOWN_SYMBOL,
    WatchEntry,
    market_of,
    refresh_watchlist,
)
from cogmora.errors import Temporary
from cogmora.jobs.market import MarketSnapshot, update_catalog
from cogmora.jobs.metrics import JobsMetrics
from cogmora.jobs.scheduler import WATCHLIST_JOB, Completion, SlotScheduler, describe
from cogmora.services.clock import Clock
from cogmora.services.symbols import SymbolCatalog
from cogmora.store import queries as q
from cogmora.store.paths import split
from cogmora.store.port import Store, Tx
from cogmora.waits import woken_within

log = structlog.get_logger("cogmora.jobs.watchlist")
JOB = "watchlist"
DEFAULT_SCHEDULE = "every 1m"


class SnapshotSource(Protocol):
    async def snapshot(self, markets: Iterable[Market] = ...) -> MarketSnapshot: ...


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    users: int = 0
    entries: int = 0
    written: int = 0
    unknown: int = 0
    no_data: int = 0
    errors: dict[str, str] = field(default_factory=dict)

    def to_doc(self) -> Doc:
        return {
            "users": self.users,
            "entries": self.entries,
            "written": self.written,
            "unknown": self.unknown,
            "noData": self.no_data,
            "errors": self.errors,
        }


class WatchlistScraper:
    def __init__(
        self,
        store: Store,
        market: SnapshotSource,
        catalog: SymbolCatalog | None = None,
        batch: int = 500,
        metrics: JobsMetrics | None = None,
    ) -> None:
        self._store = store
        self._market = market
        self._catalog = catalog
        self._batch = max(1, min(batch, store.max_writes_per_tx))
        self._metrics = metrics

    async def run(self, now: datetime) -> ScrapeResult:
        rows = await self._store.read(lambda tx: tx.query(q.Query("watchlist")))
        if not rows:
            return ScrapeResult()
        markets = {market_of(str(doc["symbol"])) for _, doc in rows}
        snap = await self._market.snapshot(sorted(markets))
        if self._catalog is not None:
            update_catalog(self._catalog, snap)
        by_user: dict[str, list[tuple[str, Doc]]] = {}
        for path, doc in rows:
            by_user.setdefault(split(path).parent, []).append((path, doc))
        updates: list[tuple[str, Doc]] = []
        unknown = no_data = 0
        for parent, docs in by_user.items():
            previous = {doc["symbol"]: WatchEntry.from_doc(doc) for _, doc in docs}
            symbols = list(previous)
            entries = refresh_watchlist(symbols, snap.stats, now, snap.covered, previous)
            for entry in entries:
                if entry.error == UNKNOWN_SYMBOL and entry.symbol in snap.listed_without_data:
                    entry = replace(entry, error=NO_DATA)
                unknown += entry.error == UNKNOWN_SYMBOL
                no_data += entry.error == NO_DATA
                updates.append((f"{parent}/watchlist/{entry.symbol}", entry.to_doc()))
        written = 0
        for i in range(0, len(updates), self._batch):
            chunk = updates[i : i + self._batch]
            written += await self._store.transact(partial(_write_batch, chunk=chunk))
        if self._metrics is not None:
            self._metrics.watchlist_entries.labels("written").inc(written)
            self._metrics.watchlist_entries.labels("unknown").inc(unknown)
        return ScrapeResult(len(by_user), len(updates), written, unknown, no_data, snap.errors)


def _write_batch(tx: Tx, *, chunk: list[tuple[str, Doc]]) -> int:
    current = tx.get_many([path for path, _ in chunk])
    written = 0
    for (path, doc), old in zip(chunk, current, strict=True):
        if old is None:
            continue  # removed by its user while this run was working: stays removed
        new = {**doc, "order": old.get("order")}
        if new != old:
            tx.set(path, new)
            written += 1
    return written


class WatchlistJob:
    """Claims the global watchlist slot, scrapes, completes; sleeps until the next slot."""

    def __init__(
        self,
        scheduler: SlotScheduler,
        scraper: WatchlistScraper,
        store: Store,
        clock: Clock,
        *,
        schedule: str = DEFAULT_SCHEDULE,
        timeout_seconds: float = 50.0,
        max_sleep_seconds: float = 5.0,
        metrics: JobsMetrics | None = None,
    ) -> None:
        self._scheduler = scheduler
        self._scraper = scraper
        self._store = store
        self._clock = clock
        self._schedule = schedule
        self._timeout = timeout_seconds
        self._max_sleep = max_sleep_seconds
        self._metrics = metrics
        self.last: ScrapeResult | None = None
        self.last_error: str | None = None
        self.runs = 0
        self._stopping = False
        self._wake = asyncio.Event()

    async def run_once(self) -> ScrapeResult | None:
        """Run the slot if it is due and this replica wins it; None if not."""
        claim = await self._scheduler.claim_doc(WATCHLIST_JOB, self._schedule, self._clock.now())
        if claim is None:
            return None
        if self._metrics is not None:
            self._metrics.claims.labels(JOB, "retry" if claim.attempt > 1 else "first").inc()
        result: ScrapeResult | None = None
        try:
            async with asyncio.timeout(self._timeout):
                result = await self._scraper.run(self._clock.now())
            outcome = (
                "ok"
                if not result.errors
                else "partial: " + "; ".join(f"{m}: {e}" for m, e in result.errors.items())
            )
        except Exception as exc:  # KuCoin or the store failed: the next slot tries again
            outcome = f"failed: {describe(exc)}"
            log.warning("watchlist refresh failed", error=outcome)
        self.runs += 1
        self.last, self.last_error = result, (None if outcome == "ok" else outcome)
        if self._metrics is not None:
            self._metrics.runs.labels(JOB, "ok" if outcome == "ok" else "error").inc()
        await self._scheduler.complete([Completion(claim, outcome)], self._clock.now())
        return result if result is not None else ScrapeResult()

    def stop_claiming(self) -> None:
        """Claim no more slots; `run_forever` returns once a refresh in flight is done."""
        self._stopping = True
        self._wake.set()

    async def run_forever(self) -> None:
        while not self._stopping:
            try:
                await self.run_once()
                wait = await self._until_due()
            except Temporary as exc:  # the store is busy or away: try again shortly
                self.last_error = f"claiming: {exc}"
                log.warning("could not claim the watchlist slot", error=str(exc))
                wait = self._max_sleep
            await woken_within(self._wake.wait(), wait)

    async def _until_due(self) -> float:
        doc = await self._store.read(lambda tx: tx.get(WATCHLIST_JOB))
        nxt = None if doc is None else doc.get("nextRunAt")
        if nxt is None:
            return self._max_sleep
        wait = (from_iso(nxt) - self._clock.now()) / timedelta(seconds=1)
        return min(max(wait, 0.05), self._max_sleep)

    def health(self) -> dict[str, object]:
        return {
            "runs": self.runs,
            "last": None if self.last is None else self.last.to_doc(),
            "lastError": self.last_error,
        }
