"""Claiming due job slots so that each one runs once across every replica.

A scheduled document (a user's `users/{uid}/agent/config`, or a global job such as
`schedules/watchlist`) carries `enabled`, `schedule` and `nextRunAt`, and a `run` map that
belongs to the scheduler alone:

    run: {slot, leaseUntil, owner, attempt, claimedAt,          # while a run holds a lease
          lastSlot, lastRunAt, lastAttempts, lastOutcome}       # after it completed

Claiming is a compare-and-set on `nextRunAt` inside one transaction: a due document
(`nextRunAt <= now`, found through the registered DUE_AGENTS query) gets `nextRunAt` moved
to the lease expiry, and `run.slot` records which slot the lease is for. Another replica's
claim then no longer sees it as due, so two replicas never run the same slot. Completing
sets `nextRunAt` to the first slot strictly after *now*, so slots missed during downtime
run once, not once each. A run that crashes never completes: when its lease expires the
document is due again, and the next claim retries the *same* slot (`run.slot` kept,
`run.attempt` counted), which is what lets a retried run derive the same idempotency keys
and open nothing twice. After `max_attempts` the claim comes back `exhausted`, for the
caller to log and complete rather than run again: a slot that crashes every replica must
not do so forever.

A document is "in a lease" exactly when `run.leaseUntil == nextRunAt`. A user who edits
their schedule while a run is in flight moves `nextRunAt` elsewhere; the run's completion
then finds the lease gone and leaves the user's new `nextRunAt` alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cogmora.domain.ids import new_id
from cogmora.domain.models import Doc
from cogmora.domain.schedule import next_run
from cogmora.domain.timeutil import from_iso, to_iso
from cogmora.errors import CogmoraError, Conflict, ValidationError
from cogmora.store import queries as q
from cogmora.store.port import Store, Tx
from cogmora.store.rules import get_field, set_fields

WATCHLIST_JOB = "schedules/watchlist"


@dataclass(frozen=True, slots=True)
class Claim:
    """One claimed slot: run it, then `SlotScheduler.complete` it before `lease_until`."""

    path: str
    doc: Doc  # the document as it was when claimed (the user's config, for an agent)
    slot: datetime  # the slot this run stands for: the `nextRunAt` that came due
    attempt: int  # 1 for the first try; more for a retry after an expired lease
    lease_until: datetime
    token: str  # this claim's owner mark; completion checks it
    exhausted: bool = False  # attempts used up: log it and complete, do not run it

    @property
    def run_key(self) -> str:
        """The same for every attempt at this slot: the seed of the run's idempotency keys."""
        return to_iso(self.slot)


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished claim, with the documents to write in the same transaction (a decision)."""

    claim: Claim
    outcome: str = "ok"
    writes: tuple[tuple[str, Doc], ...] = ()


def leased(doc: Doc) -> bool:
    lease = get_field(doc, "run.leaseUntil")[1]
    return lease is not None and lease == doc.get("nextRunAt")


def next_slot(doc: Doc, now: datetime) -> str | None:
    """The document's next slot strictly after `now`; None when it is off or unreadable."""
    if doc.get("enabled") is not True:
        return None
    try:
        return to_iso(next_run(str(doc.get("schedule")), now))
    except ValidationError:
        return None


