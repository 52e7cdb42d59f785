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
from typing import Any

from cogmora.domain.enums import CloseReason, PositionStatus, TriggerStatus
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.models import Position, Trigger
from cogmora.domain.money import to_str
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.domain.paths import position_path, trigger_path, user_path
from cogmora.domain.timeutil import to_iso
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
    recovered: bool = False  # found in a gap's candles (SPEC 5.1): `details.recovered`


@dataclass(frozen=True, slots=True)
class TriggerHit:
    """A trigger to fire at `price`. `position_id` is chosen by the caller, so the worker can
    put the new position's levels in its book before the commit and let a later tick of the
    same burst close it (a PositionHit naming that id, in the same call)."""

    uid: str
    trigger_id: str
    price: Decimal
    position_id: str = field(default_factory=new_id)
    recovered: bool = False  # found in a gap's candles: the trigger and its position say so


@dataclass(slots=True)
class BurstOutcome:
    closing: list[PositionHit] = field(default_factory=list)  # the hits that won
    opened: list[Position] = field(default_factory=list)
    fired: list[Trigger] = field(default_factory=list)
    failed: list[Trigger] = field(default_factory=list)
    expired: list[Trigger] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # ids whose state had already moved on

    def merge(self, other: BurstOutcome) -> None:
        self.closing += other.closing
        self.opened += other.opened
        self.fired += other.fired
        self.failed += other.failed
        self.expired += other.expired
        self.lost += other.lost


def closing_fields(
    reason: CloseReason, price: Decimal, now: datetime, recovered: bool = False
) -> dict[str, Any]:
    """The `open -> closing` update, as dotted fields (the compare-and-set's payload)."""
    fields: dict[str, Any] = {
        "details.status": PositionStatus.CLOSING.value,
        "details.closeReason": reason.value,
        "details.closePrice": to_str(price),
        "details.closeRequestedAt": to_iso(now),
    }
    if recovered:
        fields["details.recovered"] = True
    return fields


def apply_crossings(
    tx: Tx,
    position_hits: Sequence[PositionHit],
    trigger_hits: Sequence[TriggerHit],
    fees: FeeSchedule,
    now: datetime,
) -> BurstOutcome:
    out = BurstOutcome()
    # Reads first (the port's rule): the triggers to fire and their owners' balances.
    trig_docs = tx.get_many([trigger_path(h.uid, h.trigger_id) for h in trigger_hits])
    owners = sorted({h.uid for h in trigger_hits})
    book = AccountBook.from_docs(tx.get_many([user_path(u) for u in owners]) if owners else [])

    # Positions: one compare-and-set per (reason, price), so a storm is one statement per
    # 500 positions. A hit that does not take is either a position a trigger below opens
    # in this very transaction, or one whose state moved on (closed by hand, by a
    # replica, or already closing): the race's loser.
    groups: dict[tuple[CloseReason, Decimal, bool], list[PositionHit]] = {}
    for hit in position_hits:
        groups.setdefault((hit.reason, hit.price, hit.recovered), []).append(hit)
    missed: dict[str, PositionHit] = {}
    for (reason, price, recovered), hits in groups.items():
        taken = set(
            tx.compare_and_set(
                [position_path(h.uid, h.position_id) for h in hits],
                {"details.status": PositionStatus.OPEN.value},
                closing_fields(reason, price, now, recovered),
            )
        )
        for h in hits:
            if position_path(h.uid, h.position_id) in taken:
                out.closing.append(h)
            else:
                missed[h.position_id] = h

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
            trigger.symbol, trigger.market, trigger.action, trigger.id
        )
        try:
            position = build_position(request, trigger.uid, thit.position_id, thit.price, fees, now)
            book.require(position.uid, position.margin + position.fee_open)
        except Rejected as exc:
            failed = trigger.with_details(
                status=TriggerStatus.FAILED,
                fired_at=now,
                fired_price=thit.price,
                error=str(exc),
                recovered=thit.recovered,
            )
            tx.set(failed.path, failed.to_doc())
            out.failed.append(failed)
            continue
        fired = trigger.with_details(
            status=TriggerStatus.TRIGGERED,
            fired_at=now,
            fired_price=thit.price,
            position_id=position.id,
            recovered=thit.recovered,
        )
        tx.set(fired.path, fired.to_doc())
        out.fired.append(fired)
        if thit.recovered:
            position = position.with_details(recovered=True)
        crossed = missed.pop(position.id, None)
        if crossed is not None:  # a later tick of the same burst already crossed it
            position = position.with_details(**_closing_details(crossed, now))
            out.closing.append(crossed)
        book_open(tx, book, position)
        out.opened.append(position)

    out.lost += list(missed)
    for path, doc in book.writes():
        tx.set(path, doc)
    return out


def _closing_details(hit: PositionHit, now: datetime) -> dict[str, Any]:
    details: dict[str, Any] = {
        "status": PositionStatus.CLOSING,
        "close_reason": hit.reason,
        "close_price": hit.price,
        "close_requested_at": now,
    }
    if hit.recovered:
        details["recovered"] = True
    return details
