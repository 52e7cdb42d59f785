"""What an agent provider may ask for: open, place a trigger, cancel it, close, or hold.

An action that breaks a rule it can check alone (exactly one of qty and notional, spot is
long-only and unlevered, the market matches the symbol) cannot be constructed: an invalid
action never exists as a value, so nothing downstream can apply one. Rules that need the
world (prices, limits, open positions, the configured maximum leverage) belong to the risk
guard and the positions service.

Each action describes its fields once, in `FIELDS`: attribute, document key, and a
`FieldKind` that knows how the field is read strictly, written, and shown to a model in
the JSON schema. The document form (decision log and LLM replies: `{"type":
"open_position", "symbol": ...}`, camelCase keys, decimals as strings), the set of keys a
document may carry, and `schema.action_list_schema()` are all derived from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Protocol, Self

from cogmora.domain.agent import fields as f
from cogmora.domain.enums import Market, Side, Source, TriggerOp
from cogmora.domain.models import Doc, TriggerAction, TriggerCondition
from cogmora.domain.money import opt_str, to_str
from cogmora.domain.orders import OpenRequest
from cogmora.domain.positions import check_level, check_side, check_size
from cogmora.domain.takeprofits import TakeProfitLeg, legs_to_doc, validate_ladder
from cogmora.domain.timeutil import opt_iso
from cogmora.domain.trailing import TrailingStop, check_format
from cogmora.domain.watchlist import market_of, parse_symbol
from cogmora.errors import ValidationError

MAX_RATIONALE = 2000
# KuCoin's own ceiling; the configured one (FeeSchedule.max_leverage, never above this) is
# applied by the positions and triggers services when the action is carried out.
EXCHANGE_MAX_LEVERAGE = 125
DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"

_DEC: dict[str, Any] = {"type": "string", "pattern": DECIMAL_PATTERN}
_OPT_DEC: dict[str, Any] = {"type": ["string", "null"], "pattern": DECIMAL_PATTERN}
_TEXT: dict[str, Any] = {"type": "string"}
_OPT_TEXT: dict[str, Any] = {"type": ["string", "null"]}

Reader = Callable[[Mapping[str, Any], str, str], Any]  # (document, key, prefix) -> value


@dataclass(frozen=True, slots=True)
class FieldKind:
    """How one kind of field is read (strictly, naming its path), written, and described."""

    read: Reader
    write: Callable[[Any], Any]
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Field:
    attr: str
    key: str
    kind: FieldKind


def _same(value: Any) -> Any:
    return value


def _symbol(doc: Mapping[str, Any], key: str, prefix: str) -> str:
    return parse_symbol(doc.get(key), f.join(prefix, key))


def _opt_symbol(doc: Mapping[str, Any], key: str, prefix: str) -> str | None:
    value = doc.get(key)
    return None if value is None else parse_symbol(value, f.join(prefix, key))


def _enum_kind(kind: type[StrEnum]) -> FieldKind:
    return FieldKind(
        lambda doc, key, prefix: f.enum(doc, key, prefix, kind),
        lambda value: value.value,
        {"type": "string", "enum": [m.value for m in kind]},
    )


def _text_kind(max_len: int, *, optional: bool = False) -> FieldKind:
    if optional:
        return FieldKind(
            lambda doc, key, prefix: f.opt_text(doc, key, prefix, max_len=max_len), _same, _TEXT
        )
    return FieldKind(
        lambda doc, key, prefix: f.text(doc, key, prefix, max_len=max_len), _same, _TEXT
    )


SYMBOL = FieldKind(_symbol, _same, _TEXT)
OPT_SYMBOL = FieldKind(_opt_symbol, _same, _OPT_TEXT)
DECIMAL = FieldKind(f.decimal, to_str, _DEC)
OPT_DECIMAL = FieldKind(f.opt_decimal, opt_str, _OPT_DEC)


def _legs(doc: Mapping[str, Any], key: str, prefix: str) -> tuple[TakeProfitLeg, ...]:
    """A take-profit ladder (SPEC 5.2): a list of {price, fraction}, or null for none."""
    value = doc.get(key)
    if value is None:
        return ()
    field = f.join(prefix, key)
    if not isinstance(value, list):
        raise ValidationError(field, f"{field} must be a list of {{price, fraction}}")
    legs = []
    for i, item in enumerate(value):
        name = f"{field}[{i}]"
        leg = f.mapping(item, name)
        f.only_keys(leg, frozenset({"price", "fraction"}), name)
        legs.append(TakeProfitLeg(f.decimal(leg, "price", name), f.decimal(leg, "fraction", name)))
    return tuple(legs)


TAKE_PROFITS = FieldKind(
    _legs,
    lambda legs: legs_to_doc(legs) if legs else None,
    {
        "type": ["array", "null"],
        "items": {
            "type": "object",
            "properties": {"price": _DEC, "fraction": _DEC},
            "required": ["price", "fraction"],
            "additionalProperties": False,
        },
        "description": "a take-profit ladder instead of takeProfit: each leg closes its "
        "fraction of the opened qty at its price; the last leg closes the rest",
    },
)
OPT_TIME = FieldKind(
    f.opt_time,
    opt_iso,
    {**_OPT_TEXT, "description": "ISO-8601 UTC time, or null for never"},
)
RATIONALE = Field("rationale", "rationale", _text_kind(MAX_RATIONALE, optional=True))


def _opt_trailing(doc: Mapping[str, Any], key: str, prefix: str) -> TrailingStop | None:
    value = doc.get(key)
    if value is None:
        return None
    where = f.join(prefix, key)
    body = f.mapping(value, where)
    f.only_keys(body, frozenset(("callbackRate", "activationPrice")), where)
    trailing = TrailingStop(
        f.decimal(body, "callbackRate", where), f.opt_decimal(body, "activationPrice", where)
    )
    check_format(trailing, where)
    return trailing


def _write_trailing(value: TrailingStop | None) -> Doc | None:
    return None if value is None else value.to_doc()


# SPEC 5.2: the stop trails the best price since activation by callbackRate (0 < r <= 0.5).
OPT_TRAILING = FieldKind(
    _opt_trailing,
    _write_trailing,
    {
        "type": ["object", "null"],
        "description": "trailing stop: stop = best price since activation * (1 - callbackRate)"
        " for a long (mirrored for a short); callbackRate in (0, 0.5]",
        "properties": {"callbackRate": _DEC, "activationPrice": _OPT_DEC},
        "required": ["callbackRate", "activationPrice"],
        "additionalProperties": False,
    },
)
ID = _text_kind(64)

# The order an open or a trigger describes.
_ORDER_FIELDS = (
    Field("side", "side", _enum_kind(Side)),
    Field("qty", "qty", OPT_DECIMAL),
    Field("notional", "notional", OPT_DECIMAL),
    Field("leverage", "leverage", OPT_DECIMAL),
    Field("stop_loss", "stopLoss", OPT_DECIMAL),
    Field("take_profit", "takeProfit", OPT_DECIMAL),
    Field("trailing_stop", "trailingStop", OPT_TRAILING),
)
_MARKET = Field("market", "market", _enum_kind(Market))


class _Described:
    """The document form of an action, derived from its `FIELDS`."""

    __slots__ = ()
    TYPE: ClassVar[str]
    FIELDS: ClassVar[tuple[Field, ...]]

    def to_doc(self) -> Doc:
        return {
            "type": self.TYPE,
            **{x.key: x.kind.write(getattr(self, x.attr)) for x in self.FIELDS},
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], prefix: str = "") -> Self:
        return cls(**{x.attr: x.kind.read(doc, x.key, prefix) for x in cls.FIELDS})

    @classmethod
    def keys(cls) -> frozenset[str]:
        """The keys its document may carry."""
        return frozenset(("type", *(x.key for x in cls.FIELDS)))


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
    @property
    def trailing_stop(self) -> TrailingStop | None: ...


def _check_order(symbol: str, market: Market, order: _Order) -> None:
    """The API's own order rules (positions.check_*), plus the symbol's spelling and market:
    an action that breaks one cannot even be constructed. Leverage is checked against the
    exchange's ceiling here; the configured one is the services' to apply, so an action
    reads the same whatever a deployment configured."""
    if parse_symbol(symbol, "symbol") != symbol:
        raise ValidationError("symbol", f"symbol must be upper case, not {symbol!r}")
    if market_of(symbol) is not market:
        raise ValidationError(
            "market",
            f"market {market.value} does not match symbol {symbol} "
            f"(a {market_of(symbol).value} symbol)",
        )
    check_side(market, order.side)
    _check_leverage_form(market, order.leverage)
    check_size(order.qty, order.notional)
    check_level("stopLoss", order.stop_loss)
    check_level("takeProfit", order.take_profit)
    check_format(order.trailing_stop)


def _check_leverage_form(market: Market, leverage: Decimal | None) -> None:
    if leverage is None:
        return
    if market is Market.SPOT and leverage != 1:
        raise ValidationError("leverage", "leverage must be 1 for spot")
    whole = leverage.is_finite() and leverage == leverage.to_integral_value()
    if not whole or not 1 <= leverage <= EXCHANGE_MAX_LEVERAGE:
        raise ValidationError(
            "leverage", f"leverage must be a whole number from 1 to {EXCHANGE_MAX_LEVERAGE}"
        )


def _request(symbol: str, market: Market, order: _Order) -> OpenRequest:
    """The order the positions service opens (or a trigger will), marked as the agent's."""
    return OpenRequest(
        symbol,
        market,
        order.side,
        order.qty,
        order.notional,
        order.leverage,
        order.stop_loss,
        order.take_profit,
        Source.AGENT,
        trailing_stop=order.trailing_stop,
    )


