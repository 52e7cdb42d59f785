"""Where "the latest known price" comes from, and the 5-second freshness rule.

The worker keeps live prices in memory (`LivePrices`) and mirrors them to `prices/{symbol}`
for processes without a feed; the API asks a chain of sources and refuses to fill at a
price older than the limit (409 `no fresh price for SYMBOL`), because a paper fill at a
stale price is a fill the user could never have had.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Protocol, TypeVar

from cogmora.domain.enums import Market
from cogmora.domain.models import PriceQuote
from cogmora.domain.paths import price_path
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.errors import Conflict
from cogmora.services.clock import Clock
from cogmora.store.port import Store, Tx

T = TypeVar("T")
# A symbol's trade price (None: the slot's `text`, not read yet); when; its write number.
TradeEntry = tuple[Decimal | None, datetime, int]


class PriceSource(Protocol):
    async def latest(self, symbol: str, market: Market) -> PriceQuote | None: ...


class LiveSlot:
    """One symbol's latest trade price, written in place.

    The hot path keeps a symbol's slot beside its other per-symbol state and writes a
    quiet frame's price as two attribute stores (`text`, then `trade` = the burst's
    entry), with no dict lookup by symbol per frame; `LivePrices` reads the text as a
    Decimal the first time someone asks. `trade` is None until the first write."""

    __slots__ = ("text", "trade")

    def __init__(self) -> None:
        self.text: str | None = None
        self.trade: TradeEntry | None = None


class LivePrices:
    """Latest trade (and mark) price per symbol, straight from the feed, in memory.

    `update` runs for every tick, so it only stores a tuple; a PriceQuote is built when
    someone asks (an open, the account view, the price mirror), which is rare by comparison.
    """

    def __init__(self) -> None:
        # A price may be held as its exact decimal text (`quiet_burst`), made a Decimal
        # when first read: the hot path builds no Decimal for a tick that crosses nothing.
        # The third item of an entry is the write's number (`version`): each write of a
        # trade price draws a new one, so "has a newer price arrived since?" is one int
        # compare.
        self._slots: dict[str, LiveSlot] = {}
        self._marks: dict[str, Decimal] = {}
        self._writes = count(1)

    def slot(self, symbol: str) -> LiveSlot:
        """The symbol's slot, made empty the first time; the same object ever after."""
        slot = self._slots.get(symbol)
        if slot is None:
            slot = self._slots[symbol] = LiveSlot()
        return slot

    def update(self, tick: Tick, at: datetime) -> None:
        if tick.kind is PriceKind.MARK:
            self._marks[tick.symbol] = tick.price
        else:
            slot = self._slots.get(tick.symbol) or self.slot(tick.symbol)
            slot.trade = (tick.price, at, next(self._writes))

    def quiet_burst(self, at: datetime) -> TradeEntry:
        """For a hot path that writes a burst's prices itself, one frame at a time and in
        frame order: the burst's entry; a price is noted with
        `slot.text = text; slot.trade = entry` (no Decimal, no dict by symbol). Every
        symbol written so shares the burst's time and write number. A tick written
        meanwhile (`update`) draws a later number, and a quiet price after it in the same
        burst puts the burst's back; the next burst draws a later one than both, so
        between bursts (when a caller can look) a symbol's `version` still changes with
        every write."""
        return (None, at, next(self._writes))

    def put(self, quote: PriceQuote) -> None:
        self.slot(quote.symbol).trade = (quote.price, quote.at, next(self._writes))
        if quote.mark_price is not None:
            self._marks[quote.symbol] = quote.mark_price

    def version(self, symbol: str) -> int:
        """Changes whenever a trade price of `symbol` is written (0: none yet); reading
        it never changes it."""
        slot = self._slots.get(symbol)
        return 0 if slot is None or slot.trade is None else slot.trade[2]

    async def put_rest(
        self,
        symbol: str,
        ask: Callable[[], Awaitable[tuple[Decimal, datetime]]],
        now: Callable[[], datetime],
    ) -> PriceQuote | None:
        """KuCoin's REST price (`ask`: a `last_price` call), asked now and kept, unless a
        feed tick arrived while REST answered: that tick is newer than the answer and is
        what stays (see `unless_overtaken`). None when there is neither."""
        answer = await unless_overtaken(ask, lambda: self.version(symbol))
        if answer is None:
            return self.get(symbol)
        quote = PriceQuote(symbol, answer[0], now())
        self.put(quote)
        return quote

    def get(self, symbol: str) -> PriceQuote | None:
        slot = self._slots.get(symbol)
        if slot is None or slot.trade is None:
            return None
        price, at, version = slot.trade
        if price is None:  # a quiet burst's: the text it left
            assert slot.text is not None
            price = Decimal(slot.text)
            slot.trade = (price, at, version)
        return PriceQuote(symbol, price, at, self._marks.get(symbol))

    def snapshot(self) -> dict[str, PriceQuote]:
        return {s: q for s in self._slots if (q := self.get(s)) is not None}

    async def latest(self, symbol: str, market: Market) -> PriceQuote | None:
        return self.get(symbol)


async def unless_overtaken(ask: Callable[[], Awaitable[T]], heard: Callable[[], int]) -> T | None:
    """`ask()`'s answer, or None if `heard()` changed while it ran.

    A REST price is a snapshot taken somewhere inside the call; a feed tick that arrived
    during the call may be newer, and an answer written after it would put the price back
    to where it was (stamped now, so it would even look fresh for the next 5 s). So the
    answer counts only if nothing was heard meanwhile. `heard` is the caller's count of
    ticks of that symbol (`LivePrices.version`, or the gap replay's held ticks): the
    one rule for every place that mixes a REST price into a feed's.
    """
    before = heard()
    answer = await ask()
    return None if heard() != before else answer


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
