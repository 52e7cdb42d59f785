"""The worker's burst transaction: every crossing of one burst of ticks, committed once.

Each write is a compare-and-set on the level that crossed, not only on the state (SPEC
5.1): a position goes `open -> closing` only if it is still open AND still stores the level
the book crossed; a trigger `active -> triggered` only if it is still active with the
condition the book held. So two worker replicas, a manual close, a restart and a `PATCH`
of the level can race and exactly one wins, and a position never closes for a level it no
longer had.

A position whose compare-and-set misses is either gone from `open` (the race's loser:
`lost`) or open with other levels (`missed`): a transaction body cannot read after it
wrote, so `rejudge_positions` reads those in a follow-up transaction and judges them again
with the domain's crossing rules, at the same tick price, against the levels now stored:
it closes with the new level's reason, or not at all (`kept`, whose stored levels the book
must hold). A trigger is read before anything is written, so it is re-judged in the same
transaction.

A trigger's fire opens its position in the same transaction, through the same code as an
API open; if that open is refused (balance, a level the fill price already passed) the
trigger goes `failed` with the reason and no money moves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from cogmora.domain.crossing import Reason, close_reason, position_reason, trigger_fires
from cogmora.domain.enums import CloseReason, PositionStatus, Side, TriggerOp, TriggerStatus
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.models import Position, Trigger
from cogmora.domain.money import to_str
from cogmora.domain.orders import OpenRequest, build_position
from cogmora.domain.paths import position_path, trigger_path, user_path
from cogmora.domain.ticks import PriceKind
from cogmora.domain.timeutil import to_iso
from cogmora.domain.trailing import TrailingStop, crossed, kept_peak, stop_shown
from cogmora.errors import Rejected
from cogmora.services.ladder_fills import LadderHits
from cogmora.services.ledger import AccountBook
from cogmora.services.oco import OcoGroups
from cogmora.services.positions import book_open
from cogmora.store.port import Tx

# The stored field of each level a crossing can expect (a trailing stop is not in the book).
LEVEL_FIELDS = {
    CloseReason.STOP_LOSS: "details.stopLoss",
    CloseReason.TAKE_PROFIT: "details.takeProfit",
    CloseReason.LIQUIDATION: "details.liquidationPrice",
}


@dataclass(frozen=True, slots=True)
class PositionHit:
    """A position to close at `price` for `reason`. `level` is the crossed level as the book
    held it; the write commits only while that level is still stored (None: status only).
    `kind` is the tick's price kind, for judging the crossing again."""

    uid: str
    position_id: str
    reason: CloseReason
    price: Decimal
    level: Decimal | None = None
    kind: PriceKind = PriceKind.TRADE
    recovered: bool = False  # found in a gap's candles (SPEC 5.1): `details.recovered`
    trailing: TrailingStop | None = None  # a trailing stop's crossing: its parameters then
    trailing_peak: Decimal | None = None  # and the peak the book had tracked


@dataclass(frozen=True, slots=True)
class TriggerHit:
    """A trigger to fire at `price`. `position_id` is chosen by the caller, so the worker can
    put the new position's levels in its book before the commit and let a later tick of the
    same burst close it (a PositionHit naming that id, in the same call). `op` and `level`
    are the condition the book held (None: not checked)."""

    uid: str
    trigger_id: str
    price: Decimal
    position_id: str = field(default_factory=new_id)
    op: TriggerOp | None = None
    level: Decimal | None = None
    kind: PriceKind = PriceKind.TRADE
    recovered: bool = False  # found in a gap's candles: the trigger and its position say so


@dataclass(slots=True)
class BurstOutcome:
    closing: list[PositionHit] = field(default_factory=list)  # the hits that won
    opened: list[Position] = field(default_factory=list)
    fired: list[Trigger] = field(default_factory=list)
    failed: list[Trigger] = field(default_factory=list)
    expired: list[Trigger] = field(default_factory=list)
    cancelled: list[Trigger] = field(default_factory=list)  # the fired ones' OCO siblings
    lost: list[str] = field(default_factory=list)  # ids whose state had already moved on
    missed: list[PositionHit] = field(default_factory=list)  # levels changed: judge again
    kept: list[Position] = field(default_factory=list)  # judged again: still open, as stored
    kept_triggers: list[Trigger] = field(default_factory=list)  # judged again: still active
    rejudged: int = 0  # crossings judged again against changed levels

    def merge(self, other: BurstOutcome) -> None:
        self.closing += other.closing
        self.opened += other.opened
        self.fired += other.fired
        self.failed += other.failed
        self.expired += other.expired
        self.cancelled += other.cancelled
        self.lost += other.lost
        self.missed += other.missed
        self.kept += other.kept
        self.kept_triggers += other.kept_triggers
        self.rejudged += other.rejudged


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


