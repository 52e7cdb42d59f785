"""Which symbols the feeds follow.

A symbol is followed while it has a level in the book, and for a while after a price was
asked of it (an open at market, the account view), so a burst of orders on a new symbol
costs one REST call and then rides the websocket. Unsubscribing waits out a grace period:
the book loses and regains a symbol whenever its last trigger fires into a position, and
churning subscriptions on every such blink would cost more than it saves.

A symbol the feeds subscribe again (its connection came back, or it is followed again
after being dropped) has its levels reloaded from the store with the seed's per-symbol
queries (`ResubscribeWatch`, `BookReloads`): whatever the book missed while the symbol was
away is healed before its ticks are trusted again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Protocol

import structlog

from cogmora.domain.enums import Market
from cogmora.engine.book_sync import BookIndex, SymbolReload
from cogmora.errors import Temporary
from cogmora.store.port import Store
from cogmora.waits import woken_within

log = structlog.get_logger("cogmora.subscriptions")


class Feed(Protocol):
    async def subscribe(self, symbols: Iterable[str]) -> None: ...

    async def unsubscribe(self, symbols: Iterable[str]) -> None: ...


class Subscriptions:
    def __init__(
        self,
        feeds: Mapping[Market, Feed],
        market_of: Callable[[str], Market | None],
        linger_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._feeds = feeds
        self._market_of = market_of
        self._linger = linger_seconds
        self._clock = clock
        self._in_book: set[str] = set()
        self._until: dict[str, float] = {}  # symbol -> keep until (monotonic)
        self._followed: dict[str, Market] = {}
        self._hints: dict[str, Market] = {}  # markets of symbols touched but not in the book
        self._wake = asyncio.Event()

    def book_changed(self, gained: frozenset[str], lost: frozenset[str]) -> None:
        """The book's callback: runs synchronously in the tick path, so it only notes."""
        self._in_book |= gained
        self._in_book -= lost
        now = self._clock()
        for symbol in lost:
            self._until[symbol] = now + self._linger
        if gained:
            self._wake.set()

    def touch(self, symbol: str, market: Market) -> None:
        """Someone needed a price of `symbol`: follow it for the linger period."""
        self._until[symbol] = self._clock() + self._linger
        self._hints[symbol] = market
        if symbol not in self._followed:
            self._wake.set()

    def wanted(self) -> set[str]:
        now = self._clock()
        return self._in_book | {s for s, until in self._until.items() if until > now}

    async def reconcile(self) -> None:
        wanted = self.wanted()
        add: dict[Market, list[str]] = {}
        for symbol in sorted(wanted - set(self._followed)):
            market = self._market_of(symbol) or self._hints.get(symbol)
            if market is None:
                continue
            add.setdefault(market, []).append(symbol)
        drop: dict[Market, list[str]] = {}
        for symbol in sorted(set(self._followed) - wanted):
            drop.setdefault(self._followed[symbol], []).append(symbol)
        for market, symbols in add.items():
            await self._feeds[market].subscribe(symbols)
            self._followed.update(dict.fromkeys(symbols, market))
        for market, symbols in drop.items():
            await self._feeds[market].unsubscribe(symbols)
            for symbol in symbols:
                self._followed.pop(symbol, None)
                self._until.pop(symbol, None)
                self._hints.pop(symbol, None)
        if add or drop:
            log.info(
                "subscriptions changed",
                added={m.value: len(s) for m, s in add.items()},
                dropped={m.value: len(s) for m, s in drop.items()},
                followed=len(self._followed),
            )

    async def run(self, period: float = 1.0) -> None:
        """Apply changes at once when symbols are gained, and at least every `period`."""
        while True:
            await self.reconcile()
            await woken_within(self._wake.wait(), period)
            self._wake.clear()

    @property
    def followed(self) -> dict[str, Market]:
        return dict(self._followed)


class GapListener(Protocol):
    """What a feed tells about its symbols' connections (feeds/kucoin/client.py)."""

    def lost(self, symbols: Collection[str], complete_until_ns: int) -> None: ...

    def live(self, symbols: Collection[str]) -> None: ...

    def dropped(self, symbols: Collection[str]) -> None: ...


class ResubscribeWatch:
    """Between a feed and its gap listener: a symbol acknowledged again after its
    connection was lost, or after it was dropped, is handed to `reload`. The first
    subscription of a symbol reloads nothing: the book already holds what the start-up
    load and the change feed gave it."""

    def __init__(self, inner: GapListener, reload: Callable[[Collection[str]], None]) -> None:
        self._inner = inner
        self._reload = reload
        self._away: set[str] = set()

    def lost(self, symbols: Collection[str], complete_until_ns: int) -> None:
        self._away.update(symbols)
        self._inner.lost(symbols, complete_until_ns)

    def live(self, symbols: Collection[str]) -> None:
        back = [s for s in symbols if s in self._away]
        if back:
            self._away.difference_update(back)
            self._reload(back)
        self._inner.live(symbols)

    def dropped(self, symbols: Collection[str]) -> None:
        self._away.update(symbols)
        self._inner.dropped(symbols)


class BookReloads:
    """Reload the levels of resubscribed symbols, a batch at a time, with the seed's
    per-symbol queries; each reload is atomic with respect to the change feed
    (`SymbolReload`). A temporary store failure puts the batch back for a later try."""

    def __init__(
        self,
        store: Store,
        index: BookIndex,
        leave: Collection[str],
        on_error: Callable[[str, Exception], None],
        batch: int = 50,
    ) -> None:
        self._store = store
        self._index = index
        self._leave = leave  # crossings in flight: the engine's `index.inflight`
        self._on_error = on_error
        self._batch = max(1, batch)
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self.reloaded = 0  # symbols reloaded so far (health, tests)

    def request(self, symbols: Collection[str]) -> None:
        """Synchronous (called from the feed's acknowledgement path): only notes."""
        self._pending.update(symbols)
        self._wake.set()

    async def run(self, retry_seconds: float = 1.0) -> None:
        """Until cancelled. Any other failure than a temporary one ends the task for its
        supervisor to restart; the batch it was reloading is kept for the restart."""
        while True:
            if not self._pending:
                await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = sorted(self._pending)[: self._batch]
                self._pending.difference_update(batch)
                try:
                    await self.reload(batch)
                except Temporary as exc:
                    log.warning("reloading resubscribed symbols failed; retrying", error=str(exc))
                    self._pending.update(batch)
                    await asyncio.sleep(retry_seconds)
                except BaseException:
                    self._pending.update(batch)
                    raise

    async def reload(self, symbols: Collection[str]) -> int:
        """Reload `symbols` now; returns how many changes the feed applied meanwhile."""
        reload = SymbolReload(self._index, symbols, self._leave)
        try:
            rows = await self._store.read(reload.query)
        except BaseException:
            reload.abandon()
            raise
        replayed = reload.finish(rows, self._on_error)
        self.reloaded += len(reload.symbols)
        log.info(
            "resubscribed symbols reloaded",
            symbols=len(reload.symbols),
            positions=len(rows[0]),
            triggers=len(rows[1]),
            replayed=replayed,
        )
        return replayed
