"""Claiming due job slots so that each one runs once across every replica.

A scheduled document (a user's `users/{uid}/agent/config`, or a global job such as
`schedules/watchlist`) carries `enabled`, `schedule` and `nextRunAt`, and a `run` map that
belongs to the scheduler alone:

    run: {slot, leaseUntil, owner, attempt, claimedAt,          # while a run holds a lease
          lastSlot, lastRunAt, lastAttempts, lastOutcome}       # after it completed

Claiming is a compare-and-set on `nextRunAt` inside one transaction: due documents
(`nextRunAt <= now`, found through the registered DUE_AGENTS query) are re-read in the
claiming transaction, and each whose `nextRunAt` is still the value the claimer saw gets it
moved to the lease expiry, with `run.slot` recording which slot the lease is for. Another
replica's claim then finds the value changed (or, racing, loses the serializable
transaction and re-reads), so two replicas never run the same slot. Completing
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

import random
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
        window: int = 4,
        rng: random.Random | None = None,
    ) -> None:
        if lease <= timedelta(0):
            raise ValueError("the lease must be positive")
        self._store = store
        self._lease = lease
        self._max_attempts = max_attempts
        self._owner = owner or new_id()[:8]
        self._window = max(1, window)
        self._spread = 1
        self._random = rng or random.Random()

    @property
    def lease(self) -> timedelta:
        return self._lease

    # ------------------------------------------------------------ claiming

    async def claim_agents(self, now: datetime, limit: int) -> list[Claim]:
        """Claim up to `limit` due agent slots, from the oldest due, in one transaction.

        The due query runs on a snapshot first; the transaction then re-reads just the
        chosen documents and moves each one whose nextRunAt is still the value seen
        (compare-and-set). A replica that loses races (another one took slots it saw)
        picks at random among up to `limit x window` of the oldest due slots from then
        on, so competing replicas rarely reach for the same documents; when they do, the
        store's serializable transaction lets one win and the other re-reads and skips.
        """
        if limit <= 0:
            return []
        due = (
            q.Query("agent")
            .where("enabled", "==", True)
            .where("nextRunAt", "<=", to_iso(now))
            .order_by("nextRunAt", "asc")
            .limited(limit * self._spread)
        )
        rows = await self._store.read(lambda tx: tx.query(due))
        if len(rows) > limit:
            rows = sorted(self._random.sample(rows, limit), key=lambda r: r[1]["nextRunAt"])
        seen = {path: doc.get("nextRunAt") for path, doc in rows}
        token = self._token()
        lease_until = now + self._lease

        def body(tx: Tx) -> list[Claim]:
            return self._claim_docs(tx, seen, now, lease_until, token)

        if not seen:
            return []
        claims = await self._store.transact(body)
        # Lost races mean another replica is claiming the same slots: spread out further.
        if len(claims) < len(seen):
            self._spread = min(self._window, self._spread * 2)
        elif self._spread > 1:
            self._spread -= 1
        return claims

    async def claim_doc(self, path: str, schedule: str, now: datetime) -> Claim | None:
        """Claim a global job's document if its slot is due; a missing one is created due now."""
        token = self._token()
        lease_until = now + self._lease

        def body(tx: Tx) -> Claim | None:
            doc = tx.get(path)
            if doc is None:
                fresh: Doc = {"enabled": True, "schedule": schedule, "nextRunAt": to_iso(now)}
                claim = self._claim(path, fresh, now, lease_until, token)
                tx.create(path, set_fields(fresh, self._updates(claim, now)))
                return claim
            nxt = doc.get("nextRunAt")
            if doc.get("enabled") is not True or nxt is None or nxt > to_iso(now):
                return None
            claims = self._claim_docs(tx, {path: nxt}, now, lease_until, token, [doc])
            return claims[0] if claims else None

        try:
            return await self._store.transact(body)
        except Conflict:  # another replica created it first; its claim stands
            return None

    def _claim_docs(
        self,
        tx: Tx,
        seen: dict[str, Any],
        now: datetime,
        lease_until: datetime,
        token: str,
        docs: list[Doc | None] | None = None,
    ) -> list[Claim]:
        """The compare-and-set: documents whose nextRunAt is still what the claimer saw
        (and that are still on) get the lease; the others were taken or changed."""
        paths = list(seen)
        current = docs if docs is not None else tx.get_many(paths)
        groups: dict[str, list[Claim]] = {}
        singles: list[Claim] = []
        for path, doc in zip(paths, current, strict=True):
            if doc is None or doc.get("enabled") is not True:
                continue
            if doc.get("nextRunAt") is None or doc.get("nextRunAt") != seen[path]:
                continue
            claim = self._claim(path, doc, now, lease_until, token)
            if claim.attempt == 1:
                groups.setdefault(str(seen[path]), []).append(claim)
            else:
                singles.append(claim)
        won: list[Claim] = []
        # First slots due at one instant share one store-side compare-and-set (at :15
        # every quarter-hourly agent is due with the very same nextRunAt); the rest were
        # just read in this transaction, so writing them whole is a compare-and-set too.
        for due_at, group in groups.items():
            if len(group) == 1:
                singles += group
                continue
            expect = {"enabled": True, "nextRunAt": due_at}
            updates = self._updates(group[0], now)
            changed = set(tx.compare_and_set([c.path for c in group], expect, updates))
            won += [c for c in group if c.path in changed]
        for claim in singles:
            tx.set(claim.path, set_fields(claim.doc, self._updates(claim, now)))
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
    def _updates(claim: Claim, now: datetime) -> dict[str, Any]:
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
