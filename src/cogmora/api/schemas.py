"""Request bodies (pydantic, at the edge only). Responses are the stored documents plus `id`.

Numbers may be sent as JSON numbers or decimal strings; either becomes an exact Decimal.
A JSON number is read from its text (`ExactJsonRoute`), never through a float, so both
forms meet the same rules: ASCII digits only, and the 8-place rule of the domain.
Unknown fields are refused, so a typo such as `stoploss` is a 422, not an unprotected
position.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from cogmora.domain.enums import Market, Side, TriggerOp
from cogmora.domain.money import decimal_text
from cogmora.domain.takeprofits import TakeProfitLeg
from cogmora.domain.trailing import TrailingStop


class _ExactJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            # parse_float=Decimal: `0.100000001` stays 0.100000001 (a float would make it
            # 0.1 and the 8-place rule would never see it). NaN and Infinity still come
            # back as floats, for the number fields to refuse by name.
            self._json = json.loads(await self.body(), parse_float=Decimal)
        return self._json


class ExactJsonRoute(APIRoute):
    """A route whose JSON body keeps every number's exact decimal value."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(_ExactJsonRequest(request.scope, request.receive))

        return exact


def _exact(value: object) -> object:
    """Strings in the strict grammar only; a float here is NaN/Infinity or lost precision."""
    if isinstance(value, str):
        parsed = decimal_text(value)
        if parsed is None:
            raise ValueError('must be a decimal number in ASCII digits, e.g. "12.5"')
        return parsed
    if isinstance(value, float):
        raise ValueError("must be a finite decimal number")
    return value


def _not_too_large(value: Decimal) -> Decimal:
    """The bound `money.parse` applies: no real qty, price or amount reaches 10^16, and a
    larger one overflows the 8-place storage form (a 500 instead of a 422)."""
    if value != 0 and value.adjusted() > 15:
        raise ValueError("is too large")
    return value


Dec = Annotated[
    Decimal, Field(allow_inf_nan=False), BeforeValidator(_exact), AfterValidator(_not_too_large)
]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a timezone, e.g. 2026-01-01T00:00:00Z")
    return value


Aware = Annotated[datetime, AfterValidator(_aware)]


def legs_of(body: list[TakeProfitLegIn] | None) -> tuple[TakeProfitLeg, ...]:
    """The domain's take-profit ladder from its request body (None: no ladder)."""
    return tuple(TakeProfitLeg(leg.price, leg.fraction) for leg in body or ())


def trailing_of(body: TrailingStopIn | None) -> TrailingStop | None:
    """The domain's trailing stop from its request body (None stays None)."""
    if body is None:
        return None
    return TrailingStop(body.callbackRate, body.activationPrice)


def canonical_symbol(value: str) -> str:
    """KuCoin's symbols are upper case (`BTC-USDT`, `XBTUSDTM`): `btc-usdt` means the same."""
    return value.strip().upper()


Symbol = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(canonical_symbol)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TakeProfitLegIn(Body):
    price: Dec
    fraction: Dec


class TrailingStopIn(Body):
    """SPEC 5.2: the stop trails the best price since activation by `callbackRate`."""

    callbackRate: Dec = Field(examples=["0.02"])
    activationPrice: Dec | None = None


class OnSymbol(Body):
    """The symbol and market a new position or trigger is for."""

    symbol: Symbol = Field(examples=["BTC-USDT"])
    market: Market


class OrderTerms(Body):
    """What an order asks for, whether it is placed now or by a trigger when it fires."""

    side: Side
    qty: Dec | None = None
    notional: Dec | None = None
    leverage: Dec | None = None
    stopLoss: Dec | None = None
    takeProfit: Dec | None = None
    takeProfits: list[TakeProfitLegIn] | None = None  # a ladder (SPEC 5.2)
    moveStopToEntryAfter: int | None = None
    trailingStop: TrailingStopIn | None = None


# Pydantic puts the later base's fields first: symbol and market lead, so the first error
# of a bad body (the one the API reports) is about them, as the form lists them first.
class PositionCreate(OrderTerms, OnSymbol):
    expiresAt: Aware | None = None


class PositionPatch(Body):
    stopLoss: Dec | None = None
    takeProfit: Dec | None = None
    takeProfits: list[TakeProfitLegIn] | None = None  # the filled legs must stay as they are
    moveStopToEntryAfter: int | None = None
    trailingStop: TrailingStopIn | None = None


class PositionClose(Body):
    qty: Dec | None = None  # a partial close of this much (SPEC 5.2); none: all of it


class ConditionIn(Body):
    op: TriggerOp
    price: Dec


class ActionIn(OrderTerms):
    """The order a trigger places when it fires."""


class TriggerCreate(OnSymbol):
    condition: ConditionIn
    action: ActionIn
    expiresAt: Aware | None = None
    ocoGroup: str | None = None  # one-cancels-other: the owner's triggers of this group
