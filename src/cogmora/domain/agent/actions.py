"""What an agent provider may ask for: open, place a trigger, cancel it, close, or hold.

An action that breaks a rule it can check alone (exactly one of qty and notional, spot is
long-only and unlevered, the market matches the symbol) cannot be constructed: an invalid
action never exists as a value, so nothing downstream can apply one. Rules that need the
world (prices, limits, open positions) belong to the risk guard.

Document form (decision log and LLM replies): `{"type": "open_position", "symbol": ...}`,
camelCase keys, decimals as strings, as everywhere else in the data model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from cogmora.domain.agent import fields as f
from cogmora.domain.enums import Market, Side, Source, TriggerOp
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import Doc, TriggerAction, TriggerCondition
from cogmora.domain.money import opt_str, to_str
from cogmora.domain.orders import OpenRequest
from cogmora.domain.positions import check_level, check_leverage, check_side, check_size
from cogmora.domain.timeutil import opt_iso
from cogmora.domain.watchlist import market_of, parse_symbol
from cogmora.errors import ValidationError

MAX_RATIONALE = 2000
_FEES = FeeSchedule()


class _Order(Protocol):
    @property
    def side(self) -> Side: ...
    @property
    def qty(self) -> Decimal | None: ...
    @property
    def notional(self) -> Decimal | None: ...
    @property
    def leverage(self) -> Decimal | None: ...
    @property
    def stop_loss(self) -> Decimal | None: ...
    @property
    def take_profit(self) -> Decimal | None: ...


def _check_order(symbol: str, market: Market, order: _Order) -> None:
    """The API's own order rules (positions.check_*), plus the symbol's spelling and market:
    an action that breaks one cannot even be constructed."""
    if parse_symbol(symbol, "symbol") != symbol:
        raise ValidationError("symbol", f"symbol must be upper case, not {symbol!r}")
    if market_of(symbol) is not market:
        raise ValidationError(
            "market",
            f"market {market.value} does not match symbol {symbol} "
            f"(a {market_of(symbol).value} symbol)",
        )
    check_side(market, order.side)
    check_leverage(market, order.leverage, _FEES)
    check_size(order.qty, order.notional)
    check_level("stopLoss", order.stop_loss)
    check_level("takeProfit", order.take_profit)


def _order_doc(a: _Order) -> Doc:
    """The order an open or a trigger describes, in the decision log's form."""
    return {
        "side": a.side.value,
        "qty": opt_str(a.qty),
        "notional": opt_str(a.notional),
        "leverage": opt_str(a.leverage),
        "stopLoss": opt_str(a.stop_loss),
        "takeProfit": opt_str(a.take_profit),
    }


def _order_fields(doc: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {
        "side": f.enum(doc, "side", prefix, Side),
        "qty": f.opt_decimal(doc, "qty", prefix),
        "notional": f.opt_decimal(doc, "notional", prefix),
        "leverage": f.opt_decimal(doc, "leverage", prefix),
        "stop_loss": f.opt_decimal(doc, "stopLoss", prefix),
        "take_profit": f.opt_decimal(doc, "takeProfit", prefix),
    }


@dataclass(frozen=True, slots=True)
class OpenPositionAction:
    """Open at market now, at the latest fresh price."""

    TYPE: ClassVar[str] = "open_position"
    symbol: str
    market: Market
    side: Side
    qty: Decimal | None = None
    notional: Decimal | None = None
    leverage: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    rationale: str = ""

    def __post_init__(self) -> None:
        _check_order(self.symbol, self.market, self)

    def to_request(self) -> OpenRequest:
        """The order the positions service opens, marked as the agent's."""
        return OpenRequest(
            self.symbol,
            self.market,
            self.side,
            self.qty,
            self.notional,
            self.leverage,
            self.stop_loss,
            self.take_profit,
            Source.AGENT,
        )

    def to_doc(self) -> Doc:
        return {
            "type": self.TYPE,
            "symbol": self.symbol,
            "market": self.market.value,
            **_order_doc(self),
            "rationale": self.rationale,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], prefix: str = "") -> OpenPositionAction:
        return cls(
            symbol=parse_symbol(doc.get("symbol"), f.join(prefix, "symbol")),
            market=f.enum(doc, "market", prefix, Market),
            **_order_fields(doc, prefix),
            rationale=f.opt_text(doc, "rationale", prefix, max_len=MAX_RATIONALE),
        )


