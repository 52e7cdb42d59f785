"""Where "the latest known price" comes from, and the 5-second freshness rule.

The worker keeps live prices in memory (`LivePrices`) and mirrors them to `prices/{symbol}`
for processes without a feed; the API asks a chain of sources and refuses to fill at a
price older than the limit (409 `no fresh price for SYMBOL`), because a paper fill at a
stale price is a fill the user could never have had.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from cogmora.domain.enums import Market
from cogmora.domain.models import PriceQuote, price_path
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.errors import Conflict
from cogmora.services.clock import Clock
from cogmora.store.port import Store, Tx


class PriceSource(Protocol):
    async def latest(self, symbol: str, market: Market) -> PriceQuote | None: ...


class LivePrices:
    """Latest trade (and mark) price per symbol, straight from the feed, in memory."""

    def __init__(self) -> None:
        self._quotes: dict[str, PriceQuote] = {}

    def update(self, tick: Tick, at: datetime) -> None:
        old = self._quotes.get(tick.symbol)
        if tick.kind is PriceKind.MARK:
            if old is not None:
                self._quotes[tick.symbol] = PriceQuote(old.symbol, old.price, old.at, tick.price)
            return
        mark = None if old is None else old.mark_price
        self._quotes[tick.symbol] = PriceQuote(tick.symbol, tick.price, at, mark)

    def put(self, quote: PriceQuote) -> None:
        self._quotes[quote.symbol] = quote

    def get(self, symbol: str) -> PriceQuote | None:
        return self._quotes.get(symbol)

    def snapshot(self) -> dict[str, PriceQuote]:
        return dict(self._quotes)

    async def latest(self, symbol: str, market: Market) -> PriceQuote | None:
        return self._quotes.get(symbol)


class StorePrices:
    """`prices/{symbol}` documents, written by whichever worker holds the feed."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def latest(self, symbol: str, market: Market) -> PriceQuote | None:
        def body(tx: Tx) -> PriceQuote | None:
            doc = tx.get(price_path(symbol))
            return None if doc is None else PriceQuote.from_doc(doc)

        return await self._store.read(body)

    async def put(self, quotes: Sequence[PriceQuote]) -> None:
        def body(tx: Tx) -> None:
            for q in quotes:
                tx.set(price_path(q.symbol), q.to_doc())

        await self._store.transact(body)


class ChainedPrices:
    """Ask each source in turn, cheapest first; stop at the first fresh answer, otherwise
    return the newest stale one (so the caller can say how stale)."""

    def __init__(
        self, *sources: PriceSource, clock: Clock | None = None, max_age_seconds: float = 5.0
    ) -> None:
        self._sources = list(sources)
        self._clock = clock
        self._max_age = timedelta(seconds=max_age_seconds)

    def add(self, source: PriceSource) -> None:
        """Append a last-resort source (the worker adds KuCoin's REST ticker at start)."""
        self._sources.append(source)

    async def latest(self, symbol: str, market: Market) -> PriceQuote | None:
        best: PriceQuote | None = None
        for source in self._sources:
            quote = await source.latest(symbol, market)
            if quote is None:
                continue
            if self._clock is not None and self._clock.now() - quote.at <= self._max_age:
                return quote
            if best is None or quote.at > best.at:
                best = quote
        return best


async def fresh_price(
    source: PriceSource, symbol: str, market: Market, now: datetime, max_age_seconds: float
) -> PriceQuote:
    quote = await source.latest(symbol, market)
    if quote is None or now - quote.at > timedelta(seconds=max_age_seconds):
        raise Conflict(f"no fresh price for {symbol}")
    return quote
