"""Request bodies (pydantic, at the edge only). Responses are the stored documents plus `id`.

Numbers may be sent as JSON numbers or decimal strings; either becomes an exact Decimal.
Unknown fields are refused, so a typo such as `stoploss` is a 422, not an unprotected
position.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cogmora.domain.enums import Market, Side, TriggerOp


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PositionCreate(Body):
    symbol: str = Field(min_length=1, max_length=40, examples=["BTC-USDT"])
    market: Market
    side: Side
    qty: Decimal | None = Field(default=None, allow_inf_nan=False)
    notional: Decimal | None = Field(default=None, allow_inf_nan=False)
    leverage: Decimal | None = Field(default=None, allow_inf_nan=False)
    stopLoss: Decimal | None = Field(default=None, allow_inf_nan=False)
    takeProfit: Decimal | None = Field(default=None, allow_inf_nan=False)


class PositionPatch(Body):
    stopLoss: Decimal | None = Field(default=None, allow_inf_nan=False)
    takeProfit: Decimal | None = Field(default=None, allow_inf_nan=False)


class ConditionIn(Body):
    op: TriggerOp
    price: Decimal = Field(allow_inf_nan=False)


class ActionIn(Body):
    side: Side
    qty: Decimal | None = Field(default=None, allow_inf_nan=False)
    notional: Decimal | None = Field(default=None, allow_inf_nan=False)
    leverage: Decimal | None = Field(default=None, allow_inf_nan=False)
    stopLoss: Decimal | None = Field(default=None, allow_inf_nan=False)
    takeProfit: Decimal | None = Field(default=None, allow_inf_nan=False)


class TriggerCreate(Body):
    symbol: str = Field(min_length=1, max_length=40)
    market: Market
    condition: ConditionIn
    action: ActionIn
    expiresAt: datetime | None = None

    @field_validator("expiresAt")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must include a timezone, e.g. 2026-01-01T00:00:00Z")
        return value


class UserStatus(Body):
    status: Literal["ok"] = "ok"
