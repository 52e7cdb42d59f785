"""One-cancels-other trigger groups (SPEC 5.2), inside the burst's transaction.

A trigger placed with `ocoGroup` shares the group with the owner's other triggers of that
name. When one fires, the others still active are `cancelled` in the transaction that
marks it `triggered`, so the group has exactly one winner: two members crossed on one tick
by one worker are taken in order (the second finds itself cancelled), and two replicas
firing two members at once both read both documents, so the store's serializable commit
lets one through and the other, re-run, finds its trigger cancelled.

The members are found with the registered query of the owner's active triggers (no new
index), read before the burst's first write as the port requires, and only for owners
whose crossed trigger has a group.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cogmora.domain.enums import TriggerStatus
from cogmora.domain.models import Doc, Trigger
from cogmora.errors import ValidationError
from cogmora.store import queries as q
from cogmora.store.port import Tx

if TYPE_CHECKING:
    from cogmora.services.crossings import TriggerHit

_GROUP = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def check_group(group: str | None) -> None:
    if group is not None and _GROUP.fullmatch(group) is None:
        raise ValidationError(
            "ocoGroup", "ocoGroup must be 1 to 64 letters, digits or any of _ . : -"
        )


@dataclass(slots=True)
class OcoGroups:
    members: dict[tuple[str, str], list[Trigger]] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)  # this burst's triggers, decided already

    @classmethod
    def read(cls, tx: Tx, hits: Sequence[TriggerHit], docs: Sequence[Doc | None]) -> OcoGroups:
        out = cls()
        owners = sorted({h.uid for h, d in zip(hits, docs, strict=True) if d and d.get("ocoGroup")})
        for uid in owners:
            active = q.user_newest_first("tradeTriggers", uid, "createdAt", "active")
            for path, doc in tx.query(active):
                group = doc.get("ocoGroup")
                if group:
                    trigger = Trigger.from_doc(path.rsplit("/", 1)[1], doc)
                    out.members.setdefault((uid, group), []).append(trigger)
        return out

    def taken(self, trigger_id: str) -> bool:
        """Whether a sibling's fire in this transaction cancelled it; else it is decided
        here (fired, failed or expired), and a later sibling's fire leaves it alone."""
        if trigger_id in self.cancelled:
            return True
        self.seen.add(trigger_id)
        return False

    def fired(self, tx: Tx, trigger: Trigger) -> list[Trigger]:
        """Cancel the other active members of `trigger`'s group; returns them."""
        if trigger.oco_group is None:
            return []
        done = []
        for other in self.members.get((trigger.uid, trigger.oco_group), []):
            if other.id in self.seen or other.id in self.cancelled:
                continue
            cancelled = other.with_details(status=TriggerStatus.CANCELLED)
            tx.set(cancelled.path, cancelled.to_doc())
            self.cancelled.add(other.id)
            done.append(cancelled)
        return done
