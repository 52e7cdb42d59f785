from __future__ import annotations

from decimal import Decimal

import pytest

from cogmora.domain.book import Hit, PositionLevels, Reason, TriggerBook, TriggerLevel
from cogmora.domain.enums import Side, TriggerOp
from cogmora.domain.ticks import PriceKind
from cogmora.errors import ValidationError

D = Decimal
MARK = PriceKind.MARK


class Changes:
    """Records the book's symbol notifications and the subscriptions they imply."""

    def __init__(self) -> None:
        self.calls: list[tuple[set[str], set[str]]] = []
        self.subscribed: set[str] = set()

    def __call__(self, gained: frozenset[str], lost: frozenset[str]) -> None:
        self.calls.append((set(gained), set(lost)))
        assert not gained & self.subscribed, "gained a symbol already subscribed"
        assert lost <= self.subscribed, "lost a symbol never subscribed"
        self.subscribed = (self.subscribed | gained) - lost


def hits(*pairs: tuple[str, Reason]) -> set[tuple[str, Reason]]:
    return set(pairs)


def crossed(
    book: TriggerBook, symbol: str, price: str, kind: PriceKind = PriceKind.TRADE
) -> set[tuple[str, Reason]]:
    return {(h.key, h.reason) for h in book.cross(symbol, D(price), kind)}


@pytest.fixture
def book() -> TriggerBook:
    return TriggerBook()


# ---------------------------------------------------------------- crossing rules


@pytest.mark.parametrize(
    ("side", "levels", "price", "reason"),
    [
        (Side.LONG, {"stop_loss": "90"}, "90", Reason.STOP_LOSS),
        (Side.LONG, {"stop_loss": "90"}, "89.5", Reason.STOP_LOSS),
        (Side.LONG, {"take_profit": "110"}, "110", Reason.TAKE_PROFIT),
        (Side.LONG, {"take_profit": "110"}, "111", Reason.TAKE_PROFIT),
        (Side.LONG, {"liquidation": "80"}, "80", Reason.LIQUIDATION),
        (Side.SHORT, {"stop_loss": "110"}, "110", Reason.STOP_LOSS),
        (Side.SHORT, {"stop_loss": "110"}, "200", Reason.STOP_LOSS),
        (Side.SHORT, {"take_profit": "90"}, "90", Reason.TAKE_PROFIT),
        (Side.SHORT, {"take_profit": "90"}, "1", Reason.TAKE_PROFIT),
        (Side.SHORT, {"liquidation": "120"}, "120", Reason.LIQUIDATION),
    ],
)
def test_a_position_level_fires_when_the_price_reaches_it_including_equality(
    book: TriggerBook, side: Side, levels: dict[str, str], price: str, reason: Reason
) -> None:
    """Each position level fires on a trade price at or beyond it, in its side's direction."""
    args = {
        name: D(levels[name]) if name in levels else None
        for name in ("stop_loss", "take_profit", "liquidation")
    }
    book.set_position("p", "BTC-USDT", side, **args)
    assert crossed(book, "BTC-USDT", price) == hits(("p", reason))
    assert "p" not in book


@pytest.mark.parametrize(
    ("side", "levels", "price"),
    [
        (Side.LONG, {"stop_loss": "90"}, "90.00000001"),
        (Side.LONG, {"take_profit": "110"}, "109.99999999"),
        (Side.LONG, {"liquidation": "80"}, "80.00000001"),
        (Side.SHORT, {"stop_loss": "110"}, "109.99999999"),
        (Side.SHORT, {"take_profit": "90"}, "90.00000001"),
        (Side.SHORT, {"liquidation": "120"}, "119.99999999"),
    ],
)
def test_a_position_level_does_not_fire_one_unit_short_of_it(
    book: TriggerBook, side: Side, levels: dict[str, str], price: str
) -> None:
    """A price one 1e-8 step on the safe side of a level leaves the position resting."""
    args = {
        name: D(levels[name]) if name in levels else None
        for name in ("stop_loss", "take_profit", "liquidation")
    }
    book.set_position("p", "BTC-USDT", side, **args)
    assert not book.would_cross("BTC-USDT", D(price))
    assert book.cross("BTC-USDT", D(price)) == []
    assert "p" in book


