"""Turning an order (from the API, a trigger or the agent) into a validated position.

One function, so an order placed by hand, by a trigger and by the agent obeys exactly the
same rules and fills by exactly the same maths.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from cogmora.domain import trailing as trail
from cogmora.domain.enums import Market, Side, Source
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import Position, PositionDetails, TriggerAction
from cogmora.domain.positions import (
    check_level,
    check_leverage,
    check_side,
    check_size,
    liquidation_price,
    open_fill,
    resolve_qty,
    validate_levels,
)
from cogmora.domain.takeprofits import TakeProfitLeg, validate_ladder


@dataclass(frozen=True, slots=True)
class OpenRequest:
    symbol: str
    market: Market
    side: Side
    qty: Decimal | None = None
    notional: Decimal | None = None
    leverage: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    source: Source = Source.API
    trigger_id: str | None = None
    take_profits: tuple[TakeProfitLeg, ...] = ()  # a ladder instead of take_profit (SPEC 5.2)
    move_stop_to_entry_after: int | None = None
    expires_at: datetime | None = None
    trailing_stop: trail.TrailingStop | None = None

    @classmethod
    def from_action(
        cls, symbol: str, market: Market, action: TriggerAction, trigger_id: str
    ) -> OpenRequest:
        """The order a trigger places when it fires: its position's source is `trigger`,
        whoever placed the trigger (the user or the agent)."""
        return cls(
            symbol,
            market,
            action.side,
            action.qty,
            action.notional,
            action.leverage,
            action.stop_loss,
            action.take_profit,
            Source.TRIGGER,
            trigger_id,
            take_profits=action.take_profits,
            move_stop_to_entry_after=action.move_stop_to_entry_after,
            trailing_stop=action.trailing_stop,
        )


def check_request(request: OpenRequest, fees: FeeSchedule) -> None:
    """What can be checked without a price: side, leverage, size and level formats.

    Run before looking for a price, so a malformed order is a 422 even when no fresh
    price is known (a 409 would invite the client to retry an order that cannot succeed).
    """
    check_side(request.market, request.side)
    check_leverage(request.market, request.leverage, fees)
    check_size(request.qty, request.notional)
    check_level("stopLoss", request.stop_loss)
    check_level("takeProfit", request.take_profit)
    validate_ladder(  # its own rules; the side of the entry is checked when it fills
        request.side,
        None,
        request.take_profits,
        request.take_profit,
        request.move_stop_to_entry_after,
    )
    trail.check_format(request.trailing_stop)


def precheck(request: OpenRequest, reference: Decimal, fees: FeeSchedule, name: str) -> None:
    """Validate an order against a price it is expected to fill near (a trigger's level),
    so a trigger that could never open is refused when it is placed, not when it fires."""
    check_side(request.market, request.side)
    leverage = check_leverage(request.market, request.leverage, fees)
    resolve_qty(request.qty, request.notional, reference)
    liq = (
        liquidation_price(request.side, reference, leverage, fees.maintenance_margin_rate)
        if request.market is Market.FUTURES
        else None
    )
    validate_levels(request.side, reference, request.stop_loss, request.take_profit, liq, name)
    validate_ladder(
        request.side,
        reference,
        request.take_profits,
        request.take_profit,
        request.move_stop_to_entry_after,
        name,
    )
    trail.validate(request.side, reference, request.trailing_stop, name)


def build_position(
    request: OpenRequest,
    uid: str,
    position_id: str,
    price: Decimal,
    fees: FeeSchedule,
    now: datetime,
) -> Position:
    """The position `request` opens at `price`; raises ValidationError naming the field."""
    check_side(request.market, request.side)
    leverage = check_leverage(request.market, request.leverage, fees)
    qty = resolve_qty(request.qty, request.notional, price)
    fill = open_fill(request.market, request.side, qty, price, leverage, fees)
    validate_levels(
        request.side, price, request.stop_loss, request.take_profit, fill.liquidation_price
    )
    validate_ladder(
        request.side,
        price,
        request.take_profits,
        request.take_profit,
        request.move_stop_to_entry_after,
    )
    trail.validate(request.side, price, request.trailing_stop)
    peak, stop = trail.initial_peak(request.side, request.trailing_stop, price)
    return Position(
        id=position_id,
        uid=uid,
        symbol=request.symbol,
        market=request.market,
        side=request.side,
        qty=fill.qty,
        entry_price=price,
        leverage=fill.leverage,
        margin=fill.margin,
        fee_open=fill.fee_open,
        opened_at=now,
        source=request.source,
        details=PositionDetails(
            stop_loss=request.stop_loss,
            take_profit=request.take_profit,
            liquidation_price=fill.liquidation_price,
            take_profits=request.take_profits,
            move_stop_to_entry_after=request.move_stop_to_entry_after,
            original_qty=fill.qty if request.take_profits else None,
            trailing=request.trailing_stop,
            trailing_peak=peak,
            trailing_stop=stop,
        ),
        trigger_id=request.trigger_id,
        expires_at=request.expires_at,
    )
