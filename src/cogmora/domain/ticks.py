"""A market-data tick as the engine sees it, whatever feed or file it came from."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from cogmora.domain.enums import Market


class PriceKind(StrEnum):
    TRADE = "trade"  # last trade price: SL, TP, triggers and (without a mark feed) liquidation
    MARK = "mark"  # futures mark price: liquidation only, when the feed has it


@dataclass(frozen=True, slots=True)
class Tick:
    symbol: str
    market: Market
    price: Decimal
    kind: PriceKind = PriceKind.TRADE
    exchange_ns: int = 0  # exchange timestamp, ns since the epoch (0 when unknown)
    received_ns: int = 0  # time.time_ns() when the frame arrived, for feed lag