@pytest.mark.parametrize(
    ("op", "level", "fires", "stays"),
    [
        (TriggerOp.ABOVE, "4000", ["4000", "4000.5"], ["3999.99999999"]),
        (TriggerOp.BELOW, "4000", ["4000", "3000"], ["4000.00000001"]),
    ],
)
def test_a_trigger_fires_at_or_beyond_its_price(
    op: TriggerOp, level: str, fires: list[str], stays: list[str]
) -> None:
    """`above P` fires on price >= P and `below P` on price <= P, never before."""
    for price in fires:
        book = TriggerBook()
        book.set_trigger("t", "ETH-USDT", op, D(level))
        for safe in stays:
            assert book.cross("ETH-USDT", D(safe)) == []
        assert crossed(book, "ETH-USDT", price) == hits(("t", Reason.TRIGGER))


def test_a_tick_price_with_more_than_eight_places_compares_exactly(book: TriggerBook) -> None:
    """A price a hair on either side of a level is compared exactly, not rounded onto it."""
    book.set_trigger("up", "X", TriggerOp.ABOVE, D("10"))
    book.set_trigger("down", "X", TriggerOp.BELOW, D("9.99999999"))
    assert book.cross("X", D("9.999999999")) == []
    assert book.cross("X", D("9.999999995")) == []
    assert crossed(book, "X", "10.0000000000001") == hits(("up", Reason.TRIGGER))
    assert crossed(book, "X", "9.9999999899999") == hits(("down", Reason.TRIGGER))


def test_levels_a_hair_away_stay_while_the_same_tick_crosses_others(book: TriggerBook) -> None:
    """A tick with extra places that crosses one level leaves the levels it only nearly reaches."""
    book.set_trigger("below", "X", TriggerOp.BELOW, D("2.5"))
    book.set_trigger("above", "X", TriggerOp.ABOVE, D("2.50000001"))
    book.set_trigger("crossed-up", "X", TriggerOp.ABOVE, D("2.25"))
    assert crossed(book, "X", "2.500000005") == hits(("crossed-up", Reason.TRIGGER))
    book.set_trigger("crossed-down", "X", TriggerOp.BELOW, D("2.75"))
    assert crossed(book, "X", "2.500000005") == hits(("crossed-down", Reason.TRIGGER))
    assert {"below", "above"} == {k for k in ("below", "above") if k in book}


def test_a_gap_through_several_levels_closes_the_position_once_as_liquidation(
    book: TriggerBook,
) -> None:
    """A long gapping through its SL and its liquidation is hit once, for liquidation."""
    book.set_position("p", "XBTUSDTM", Side.LONG, D("95"), D("120"), D("90"))
    assert book.cross("XBTUSDTM", D("85")) == [Hit("p", Reason.LIQUIDATION)]
    assert len(book) == 0
    assert book.levels_count() == 0


def test_a_short_gapping_up_through_sl_and_liquidation_is_liquidated(book: TriggerBook) -> None:
    """A short gapping up through its SL and its liquidation is hit once, for liquidation."""
    book.set_position("p", "XBTUSDTM", Side.SHORT, D("105"), D("80"), D("110"))
    assert book.cross("XBTUSDTM", D("110")) == [Hit("p", Reason.LIQUIDATION)]


def test_stop_loss_beats_take_profit_when_a_tick_reaches_both(book: TriggerBook) -> None:
    """Levels set so one price reaches SL and TP close the position for stop loss."""
    book.set_position("long", "X", Side.LONG, D("100"), D("100"), None)
    book.set_position("short", "X", Side.SHORT, D("100"), D("100"), None)
    assert crossed(book, "X", "100") == hits(
        ("long", Reason.STOP_LOSS), ("short", Reason.STOP_LOSS)
    )


