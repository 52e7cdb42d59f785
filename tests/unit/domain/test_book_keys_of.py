"""TriggerBook.keys_of: the keys resting on one symbol, whatever ladders they sit in."""

from __future__ import annotations

from decimal import Decimal as D

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import Side, TriggerOp


def test_keys_of_lists_each_key_of_the_symbol_once_and_no_other_symbols() -> None:
    """Keys sharing a level, spanning several ladders, and triggers all come once."""
    book = TriggerBook()
    book.set_position("a", "BTC-USDT", Side.LONG, D(90), D(110), D(50))
    book.set_position("b", "BTC-USDT", Side.LONG, D(90), None, None)  # shares a's level
    book.set_position("c", "BTC-USDT", Side.SHORT, D(120), D(80), None)
    book.set_trigger("t", "BTC-USDT", TriggerOp.ABOVE, D(130))
    book.set_position("e", "ETH-USDT", Side.LONG, D(1), None, None)
    assert book.keys_of("BTC-USDT") == {"a", "b", "c", "t"}
    assert book.keys_of("SOL-USDT") == set()


def test_keys_of_forgets_removed_and_crossed_keys() -> None:
    """A key taken out by `remove` or by a crossing no longer rests on the symbol."""
    book = TriggerBook()
    book.set_position("a", "BTC-USDT", Side.LONG, D(90), None, None)
    book.set_position("b", "BTC-USDT", Side.LONG, D(80), None, None)
    book.set_position("c", "BTC-USDT", Side.LONG, D(70), None, None)
    book.remove("c")
    assert [h.key for h in book.cross("BTC-USDT", D(85))] == ["a"]
    assert book.keys_of("BTC-USDT") == {"b"}
