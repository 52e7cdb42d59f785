"""A moved peak stays owed to the store until written (SPEC 5.2), whatever takes its key
out of the book and puts it back meanwhile: a PATCH's echo, a gap's hold-out, the restore
of a crossing whose write lost."""

from __future__ import annotations

from decimal import Decimal

from cogmora.domain.book import Reason, TriggerBook
from cogmora.domain.enums import Side
from cogmora.domain.gap import GapCandle, walk
from cogmora.domain.trail_state import TrailWrite
from cogmora.domain.trailing import TrailingStop

D = Decimal
SPEC = TrailingStop(D("0.1"))


def _written(book: TriggerBook) -> list[tuple[str, Decimal, Decimal]]:
    """What one whole writer round stores."""
    book.start_trailing_round()
    writes: list[TrailWrite] = []
    while book.trailing_moved_left():
        writes += book.take_moved_trailing(500)
    return sorted((k, w.peak, w.stop) for w in writes for k in w.keys)


def _stored_long(book: TriggerBook, key: str = "p", peak: str = "100") -> None:
    book.set_position(key, "S", Side.LONG, None, None, None, SPEC, D(peak))
    assert _written(book) == []  # what the store holds


def test_a_stop_loss_patch_after_a_move_stores_the_books_peak() -> None:
    """The peak rose to 110 and the PATCH of the stop loss read the stored 100: the book
    keeps 110 and the next round writes it (and its stop) for the key alone on its rate."""
    book = TriggerBook()
    _stored_long(book)
    book.cross("S", D("110"))
    book.set_position("p", "S", Side.LONG, D("50"), None, None, SPEC, D("100"))
    state = book.trailing_state("p")
    assert state is not None and state.peak_price() == D("110")
    assert _written(book) == [("p", D("110"), D("99"))]
    assert _written(book) == []  # once


def test_a_patch_after_a_settled_move_stores_the_books_peak() -> None:
    """The same when the move was already folded into the groups (a later activation
    settled them) before the PATCH took the key out of its group."""
    book = TriggerBook()
    _stored_long(book)
    book.set_position("q", "S", Side.LONG, None, None, None, TrailingStop(D("0.1"), D("105")))
    book.cross("S", D("108"))  # moves p and activates q: every group settles at 108
    book.set_position("q", "S", Side.LONG, None, None, None, TrailingStop(D("0.2")), D("108"))
    book.set_position("p", "S", Side.LONG, D("50"), None, None, SPEC, D("100"))
    assert ("p", D("108"), D("97.2")) in _written(book)


def test_a_patch_of_one_key_keeps_the_others_of_its_group_owed() -> None:
    book = TriggerBook()
    _stored_long(book, "a")
    _stored_long(book, "b")
    book.cross("S", D("120"))
    book.set_position("a", "S", Side.LONG, D("50"), None, None, SPEC, D("100"))
    assert _written(book) == [("a", D("120"), D("108")), ("b", D("120"), D("108"))]


def test_a_short_patch_after_a_new_low_stores_the_books_trough() -> None:
    book = TriggerBook()
    book.set_position("s", "S", Side.SHORT, None, None, None, SPEC, D("100"))
    assert _written(book) == []
    book.cross("S", D("90"))
    book.set_position("s", "S", Side.SHORT, D("150"), None, None, SPEC, D("100"))
    assert _written(book) == [("s", D("90"), D("99"))]


def test_a_patch_with_no_move_since_the_last_write_writes_nothing() -> None:
    """At most once a second per position: an amend alone owes the store nothing."""
    book = TriggerBook()
    _stored_long(book)
    book.cross("S", D("110"))
    assert _written(book) == [("p", D("110"), D("99"))]
    book.set_position("p", "S", Side.LONG, D("50"), None, None, SPEC, D("110"))
    assert _written(book) == []


def test_a_key_held_aside_by_a_gap_keeps_its_unwritten_move() -> None:
    """A live move not yet written, then a reconnect's replay holds the key aside (it is
    younger than the first candle) and puts it back: the move is still written."""
    book = TriggerBook()
    _stored_long(book)
    book.cross("S", D("110"))
    walk(book, "S", [GapCandle(0, D("109"), D("109"), D("108"))], {"p": 60}, lambda c, f: None)
    assert _written(book) == [("p", D("110"), D("99"))]


def test_a_restored_crossing_keeps_its_unwritten_move() -> None:
    """The peak rose to 110 and a stop loss crossed before the round; the close's write
    lost its race and the key came back: its peak of 110 is still owed to the store."""
    book = TriggerBook()
    book.set_position("p", "S", Side.LONG, D("105"), None, None, SPEC, D("100"))
    assert _written(book) == []
    book.cross("S", D("110"))
    [hit] = book.cross("S", D("104"))
    assert hit.reason is Reason.STOP_LOSS
    assert book.restore(hit)
    assert _written(book) == [("p", D("110"), D("99"))]


def test_a_restored_trailing_fire_keeps_its_unwritten_move() -> None:
    """A candle moved the peak to 120 and its low fired the stop (108); the write lost and
    the key came back at 120, which the store has not seen."""
    book = TriggerBook()
    _stored_long(book)
    [hit] = book.cross_range("S", D("107"), D("120"), open_=D("101"))
    assert hit.reason is Reason.TRAILING_STOP
    assert book.restore(hit)
    assert _written(book) == [("p", D("120"), D("108"))]


def test_a_restart_writes_the_peak_its_candles_rebuilt() -> None:
    """Loaded from the stored 100, the gap's candles raise the peak to 112: the first round
    after the walk writes 112, with no further trade."""
    book = TriggerBook()
    book.load_positions([("p", "S", Side.LONG, None, None, None, SPEC, D("100"))])
    assert _written(book) == []
    candles = [
        GapCandle(0, D("100"), D("105"), D("101")),
        GapCandle(60, D("105"), D("112"), D("104")),
    ]
    walk(book, "S", candles, {"p": -60}, lambda c, f: None)
    assert _written(book) == [("p", D("112"), D("100.8"))]
