"""The agent's actions carried out by the API's own services: same money rules, same checks.

Idempotency keys come from the run's key (the slot it stands for), so a run retried after
a crash replays the first attempt's answers instead of opening again: the key of an
open is `agent:{slot}:open:{symbol}:{n}`, n counting the run's earlier opens of that
symbol. The request body is fingerprinted without the rationale, so a model that words
its reason differently on the retry still hits the same answer; one that changes the
order itself is refused rather than allowed a second open in the same slot.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from cogmora.domain.agent import (
    Action,
    Applied,
    CancelTriggerAction,
    ClosePositionAction,
    OpenPositionAction,
    PlaceTriggerAction,
)
from cogmora.domain.enums import CloseReason, Source
from cogmora.errors import Conflict, ValidationError
from cogmora.services.idempotency import IdempotencyKey
from cogmora.services.positions import Positions
from cogmora.services.triggers import Triggers

IDEMPOTENCY_FIELD = "Idempotency-Key"


class ServiceApplier:
    """An `ActionApplier` for one run; `applied` lists what succeeded, even if the run is
    cut short by its timeout."""

    def __init__(self, positions: Positions, triggers: Triggers, run_key: str) -> None:
        self._positions = positions
        self._triggers = triggers
        self._run_key = run_key
        self._seen: Counter[str] = Counter()
        self.applied: list[Applied] = []

    async def open_position(self, uid: str, action: OpenPositionAction) -> str:
        key = self._key(uid, f"open:{action.symbol}", action)
        try:
            doc = await self._positions.open(uid, action.to_request(), key)
        except ValidationError as exc:
            raise _replayed(exc, f"a different open of {action.symbol}") from None
        return self._done(action, str(doc["id"]))

    async def place_trigger(self, uid: str, action: PlaceTriggerAction) -> str:
        key = self._key(uid, f"trigger:{action.symbol}", action)
        try:
            doc = await self._triggers.create(
                uid,
                action.symbol,
                action.market,
                action.condition,
                action.action,
                action.expires_at,
                source=Source.AGENT,
                key=key,
            )
        except ValidationError as exc:
            raise _replayed(exc, f"a different trigger on {action.symbol}") from None
        return self._done(action, str(doc["id"]))

    async def cancel_trigger(self, uid: str, action: CancelTriggerAction) -> str:
        doc = await self._triggers.cancel(uid, action.trigger_id)
        return self._done(action, str(doc["id"]))

    async def close_position(self, uid: str, action: ClosePositionAction) -> str:
        key = self._key(uid, f"close:{action.position_id}", action)
        doc = await self._positions.request_close(
            uid, action.position_id, CloseReason.AGENT, key=key
        )
        return self._done(action, str(doc["id"]))

    def _key(self, uid: str, what: str, action: Action) -> IdempotencyKey:
        n = self._seen[what]
        self._seen[what] += 1
        body: dict[str, Any] = {k: v for k, v in action.to_doc().items() if k != "rationale"}
        key = IdempotencyKey.of(uid, f"agent:{self._run_key}:{what}:{n}", f"agent {what}", body)
        assert key is not None
        return key

    def _done(self, action: Action, result_id: str) -> str:
        self.applied.append(Applied(action, result_id))
        return result_id


def _replayed(exc: ValidationError, what: str) -> Exception:
    if exc.field != IDEMPOTENCY_FIELD:
        return exc
    return Conflict(
        f"an earlier attempt of this run already placed {what} in this slot; "
        "not applied a second time"
    )
