"""Which symbols exist on KuCoin, so an order for a typo is refused (422), not left to rot.

Loaded from the exchange at start (spot all-tickers, futures active contracts) and
refreshed by the watchlist job; tests and the demo seed it directly.
"""

from __future__ import annotations

from collections.abc import Iterable

from cogmora.domain.enums import Market
from cogmora.errors import ValidationError


class SymbolCatalog:
    def __init__(self, spot: Iterable[str] = (), futures: Iterable[str] = ()) -> None:
        self._known: dict[Market, set[str]] = {Market.SPOT: set(spot), Market.FUTURES: set(futures)}

    def update(self, market: Market, symbols: Iterable[str]) -> None:
        self._known[market] = set(symbols)

    def add(self, market: Market, symbols: Iterable[str]) -> None:
        self._known[market].update(symbols)

    def known(self, market: Market, symbol: str) -> bool:
        return symbol in self._known[market]

    def symbols(self, market: Market) -> frozenset[str]:
        return frozenset(self._known[market])

    def market_of(self, symbol: str) -> Market | None:
        for market, names in self._known.items():
            if symbol in names:
                return market
        return None

    def check(self, market: Market, symbol: str) -> None:
        if not self.known(market, symbol):
            other = Market.FUTURES if market is Market.SPOT else Market.SPOT
            hint = f" (it is a {other.value} symbol)" if self.known(other, symbol) else ""
            raise ValidationError(
                "symbol", f"symbol {symbol} is not a known {market.value} symbol on KuCoin{hint}"
            )
