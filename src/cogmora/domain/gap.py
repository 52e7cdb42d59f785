"""What a gap in the feed crossed, from KuCoin's 1-minute candles (SPEC 5.1).

When the worker may have missed trades, it walks the candles of the gap in time order and
asks the book which levels each candle's low and high reached (`TriggerBook.cross_range`);
this module holds the rules that turn such a hit into a fill, once:

- a candle that *ended* before a key was created says nothing about it (the key stays);
- the fill is the level itself, except that a stop loss, liquidation or trigger whose
  candle *opened* beyond the level fills at the open (a gap fills at the open); a take
  profit always fills at its level;
- a candle that reaches several levels of one position closes it once, for the worst
  reason (liquidation, then stop loss or trailing stop, then take profit): inside one
  candle the order of the low and the high is unknown, and the worse for the user is
  assumed;
- trailing stops see each candle's open, then the extreme that moves their peak before
  the one that fires them (a long: the high, then the low), in time order, so a peak is
  what it would have been live; one the open crossed fills at the open, otherwise at its
  stop; a trailing stop younger than a candle is held aside until its candles come.

Pure: candles and creation times in, fills out; the engine writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from cogmora.domain.book import Hit, TriggerBook
from cogmora.domain.crossing import Direction, Reason, direction, trigger_direction
from cogmora.domain.enums import Side, TriggerOp
from cogmora.domain.takeprofits import split_leg_key
from cogmora.domain.trail_book import TrailState

CANDLE_SECONDS = 60


@dataclass(frozen=True, slots=True)
class GapCandle:
    """One 1-minute candle; `start_s` is its opening second (UTC epoch)."""

    start_s: int
    open: Decimal
    high: Decimal
    low: Decimal

    @property
    def end_s(self) -> int:
        return self.start_s + CANDLE_SECONDS


@dataclass(frozen=True, slots=True)
class GapFill:
    """A key a candle crossed: the book's hit and the price it fills at."""

    hit: Hit
    symbol: str
    price: Decimal
    candle: GapCandle


def fill_price(level: Decimal, reason: Reason, falls: bool, open_: Decimal) -> Decimal:
    """The level, or the candle's open when a stop, liquidation or trigger opened beyond it.

    `falls` is true for a level that fires at or below its price (a long's stop)."""
    if reason is Reason.TAKE_PROFIT:
        return level
    beyond = open_ <= level if falls else open_ >= level
    return open_ if beyond else level


def level_falls(hit: Hit) -> bool:
    """Whether the level `hit` crossed fires on a fall (at or below its price)."""
    levels = book_levels(hit)
    if isinstance(levels, TriggerOp):
        return trigger_direction(levels) is Direction.AT_OR_BELOW
    return direction(levels, hit.reason) is Direction.AT_OR_BELOW


def book_levels(hit: Hit) -> Side | TriggerOp:
    """The side of a position's hit or the op of a trigger's, from the record it carries."""
    record = hit._record
    if record is None:
        raise ValueError(f"hit {hit.key} carries no record")
    return (Side.LONG, Side.SHORT, TriggerOp.ABOVE, TriggerOp.BELOW)[record[1]]


def cross_candle(
    book: TriggerBook,
    symbol: str,
    candle: GapCandle,
    created_s: Mapping[str, int],
) -> list[GapFill]:
    """Remove and return what one candle crossed on `symbol`, with fill prices.

    A key whose creation second is at or after the candle's end is left in the book; a key
    with no known creation time is taken as created long ago."""
    end = candle.end_s

    def younger(key: str) -> bool:
        return created_s.get(key, 0) >= end

    hits = book.cross_range(symbol, candle.low, candle.high, keep=younger, open_=candle.open)
    fills = []
    for hit in hits:
        if hit.reason is Reason.TRAILING_STOP:
            trail = hit.trailing()
            level = hit.level()
            assert trail is not None and level is not None
            price = candle.open if trail.at_open else level
        else:
            level = book.level_of(hit)
            assert level is not None
            price = fill_price(level, hit.reason, level_falls(hit), candle.open)
        fills.append(GapFill(hit, symbol, price, candle))
    # A ladder's leg crossed in the candle that also stopped its position: the stop is
    # assumed first (the worse), so the leg never filled.
    stopped = {f.hit.key for f in fills if f.hit.reason is not Reason.TAKE_PROFIT}
    return [f for f in fills if (leg := split_leg_key(f.hit.key)) is None or leg[0] not in stopped]


def walk(
    book: TriggerBook,
    symbol: str,
    candles: Iterable[GapCandle],
    created_s: Mapping[str, int],
    on_fills: Callable[[GapCandle, list[GapFill]], None],
) -> int:
    """Cross the candles in time order; `on_fills` runs after each candle that crossed
    something (so a trigger's new position can enter the book before the next candle).
    Returns the number of fills."""
    total = 0
    ordered = sorted(candles, key=lambda c: c.start_s)
    held = _hold_young_trailing(book, symbol, ordered, created_s)
    try:
        for candle in ordered:
            while held and held[-1][0] < candle.end_s:
                _, key, state = held.pop()
                book.release_trailing(key, state)
            fills = cross_candle(book, symbol, candle, created_s)
            if fills:
                total += len(fills)
                on_fills(candle, fills)
    finally:
        for _, key, state in held:
            book.release_trailing(key, state)
    return total


def _hold_young_trailing(
    book: TriggerBook, symbol: str, candles: list[GapCandle], created_s: Mapping[str, int]
) -> list[tuple[int, str, TrailState]]:
    """Take aside the trailing stops created after the first candle ended, newest first,
    so the walk puts each back before the first candle that ends after its creation."""
    if not candles:
        return []
    first_end = candles[0].end_s
    held = []
    for key in book.trailing_keys(symbol):
        created = created_s.get(key, 0)
        if created >= first_end:
            state = book.hold_trailing(key)
            if state is not None:
                held.append((created, key, state))
    held.sort(key=lambda item: item[0], reverse=True)
    return held