@dataclass(frozen=True, slots=True)
class OpenPositionAction(_Described):
    """Open at market now, at the latest fresh price."""

    TYPE: ClassVar[str] = "open_position"
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("symbol", "symbol", SYMBOL),
        _MARKET,
        *_ORDER_FIELDS,
        RATIONALE,
        Field("take_profits", "takeProfits", TAKE_PROFITS),
    )
    symbol: str
    market: Market
    side: Side
    qty: Decimal | None = None
    notional: Decimal | None = None
    leverage: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    rationale: str = ""
    take_profits: tuple[TakeProfitLeg, ...] = ()
    trailing_stop: TrailingStop | None = None

    def __post_init__(self) -> None:
        _check_order(self.symbol, self.market, self)
        validate_ladder(self.side, None, self.take_profits, self.take_profit, None)

    def to_request(self) -> OpenRequest:
        return replace(_request(self.symbol, self.market, self), take_profits=self.take_profits)


@dataclass(frozen=True, slots=True)
class PlaceTriggerAction(_Described):
    """Leave a trigger: when `symbol` crosses `price` (`op`), open the described position."""

    TYPE: ClassVar[str] = "place_trigger"
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("symbol", "symbol", SYMBOL),
        _MARKET,
        Field("op", "op", _enum_kind(TriggerOp)),
        Field("price", "price", DECIMAL),
        *_ORDER_FIELDS,
        Field("expires_at", "expiresAt", OPT_TIME),
        RATIONALE,
    )
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
    trailing_stop: TrailingStop | None = None

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
            self.side,
            self.qty,
            self.notional,
            self.leverage,
            self.stop_loss,
            self.take_profit,
            trailing_stop=self.trailing_stop,
        )

    def to_request(self) -> OpenRequest:
        """The order the trigger will place, for checking it against its own level now."""
        return _request(self.symbol, self.market, self)


