"""The symbol catalog refuses typos and points at the right market."""

from __future__ import annotations

import pytest

from cogmora.domain.enums import Market
from cogmora.errors import ValidationError
from cogmora.services.symbols import SymbolCatalog


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
