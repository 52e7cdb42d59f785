"""A gap's candles and take-profit ladders (SPEC 5.1, 5.2): legs fill in order at their
levels, each once, and a candle that also stops the position fills none of its legs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from cogmora.domain.book import TriggerBook
from cogmora.domain.crossing import Reason
from cogmora.domain.enums import Market, Side, Source
from cogmora.domain.gap import GapCandle, GapFill, walk
from cogmora.domain.models import Position, PositionDetails
from cogmora.domain.takeprofits import TakeProfitLeg, leg_key
from cogmora.engine.book_sync import BookIndex

D = Decimal
S = "BTC-USDT"


def laddered(book: TriggerBook) -> BookIndex:
    index = BookIndex(book)
    legs = (
        TakeProfitLeg(D(61000), D("0.25")),
        TakeProfitLeg(D(62000), D("0.25")),
        TakeProfitLeg(D(63000), D("0.5")),
    )
    position = Position(
        "p", "u", S, Market.SPOT, Side.LONG, D(1), D(60000), D(1), D(60000), D(60),
        datetime(2020, 1, 1, tzinfo=UTC), Source.API,
        PositionDetails(stop_loss=D(59000), take_profits=legs, original_qty=D(1)),
    )
    index.put_position(position)
    return index


def candle(start: int, open_: str, high: str, low: str) -> GapCandle:
    return GapCandle(start, D(open_), D(high), D(low))


def walked(book: TriggerBook, candles: list[GapCandle]) -> list[tuple[int, str, Reason, Decimal]]:
    out: list[tuple[int, str, Reason, Decimal]] = []

    def on_fills(c: GapCandle, fills: list[GapFill]) -> None:
        out.extend((c.start_s, f.hit.key, f.hit.reason, f.price) for f in fills)

    walk(book, S, candles, {}, on_fills)
    return out


def test_a_gap_fills_the_legs_in_order_at_their_levels_and_each_once() -> None:
    """Candles rising through 61000, then 62000 and 63000 in one: each leg once, at its
    level, in candle order; the stop stays."""
    book = TriggerBook()
    laddered(book)
    fills = walked(
        book,
        [candle(120, "61500", "63500", "61400"), candle(0, "60000", "61200", "59900"),
         candle(60, "61100", "61300", "60500")],
    )
    assert [(t, k, p) for t, k, _, p in fills] == [
        (0, leg_key("p", 0), D(61000)),
        (120, leg_key("p", 1), D(62000)),
        (120, leg_key("p", 2), D(63000)),
    ]
    assert {r for _, _, r, _ in fills} == {Reason.TAKE_PROFIT}
    assert "p" in book  # the stop loss rests on


def test_a_candle_that_reaches_a_leg_and_the_stop_closes_at_the_stop_only() -> None:
    """Inside one candle the order is unknown: the stop is assumed first, so its legs
    never fill."""
    book = TriggerBook()
    laddered(book)
    fills = walked(book, [candle(0, "60000", "61500", "58500")])
    assert [(k, r, p) for _, k, r, p in fills] == [("p", Reason.STOP_LOSS, D(59000))]