@dataclass(frozen=True, slots=True)
class CancelTriggerAction(_Described):
    TYPE: ClassVar[str] = "cancel_trigger"
    FIELDS: ClassVar[tuple[Field, ...]] = (Field("trigger_id", "triggerId", ID), RATIONALE)
    trigger_id: str
    rationale: str = ""


@dataclass(frozen=True, slots=True)
class ClosePositionAction(_Described):
    TYPE: ClassVar[str] = "close_position"
    FIELDS: ClassVar[tuple[Field, ...]] = (Field("position_id", "positionId", ID), RATIONALE)
    position_id: str
    rationale: str = ""


@dataclass(frozen=True, slots=True)
class HoldAction(_Described):
    """Do nothing, on purpose; `symbol` says which market the decision was about, if one."""

    TYPE: ClassVar[str] = "hold"
    FIELDS: ClassVar[tuple[Field, ...]] = (Field("symbol", "symbol", OPT_SYMBOL), RATIONALE)
    rationale: str = ""
    symbol: str | None = None


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
    f.only_keys(body, cls.keys(), prefix)
    try:
        return cls.from_doc(body, prefix)
    except ValidationError as exc:
        if prefix and not exc.field.startswith(prefix):
            raise ValidationError(f.join(prefix, exc.field), f"{prefix}: {exc}") from None
        raise


def is_opening(action: Action) -> bool:
    return isinstance(action, OpenPositionAction | PlaceTriggerAction)