@dataclass(frozen=True, slots=True)
class PlaceTriggerAction:
    """Leave a trigger: when `symbol` crosses `price` (`op`), open the described position."""

    TYPE: ClassVar[str] = "place_trigger"
    symbol: str
    market: Market
    op: TriggerOp
    price: Decimal
    side: Side
    qty: Decimal | None = None
    notional: Decimal | None = None
    leverage: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    expires_at: datetime | None = None
    rationale: str = ""

    def __post_init__(self) -> None:
        _check_order(self.symbol, self.market, self)
        if not self.price.is_finite() or self.price <= 0:
            raise ValidationError("price", "price must be greater than 0")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValidationError("expiresAt", "expiresAt must carry a time zone")

    @property
    def condition(self) -> TriggerCondition:
        return TriggerCondition(self.op, self.price)

    @property
    def action(self) -> TriggerAction:
        return TriggerAction(
            self.side, self.qty, self.notional, self.leverage, self.stop_loss, self.take_profit
        )

    def to_request(self) -> OpenRequest:
        """The order the trigger will place, for checking it against its own level now."""
        return OpenRequest(
            self.symbol,
            self.market,
            self.side,
            self.qty,
            self.notional,
            self.leverage,
            self.stop_loss,
            self.take_profit,
            Source.AGENT,
        )

    def to_doc(self) -> Doc:
        return {
            "type": self.TYPE,
            "symbol": self.symbol,
            "market": self.market.value,
            "op": self.op.value,
            "price": to_str(self.price),
            **_order_doc(self),
            "expiresAt": opt_iso(self.expires_at),
            "rationale": self.rationale,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], prefix: str = "") -> PlaceTriggerAction:
        return cls(
            symbol=parse_symbol(doc.get("symbol"), f.join(prefix, "symbol")),
            market=f.enum(doc, "market", prefix, Market),
            op=f.enum(doc, "op", prefix, TriggerOp),
            price=f.decimal(doc, "price", prefix),
            **_order_fields(doc, prefix),
            expires_at=f.opt_time(doc, "expiresAt", prefix),
            rationale=f.opt_text(doc, "rationale", prefix, max_len=MAX_RATIONALE),
        )


@dataclass(frozen=True, slots=True)
class CancelTriggerAction:
    TYPE: ClassVar[str] = "cancel_trigger"
    trigger_id: str
    rationale: str = ""

    def to_doc(self) -> Doc:
        return {"type": self.TYPE, "triggerId": self.trigger_id, "rationale": self.rationale}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], prefix: str = "") -> CancelTriggerAction:
        return cls(
            trigger_id=f.text(doc, "triggerId", prefix, max_len=64),
            rationale=f.opt_text(doc, "rationale", prefix, max_len=MAX_RATIONALE),
        )


@dataclass(frozen=True, slots=True)
class ClosePositionAction:
    TYPE: ClassVar[str] = "close_position"
    position_id: str
    rationale: str = ""

    def to_doc(self) -> Doc:
        return {"type": self.TYPE, "positionId": self.position_id, "rationale": self.rationale}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], prefix: str = "") -> ClosePositionAction:
        return cls(
            position_id=f.text(doc, "positionId", prefix, max_len=64),
            rationale=f.opt_text(doc, "rationale", prefix, max_len=MAX_RATIONALE),
        )


@dataclass(frozen=True, slots=True)
class HoldAction:
    """Do nothing, on purpose; `symbol` says which market the decision was about, if one."""

    TYPE: ClassVar[str] = "hold"
    rationale: str = ""
    symbol: str | None = None

    def to_doc(self) -> Doc:
        return {"type": self.TYPE, "symbol": self.symbol, "rationale": self.rationale}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], prefix: str = "") -> HoldAction:
        symbol = doc.get("symbol")
        return cls(
            rationale=f.opt_text(doc, "rationale", prefix, max_len=MAX_RATIONALE),
            symbol=None if symbol is None else parse_symbol(symbol, f.join(prefix, "symbol")),
        )


Action = (
    OpenPositionAction | PlaceTriggerAction | CancelTriggerAction | ClosePositionAction | HoldAction
)
OpeningAction = OpenPositionAction | PlaceTriggerAction

ACTION_TYPES: dict[str, type[Action]] = {
    cls.TYPE: cls
    for cls in (
        OpenPositionAction,
        PlaceTriggerAction,
        CancelTriggerAction,
        ClosePositionAction,
        HoldAction,
    )
}

_KEYS: dict[str, frozenset[str]] = {
    "open_position": frozenset(
        (
            "type",
            "symbol",
            "market",
            "side",
            "qty",
            "notional",
            "leverage",
            "stopLoss",
            "takeProfit",
            "rationale",
        )
    ),
    "place_trigger": frozenset(
        (
            "type",
            "symbol",
            "market",
            "op",
            "price",
            "side",
            "qty",
            "notional",
            "leverage",
            "stopLoss",
            "takeProfit",
            "expiresAt",
            "rationale",
        )
    ),
    "cancel_trigger": frozenset(("type", "triggerId", "rationale")),
    "close_position": frozenset(("type", "positionId", "rationale")),
    "hold": frozenset(("type", "symbol", "rationale")),
}


def action_from_doc(doc: object, prefix: str = "") -> Action:
    """Read one action strictly; a ValidationError names the path (`actions[2].leverage`)."""
    where = prefix or "action"
    body = f.mapping(doc, where)
    kind = body.get("type")
    cls = ACTION_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        field = f.join(prefix, "type")
        allowed = ", ".join(repr(k) for k in ACTION_TYPES)
        raise ValidationError(field, f"{field} must be one of {allowed}, not {kind!r}")
    f.only_keys(body, _KEYS[cls.TYPE], prefix)
    try:
        return cls.from_doc(body, prefix)
    except ValidationError as exc:
        if prefix and not exc.field.startswith(prefix):
            raise ValidationError(f.join(prefix, exc.field), f"{prefix}: {exc}") from None
        raise


def is_opening(action: Action) -> bool:
    return isinstance(action, OpenPositionAction | PlaceTriggerAction)
