"""Trade triggers: place, list, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from cogmora.api.auth import Deps, Uid
from cogmora.api.routes.positions import IdemHeader
from cogmora.api.schemas import ExactJsonRoute, TriggerCreate, legs_of, trailing_of
from cogmora.domain.enums import TriggerStatus
from cogmora.domain.models import TriggerAction, TriggerCondition
from cogmora.services.idempotency import IdempotencyKey
from cogmora.services.triggers import trigger_doc

router = APIRouter(route_class=ExactJsonRoute, prefix="/v1/triggers", tags=["triggers"])


@router.post("", status_code=201, summary="Place a trigger: when price crosses, open a position")
async def create_trigger(
    body: TriggerCreate, uid: Uid, deps: Deps, idem: IdemHeader = None
) -> JSONResponse:
    key = IdempotencyKey.of(uid, idem, "POST /v1/triggers", body.model_dump(mode="json"))
    a = body.action
    doc = await deps.triggers.create(
        uid,
        body.symbol,
        body.market,
        TriggerCondition(body.condition.op, body.condition.price),
        TriggerAction(
            a.side,
            a.qty,
            a.notional,
            a.leverage,
            a.stopLoss,
            a.takeProfit,
            legs_of(a.takeProfits),
            trailing_stop=trailing_of(a.trailingStop),
            move_stop_to_entry_after=a.moveStopToEntryAfter,
        ),
        body.expiresAt,
        key=key,
        oco_group=body.ocoGroup,
    )
    return JSONResponse(doc, status_code=201)


@router.get("", summary="List your triggers, newest first")
async def list_triggers(
    uid: Uid, deps: Deps, status: Annotated[TriggerStatus | None, Query()] = None
) -> list[dict[str, Any]]:
    return [trigger_doc(t) for t in await deps.triggers.list_for_user(uid, status)]


@router.get("/{trigger_id}", summary="One trigger")
async def get_trigger(trigger_id: str, uid: Uid, deps: Deps) -> dict[str, Any]:
    return trigger_doc(await deps.triggers.get(uid, trigger_id))


@router.delete("/{trigger_id}", summary="Cancel an active trigger")
async def cancel_trigger(trigger_id: str, uid: Uid, deps: Deps) -> dict[str, Any]:
    return await deps.triggers.cancel(uid, trigger_id)
