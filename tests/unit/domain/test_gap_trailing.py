"""Trailing stops in a gap's candles (SPEC 5.1, 5.2): peaks move before stops are judged."""

from __future__ import annotations

from decimal import Decimal

from cogmora.domain.book import TriggerBook
from cogmora.domain.crossing import Reason
from cogmora.domain.enums import Side
from cogmora.domain.gap import GapCandle, GapFill, cross_candle, walk
from cogmora.domain.trailing import TrailingStop

D = Decimal
S = "BTC-USDT"


def candle(start: int, open_: str, high: str, low: str) -> GapCandle:
    return GapCandle(start, D(open_), D(high), D(low))


def trailing_book(rate: str = "0.1", peak: str | None = "100", side: Side = Side.LONG,
                  activation: str | None = None) -> TriggerBook:
    book = TriggerBook()
    spec = TrailingStop(D(rate), activation and D(activation))
    book.set_position("p", S, side, None, None, None, spec, peak and D(peak))
    return book


def walked(book: TriggerBook, candles: list[GapCandle],
           created: dict[str, int] | None = None) -> list[GapFill]:
    out: list[GapFill] = []
    walk(book, S, candles, created or {}, lambda _c, fills: out.extend(fills))
    return out


def test_a_candle_high_raises_the_peak_before_its_low_is_judged() -> None:
    """High 120 then low 108 in one candle: the stop moved to 108 and fires there."""
    [fill] = cross_candle(trailing_book(), S, candle(0, "100", "120", "108"), {})
    assert (fill.hit.reason, fill.price) == (Reason.TRAILING_STOP, D("108"))
    assert fill.hit.trailing() is not None


def test_candles_move_the_peak_in_time_order() -> None:
    """A later candle's dip fires against the peak an earlier candle set."""
    book = trailing_book()
    fills = walked(book, [candle(60, "115", "116", "107"), candle(0, "100", "120", "110")])
    [fill] = fills
    assert (fill.candle.start_s, fill.price) == (60, D("108"))


def test_a_candle_opening_below_the_stop_fills_at_its_open() -> None:
    """A gap through the stop fills at the open, as a stop loss does."""
    [fill] = cross_candle(trailing_book(), S, candle(0, "85", "130", "80"), {})
    assert (fill.hit.reason, fill.price) == (Reason.TRAILING_STOP, D("85"))


def test_a_short_activates_and_fires_inside_the_gap() -> None:
    """A short waiting for 90 activates in one candle and fires at trough * 1.1 in the next."""
    book = trailing_book(peak=None, side=Side.SHORT, activation="90")
    fills = walked(book, [candle(0, "87", "87", "80"), candle(60, "85", "88.1", "84")])
    [fill] = fills
    assert (fill.hit.reason, fill.price, fill.candle.start_s) == (
        Reason.TRAILING_STOP, D("88"), 60
    )


def test_candles_from_before_a_position_do_not_move_its_peak() -> None:
    """A high that ended before the position opened is not its peak."""
    book = trailing_book()
    fills = walked(
        book,
        [candle(0, "100", "200", "100"), candle(60, "100", "101", "95")],
        created={"p": 60},
    )
    assert fills == []
    state = book.trailing_state("p")
    assert state is not None and state.peak_price() == D("101")


def test_one_candle_activating_and_rebounding_fires_the_worse_way() -> None:
    """Inside a candle the low comes first for a short (the worse order): it fires."""
    book = trailing_book(peak=None, side=Side.SHORT, activation="90")
    [fill] = cross_candle(book, S, candle(0, "100", "101", "80"), {})
    assert (fill.hit.reason, fill.price) == (Reason.TRAILING_STOP, D("88"))
