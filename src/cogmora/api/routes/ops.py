"""Operator routes: health and Prometheus metrics (no auth, no user data)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cogmora.api.auth import Deps

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Health: tasks, feeds connected and their lag")
async def healthz(deps: Deps) -> JSONResponse:
    body: dict[str, Any] = {"store": deps.store.name, **deps.health()}
    return JSONResponse(body, status_code=200 if body.get("status") == "ok" else 503)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(deps: Deps) -> Response:
    return Response(generate_latest(deps.registry), media_type=CONTENT_TYPE_LATEST)
