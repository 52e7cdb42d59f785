"""Futures funding (SPEC 5.2): what one position pays or receives at one funding time.

`qty * markPrice * fundingRate`, paid by longs and received by shorts when the rate is
positive (the other way round when it is negative), quantized when booked. Funding times
are KuCoin's: `timePoint + k * granularity` (every 8 h); a position is funded at a time
only if it was open before it, and at most once per time (`details.fundedAt`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from cogmora.domain.enums import Side
from cogmora.domain.money import in_money_context, quantize


@in_money_context
def funding_amount(side: Side, qty: Decimal, mark_price: Decimal, rate: Decimal) -> Decimal:
    """The balance change: negative when the position pays."""
    paid = quantize(qty * mark_price * rate)
    return -paid if side is Side.LONG else paid


def due(opened_at: datetime, funded_at: datetime | None, funding_time: datetime) -> bool:
    """Open before the funding time and not funded for it (or a later one) yet."""
    return opened_at < funding_time and (funded_at is None or funded_at < funding_time)
