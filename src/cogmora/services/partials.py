"""Settling a share of an open position inside the caller's transaction (SPEC 5.2).

A partial close is settled at once, in the transaction that decides it (the API's close
with `{qty}`, or the worker's burst for a ladder leg), because the part that closes has
nothing left to wait for: its history document, its ledger entries and the reduced open
position commit together or not at all. It is exactly-once because the history document's
id is the position's id and its part number (`{id}-{n}`, created, never set): a second
run of the same close, from a retry that missed the first's answer or a replica, fails
that create, and the transaction that reads the position fresh sees `parts` moved on.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from cogmora.domain.enums import CloseReason, PositionStatus
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import Doc, Position, Settlement, settlement_fields
from cogmora.domain.money import to_str
from cogmora.domain.partial import split
from cogmora.domain.paths import history_path
from cogmora.domain.positions import close_fill
from cogmora.domain.timeutil import to_iso
from cogmora.services.ledger import AccountBook
from cogmora.store.port import Tx


def part_id(position_id: str, number: int) -> str:
    return f"{position_id}-{number}"


def close_part(
    tx: Tx,
    book: AccountBook,
    position: Position,
    qty: Decimal,
    price: Decimal,
    reason: CloseReason,
    fees: FeeSchedule,
    now: datetime,
    recovered: bool = False,
    **rest_details: Any,
) -> tuple[Position, str, Doc]:
    """Settle `qty` (less than the open qty) of `position` at `price`: credit the owner in
    `book`, create the part's history document; returns the open part (with `rest_details`
    applied to its details, for the caller to write once, after all its parts) and the
    part's id and document."""
    share = split(position.qty, position.margin, position.fee_open, qty)
    fill = close_fill(
        position.market,
        position.side,
        share.qty,
        position.entry_price,
        share.margin,
        share.fee_open,
        price,
        reason,
        fees,
    )
    number = position.details.parts + 1
    pid = part_id(position.id, number)
    book.post(position.uid, fill.ledger, now, position.id, note=f"partial close {pid}")
    # The part's document from the open one's, as `closed_doc` does for a full close (a
    # storm of legs builds 10,000 of these in one transaction).
    doc = position.to_doc()
    details = {
        **doc["details"],
        "status": PositionStatus.CLOSED.value,
        "closeReason": reason.value,
        "closePrice": to_str(price),
        "closeRequestedAt": to_iso(now),
    }
    if recovered:
        details["recovered"] = True
    settlement = Settlement(now, fill.fee_close, fill.realized_pnl, fill.payout)
    doc.update(
        qty=to_str(share.qty),
        margin=to_str(share.margin),
        feeOpen=to_str(share.fee_open),
        details=details,
        partOf=position.id,
    )
    doc.update(settlement_fields(details, settlement))
    tx.create(history_path(position.uid, pid), doc)
    rest = replace(
        position,
        qty=share.rest_qty,
        margin=share.rest_margin,
        fee_open=share.rest_fee_open,
        details=replace(position.details, parts=number, **rest_details),
    )
    return rest, pid, doc
