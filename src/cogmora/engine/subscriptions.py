"""Which symbols the feeds follow.

A symbol is followed while it has a level in the book, and for a while after a price was
asked of it (an open at market, the account view), so a burst of orders on a new symbol
costs one REST call and then rides the websocket. Unsubscribing waits out a grace period:
the book loses and regains a symbol whenever its last trigger fires into a position, and
churning subscriptions on every such blink would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

import structlog

from cogmora.domain.enums import Market

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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=period)
            self._wake.clear()

    @property
    def followed(self) -> dict[str, Market]:
        return dict(self._followed)
