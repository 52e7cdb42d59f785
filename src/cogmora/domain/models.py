"""The documents of SPEC section 3 as typed values, and their Firestore-shaped dict form.

Stores keep the dict form (decimal strings, ISO times, `status` nested in `details` as in
the seed); everything above the store works with these dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from cogmora.domain.enums import (
    CloseReason,
    LedgerKind,
    Market,
    PositionStatus,
    Side,
    Source,
    TriggerOp,
    TriggerStatus,
)
from cogmora.domain.money import opt_decimal, opt_str, to_str
from cogmora.domain.paths import position_path, trigger_path
from cogmora.domain.takeprofits import TakeProfitLeg, legs_from_doc, legs_to_doc
from cogmora.domain.timeutil import from_iso, opt_from_iso, opt_iso, to_iso
from cogmora.domain.trailing import TrailingStop

Doc = dict[str, Any]
# What a `from_doc` raises on a stored document it cannot read: a field missing (KeyError),
# of the wrong type (TypeError, AttributeError), or a number or enum value that is not one
# (ValueError, and decimal's InvalidOperation, an ArithmeticError). A reader of many
# documents reports such a one and passes over it rather than stopping on it.
UNREADABLE: tuple[type[Exception], ...] = (
    KeyError,
    TypeError,
    AttributeError,
    ValueError,
    ArithmeticError,
)
_CLOSED = PositionStatus.CLOSED.value


# ---------------------------------------------------------------- users and ledger


@dataclass(frozen=True, slots=True)
class User:
    uid: str
    balance: Decimal
    created_at: datetime
    currency: str = "USDT"
    ledger_seq: int = 0

    def to_doc(self) -> Doc:
        return {
            "uid": self.uid,
            "balance": to_str(self.balance),
            "currency": self.currency,
            "createdAt": to_iso(self.created_at),
            "ledgerSeq": self.ledger_seq,
        }

    @classmethod
    def from_doc(cls, doc: Doc) -> User:
        return cls(
            uid=doc["uid"],
            balance=Decimal(doc["balance"]),
            created_at=from_iso(doc["createdAt"]),
            currency=doc.get("currency", "USDT"),
            ledger_seq=int(doc.get("ledgerSeq", 0)),
        )


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One balance change. `seq` orders a user's entries; `balanceAfter` makes each auditable."""

    id: str
    uid: str
    seq: int
    kind: LedgerKind
    amount: Decimal
    balance_after: Decimal
    at: datetime
    position_id: str | None = None
    note: str | None = None

    def to_doc(self) -> Doc:
        return ledger_doc(
            self.uid,
            self.seq,
            self.kind,
            self.amount,
            self.balance_after,
            to_iso(self.at),
            self.position_id,
            self.note,
        )

    @classmethod
    def from_doc(cls, lid: str, doc: Doc) -> LedgerEntry:
        return cls(
            id=lid,
            uid=doc["uid"],
            seq=int(doc["seq"]),
            kind=LedgerKind(doc["kind"]),
            amount=Decimal(doc["amount"]),
            balance_after=Decimal(doc["balanceAfter"]),
            at=from_iso(doc["at"]),
            position_id=doc.get("positionId"),
            note=doc.get("note"),
        )


def ledger_doc(
    uid: str,
    seq: int,
    kind: LedgerKind,
    amount: Decimal,
    balance_after: Decimal,
    at: str,
    position_id: str | None,
    note: str | None,
) -> Doc:
    """A ledger entry's document, from its time already in ISO form: a settlement batch
    books 2,000 entries at one time, and formats it once (`AccountBook.writes`)."""
    return {
        "uid": uid,
        "seq": seq,
        "kind": kind.value,
        "amount": to_str(amount),
        "balanceAfter": to_str(balance_after),
        "at": at,
        "positionId": position_id,
        "note": note,
    }


# ---------------------------------------------------------------- positions


