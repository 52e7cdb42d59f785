"""The gap replay's fill rules (SPEC 5.1): candles in, fills with prices and reasons out."""

from __future__ import annotations

from decimal import Decimal

from cogmora.domain.book import TriggerBook
from cogmora.domain.crossing import Reason
from cogmora.domain.enums import Side, TriggerOp
from cogmora.domain.gap import GapCandle, GapFill, cross_candle, fill_price, walk

D = Decimal
S = "BTC-USDT"


def candle(start: int, open_: str, high: str, low: str) -> GapCandle:
    return GapCandle(start, D(open_), D(high), D(low))


def long_book(sl: str | None = "59000", tp: str | None = "62000", liq: str | None = None,
              ) -> TriggerBook:
    book = TriggerBook()
    book.set_position("p", S, Side.LONG, sl and D(sl), tp and D(tp), liq and D(liq))
    return book


def one(fills: list[GapFill]) -> tuple[str, Reason, Decimal]:
    [f] = fills
    return f.hit.key, f.hit.reason, f.price


def test_a_long_stop_crossed_inside_a_candle_fills_at_its_level() -> None:
    """A candle that opened above a long's stop and dipped through it fills at the stop."""
    book = long_book()
    fills = cross_candle(book, S, candle(0, "60000", "60100", "58000"), {})
    assert one(fills) == ("p", Reason.STOP_LOSS, D("59000"))
    assert "p" not in book


def test_a_candle_that_opened_beyond_the_stop_fills_at_its_open() -> None:
    """A gap through the stop fills at the candle's open, not at the level."""
    fills = cross_candle(long_book(), S, candle(0, "58500", "58600", "58000"), {})
    assert one(fills) == ("p", Reason.STOP_LOSS, D("58500"))


def test_a_take_profit_fills_at_its_level_even_when_opened_beyond() -> None:
    """A take profit always fills at its own level."""
    fills = cross_candle(long_book(), S, candle(0, "63000", "63500", "62900"), {})
    assert one(fills) == ("p", Reason.TAKE_PROFIT, D("62000"))


def test_one_candle_crossing_stop_and_take_profit_closes_as_stop_loss() -> None:
    """The order inside a candle is unknown: the worse for the user, the stop, is assumed."""
    fills = cross_candle(long_book(), S, candle(0, "60000", "62500", "58500"), {})
    assert one(fills) == ("p", Reason.STOP_LOSS, D("59000"))


def test_liquidation_is_the_worst_reason() -> None:
    """A candle reaching both the stop and the liquidation liquidates."""
    book = long_book(sl="59000", tp=None, liq="55000")
    fills = cross_candle(book, S, candle(0, "60000", "60000", "54000"), {})
    assert one(fills) == ("p", Reason.LIQUIDATION, D("55000"))


def test_a_short_is_mirrored() -> None:
    """A short's stop fires at the high and its take profit at the low."""
    book = TriggerBook()
    book.set_position("s", S, Side.SHORT, D("61000"), D("58000"), None)
    fills = cross_candle(book, S, candle(0, "61500", "61600", "60000"), {})
    assert one(fills) == ("s", Reason.STOP_LOSS, D("61500"))
    book.set_position("s", S, Side.SHORT, D("61000"), D("58000"), None)
    fills = cross_candle(book, S, candle(60, "60000", "60500", "57000"), {})
    assert one(fills) == ("s", Reason.TAKE_PROFIT, D("58000"))


def test_triggers_fire_at_their_level_or_the_gapped_open() -> None:
    """An `above` trigger fires at the high, a `below` one at the low, gaps at the open."""
    book = TriggerBook()
    book.set_trigger("up", S, TriggerOp.ABOVE, D("61000"))
    book.set_trigger("down", S, TriggerOp.BELOW, D("59000"))
    fills = cross_candle(book, S, candle(0, "60000", "61200", "59900"), {})
    assert one(fills) == ("up", Reason.TRIGGER, D("61000"))
    fills = cross_candle(book, S, candle(60, "58000", "58100", "57000"), {})
    assert one(fills) == ("down", Reason.TRIGGER, D("58000"))


def test_a_candle_that_ended_before_a_key_was_created_leaves_it_in_the_book() -> None:
    """Candles ending at or before the creation second are ignored; later ones count."""
    book = long_book()
    created = {"p": 120}
    assert cross_candle(book, S, candle(60, "60000", "60000", "58000"), created) == []
    assert "p" in book
    assert book.cross(S, D("60000")) == []  # the book's edges still hold
    fills = cross_candle(book, S, candle(120, "60000", "60000", "58000"), created)
    assert one(fills) == ("p", Reason.STOP_LOSS, D("59000"))


def test_walk_goes_in_time_order_and_fires_once() -> None:
    """Candles are walked oldest first; a key fires in the first candle that crosses it."""
    book = long_book()
    seen: list[tuple[int, str]] = []
    candles = [candle(120, "59000", "59000", "50000"), candle(60, "60000", "60000", "58900")]
    total = walk(book, S, candles, {}, lambda c, fs: seen.extend((c.start_s, f.hit.key)
                                                                 for f in fs))
    assert total == 1
    assert seen == [(60, "p")]


def test_a_candle_crossing_nothing_changes_nothing() -> None:
    """A candle inside every level returns nothing and keeps the key."""
    book = long_book()
    assert cross_candle(book, S, candle(0, "60000", "61000", "59500"), {}) == []
    assert "p" in book


def test_fill_price_rules() -> None:
    """The level, or the open beyond it for stops and triggers; a TP keeps its level."""
    assert fill_price(D(100), Reason.STOP_LOSS, True, D(99)) == D(99)
    assert fill_price(D(100), Reason.STOP_LOSS, True, D(101)) == D(100)
    assert fill_price(D(100), Reason.TRIGGER, False, D(103)) == D(103)
    assert fill_price(D(100), Reason.TAKE_PROFIT, False, D(103)) == D(100)
