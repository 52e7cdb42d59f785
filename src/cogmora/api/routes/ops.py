"""Operator routes: health, liveness and Prometheus metrics (no auth, no user data).

`/healthz` is readiness with reasons (SPEC 5.1): 200 `ok` or `recovering`, 503
`unhealthy` with `reasons`. `/livez` answers 200 while the process's event loop does, so
an orchestrator restarts a wedged process but never a recovering one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cogmora.api.auth import Deps
from cogmora.health import http_status

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Health: 200 ok or recovering, 503 unhealthy with the reasons",
    responses={503: {"description": "unhealthy: `reasons` says why"}},
)
async def healthz(deps: Deps) -> JSONResponse:
    body: dict[str, Any] = {**deps.health(), "store": deps.store.name}
    return JSONResponse(body, status_code=http_status(body))


@router.get("/livez", summary="Liveness: 200 while the process answers at all")
async def livez(deps: Deps) -> JSONResponse:
    return JSONResponse(deps.liveness())


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(deps: Deps) -> Response:
    return Response(generate_latest(deps.registry), media_type=CONTENT_TYPE_LATEST)