@dataclass(frozen=True, slots=True)
class PositionDetails:
    status: PositionStatus = PositionStatus.OPEN
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    liquidation_price: Decimal | None = None
    close_reason: CloseReason | None = None
    close_price: Decimal | None = None
    close_requested_at: datetime | None = None
    recovered: bool = False  # closed from a gap's candles, not a live tick (SPEC 5.1)
    # A take-profit ladder (SPEC 5.2, domain/takeprofits.py) and the partial closes so far.
    take_profits: tuple[TakeProfitLeg, ...] = ()
    move_stop_to_entry_after: int | None = None
    legs_filled: tuple[int, ...] = ()
    original_qty: Decimal | None = None
    parts: int = 0
    funded_at: datetime | None = None  # the latest funding time booked (services/funding.py)
    trailing: TrailingStop | None = None  # the order (SPEC 5.2); peak and stop as they move
    trailing_peak: Decimal | None = None
    trailing_stop: Decimal | None = None

    def to_doc(self) -> Doc:
        doc: Doc = {
            "status": self.status.value,
            "stopLoss": opt_str(self.stop_loss),
            "takeProfit": opt_str(self.take_profit),
            "liquidationPrice": opt_str(self.liquidation_price),
            "closeReason": None if self.close_reason is None else self.close_reason.value,
            "closePrice": opt_str(self.close_price),
            "closeRequestedAt": opt_iso(self.close_requested_at),
        }
        if self.recovered:
            doc["recovered"] = True
        if self.take_profits:
            doc["takeProfits"] = legs_to_doc(self.take_profits)
            doc["moveStopToEntryAfter"] = self.move_stop_to_entry_after
            doc["legsFilled"] = list(self.legs_filled)
            doc["originalQty"] = opt_str(self.original_qty)
        if self.parts:
            doc["parts"] = self.parts
        if self.funded_at is not None:
            doc["fundedAt"] = to_iso(self.funded_at)
        if self.trailing is not None:
            doc["trailing"] = self.trailing.to_doc()
            doc["trailingPeak"] = opt_str(self.trailing_peak)
            doc["trailingStop"] = opt_str(self.trailing_stop)
        return doc

    @classmethod
    def from_doc(cls, doc: Doc) -> PositionDetails:
        reason = doc.get("closeReason")
        return cls(
            status=PositionStatus(doc["status"]),
            stop_loss=opt_decimal(doc.get("stopLoss")),
            take_profit=opt_decimal(doc.get("takeProfit")),
            liquidation_price=opt_decimal(doc.get("liquidationPrice")),
            close_reason=None if reason is None else CloseReason(reason),
            close_price=opt_decimal(doc.get("closePrice")),
            close_requested_at=opt_from_iso(doc.get("closeRequestedAt")),
            recovered=doc.get("recovered") is True,
            take_profits=legs_from_doc(doc.get("takeProfits")),
            move_stop_to_entry_after=doc.get("moveStopToEntryAfter"),
            legs_filled=tuple(doc.get("legsFilled") or ()),
            original_qty=opt_decimal(doc.get("originalQty")),
            parts=int(doc.get("parts", 0)),
            funded_at=opt_from_iso(doc.get("fundedAt")),
            trailing=TrailingStop.opt_from_doc(doc.get("trailing")),
            trailing_peak=opt_decimal(doc.get("trailingPeak")),
            trailing_stop=opt_decimal(doc.get("trailingStop")),
        )


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a closed position carries beyond the open one (and its history document)."""

    closed_at: datetime
    fee_close: Decimal
    realized_pnl: Decimal
    payout: Decimal


def settlement_fields(details: Doc, settlement: Settlement) -> Doc:
    """The top-level fields a closed position (and its history document) carries."""
    return {
        "closePrice": details["closePrice"],
        "closeReason": details["closeReason"],
        "closedAt": to_iso(settlement.closed_at),
        "feeClose": to_str(settlement.fee_close),
        "realizedPnl": to_str(settlement.realized_pnl),
        "payout": to_str(settlement.payout),
    }


def closed_doc(doc: Doc, settlement: Settlement) -> Doc:
    """A closing position's document, settled: same as Position.to_doc of the closed value,
    without decoding and re-encoding every field (settlement does this 100,000 times)."""
    return settled_doc(
        doc,
        to_iso(settlement.closed_at),
        to_str(settlement.fee_close),
        to_str(settlement.realized_pnl),
        to_str(settlement.payout),
    )


def settled_doc(doc: Doc, closed_at: str, fee_close: str, realized_pnl: str, payout: str) -> Doc:
    """`closed_doc` from the stored forms: a batch formats its one settlement time once."""
    details = doc["details"]
    closed = {**doc, "details": {**details, "status": _CLOSED}}
    closed["closePrice"] = details["closePrice"]
    closed["closeReason"] = details["closeReason"]
    closed["closedAt"] = closed_at
    closed["feeClose"] = fee_close
    closed["realizedPnl"] = realized_pnl
    closed["payout"] = payout
    return closed


@dataclass(frozen=True, slots=True)
class Position:
    id: str
    uid: str
    symbol: str
    market: Market
    side: Side
    qty: Decimal
    entry_price: Decimal
    leverage: Decimal
    margin: Decimal
    fee_open: Decimal
    opened_at: datetime
    source: Source
    details: PositionDetails = field(default_factory=PositionDetails)
    settlement: Settlement | None = None
    trigger_id: str | None = None
    expires_at: datetime | None = None  # closes at market then (SPEC 5.2, reason time_limit)

    @property
    def path(self) -> str:
        return position_path(self.uid, self.id)

    @property
    def status(self) -> PositionStatus:
        return self.details.status

    def with_details(self, **changes: Any) -> Position:
        return replace(self, details=replace(self.details, **changes))

    def to_doc(self) -> Doc:
        doc: Doc = {
            "uid": self.uid,
            "symbol": self.symbol,
            "market": self.market.value,
            "side": self.side.value,
            "qty": to_str(self.qty),
            "entryPrice": to_str(self.entry_price),
            "leverage": to_str(self.leverage),
            "margin": to_str(self.margin),
            "feeOpen": to_str(self.fee_open),
            "openedAt": to_iso(self.opened_at),
            "source": self.source.value,
            "triggerId": self.trigger_id,
            "details": self.details.to_doc(),
        }
        if self.expires_at is not None:
            doc["expiresAt"] = to_iso(self.expires_at)
        if self.settlement is not None:
            doc.update(settlement_fields(doc["details"], self.settlement))
        return doc

    @classmethod
    def from_doc(cls, pid: str, doc: Doc) -> Position:
        settlement = None
        if doc.get("closedAt") is not None:
            settlement = Settlement(
                closed_at=from_iso(doc["closedAt"]),
                fee_close=Decimal(doc["feeClose"]),
                realized_pnl=Decimal(doc["realizedPnl"]),
                payout=Decimal(doc.get("payout", "0")),
            )
        return cls(
            id=pid,
            uid=doc["uid"],
            symbol=doc["symbol"],
            market=Market(doc["market"]),
            side=Side(doc["side"]),
            qty=Decimal(doc["qty"]),
            entry_price=Decimal(doc["entryPrice"]),
            leverage=Decimal(doc["leverage"]),
            margin=Decimal(doc["margin"]),
            fee_open=Decimal(doc["feeOpen"]),
            opened_at=from_iso(doc["openedAt"]),
            source=Source(doc["source"]),
            details=PositionDetails.from_doc(doc["details"]),
            settlement=settlement,
            trigger_id=doc.get("triggerId"),
            expires_at=opt_from_iso(doc.get("expiresAt")),
        )


# ---------------------------------------------------------------- triggers


@dataclass(frozen=True, slots=True)
class TriggerCondition:
    op: TriggerOp
    price: Decimal


@dataclass(frozen=True, slots=True)
class TriggerAction:
    side: Side
    qty: Decimal | None = None
    notional: Decimal | None = None
    leverage: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    take_profits: tuple[TakeProfitLeg, ...] = ()  # the ladder its position gets
    trailing_stop: TrailingStop | None = None  # the position it opens carries it
    move_stop_to_entry_after: int | None = None  # of its ladder, as on a position

    def to_doc(self) -> Doc:
        doc: Doc = {
            "side": self.side.value,
            "qty": opt_str(self.qty),
            "notional": opt_str(self.notional),
            "leverage": opt_str(self.leverage),
            "stopLoss": opt_str(self.stop_loss),
            "takeProfit": opt_str(self.take_profit),
        }
        if self.take_profits:
            doc["takeProfits"] = legs_to_doc(self.take_profits)
        if self.trailing_stop is not None:
            doc["trailingStop"] = self.trailing_stop.to_doc()
        if self.move_stop_to_entry_after is not None:
            doc["moveStopToEntryAfter"] = self.move_stop_to_entry_after
        return doc

    @classmethod
    def from_doc(cls, doc: Doc) -> TriggerAction:
        return cls(
            side=Side(doc["side"]),
            qty=opt_decimal(doc.get("qty")),
            notional=opt_decimal(doc.get("notional")),
            leverage=opt_decimal(doc.get("leverage")),
            stop_loss=opt_decimal(doc.get("stopLoss")),
            take_profit=opt_decimal(doc.get("takeProfit")),
            take_profits=legs_from_doc(doc.get("takeProfits")),
            trailing_stop=TrailingStop.opt_from_doc(doc.get("trailingStop")),
            move_stop_to_entry_after=doc.get("moveStopToEntryAfter"),
        )


@dataclass(frozen=True, slots=True)
class TriggerDetails:
    status: TriggerStatus = TriggerStatus.ACTIVE
    fired_at: datetime | None = None
    fired_price: Decimal | None = None
    position_id: str | None = None
    error: str | None = None
    recovered: bool = False  # fired from a gap's candles, not a live tick (SPEC 5.1)

    def to_doc(self) -> Doc:
        doc: Doc = {
            "status": self.status.value,
            "firedAt": opt_iso(self.fired_at),
            "firedPrice": opt_str(self.fired_price),
            "positionId": self.position_id,
            "error": self.error,
        }
        if self.recovered:
            doc["recovered"] = True
        return doc

    @classmethod
    def from_doc(cls, doc: Doc) -> TriggerDetails:
        return cls(
            status=TriggerStatus(doc["status"]),
            fired_at=opt_from_iso(doc.get("firedAt")),
            fired_price=opt_decimal(doc.get("firedPrice")),
            position_id=doc.get("positionId"),
            error=doc.get("error"),
            recovered=doc.get("recovered") is True,
        )


@dataclass(frozen=True, slots=True)
class Trigger:
    id: str
    uid: str
    symbol: str
    market: Market
    condition: TriggerCondition
    action: TriggerAction
    created_at: datetime
    expires_at: datetime | None = None
    details: TriggerDetails = field(default_factory=TriggerDetails)
    source: Source = Source.API
    oco_group: str | None = None  # one fires, the others of the group are cancelled

    @property
    def path(self) -> str:
        return trigger_path(self.uid, self.id)

    @property
    def status(self) -> TriggerStatus:
        return self.details.status

    def with_details(self, **changes: Any) -> Trigger:
        return replace(self, details=replace(self.details, **changes))

    def to_doc(self) -> Doc:
        doc: Doc = {
            "uid": self.uid,
            "symbol": self.symbol,
            "market": self.market.value,
            "condition": {"op": self.condition.op.value, "price": to_str(self.condition.price)},
            "action": self.action.to_doc(),
            "expiresAt": opt_iso(self.expires_at),
            "createdAt": to_iso(self.created_at),
            "source": self.source.value,
            "details": self.details.to_doc(),
        }
        if self.oco_group is not None:
            doc["ocoGroup"] = self.oco_group
        return doc

    @classmethod
    def from_doc(cls, tid: str, doc: Doc) -> Trigger:
        return cls(
            id=tid,
            uid=doc["uid"],
            symbol=doc["symbol"],
            market=Market(doc["market"]),
            condition=TriggerCondition(
                TriggerOp(doc["condition"]["op"]), Decimal(doc["condition"]["price"])
            ),
            action=TriggerAction.from_doc(doc["action"]),
            created_at=from_iso(doc["createdAt"]),
            expires_at=opt_from_iso(doc.get("expiresAt")),
            details=TriggerDetails.from_doc(doc["details"]),
            source=Source(doc.get("source", "api")),
            oco_group=doc.get("ocoGroup"),
        )


# ---------------------------------------------------------------- prices


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """The latest trade price the system knows for a symbol, and when it was seen."""

    symbol: str
    price: Decimal
    at: datetime
    mark_price: Decimal | None = None

    def to_doc(self) -> Doc:
        return {
            "symbol": self.symbol,
            "price": to_str(self.price),
            "at": to_iso(self.at),
            "markPrice": opt_str(self.mark_price),
        }

    @classmethod
    def from_doc(cls, doc: Doc) -> PriceQuote:
        return cls(
            symbol=doc["symbol"],
            price=Decimal(doc["price"]),
            at=from_iso(doc["at"]),
            mark_price=opt_decimal(doc.get("markPrice")),
        )
