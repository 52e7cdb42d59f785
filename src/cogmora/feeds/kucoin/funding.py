"""KuCoin's futures funding endpoints, as wire structs (decoded at the edge).

`GET /api/v1/funding-rate/{symbol}/current`: `value` (the rate), `timePoint` (ms, the
start of the running funding period, which is the latest funding time), `granularity`
(ms, 28800000: every 8 h). `GET /api/v1/mark-price/{symbol}/current`: `value` (the mark
price), `timePoint` (ms).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec


class FundingRate(msgspec.Struct, frozen=True, rename="camel"):
    value: Decimal
    time_point: int  # ms
    granularity: int  # ms
    symbol: str | None = None
    predicted_value: Decimal | None = None


class MarkPrice(msgspec.Struct, frozen=True, rename="camel"):
    value: Decimal
    time_point: int | None = None  # ms
    symbol: str | None = None
