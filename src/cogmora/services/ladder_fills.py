"""A burst's take-profit ladder legs, settled in the burst's transaction (SPEC 5.2).

A leg's hit (book key `{id}#tp{n}`) closes its fraction of the original qty in a partial
close (`services.partials`), at once; the last leg closes the rest the way a take profit
does (`closing`, for the close handler). Every hit of a position that has a leg in the
burst (its stop loss, its liquidation, other legs) is taken here too, in the order the
ticks came, against the document read before any write: so a leg then a stop on the next
tick is a partial fill then a close of the rest, and nothing of one position is written
twice in one transaction.

Level-exact, per leg (SPEC 5.1): a leg fills only if the position is still open, the leg
is not in `details.legsFilled` and its stored price is the level the book crossed;
otherwise it is judged again at the tick's price against the stored leg (it may still
fill, or stay). A leg that filled can never fill again: `legsFilled` is written in the
same transaction as its money.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cogmora.domain.crossing import Reason, direction, reached
from cogmora.domain.enums import CloseReason, PositionStatus
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.models import Doc, Position
from cogmora.domain.paths import position_path
from cogmora.domain.takeprofits import LEG_MARK, leg_qty, split_leg_key
from cogmora.domain.ticks import PriceKind
from cogmora.services.ledger import AccountBook
from cogmora.services.partials import close_part
from cogmora.store.port import Tx

if TYPE_CHECKING:
    from cogmora.services.crossings import BurstOutcome, PositionHit


@dataclass(slots=True)
class LadderHits:
    """The burst's hits of positions with a leg among them, by position, in tick order."""

    by_position: dict[str, list[PositionHit]] = field(default_factory=dict)
    uids: dict[str, str] = field(default_factory=dict)  # position id -> owner
    others: list[PositionHit] = field(default_factory=list)
    docs: dict[str, Doc | None] = field(default_factory=dict)

    @classmethod
    def pick(cls, hits: Sequence[PositionHit]) -> LadderHits:
        out = cls()
        laddered = set()
        if any(LEG_MARK in hit.position_id for hit in hits):  # a storm without legs: one scan
            for hit in hits:
                leg = split_leg_key(hit.position_id)
                if leg is not None:
                    laddered.add(leg[0])
        if not laddered:
            out.others = list(hits)
            return out
        for hit in hits:
            leg = split_leg_key(hit.position_id)
            pid = hit.position_id if leg is None else leg[0]
            if pid in laddered:
                out.by_position.setdefault(pid, []).append(hit)
                out.uids[pid] = hit.uid
            else:
                out.others.append(hit)
        return out

    @property
    def owners(self) -> set[str]:
        return set(self.uids.values())

    def read(self, tx: Tx) -> None:
        """Read the positions (before the burst's first write)."""
        if not self.by_position:
            return
        pids = list(self.by_position)
        docs = tx.get_many([position_path(self.uids[p], p) for p in pids])
        self.docs = dict(zip(pids, docs, strict=True))

    def apply(
        self, tx: Tx, book: AccountBook, fees: FeeSchedule, now: datetime, out: BurstOutcome
    ) -> None:
        for pid, hits in self.by_position.items():
            doc = self.docs.get(pid)
            if doc is None or doc["details"]["status"] != PositionStatus.OPEN.value:
                out.lost += [h.position_id for h in hits]
                continue
            _apply_position(tx, book, Position.from_doc(pid, doc), hits, fees, now, out)


def _apply_position(
    tx: Tx,
    book: AccountBook,
    position: Position,
    hits: list[PositionHit],
    fees: FeeSchedule,
    now: datetime,
    out: BurstOutcome,
) -> None:
    from cogmora.services.crossings import judge_position

    changed = kept = False
    for hit in hits:
        if position.status is not PositionStatus.OPEN:
            out.lost.append(hit.position_id)
            continue
        leg = split_leg_key(hit.position_id)
        if leg is None:  # the position's own stop loss or liquidation
            judged = judge_position(position, hit)
            if hit.level is not None and (judged is None or judged.level != hit.level):
                out.rejudged += 1
            if judged is None:
                kept = True
                continue
            position = position.with_details(
                status=PositionStatus.CLOSING,
                close_reason=judged.reason,
                close_price=judged.price,
                close_requested_at=now,
                recovered=position.details.recovered or judged.recovered,
            )
            out.closing.append(judged)
            changed = True
            continue
        index = leg[1]
        d = position.details
        if index >= len(d.take_profits) or index in d.legs_filled:
            out.lost.append(hit.position_id)  # filled already (a replica, a replay)
            continue
        level = d.take_profits[index].price
        if hit.level != level:
            out.rejudged += 1
            crosses = hit.kind is PriceKind.TRADE and reached(
                direction(position.side, Reason.TAKE_PROFIT), level, hit.price
            )
            if not crosses:
                kept = True
                continue
        filled = (*d.legs_filled, index)
        original = d.original_qty if d.original_qty is not None else position.qty
        qty = leg_qty(d.take_profits[index], original)
        last = index == len(d.take_profits) - 1 or len(filled) == len(d.take_profits)
        judged_hit = dataclasses.replace(hit, reason=CloseReason.TAKE_PROFIT, level=level)
        if last or qty >= position.qty:
            position = position.with_details(
                status=PositionStatus.CLOSING,
                close_reason=CloseReason.TAKE_PROFIT,
                close_price=hit.price,
                close_requested_at=now,
                legs_filled=filled,
                recovered=d.recovered or hit.recovered,
            )
        else:
            more: dict[str, Any] = {"legs_filled": filled}
            if d.move_stop_to_entry_after == index + 1:
                more["stop_loss"] = position.entry_price
            position, _, _ = close_part(
                tx,
                book,
                position,
                qty,
                hit.price,
                CloseReason.TAKE_PROFIT,
                fees,
                now,
                hit.recovered,
                **more,
            )
        out.closing.append(judged_hit)
        changed = True
    if changed:
        tx.set(position.path, position.to_doc())
    if kept and position.status is PositionStatus.OPEN:
        out.kept.append(position)
