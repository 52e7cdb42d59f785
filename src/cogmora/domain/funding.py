"""Futures funding (SPEC 5.2): what one position pays or receives at one funding time.

`qty * markPrice * fundingRate`, paid by longs and received by shorts when the rate is
positive (the other way round when it is negative), quantized when booked. Funding times
are KuCoin's: `timePoint + k * granularity` (every 8 h); a position is funded at a time
only if it was open before it, and at most once per time (`details.fundedAt`). Times
missed while no jobs process ran are booked when one comes back (`missed_times`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from cogmora.domain.enums import Side
from cogmora.domain.money import in_money_context, quantize


@in_money_context
def funding_amount(side: Side, qty: Decimal, mark_price: Decimal, rate: Decimal) -> Decimal:
    """The balance change: negative when the position pays."""
    paid = quantize(qty * mark_price * rate)
    return -paid if side is Side.LONG else paid


def missed_times(
    opened_at: datetime,
    funded_at: datetime | None,
    latest: datetime,
    period: timedelta,
    limit: int,
) -> list[datetime]:
    """The funding times a position is due for, oldest first, at most `limit` of them.

    Funding times fall on KuCoin's grid, `latest - k * period`; a position is due at every
    one after its opening and after the last time it was funded for, so a jobs
    process that was down across several of them books each when it comes back (the
    oldest `limit` now, the rest on the next passes: `fundedAt` moves to the last one
    booked, so each time is booked once whatever the order of passes)."""
    if period <= timedelta(0) or limit <= 0:
        return []
    after = opened_at if funded_at is None else max(opened_at, funded_at)
    if latest <= after:
        return []
    count = -(-(latest - after) // period)  # times strictly after `after`: ceil
    oldest = latest - (count - 1) * period
    return [oldest + i * period for i in range(min(count, limit))]
