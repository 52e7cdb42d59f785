"""Which symbols exist on KuCoin, and their price tick, so an order for a typo is refused
(422), not left to rot, and a price finer than the exchange's tick never reaches the book.

Every process loads its own copy from the exchange and refreshes it (cli/catalog.py):
spot `/api/v2/symbols` (with `priceIncrement`, `baseMinSize`) and `/api/v1/market/allTickers`
(the last price), futures `/api/v1/contracts/active` (with `tickSize`, `lotSize`,
`multiplier`, `lastTradePrice`). The last price at load time is what the price filter
takes as the band's reference for a symbol before the feed has given it any price
(engine/price_filter.py). Tests and the demo seed the catalog directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from cogmora.domain.enums import Market
from cogmora.errors import Temporary, ValidationError


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """What KuCoin says about one symbol. None: KuCoin did not say (or the catalog was
    seeded by name only)."""

    tick: Decimal | None = None  # spot priceIncrement, futures tickSize
    min_size: Decimal | None = None  # base currency units: spot baseMinSize, futures lot*multiplier
    last_price: Decimal | None = None  # the last trade price when the catalog was loaded


_NO_SPEC = SymbolSpec()


class SymbolCatalog:
    """Known symbols per market, with their specs. `generation` grows at every change, so
    a hot-path reader (the price filter) can cache what it derived and notice a reload
    with one integer comparison."""

    def __init__(self, spot: Iterable[str] = (), futures: Iterable[str] = ()) -> None:
        self._known: dict[Market, set[str]] = {Market.SPOT: set(spot), Market.FUTURES: set(futures)}
        self._specs: dict[str, SymbolSpec] = {}
        self.generation = 0

    def load(self, market: Market, specs: Mapping[str, SymbolSpec]) -> None:
        """Replace a market's symbols and their specs (a reload from the exchange)."""
        for name in self._known[market] - specs.keys():
            self._specs.pop(name, None)
        self._known[market] = set(specs)
        self._specs.update(specs)
        self.generation += 1

    def update(self, market: Market, symbols: Iterable[str]) -> None:
        """Replace a market's names only; specs of the names still listed are kept."""
        names = set(symbols)
        for gone in self._known[market] - names:
            self._specs.pop(gone, None)
        self._known[market] = names
        self.generation += 1

    def add(self, market: Market, symbols: Iterable[str]) -> None:
        self._known[market].update(symbols)
        self.generation += 1

    def known(self, market: Market, symbol: str) -> bool:
        return symbol in self._known[market]

    def loaded(self, market: Market) -> bool:
        return bool(self._known[market])

    def symbols(self, market: Market) -> frozenset[str]:
        return frozenset(self._known[market])

    def spec(self, symbol: str) -> SymbolSpec:
        return self._specs.get(symbol, _NO_SPEC)

    def tick(self, symbol: str) -> Decimal | None:
        return self.spec(symbol).tick

    def market_of(self, symbol: str) -> Market | None:
        for market, names in self._known.items():
            if symbol in names:
                return market
        return None

    def check(self, market: Market, symbol: str) -> None:
        """422 for a symbol KuCoin does not list; 503 (retry) while the list is not loaded
        yet, because "unknown" would then be a lie about a symbol that may well exist."""
        if self.known(market, symbol):
            return
        if not self.loaded(market):
            raise Temporary(f"KuCoin's {market.value} symbol list is not loaded yet")
        other = Market.FUTURES if market is Market.SPOT else Market.SPOT
        hint = f" (it is a {other.value} symbol)" if self.known(other, symbol) else ""
        raise ValidationError(
            "symbol", f"symbol {symbol} is not a known {market.value} symbol on KuCoin{hint}"
        )