def test_one_tick_reports_every_entry_it_crosses_and_leaves_the_rest(book: TriggerBook) -> None:
    """A fall reports every level at or above the price on the way down, and nothing else."""
    book.set_position("a", "X", Side.LONG, D("99"), D("150"), None)
    book.set_position("b", "X", Side.LONG, D("95"), D("150"), None)
    book.set_position("c", "X", Side.LONG, D("90"), D("150"), None)
    book.set_position("s", "X", Side.SHORT, D("120"), D("96"), None)
    book.set_trigger("t", "X", TriggerOp.BELOW, D("97"))
    book.set_trigger("u", "X", TriggerOp.ABOVE, D("101"))
    assert crossed(book, "X", "95") == hits(
        ("a", Reason.STOP_LOSS),
        ("b", Reason.STOP_LOSS),
        ("s", Reason.TAKE_PROFIT),
        ("t", Reason.TRIGGER),
    )
    assert {"c", "u"} == {k for k in ("a", "b", "c", "s", "t", "u") if k in book}
    assert book.levels_count() == 3


def test_liquidations_come_first_in_the_hits(book: TriggerBook) -> None:
    """When one tick liquidates and stops out, the liquidations lead the list."""
    book.set_position("stopped", "X", Side.LONG, D("95"), None, None)
    book.set_position("liquidated", "X", Side.LONG, D("99"), None, D("96"))
    assert [h.reason for h in book.cross("X", D("94"))] == [Reason.LIQUIDATION, Reason.STOP_LOSS]


def test_mark_ticks_only_liquidate(book: TriggerBook) -> None:
    """A mark price reaches liquidation levels and leaves SL, TP and triggers in place."""
    book.set_position("long", "XBTUSDTM", Side.LONG, D("95"), D("105"), D("90"))
    book.set_position("short", "XBTUSDTM", Side.SHORT, D("105"), D("95"), D("110"))
    book.set_trigger("t", "XBTUSDTM", TriggerOp.BELOW, D("99"))
    assert book.cross("XBTUSDTM", D("92"), MARK) == []
    assert book.cross("XBTUSDTM", D("107"), MARK) == []
    assert not book.would_cross("XBTUSDTM", D("92"), MARK)
    assert book.would_cross("XBTUSDTM", D("92"))
    assert crossed(book, "XBTUSDTM", "89", MARK) == hits(("long", Reason.LIQUIDATION))
    assert crossed(book, "XBTUSDTM", "115", MARK) == hits(("short", Reason.LIQUIDATION))
    assert "t" in book


def test_a_mark_tick_takes_every_level_of_the_position_it_liquidates(book: TriggerBook) -> None:
    """After a mark-price liquidation the position's SL and TP no longer fire."""
    book.set_position("p", "XBTUSDTM", Side.LONG, D("95"), D("105"), D("90"))
    assert crossed(book, "XBTUSDTM", "90", MARK) == hits(("p", Reason.LIQUIDATION))
    assert book.cross("XBTUSDTM", D("80")) == []
    assert book.cross("XBTUSDTM", D("200")) == []
    assert book.levels_count() == 0


def test_a_symbol_without_levels_crosses_nothing(book: TriggerBook) -> None:
    """Ticks of a symbol the book does not know return no hits."""
    book.set_trigger("t", "ETH-USDT", TriggerOp.ABOVE, D("1"))
    assert book.cross("BTC-USDT", D("100000")) == []
    assert not book.would_cross("BTC-USDT", D("100000"))


# ---------------------------------------------------------------- entries


def test_upsert_replaces_the_previous_levels_of_a_key(book: TriggerBook) -> None:
    """Setting a position again moves its levels: the old ones no longer fire."""
    book.set_position("p", "X", Side.LONG, D("90"), D("110"), None)
    book.set_position("p", "X", Side.LONG, D("80"), None, None)
    assert book.levels_for("p") == PositionLevels("X", Side.LONG, D("80"), None, None)
    assert book.levels_count() == 1
    assert book.cross("X", D("85")) == []
    assert book.cross("X", D("200")) == []
    assert crossed(book, "X", "80") == hits(("p", Reason.STOP_LOSS))


def test_upsert_can_move_a_key_to_another_symbol_and_kind(book: TriggerBook) -> None:
    """A key set again on another symbol rests only there."""
    book.set_trigger("k", "A", TriggerOp.ABOVE, D("10"))
    book.set_position("k", "B", Side.SHORT, D("20"), None, None)
    assert book.symbols() == {"B"}
    assert book.cross("A", D("11")) == []
    assert book.levels_for("k") == PositionLevels("B", Side.SHORT, D("20"), None, None)
    assert crossed(book, "B", "20") == hits(("k", Reason.STOP_LOSS))


