"""The FastAPI app factory: routes, error shapes, request metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Histogram

from cogmora import __version__
from cogmora.api import errors
from cogmora.api.deps import ApiDeps
from cogmora.api.routes import account, agent, market, ops, positions, triggers, watchlist
from cogmora.web import mount as mount_dashboard

DESCRIPTION = """Paper trading on KuCoin market data: positions with stop loss, take profit
and liquidation, price triggers, a scheduled agent. Authenticate with
`Authorization: Bearer TOKEN` (from `cogmora users create`). Money, prices and quantities
are decimal strings. POST routes accept an `Idempotency-Key` header."""


def create_app(deps: ApiDeps) -> FastAPI:
    app = FastAPI(
        title="Cogmora",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        openapi_url="/openapi.json",
        responses=errors.RESPONSES,
    )
    app.state.deps = deps
    errors.install(app)
    for module in (positions, triggers, account, watchlist, agent, market, ops):
        app.include_router(module.router)

    requests = Counter(
        "cogmora_http_requests_total",
        "HTTP requests",
        ["method", "route", "status"],
        registry=deps.registry,
    )
    latency = Histogram(
        "cogmora_http_request_seconds",
        "HTTP request latency",
        ["method", "route"],
        registry=deps.registry,
    )

    @app.middleware("http")
    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        began = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        requests.labels(request.method, name, str(response.status_code)).inc()
        latency.labels(request.method, name).observe(time.perf_counter() - began)
        return response

    mount_dashboard(app)  # last: the API's routes match first
    return app