def expected(
    reason: CloseReason, level: Decimal | None, trailing: TrailingStop | None = None
) -> dict[str, Any]:
    """What a closing compare-and-set expects stored: open, and the crossed level unchanged.

    Only the crossed level: a change to a better level cannot change the outcome (the
    reason is the worst crossed), and expecting every level would split a storm of
    positions sharing one stop into one statement per distinct take profit.
    """
    expect: dict[str, Any] = {"details.status": PositionStatus.OPEN.value}
    name = LEVEL_FIELDS.get(reason)
    if level is not None and name is not None:
        expect[name] = to_str(level)
    if reason is CloseReason.TRAILING_STOP and trailing is not None:
        expect.update(trailing.expected())
    return expect


def _close_groups(
    tx: Tx, hits: Sequence[PositionHit], now: datetime
) -> tuple[list[PositionHit], list[PositionHit]]:
    """One compare-and-set per (reason, price, level, recovered), so a storm at one level
    is one statement per 500 positions; returns (taken, not taken)."""
    groups: dict[
        tuple[CloseReason, Decimal, Decimal | None, bool, TrailingStop | None], list[PositionHit]
    ] = {}
    for hit in hits:
        trailing = hit.trailing if hit.reason is CloseReason.TRAILING_STOP else None
        key = (hit.reason, hit.price, hit.level, hit.recovered, trailing)
        groups.setdefault(key, []).append(hit)
    taken_hits: list[PositionHit] = []
    missed: list[PositionHit] = []
    for (reason, price, level, recovered, trailing), group in groups.items():
        taken = set(
            tx.compare_and_set(
                [position_path(h.uid, h.position_id) for h in group],
                expected(reason, level, trailing),
                closing_fields(reason, price, now, recovered),
            )
        )
        for h in group:
            (taken_hits if position_path(h.uid, h.position_id) in taken else missed).append(h)
    return taken_hits, missed


def judge_position(position: Position, hit: PositionHit) -> PositionHit | None:
    """The crossing judged again at the hit's price and kind against `position`'s levels:
    the hit to commit (with the reason and level now stored), or None if nothing crosses."""
    d = position.details
    reason = position_reason(
        position.side, d.stop_loss, d.take_profit, d.liquidation_price, hit.price, hit.kind
    )
    trailed = trailing_reason(position, hit)
    if trailed is not None and (reason is None or trailed < reason):
        return dataclasses.replace(
            hit, reason=close_reason(trailed), level=None, trailing=d.trailing
        )
    if reason is None:
        return None
    level = {
        Reason.STOP_LOSS: d.stop_loss,
        Reason.TAKE_PROFIT: d.take_profit,
        Reason.LIQUIDATION: d.liquidation_price,
    }[reason]
    return dataclasses.replace(hit, reason=close_reason(reason), level=level)


def trailing_reason(position: Position, hit: PositionHit) -> Reason | None:
    """TRAILING_STOP if the hit's trade price reaches the stored trailing stop, else None.

    The peak is the stored one, or the book's when the parameters are the same (the
    stored peak is up to a second old, or was never written for a position opened in
    this very burst)."""
    d = position.details
    if d.trailing is None or hit.kind is not PriceKind.TRADE:
        return None
    peak = d.trailing_peak
    if hit.trailing == d.trailing and hit.trailing_peak is not None:
        if peak is None:
            peak = hit.trailing_peak
        elif position.side is Side.LONG:
            peak = max(peak, hit.trailing_peak)
        else:
            peak = min(peak, hit.trailing_peak)
    if crossed(position.side, peak, d.trailing.callback_rate, hit.price):
        return Reason.TRAILING_STOP
    return None