def test_a_position_without_levels_is_not_kept(book: TriggerBook) -> None:
    """Clearing every level of a position removes it from the book."""
    book.set_position("p", "X", Side.LONG, D("90"), None, None)
    book.set_position("p", "X", Side.LONG, None, None, None)
    assert "p" not in book
    assert len(book) == 0
    assert book.symbols() == set()


def test_remove_takes_every_level_of_a_key(book: TriggerBook) -> None:
    """A removed position fires no more, and removing it again reports False."""
    book.set_position("p", "X", Side.LONG, D("90"), D("110"), D("80"))
    book.set_trigger("t", "X", TriggerOp.ABOVE, D("120"))
    assert book.remove("p") is True
    assert book.remove("p") is False
    assert book.remove("never") is False
    assert book.cross("X", D("70")) == []
    assert book.cross("X", D("115")) == []
    assert (len(book), book.levels_count()) == (1, 1)


def test_removing_the_nearest_level_moves_the_edge_to_the_next_live_one(book: TriggerBook) -> None:
    """With the nearest levels removed, the next live one fires exactly at its price."""
    for i in range(10):
        book.set_trigger(f"t{i}", "X", TriggerOp.BELOW, D(90 + i))
    for i in range(9, 2, -1):
        book.remove(f"t{i}")
    assert book.cross("X", D("92.00000001")) == []
    assert crossed(book, "X", "92") == hits(("t2", Reason.TRIGGER))


def test_levels_of_removed_keys_are_revived_when_set_again(book: TriggerBook) -> None:
    """A level emptied by removal and set again fires again."""
    book.set_trigger("a", "X", TriggerOp.ABOVE, D("105"))
    book.set_trigger("b", "X", TriggerOp.ABOVE, D("110"))
    book.remove("b")
    book.set_trigger("c", "X", TriggerOp.ABOVE, D("110"))
    assert crossed(book, "X", "110") == hits(("a", Reason.TRIGGER), ("c", Reason.TRIGGER))


def test_levels_for_reports_what_rests(book: TriggerBook) -> None:
    """`levels_for` gives back the levels as set, or None for an unknown key."""
    book.set_trigger("t", "X", TriggerOp.BELOW, D("0.00000001"))
    book.set_position("p", "Y", Side.SHORT, D("2.5"), D("1.25"), D("3"))
    assert book.levels_for("t") == TriggerLevel("X", TriggerOp.BELOW, D("0.00000001"))
    assert book.levels_for("p") == PositionLevels("Y", Side.SHORT, D("2.5"), D("1.25"), D("3"))
    assert book.levels_for("nope") is None
    book.set_position("odd", "Z", Side.LONG, D("-1"), D("-0.5"), D("-2"))
    assert book.levels_for("odd") == PositionLevels("Z", Side.LONG, D("-1"), D("-0.5"), D("-2"))
    book.remove("odd")
    assert "p" in book and "nope" not in book
    assert (len(book), book.levels_count()) == (2, 4)


@pytest.mark.parametrize("bad", [D("1.000000001"), D("NaN"), D("Infinity")])
def test_a_level_the_book_cannot_hold_exactly_is_refused_and_changes_nothing(
    book: TriggerBook, bad: Decimal
) -> None:
    """A level with more than 8 places or not finite raises ValidationError naming the field."""
    book.set_position("p", "X", Side.LONG, D("90"), None, None)
    with pytest.raises(ValidationError) as raised:
        book.set_position("p", "X", Side.LONG, D("90"), bad, None)
    assert raised.value.field == "takeProfit"
    assert book.levels_for("p") == PositionLevels("X", Side.LONG, D("90"), None, None)


def test_trailing_zeros_beyond_eight_places_are_accepted(book: TriggerBook) -> None:
    """A level written with extra zero places is the same 8-place level."""
    book.set_trigger("t", "X", TriggerOp.ABOVE, D("1.0000000000000"))
    assert crossed(book, "X", "1") == hits(("t", Reason.TRIGGER))


