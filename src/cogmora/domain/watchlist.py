"""A user's watchlist: market stats per watched symbol, refreshed from exchange snapshots.

The scraper fetches KuCoin's "all tickers" once per market and maps that one snapshot onto
every user's list, so a refresh costs two exchange calls however many users watch. A
watched symbol the exchange no longer lists is kept with an `error` instead of dropped:
silently removing it would make a delisting look like the user's own edit.

Symbol shapes follow KuCoin's naming: spot pairs are `BASE-QUOTE` (`BTC-USDT`), futures
contracts have no dash (`XBTUSDTM`). That is the one place the market of a bare symbol is
inferred.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from cogmora.domain.enums import Market
from cogmora.domain.money import opt_decimal, opt_str
from cogmora.domain.timeutil import from_iso, to_iso
from cogmora.errors import ValidationError

Doc = dict[str, Any]

UNKNOWN_SYMBOL = "unknown or delisted symbol on KuCoin"
NO_DATA = "no market data yet"
MAX_WATCHED = 50

_SPOT = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$")
_FUTURES = re.compile(r"^[A-Z0-9]{2,30}$")


def market_of(symbol: str) -> Market:
    """KuCoin spot symbols always contain a dash; futures contract codes never do."""
    return Market.SPOT if "-" in symbol else Market.FUTURES


def parse_symbol(value: object, field: str) -> str:
    """Upper-case a user's symbol and check it has a KuCoin shape, naming `field` if not."""
    if not isinstance(value, str):
        raise ValidationError(field, f"{field} must be a string")
    symbol = value.strip().upper()
    if not (_SPOT.match(symbol) or _FUTURES.match(symbol)):
        raise ValidationError(
            field, f"{field} must be a KuCoin symbol such as BTC-USDT or XBTUSDTM, not {value!r}"
        )
    return symbol


def is_usdt_settled(symbol: str) -> bool:
    """Accounts hold USDT, so only USDT-quoted spot pairs and USDT-margined futures can trade."""
    return symbol.endswith("-USDT") if "-" in symbol else symbol.endswith("USDTM")


def parse_symbols(value: object, field: str = "symbols", limit: int = MAX_WATCHED) -> list[str]:
    """A list of distinct symbols, in the user's order, at most `limit` of them."""
    if not isinstance(value, list | tuple):
        raise ValidationError(field, f"{field} must be a list of symbols")
    if len(value) > limit:
        raise ValidationError(field, f"{field} must list at most {limit} symbols")
    symbols: list[str] = []
    for i, item in enumerate(value):
        symbol = parse_symbol(item, f"{field}[{i}]")
        if symbol in symbols:
            raise ValidationError(f"{field}[{i}]", f"{field}[{i}] repeats {symbol}")
        symbols.append(symbol)
    return symbols


@dataclass(frozen=True, slots=True)
class TickerStats:
    """One symbol's 24h stats from an exchange snapshot, already decoded to Decimals."""

    market: Market
    last_price: Decimal
    change_rate_24h: Decimal
    high_24h: Decimal
    low_24h: Decimal
    volume_24h: Decimal


@dataclass(frozen=True, slots=True)
class WatchEntry:
    """`users/{uid}/watchlist/{symbol}`. Stats are None while `error` says why they are missing."""

    symbol: str
    market: Market
    updated_at: datetime
    last_price: Decimal | None = None
    change_rate_24h: Decimal | None = None
    high_24h: Decimal | None = None
    low_24h: Decimal | None = None
    volume_24h: Decimal | None = None
    error: str | None = None

    @classmethod
    def from_stats(cls, symbol: str, stats: TickerStats, at: datetime) -> WatchEntry:
        return cls(
            symbol=symbol,
            market=stats.market,
            updated_at=at,
            last_price=stats.last_price,
            change_rate_24h=stats.change_rate_24h,
            high_24h=stats.high_24h,
            low_24h=stats.low_24h,
            volume_24h=stats.volume_24h,
        )

    def to_doc(self) -> Doc:
        return {
            "symbol": self.symbol,
            "market": self.market.value,
            "lastPrice": opt_str(self.last_price),
            "changeRate24h": opt_str(self.change_rate_24h),
            "high24h": opt_str(self.high_24h),
            "low24h": opt_str(self.low_24h),
            "volume24h": opt_str(self.volume_24h),
            "updatedAt": to_iso(self.updated_at),
            "error": self.error,
        }

    @classmethod
    def from_doc(cls, doc: Doc) -> WatchEntry:
        return cls(
            symbol=doc["symbol"],
            market=Market(doc["market"]),
            updated_at=from_iso(doc["updatedAt"]),
            last_price=opt_decimal(doc.get("lastPrice")),
            change_rate_24h=opt_decimal(doc.get("changeRate24h")),
            high_24h=opt_decimal(doc.get("high24h")),
            low_24h=opt_decimal(doc.get("low24h")),
            volume_24h=opt_decimal(doc.get("volume24h")),
            error=doc.get("error"),
        )


def refresh_watchlist(
    symbols: Sequence[str],
    snapshot: Mapping[str, TickerStats],
    at: datetime,
    covered: frozenset[Market] = frozenset(Market),
    previous: Mapping[str, WatchEntry] | None = None,
) -> list[WatchEntry]:
    """Map one exchange snapshot onto a user's watched symbols, in the user's order.

    `covered` is the set of markets the snapshot actually holds: if the futures fetch
    failed, a futures symbol missing from the snapshot says nothing about KuCoin, so it
    keeps its previous entry (or gets "no market data yet") instead of being called
    delisted.
    """
    previous = previous or {}
    entries: list[WatchEntry] = []
    for symbol in symbols:
        stats = snapshot.get(symbol)
        if stats is not None:
            entries.append(WatchEntry.from_stats(symbol, stats, at))
            continue
        market = market_of(symbol)
        if market not in covered:
            kept = previous.get(symbol)
            entries.append(kept or WatchEntry(symbol, market, at, error=NO_DATA))
            continue
        entries.append(WatchEntry(symbol, market, at, error=UNKNOWN_SYMBOL))
    return entries