def apply_crossings(
    tx: Tx,
    position_hits: Sequence[PositionHit],
    trigger_hits: Sequence[TriggerHit],
    fees: FeeSchedule,
    now: datetime,
) -> BurstOutcome:
    out = BurstOutcome()
    ladder = LadderHits.pick(position_hits)  # take-profit legs: services/ladder_fills.py
    position_hits = ladder.others
    # Reads first (the port's rule): the triggers to fire and their owners' balances.
    trig_docs = tx.get_many([trigger_path(h.uid, h.trigger_id) for h in trigger_hits])
    owners = sorted({h.uid for h in trigger_hits} | ladder.owners)
    book = AccountBook.from_docs(tx.get_many([user_path(u) for u in owners]) if owners else [])
    ladder.read(tx)
    oco = OcoGroups.read(tx, trigger_hits, trig_docs)

    # Positions: a hit that does not take is a position a trigger below opens in this very
    # transaction, one whose levels changed (judged again afterwards), or one whose state
    # moved on (closed by hand, by a replica, or already closing): the race's loser.
    taken, not_taken = _close_groups(tx, position_hits, now)
    out.closing += taken
    missed = {h.position_id: h for h in not_taken}

    for thit, doc in zip(trigger_hits, trig_docs, strict=True):
        inactive = doc is None or doc["details"]["status"] != TriggerStatus.ACTIVE.value
        if inactive or oco.taken(thit.trigger_id):
            out.lost.append(thit.trigger_id)
            continue
        assert doc is not None
        trigger = Trigger.from_doc(thit.trigger_id, doc)
        condition = trigger.condition
        if thit.level is not None and (condition.op, condition.price) != (thit.op, thit.level):
            out.rejudged += 1
            if not trigger_fires(condition.op, condition.price, thit.price, thit.kind):
                out.kept_triggers.append(trigger)
                continue
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
        out.cancelled += oco.fired(tx, fired)
        if thit.recovered:
            position = position.with_details(recovered=True)
        crossed = missed.pop(position.id, None)
        if crossed is not None:  # a later tick of the same burst crossed its predicted levels
            judged = judge_position(position, crossed)
            if judged is None:
                out.kept.append(position)
            else:
                position = position.with_details(**_closing_details(judged, now))
                out.closing.append(judged)
        book_open(tx, book, position)
        out.opened.append(position)

    for hit in missed.values():
        if hit.level is None and hit.trailing is None:  # only the state was expected
            out.lost.append(hit.position_id)
        else:
            out.missed.append(hit)
    ladder.apply(tx, book, fees, now, out)
    for path, doc in book.writes():
        tx.set(path, doc)
    return out


def rejudge_positions(tx: Tx, hits: Sequence[PositionHit], now: datetime) -> BurstOutcome:
    """The follow-up of crossings whose compare-and-set missed: read each position, and
    close it if the tick still crosses one of its stored levels (the worst one's reason).

    Reads, then compare-and-sets expecting what was just read, so within this transaction
    they take; one that still does not take (a backend that let a write in between) comes
    back in `missed`, to be judged again.
    """
    out = BurstOutcome()
    docs = tx.get_many([position_path(h.uid, h.position_id) for h in hits])
    closing: list[PositionHit] = []
    raised: list[Position] = []
    for hit, doc in zip(hits, docs, strict=True):
        if doc is None or doc["details"]["status"] != PositionStatus.OPEN.value:
            out.lost.append(hit.position_id)
            continue
        out.rejudged += 1
        position = Position.from_doc(hit.position_id, doc)
        judged = judge_position(position, hit)
        if judged is None:
            kept = keep_peak(position, hit)
            out.kept.append(kept)
            if kept is not position:
                raised.append(kept)
        else:
            closing.append(judged)
    taken, out.missed = _close_groups(tx, closing, now)
    out.closing += taken
    for kept in raised:  # after the compare-and-sets, which count as the first writes
        tx.set(kept.path, kept.to_doc())
    return out


def keep_peak(position: Position, hit: PositionHit) -> Position:
    """A kept position with the crossing's trailing peak when it got further than the
    stored one (`trailing.kept_peak`), else the position as stored."""
    d = position.details
    peak = kept_peak(position.side, d.trailing, d.trailing_peak, hit.trailing, hit.trailing_peak)
    if peak is None or d.trailing is None:
        return position
    stop = stop_shown(position.side, peak, d.trailing.callback_rate)
    return position.with_details(trailing_peak=peak, trailing_stop=stop)


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