class SlotScheduler:
    def __init__(
        self,
        store: Store,
        *,
        lease: timedelta = timedelta(minutes=5),
        max_attempts: int = 3,
        owner: str | None = None,
    ) -> None:
        if lease <= timedelta(0):
            raise ValueError("the lease must be positive")
        self._store = store
        self._lease = lease
        self._max_attempts = max_attempts
        self._owner = owner or new_id()[:8]

    @property
    def lease(self) -> timedelta:
        return self._lease

    # ------------------------------------------------------------ claiming

    async def claim_agents(self, now: datetime, limit: int) -> list[Claim]:
        """Claim up to `limit` due agent slots (oldest first) in one transaction."""
        if limit <= 0:
            return []
        due = (
            q.Query("agent")
            .where("enabled", "==", True)
            .where("nextRunAt", "<=", to_iso(now))
            .order_by("nextRunAt", "asc")
            .limited(limit)
        )
        token = self._token()
        lease_until = now + self._lease

        def body(tx: Tx) -> list[Claim]:
            return self._claim_rows(tx, tx.query(due), now, lease_until, token)

        return await self._store.transact(body)

    async def claim_doc(self, path: str, schedule: str, now: datetime) -> Claim | None:
        """Claim a global job's document if its slot is due; a missing one is created due now."""
        token = self._token()
        lease_until = now + self._lease

        def body(tx: Tx) -> Claim | None:
            doc = tx.get(path)
            if doc is None:
                fresh: Doc = {"enabled": True, "schedule": schedule, "nextRunAt": to_iso(now)}
                claim = self._claim(path, fresh, now, lease_until, token)
                tx.create(path, set_fields(fresh, self._updates(fresh, claim, now)))
                return claim
            nxt = doc.get("nextRunAt")
            if doc.get("enabled") is not True or nxt is None or nxt > to_iso(now):
                return None
            claims = self._claim_rows(tx, [(path, doc)], now, lease_until, token)
            return claims[0] if claims else None

        try:
            return await self._store.transact(body)
        except Conflict:  # another replica created it first; its claim stands
            return None

    def _claim_rows(
        self,
        tx: Tx,
        rows: Sequence[tuple[str, Doc]],
        now: datetime,
        lease_until: datetime,
        token: str,
    ) -> list[Claim]:
        # Fresh slots due at the same instant share one compare-and-set: at :15 every
        # quarter-hourly agent is due with the very same nextRunAt.
        fresh: dict[str, list[Claim]] = {}
        retries: list[Claim] = []
        for path, doc in rows:
            claim = self._claim(path, doc, now, lease_until, token)
            if claim.attempt > 1:
                retries.append(claim)
            else:
                fresh.setdefault(str(doc["nextRunAt"]), []).append(claim)
        won: list[Claim] = []
        for due_at, group in fresh.items():
            updates = self._updates(group[0].doc, group[0], now)
            expect = {"enabled": True, "nextRunAt": due_at}
            changed = set(tx.compare_and_set([c.path for c in group], expect, updates))
            won += [c for c in group if c.path in changed]
        for claim in retries:
            expect = {
                "enabled": True,
                "nextRunAt": claim.doc["nextRunAt"],
                "run.owner": get_field(claim.doc, "run.owner")[1],
            }
            updates = self._updates(claim.doc, claim, now)
            if tx.compare_and_set([claim.path], expect, updates):
                won.append(claim)
        return won

    def _claim(
        self, path: str, doc: Doc, now: datetime, lease_until: datetime, token: str
    ) -> Claim:
        if leased(doc):  # a lease that expired: its run crashed or hung; retry that slot
            slot_text = get_field(doc, "run.slot")[1] or doc["nextRunAt"]
            attempt = int(get_field(doc, "run.attempt")[1] or 1) + 1
        else:
            slot_text, attempt = doc["nextRunAt"], 1
        return Claim(
            path=path,
            doc=doc,
            slot=from_iso(slot_text),
            attempt=attempt,
            lease_until=lease_until,
            token=token,
            exhausted=attempt > self._max_attempts,
        )

    @staticmethod
    def _updates(doc: Doc, claim: Claim, now: datetime) -> dict[str, Any]:
        lease = to_iso(claim.lease_until)
        updates: dict[str, Any] = {
            "nextRunAt": lease,
            "run.leaseUntil": lease,
            "run.owner": claim.token,
            "run.attempt": claim.attempt,
            "run.claimedAt": to_iso(now),
        }
        if claim.attempt == 1:
            updates["run.slot"] = to_iso(claim.slot)
        return updates

    def _token(self) -> str:
        return f"{self._owner}-{new_id()[:12]}"

    # ------------------------------------------------------------ completing

    async def complete(self, done: Sequence[Completion], now: datetime) -> list[bool]:
        """Finish claims in one transaction: reschedule each one still leased to it, and
        write every completion's documents whether or not the lease was lost (a run that
        happened is logged even if a retry overtook it). True where the schedule moved."""
        if not done:
            return []

        def body(tx: Tx) -> list[bool]:
            docs = tx.get_many([d.claim.path for d in done])
            results: list[bool] = []
            writes: list[tuple[str, Doc]] = []
            for item, doc in zip(done, docs, strict=True):
                claim = item.claim
                mine = (
                    doc is not None
                    and doc.get("nextRunAt") == to_iso(claim.lease_until)
                    and get_field(doc, "run.owner")[1] == claim.token
                )
                if mine and doc is not None:
                    writes.append((claim.path, set_fields(doc, _finished(doc, item, now))))
                writes.extend(item.writes)
                results.append(mine)
            for path, new in writes:
                tx.set(path, new)
            return results

        return await self._store.transact(body)


def _finished(doc: Doc, item: Completion, now: datetime) -> dict[str, Any]:
    return {
        "nextRunAt": next_slot(doc, now),
        "run.leaseUntil": None,
        "run.owner": None,
        "run.attempt": 0,
        "run.lastSlot": to_iso(item.claim.slot),
        "run.lastRunAt": to_iso(now),
        "run.lastAttempts": item.claim.attempt,
        "run.lastOutcome": item.outcome[:500],
    }


def describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, CogmoraError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
