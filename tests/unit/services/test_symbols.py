"""The symbol catalog refuses typos and points at the right market."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cogmora.domain.enums import Market
from cogmora.errors import Temporary, ValidationError
from cogmora.services.symbols import SymbolCatalog, SymbolSpec


def test_known_symbols_pass_and_unknown_ones_are_refused() -> None:
    """A listed symbol passes; anything else is a 422 naming the symbol and market."""
    catalog = SymbolCatalog(spot=["BTC-USDT"], futures=["XBTUSDTM"])
    catalog.check(Market.SPOT, "BTC-USDT")
    catalog.check(Market.FUTURES, "XBTUSDTM")
    with pytest.raises(ValidationError) as info:
        catalog.check(Market.SPOT, "BTC-USD")
    assert info.value.field == "symbol"
    assert str(info.value) == "symbol BTC-USD is not a known spot symbol on KuCoin"


def test_a_symbol_in_the_other_market_gets_a_hint() -> None:
    """Asking for a futures contract on spot says it is a futures symbol."""
    catalog = SymbolCatalog(spot=["BTC-USDT"], futures=["XBTUSDTM"])
    with pytest.raises(ValidationError, match=r"\(it is a futures symbol\)"):
        catalog.check(Market.SPOT, "XBTUSDTM")
    assert catalog.market_of("XBTUSDTM") is Market.FUTURES
    assert catalog.market_of("NOPE") is None


def test_update_replaces_and_add_extends() -> None:
    """A refresh replaces a market's list; add only extends it."""
    catalog = SymbolCatalog(spot=["A-USDT"])
    catalog.add(Market.SPOT, ["B-USDT"])
    assert catalog.symbols(Market.SPOT) == {"A-USDT", "B-USDT"}
    catalog.update(Market.SPOT, ["C-USDT"])
    assert catalog.symbols(Market.SPOT) == {"C-USDT"}
    assert not catalog.known(Market.SPOT, "A-USDT")


def test_a_reload_carries_ticks_and_a_names_only_update_keeps_them() -> None:
    """`load` sets each symbol's tick; a names-only `update` keeps the ticks of names still
    listed, forgets the others, and every change moves the generation."""
    catalog = SymbolCatalog()
    start = catalog.generation
    catalog.load(
        Market.SPOT,
        {"A-USDT": SymbolSpec(Decimal("0.01")), "B-USDT": SymbolSpec(Decimal("0.1"))},
    )
    assert catalog.tick("A-USDT") == Decimal("0.01")
    catalog.update(Market.SPOT, ["A-USDT"])
    assert catalog.tick("A-USDT") == Decimal("0.01")
    assert catalog.tick("B-USDT") is None
    assert catalog.generation == start + 2


def test_an_unloaded_market_is_a_retry_not_an_unknown_symbol() -> None:
    """Before KuCoin's list is loaded the answer is Temporary (503), not a 422 lie."""
    catalog = SymbolCatalog(spot=["BTC-USDT"])
    with pytest.raises(Temporary, match="futures symbol list is not loaded yet"):
        catalog.check(Market.FUTURES, "XBTUSDTM")