def test_restore_puts_a_hit_back_unless_the_key_was_set_since(book: TriggerBook) -> None:
    """A restored hit fires again; a hit whose key was set again in between is not restored."""
    book.set_position("p", "X", Side.LONG, D("90"), D("110"), D("80"))
    book.set_trigger("t", "X", TriggerOp.BELOW, D("95"))
    first = {hit.key: hit for hit in book.cross("X", D("85"))}
    assert book.restore(first["p"]) is True
    assert book.restore(first["p"]) is False
    book.set_trigger("t", "X", TriggerOp.BELOW, D("50"))
    assert book.restore(first["t"]) is False
    assert book.levels_for("p") == PositionLevels("X", Side.LONG, D("90"), D("110"), D("80"))
    assert crossed(book, "X", "110") == hits(("p", Reason.TAKE_PROFIT))
    assert book.levels_for("t") == TriggerLevel("X", TriggerOp.BELOW, D("50"))


def test_bulk_loads_equal_the_same_upserts_one_by_one() -> None:
    """Loading rows in bulk gives the same book, and the same hits, as setting them one by one."""
    positions = [
        (
            f"p{i}",
            "X" if i % 2 else "Y",
            Side.LONG if i % 3 else Side.SHORT,
            D(90 + i % 7),
            D(110 - i % 5),
            None,
        )
        for i in range(200)
    ]
    triggers = [
        (f"t{i}", "X", TriggerOp.ABOVE if i % 2 else TriggerOp.BELOW, D(100 + i % 11 - 5))
        for i in range(50)
    ]
    bulk, single = TriggerBook(), TriggerBook()
    # a key in the book before the load, and again inside the load, is upserted
    for b in (bulk, single):
        b.set_trigger("p3", "Z", TriggerOp.ABOVE, D("1"))
    assert bulk.load_positions([*positions, positions[5]]) == 201
    assert bulk.load_triggers(triggers) == 50
    for p in positions:
        single.set_position(*p)
    for t in triggers:
        single.set_trigger(*t)
    assert (len(bulk), bulk.levels_count(), bulk.symbols()) == (250, 450, {"X", "Y"})
    for price in ("100", "97", "105", "93", "111", "80", "120"):
        for symbol in ("X", "Y"):
            assert crossed(bulk, symbol, price) == crossed(single, symbol, price)
    assert len(bulk) == len(single) == 0


def test_a_bad_row_stops_a_bulk_load_with_the_rows_before_it_loaded() -> None:
    """The rows before a bad one stay loaded and fire normally."""
    book = TriggerBook()
    rows = [("a", "X", TriggerOp.ABOVE, D("10")), ("b", "X", TriggerOp.ABOVE, D("0.123456789"))]
    with pytest.raises(ValidationError):
        book.load_triggers(rows)
    assert "a" in book and "b" not in book
    assert crossed(book, "X", "10") == hits(("a", Reason.TRIGGER))


def test_a_bulk_load_with_on_error_skips_bad_rows_and_loads_the_rest() -> None:
    """Rows the book cannot hold go to on_error with their key, and every other row loads."""
    book = TriggerBook()
    errors: list[tuple[str, str]] = []
    rows = [
        ("a", "X", Side.LONG, D("9"), None, None),
        ("b", "X", Side.LONG, D("9"), D("Infinity"), None),
        ("c", "X", Side.SHORT, D("11"), None, D("12.000000001")),
        ("d", "X", Side.SHORT, D("11"), None, None),
    ]
    loaded = book.load_positions(rows, on_error=lambda key, exc: errors.append((key, exc.field)))
    assert loaded == 2
    assert errors == [("b", "takeProfit"), ("c", "liquidationPrice")]
    assert crossed(book, "X", "9") == hits(("a", Reason.STOP_LOSS))
    assert crossed(book, "X", "11") == hits(("d", Reason.STOP_LOSS))


# ---------------------------------------------------------------- symbol notifications


