"""Trade triggers: placing, listing, cancelling and expiring them.

Firing lives in `services.crossings`, in the worker's burst transaction.
"""

from __future__ import annotations

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
from cogmora.errors import Conflict, NotFound, ValidationError
from cogmora.services import idempotency
from cogmora.services.clock import Clock
from cogmora.services.idempotency import IdempotencyKey
from cogmora.services.oco import check_group
from cogmora.services.symbols import SymbolCatalog
from cogmora.store import queries as q
from cogmora.store.port import Store, Tx


def trigger_doc(trigger: Trigger) -> Doc:
    return {"id": trigger.id, **trigger.to_doc()}


def _load(tx: Tx, uid: str, tid: str) -> Trigger:
    doc = tx.get(trigger_path(uid, tid))
    if doc is None:
        raise NotFound(f"trigger {tid} not found")
    return Trigger.from_doc(tid, doc)


class Triggers:
    def __init__(
        self, store: Store, catalog: SymbolCatalog, fees: FeeSchedule, clock: Clock
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._fees = fees
        self._clock = clock

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

        def body(tx: Tx) -> Doc:
            first = idempotency.replay(tx, key)
            if first is not None:
                return first
            if tx.get(user_path(uid)) is None:
                raise NotFound(f"user {uid} not found")
            tx.create(trigger.path, trigger.to_doc())
            answer = trigger_doc(trigger)
            idempotency.record(tx, key, answer, now)
            return answer

        return await self._store.transact(body)

    async def cancel(self, uid: str, tid: str) -> Doc:
        def body(tx: Tx) -> Doc:
            trigger = _load(tx, uid, tid)
            if trigger.status is not TriggerStatus.ACTIVE:
                raise Conflict(f"trigger {tid} is {trigger.status.value}, not active")
            cancelled = trigger.with_details(status=TriggerStatus.CANCELLED)
            tx.set(cancelled.path, cancelled.to_doc())
            return trigger_doc(cancelled)

        return await self._store.transact(body)

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
        query = (
            q.Query("tradeTriggers")
            .where("details.status", "==", TriggerStatus.ACTIVE.value)
            .where("expiresAt", "<=", to_iso(now))
            .order_by("expiresAt", "asc")
            .limited(limit)
        )

        def body(tx: Tx) -> int:
            rows = tx.query(query)
            for path, doc in rows:
                trigger = Trigger.from_doc(path.rsplit("/", 1)[1], doc)
                tx.set(path, trigger.with_details(status=TriggerStatus.EXPIRED).to_doc())
            return len(rows)

        return await self._store.transact(body)
