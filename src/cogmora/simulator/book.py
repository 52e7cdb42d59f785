"""The simulated order book: a ladder of one level per price increment either side of the
last trade, a pure function of (symbol, last price, taker side).

KuCoin clients check a book against the trades (a trade prints at a price the book had,
best bid below best ask, near the last price), so the book is anchored on the trade: after
a taker buy at p the best ask is p (what was left of the level the taker lifted) and the
best bid one increment below; after a taker sell the best bid is p. The random walk jumps
further than a book's depth in one step, which is a market maker requoting between trades;
the published book is the one each trade printed against.

Level sizes depend only on (symbol, price), never on history, so a level that stays in the
book keeps its size, a book update carries only the levels that came or went, and a
recorded file replays the very same books.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache

DEPTH = 100  # levels per side: the full book (level2_100, level2/snapshot)

Level = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class Top:
    """The best bid and ask implied by the last trade."""

    price: Decimal
    side: str  # taker side of the last trade
    increment: Decimal

    @property
    def bid(self) -> Decimal:
        return self.price if self.side == "sell" else self.price - self.increment

    @property
    def ask(self) -> Decimal:
        return self.price if self.side == "buy" else self.price + self.increment


def _bid_count(top: Top, depth: int) -> int:
    """Bids stop before zero: a price of 3 increments has 3 bid levels at most."""
    if top.bid > top.increment * depth:
        return depth  # the usual case, without the division
    ticks = (top.bid / top.increment).to_integral_value(rounding=ROUND_CEILING)
    return max(0, min(depth, int(ticks)))


def _overlap(start_a: Decimal, count_a: int, start_b: Decimal, count_b: int) -> int:
    """Shared members of two runs of consecutive tick indexes (a run is start, start+1...)."""
    gap = start_a - start_b
    if count_a <= 0 or count_b <= 0 or gap >= count_b or -gap >= count_a or gap % 1 != 0:
        return 0  # apart (a walk step usually jumps past the whole book) or off the grid
    low = max(start_a, start_b)
    high = min(start_a + count_a, start_b + count_b)
    return max(0, int(high - low))


def changed_levels(before: Top, after: Top, depth: int = DEPTH) -> int:
    """How many price levels a move from `before` to `after` adds or removes (the book
    sequence advances by this, one number per changed level, as KuCoin's does)."""
    inc = after.increment
    span = inc * depth
    asks = _shifted(after.ask - before.ask, inc, span, depth)
    if before.bid > span and after.bid > span:  # both bid ladders full: a plain shift
        return asks + _shifted(after.bid - before.bid, inc, span, depth)
    nb_before, nb_after = _bid_count(before, depth), _bid_count(after, depth)
    # Bids as runs of tick indexes from the deepest level up.
    bids_before = before.bid / inc - nb_before + 1
    bids_after = after.bid / inc - nb_after + 1
    bids_kept = _overlap(bids_before, nb_before, bids_after, nb_after)
    return asks + nb_before + nb_after - 2 * bids_kept


def _shifted(shift: Decimal, inc: Decimal, span: Decimal, depth: int) -> int:
    """Levels changed when a full side of `depth` levels moves by `shift`: two per tick
    moved (one leaves, one comes), the whole side twice over once it moved past itself."""
    if not shift:
        return 0
    if abs(shift) >= span or shift % inc:
        return 2 * depth
    return 2 * int(abs(shift) / inc)


@lru_cache(maxsize=1 << 16)
def level_size(symbol: str, price: Decimal, lots: bool) -> Decimal:
    """A level's resting size: futures in whole lots, spot in base units worth about
    $50 to $50,000."""
    key = f"{symbol}|{format(price.normalize(), 'f')}".encode()
    draw = zlib.crc32(key) % 1000 + 1
    if lots:
        return Decimal(draw)
    size = (Decimal(draw) * 50 / price).quantize(Decimal("0.00000001"))
    return max(size, Decimal("0.00000001"))


def ladder(symbol: str, top: Top, depth: int = DEPTH, *, lots: bool) -> tuple[
    list[Level], list[Level]
]:
    """(bids best first, asks best first), `depth` levels each at most."""
    inc = top.increment
    bids = [top.bid - k * inc for k in range(_bid_count(top, depth))]
    asks = [top.ask + k * inc for k in range(depth)]
    return (
        [(p, level_size(symbol, p, lots)) for p in bids],
        [(p, level_size(symbol, p, lots)) for p in asks],
    )


def diff(
    symbol: str, before: Top, after: Top, depth: int = DEPTH, *, lots: bool
) -> tuple[list[Level], list[Level]]:
    """The (bids, asks) changes from one book to the next: a removed level has size 0."""
    old_bids, old_asks = ladder(symbol, before, depth, lots=lots)
    new_bids, new_asks = ladder(symbol, after, depth, lots=lots)
    return _side_diff(old_bids, new_bids), _side_diff(old_asks, new_asks)


def _side_diff(old: list[Level], new: list[Level]) -> list[Level]:
    old_prices = {p for p, _ in old}
    new_prices = {p for p, _ in new}
    gone = [(p, Decimal(0)) for p, _ in old if p not in new_prices]
    came = [(p, size) for p, size in new if p not in old_prices]
    return gone + came