def test_symbols_are_announced_when_they_gain_their_first_level_and_lose_their_last() -> None:
    """The callback reports a symbol once when it first has levels and once when it has none."""
    changes = Changes()
    book = TriggerBook(changes)
    book.set_trigger("t1", "X", TriggerOp.ABOVE, D("10"))
    book.set_trigger("t2", "X", TriggerOp.ABOVE, D("12"))
    book.set_position("p", "Y", Side.LONG, D("5"), None, None)
    assert changes.calls == [({"X"}, set()), ({"Y"}, set())]
    book.remove("t1")
    book.cross("X", D("11"))
    assert changes.subscribed == {"X", "Y"}
    book.cross("X", D("12"))
    assert changes.calls[-1] == (set(), {"X"})
    book.cross("Y", D("5"))
    assert changes.calls[-1] == (set(), {"Y"})
    assert changes.subscribed == book.symbols() == set()


def test_moving_levels_within_a_symbol_announces_nothing() -> None:
    """An upsert that replaces a symbol's only level with another is not an unsubscribe."""
    changes = Changes()
    book = TriggerBook(changes)
    book.set_trigger("t", "X", TriggerOp.ABOVE, D("10"))
    book.set_trigger("t", "X", TriggerOp.BELOW, D("5"))
    book.set_position("t", "X", Side.LONG, D("4"), None, None)
    assert changes.calls == [({"X"}, set())]


def test_moving_a_key_between_symbols_announces_both_in_one_call() -> None:
    """Moving a symbol's only key elsewhere reports the new symbol gained and the old one lost."""
    changes = Changes()
    book = TriggerBook(changes)
    book.set_trigger("t", "X", TriggerOp.ABOVE, D("10"))
    book.set_trigger("t", "Y", TriggerOp.ABOVE, D("10"))
    assert changes.calls[-1] == ({"Y"}, {"X"})


def test_a_bulk_load_announces_its_new_symbols_once() -> None:
    """Loading levels over many symbols reports them all in a single call."""
    changes = Changes()
    book = TriggerBook(changes)
    book.load_triggers((f"t{i}", f"S{i % 7}", TriggerOp.ABOVE, D(i + 1)) for i in range(100))
    assert changes.calls == [({f"S{i}" for i in range(7)}, set())]


# ---------------------------------------------------------------- storms


def test_a_storm_of_100000_positions_at_one_level_is_crossed_in_one_tick() -> None:
    """Every one of 100,000 longs sharing one stop level is hit once and leaves the book."""
    book = TriggerBook()
    book.load_positions(
        (f"p{i}", "BTC-USDT", Side.LONG, D("60000"), D("70000") + i, D("50000"))
        for i in range(100_000)
    )
    book.set_position("other", "BTC-USDT", Side.LONG, D("59000"), None, None)
    assert book.cross("BTC-USDT", D("60000.00000001")) == []
    result = book.cross("BTC-USDT", D("60000"))
    assert len(result) == 100_000
    assert {h.reason for h in result} == {Reason.STOP_LOSS}
    assert len({h.key for h in result}) == 100_000
    assert (len(book), book.levels_count()) == (1, 1)
    assert book.cross("BTC-USDT", D("75000")) == []
    assert book.cross("BTC-USDT", D("40000"), MARK) == []


def test_a_storm_at_one_level_can_be_removed_key_by_key() -> None:
    """100,000 triggers at one price can each be removed, after which the level no longer fires."""
    book = TriggerBook()
    book.load_triggers((f"t{i}", "ETH-USDT", TriggerOp.ABOVE, D("4000")) for i in range(100_000))
    book.set_trigger("last", "ETH-USDT", TriggerOp.ABOVE, D("4000"))
    for i in range(100_000):
        assert book.remove(f"t{i}")
    assert crossed(book, "ETH-USDT", "4000") == hits(("last", Reason.TRIGGER))
    assert len(book) == 0


def test_absent_names_the_keys_that_no_longer_rest(book: TriggerBook) -> None:
    """After a cross, `absent` lists the crossed keys (in the given order) and not the rest."""
    book.set_position("a", "BTC-USDT", Side.LONG, D("90"), None, None)
    book.set_position("b", "BTC-USDT", Side.LONG, D("80"), None, None)
    book.set_position("c", "BTC-USDT", Side.LONG, D("95"), None, None)
    book.cross("BTC-USDT", D("89"))
    assert book.absent(["c", "b", "a", "never"]) == ["c", "a", "never"]
