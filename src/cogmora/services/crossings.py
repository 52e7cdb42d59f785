"""The worker's burst transaction: every crossing of one burst of ticks, committed once.

Each write is a compare-and-set: a position goes `open -> closing` and a trigger
`active -> triggered` only if it is still in the old state when the transaction reads it,
so two worker replicas, a manual close and a restart can race and exactly one wins. A
trigger's fire opens its position in the same transaction, through the same code as an
API open; if that open is refused (balance, a level the fill price already passed) the
trigger goes `failed` with the reason and no money moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from cogmora.domain.enums import CloseReason, PositionStatus, TriggerStatus
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.models import Position, Trigger, position_path, trigger_path, user_path
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.errors import Rejected
from cogmora.services.ledger import AccountBook
from cogmora.services.positions import book_open
from cogmora.store.port import Tx


@dataclass(frozen=True, slots=True)
class PositionHit:
    uid: str
    position_id: str
    reason: CloseReason
    price: Decimal


@dataclass(frozen=True, slots=True)
class TriggerHit:
    """A trigger to fire at `price`. `position_id` is chosen by the caller, so the worker can
    put the new position's levels in its book before the commit and let a later tick of the
    same burst close it (a PositionHit naming that id, in the same call)."""

    uid: str
    trigger_id: str
    price: Decimal
    position_id: str = field(default_factory=new_id)


@dataclass(slots=True)
class BurstOutcome:
    closing: list[Position] = field(default_factory=list)
    opened: list[Position] = field(default_factory=list)
    fired: list[Trigger] = field(default_factory=list)
    failed: list[Trigger] = field(default_factory=list)
    expired: list[Trigger] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # ids whose state had already moved on


def apply_crossings(
    tx: Tx,
    position_hits: Sequence[PositionHit],
    trigger_hits: Sequence[TriggerHit],
    fees: FeeSchedule,
    now: datetime,
) -> BurstOutcome:
    out = BurstOutcome()
    pos_docs = tx.get_many([position_path(h.uid, h.position_id) for h in position_hits])
    trig_docs = tx.get_many([trigger_path(h.uid, h.trigger_id) for h in trigger_hits])
    owners = sorted({h.uid for h in trigger_hits})
    book = AccountBook.from_docs(tx.get_many([user_path(u) for u in owners]) if owners else [])

    # Every read is done; from here on each decision is written as it is made, and the
    # in-memory book debits each open at once so two fires by one user see each other.
    born_here: list[PositionHit] = []
    for hit, doc in zip(position_hits, pos_docs, strict=True):
        if doc is None:
            born_here.append(hit)  # perhaps opened by a trigger below, in this transaction
        elif doc["details"]["status"] != PositionStatus.OPEN.value:
            out.lost.append(hit.position_id)
        else:
            _close(tx, Position.from_doc(hit.position_id, doc), hit, now, out)

    for thit, doc in zip(trigger_hits, trig_docs, strict=True):
        if doc is None or doc["details"]["status"] != TriggerStatus.ACTIVE.value:
            out.lost.append(thit.trigger_id)
            continue
        trigger = Trigger.from_doc(thit.trigger_id, doc)
        if trigger.expires_at is not None and trigger.expires_at <= now:
            expired = trigger.with_details(status=TriggerStatus.EXPIRED)
            tx.set(expired.path, expired.to_doc())
            out.expired.append(expired)
            continue
        request = OpenRequest.from_action(
            trigger.symbol, trigger.market, trigger.action, trigger.source, trigger.id
        )
        try:
            position = build_position(
                request, trigger.uid, thit.position_id, thit.price, fees, now
            )
            book.require(position.uid, position.margin + position.fee_open)
        except Rejected as exc:
            failed = trigger.with_details(
                status=TriggerStatus.FAILED, fired_at=now, fired_price=thit.price, error=str(exc)
            )
            tx.set(failed.path, failed.to_doc())
            out.failed.append(failed)
            continue
        book_open(tx, book, position)
        fired = trigger.with_details(
            status=TriggerStatus.TRIGGERED,
            fired_at=now,
            fired_price=thit.price,
            position_id=position.id,
        )
        tx.set(fired.path, fired.to_doc())
        out.opened.append(position)
        out.fired.append(fired)

    opened = {p.id: p for p in out.opened}
    for hit in born_here:
        if hit.position_id in opened:
            _close(tx, opened[hit.position_id], hit, now, out)
        else:
            out.lost.append(hit.position_id)

    for path, doc in book.writes():
        tx.set(path, doc)
    return out


def _close(tx: Tx, position: Position, hit: PositionHit, now: datetime, out: BurstOutcome) -> None:
    closing = position.with_details(
        status=PositionStatus.CLOSING,
        close_reason=hit.reason,
        close_price=hit.price,
        close_requested_at=now,
    )
    tx.set(closing.path, closing.to_doc())
    out.closing.append(closing)
