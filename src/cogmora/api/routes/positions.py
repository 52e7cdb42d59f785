"""Positions: open, list, read, amend SL/TP, close."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse

from cogmora.api.auth import Deps, Uid
from cogmora.api.schemas import (
    ExactJsonRoute,
    PositionClose,
    PositionCreate,
    PositionPatch,
    legs_of,
    trailing_of,
)
from cogmora.domain.enums import PositionStatus
from cogmora.domain.orders import OpenRequest
from cogmora.services.idempotency import IdempotencyKey
from cogmora.services.positions import position_doc

router = APIRouter(route_class=ExactJsonRoute, prefix="/v1/positions", tags=["positions"])
IdemHeader = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="a retry with the same key opens nothing twice"),
]


@router.post("", status_code=201, summary="Open a position at the latest fresh price")
async def open_position(
    body: PositionCreate, uid: Uid, deps: Deps, idem: IdemHeader = None
) -> JSONResponse:
    key = IdempotencyKey.of(uid, idem, "POST /v1/positions", body.model_dump(mode="json"))
    request = OpenRequest(
        symbol=body.symbol,
        market=body.market,
        side=body.side,
        qty=body.qty,
        notional=body.notional,
        leverage=body.leverage,
        stop_loss=body.stopLoss,
        take_profit=body.takeProfit,
        take_profits=legs_of(body.takeProfits),
        move_stop_to_entry_after=body.moveStopToEntryAfter,
        expires_at=body.expiresAt,
        trailing_stop=trailing_of(body.trailingStop),
    )
    return JSONResponse(await deps.positions.open(uid, request, key), status_code=201)


@router.get("", summary="List your positions, newest first")
async def list_positions(
    uid: Uid, deps: Deps, status: Annotated[PositionStatus | None, Query()] = None
) -> list[dict[str, Any]]:
    return [position_doc(p) for p in await deps.positions.list_for_user(uid, status)]


@router.get("/{position_id}", summary="One position; a closed one carries realizedPnl")
async def get_position(position_id: str, uid: Uid, deps: Deps) -> dict[str, Any]:
    return position_doc(await deps.positions.get(uid, position_id))


@router.patch("/{position_id}", summary="Set or clear (null) stop loss and take profit")
async def amend_position(
    position_id: str, body: PositionPatch, uid: Uid, deps: Deps
) -> dict[str, Any]:
    changes: dict[str, Any] = {
        k: getattr(body, k)
        for k in body.model_fields_set
        if k not in ("takeProfits", "trailingStop")
    }
    if "takeProfits" in body.model_fields_set:
        changes["takeProfits"] = legs_of(body.takeProfits)
    if "trailingStop" in body.model_fields_set:
        changes["trailingStop"] = trailing_of(body.trailingStop)
    return await deps.positions.amend(uid, position_id, changes)


@router.post("/{position_id}/close", status_code=202, summary="Close at the latest fresh price")
async def close_position(
    position_id: str,
    uid: Uid,
    deps: Deps,
    idem: IdemHeader = None,
    body: PositionClose | None = None,
) -> JSONResponse:
    route = f"POST /v1/positions/{position_id}/close"
    qty = None if body is None else body.qty
    key = IdempotencyKey.of(uid, idem, route, {} if qty is None else {"qty": str(qty)})
    doc = await deps.positions.request_close(uid, position_id, key=key, qty=qty)
    return JSONResponse(doc, status_code=202)
