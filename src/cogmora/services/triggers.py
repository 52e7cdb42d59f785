"""Trade triggers: placing, listing, cancelling and expiring them.

Firing lives in `services.crossings`, in the worker's burst transaction.

Placements and cancels run in the owner's document lane (`store.lanes`), as opens do: a
placement reads the user document that an open rewrites, so on Firestore the two aborted
each other inside one process (issue 7: 16 clients placing and cancelling over 5 users
made 9.8 placements/s where one client alone made 11.7). Those that queue for one user
while a transaction is in flight are committed together in the next one (`GroupCommit`),
each still all-or-nothing for itself: the user document is read once a batch, and the
batch is one commit (one feed-log entry for every listener to be sent) instead of one
per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cogmora.domain.enums import Market, Source, TriggerStatus
from cogmora.domain.fees import FeeSchedule
from cogmora.domain.ids import new_id
from cogmora.domain.models import Doc, Trigger, TriggerAction, TriggerCondition
from cogmora.domain.money import require_places
from cogmora.domain.orders import OpenRequest, precheck
from cogmora.domain.paths import trigger_path, user_path
from cogmora.domain.positions import resolve_qty
from cogmora.domain.takeprofits import check_leg_sizes
from cogmora.domain.timeutil import to_iso
from cogmora.errors import CogmoraError, Conflict, NotFound, ValidationError
from cogmora.services import idempotency
from cogmora.services.clock import Clock
from cogmora.services.idempotency import IdempotencyKey
from cogmora.services.oco import check_group
from cogmora.services.symbols import SymbolCatalog
from cogmora.store import queries as q
from cogmora.store.lanes import GroupCommit, Outcome
from cogmora.store.port import Store, Tx

# A placement writes its trigger and maybe an idempotency record; a cancel one document.
PLACE_WRITES = 2
MAX_BATCH = 50


def trigger_doc(trigger: Trigger) -> Doc:
    return {"id": trigger.id, **trigger.to_doc()}


def _load(tx: Tx, uid: str, tid: str) -> Trigger:
    doc = tx.get(trigger_path(uid, tid))
    if doc is None:
        raise NotFound(f"trigger {tid} not found")
    return Trigger.from_doc(tid, doc)


@dataclass(frozen=True, slots=True)
class _Place:
    trigger: Trigger
    key: IdempotencyKey | None
    now: datetime

    @property
    def uid(self) -> str:
        return self.trigger.uid


@dataclass(frozen=True, slots=True)
class _Cancel:
    uid: str
    tid: str


_Op = _Place | _Cancel


def _token(op: _Op) -> str | None:
    """Two requests that must see each other committed never share a batch: one
    idempotency key placed twice, one trigger cancelled twice."""
    if isinstance(op, _Cancel):
        return trigger_path(op.uid, op.tid)
    return None if op.key is None else op.key.path


def trigger_batch(tx: Tx, uid: str, ops: list[_Op]) -> list[Outcome[Doc]]:
    """Place and cancel several triggers of ONE user in this transaction, each
    all-or-nothing for itself: a refused one (a reused idempotency key, a trigger not
    active) writes nothing and the others still commit."""
    outcomes: list[Outcome[Doc] | None] = []
    cancels: dict[int, Trigger] = {}
    for i, op in enumerate(ops):  # every read before the first write
        try:
            if isinstance(op, _Place):
                outcomes.append(idempotency.replay(tx, op.key))
            else:
                cancels[i] = _load(tx, uid, op.tid)
                outcomes.append(None)
        except CogmoraError as exc:
            outcomes.append(exc)
    if any(isinstance(op, _Place) for op in ops) and tx.get(user_path(uid)) is None:
        missing = NotFound(f"user {uid} not found")
        outcomes = [
            missing if isinstance(op, _Place) and o is None else o
            for op, o in zip(ops, outcomes, strict=True)
        ]
    for i, op in enumerate(ops):
        if outcomes[i] is not None:
            continue
        if isinstance(op, _Place):
            tx.create(op.trigger.path, op.trigger.to_doc())
            answer = trigger_doc(op.trigger)
            idempotency.record(tx, op.key, answer, op.now)
            outcomes[i] = answer
            continue
        trigger = cancels[i]
        if trigger.status is not TriggerStatus.ACTIVE:
            outcomes[i] = Conflict(f"trigger {op.tid} is {trigger.status.value}, not active")
            continue
        cancelled = trigger.with_details(status=TriggerStatus.CANCELLED)
        tx.set(cancelled.path, cancelled.to_doc())
        outcomes[i] = trigger_doc(cancelled)
    return [o for o in outcomes if o is not None]


class Triggers:
    def __init__(
        self, store: Store, catalog: SymbolCatalog, fees: FeeSchedule, clock: Clock
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._fees = fees
        self._clock = clock
        limit = min(MAX_BATCH, (store.max_writes_per_tx - 1) // PLACE_WRITES)
        self._batches: GroupCommit[_Op, Doc] = GroupCommit(
            store, self._commit, limit=limit, token=_token
        )

    async def _commit(self, user: str, ops: list[_Op]) -> list[Outcome[Doc]]:
        return await self._store.transact(lambda tx: trigger_batch(tx, ops[0].uid, ops))

    async def create(
        self,
        uid: str,
        symbol: str,
        market: Market,
        condition: TriggerCondition,
        action: TriggerAction,
        expires_at: datetime | None = None,
        source: Source = Source.API,
        key: IdempotencyKey | None = None,
        oco_group: str | None = None,
    ) -> Doc:
        """Validate the order against the trigger price now, so it cannot fail for a rule
        it already broke when it fires later."""
        self._catalog.check(market, symbol)
        check_group(oco_group)
        if condition.price <= 0:
            raise ValidationError("condition.price", "condition.price must be greater than 0")
        require_places(condition.price, "condition.price")
        now = self._clock.now()
        if expires_at is not None and expires_at <= now:
            raise ValidationError("expiresAt", "expiresAt must be in the future")
        tid = new_id()
        request = OpenRequest.from_action(symbol, market, action, tid)
        precheck(request, condition.price, self._fees, "trigger price")
        if action.take_profits:  # each leg of the ladder a tradable size at the trigger price
            qty = resolve_qty(action.qty, action.notional, condition.price)
            min_size = self._catalog.spec(symbol).min_size
            check_leg_sizes(action.take_profits, qty, min_size, symbol)
        trigger = Trigger(
            tid,
            uid,
            symbol,
            market,
            condition,
            action,
            now,
            expires_at,
            source=source,
            oco_group=oco_group,
        )

        return await self._batches.submit(user_path(uid), _Place(trigger, key, now))

    async def cancel(self, uid: str, tid: str) -> Doc:
        return await self._batches.submit(user_path(uid), _Cancel(uid, tid))

    async def get(self, uid: str, tid: str) -> Trigger:
        return await self._store.read(lambda tx: _load(tx, uid, tid))

    async def list_for_user(self, uid: str, status: TriggerStatus | None = None) -> list[Trigger]:
        query = q.user_newest_first(
            "tradeTriggers", uid, "createdAt", None if status is None else status.value
        )
        rows = await self._store.read(lambda tx: tx.query(query))
        return [Trigger.from_doc(path.rsplit("/", 1)[1], doc) for path, doc in rows]

    async def expire_due(self, limit: int = 500) -> int:
        """Move active triggers past their expiresAt to `expired` (compare-and-set)."""
        now = self._clock.now()
        query = q.expired("tradeTriggers", TriggerStatus.ACTIVE.value, to_iso(now), limit)

        def body(tx: Tx) -> int:
            rows = tx.query(query)
            for path, doc in rows:
                trigger = Trigger.from_doc(path.rsplit("/", 1)[1], doc)
                tx.set(path, trigger.with_details(status=TriggerStatus.EXPIRED).to_doc())
            return len(rows)

        return await self._store.transact(body)
