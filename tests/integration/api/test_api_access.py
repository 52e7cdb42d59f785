"""Authentication and scoping over real HTTP: every route knows its caller, and only theirs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cogmora.domain.models import PriceQuote

if TYPE_CHECKING:
    from conftest import LiveServer

Quote = Callable[..., PriceQuote]
async def test_another_users_position_answers_404_everywhere(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """Bob gets 404 for Alice's position on read, amend and close, and it stays untouched."""
    quote("BTC-USDT", "100")
    _, alice_token = await make_user("alice", "1000")
    _, bob_token = await make_user("bob", "1000")
    async with live_server.client(alice_token) as alice, live_server.client(bob_token) as bob:
        r = await alice.post(
            "/v1/positions", json={"symbol": "BTC-USDT", "market": "spot", "side": "long",
                                   "qty": "1"}
        )
        pid = r.json()["id"]
        for method, path, body in (
            ("GET", f"/v1/positions/{pid}", None),
            ("PATCH", f"/v1/positions/{pid}", {"stopLoss": "90"}),
            ("POST", f"/v1/positions/{pid}/close", None),
        ):
            r = await bob.request(method, path, json=body)
            assert r.status_code == 404, (method, r.text)
            assert r.json()["detail"] == f"position {pid} not found"
        assert (await bob.get("/v1/positions")).json() == []
        assert (await bob.get("/v1/history")).json() == []
        assert [e["kind"] for e in (await bob.get("/v1/ledger")).json()] == ["deposit"]
        assert (await bob.get("/v1/account")).json()["balance"] == "1000.00000000"
        doc = (await alice.get(f"/v1/positions/{pid}")).json()
        assert doc["details"]["status"] == "open"
        assert doc["details"]["stopLoss"] is None


async def test_account_reports_balance_equity_margin_and_unrealized_pnl(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """20000; spot 0.1@50000 and x10 long 1@60000; marks 51000/61000: equity 21059."""
    quote("BTC-USDT", "50000")
    quote("XBTUSDTM", "60000")
    _, token = await make_user("alice", "20000")
    async with live_server.client(token) as c:
        for body in (
            {"symbol": "BTC-USDT", "market": "spot", "side": "long", "qty": "0.1"},
            {"symbol": "XBTUSDTM", "market": "futures", "side": "long", "qty": "1",
             "leverage": "10"},
        ):
            assert (await c.post("/v1/positions", json=body)).status_code == 201
        quote("BTC-USDT", "51000")
        quote("XBTUSDTM", "61000")
        assert (await c.get("/v1/account")).json() == {
            "uid": "alice",
            "balance": "8959.00000000",
            "equity": "21059.00000000",
            "marginUsed": "6000.00000000",
            "unrealizedPnl": "1100.00000000",
        }


async def test_health_docs_and_metrics_need_no_token(live_server: LiveServer) -> None:
    """/healthz, /docs, /openapi.json and /metrics answer without authentication."""
    async with live_server.client() as c:
        health = await c.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        docs = await c.get("/docs")
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        spec = (await c.get("/openapi.json")).json()
        for path in ("/v1/account", "/v1/positions", "/v1/positions/{position_id}",
                     "/v1/positions/{position_id}/close", "/v1/history", "/v1/ledger"):
            assert path in spec["paths"], path
        assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
        await c.get("/v1/account")
        metrics = await c.get("/metrics")
        assert metrics.status_code == 200
        assert 'cogmora_http_requests_total{method="GET",route="/v1/account",status="401"}' in (
            metrics.text
        )


async def test_prices_route_reports_the_latest_quote(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """GET /v1/prices/{symbol} shows the latest price; unknown symbols are 422."""
    _, token = await make_user("alice", "1")
    quote("XBTUSDTM", "61000.5")
    async with live_server.client(token) as c:
        r = await c.get("/v1/prices/XBTUSDTM")
        assert r.json() == {
            "symbol": "XBTUSDTM", "price": "61000.50000000", "at": "2026-01-01T00:00:00.000000Z"
        }
        assert (await c.get("/v1/prices/ETH-USDT")).status_code == 404
        assert (await c.get("/v1/prices/NOPE")).status_code == 422


async def test_history_is_newest_first(
    live_server: LiveServer, make_user: Any, quote: Quote, clock: Any
) -> None:
    """Two positions closed a second apart come back newest first."""
    quote("BTC-USDT", "100")
    _, token = await make_user("alice", "1000")
    async with live_server.client(token) as c:
        ids = []
        for _ in range(2):
            pid = (await c.post("/v1/positions", json={"symbol": "BTC-USDT", "market": "spot",
                                                       "side": "long", "qty": "1"})).json()["id"]
            assert (await c.post(f"/v1/positions/{pid}/close")).status_code == 202
            await live_server.system.settler.settle_all()
            clock.advance(1)
            quote("BTC-USDT", "100")
            ids.append(pid)
        history = (await c.get("/v1/history")).json()
        assert [h["id"] for h in history] == ids[::-1]


async def test_requests_for_one_user_run_concurrently_without_double_spend(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """Ten concurrent opens each needing 100.1 from a balance of 500 open exactly four."""
    quote("BTC-USDT", "100")
    _, token = await make_user("alice", "500")
    body = {"symbol": "BTC-USDT", "market": "spot", "side": "long", "qty": "1"}
    async with live_server.client(token) as c:
        results = await asyncio.gather(*(c.post("/v1/positions", json=body) for _ in range(10)))
        codes = sorted(r.status_code for r in results)
        assert codes == [201] * 4 + [422] * 6
        assert (await c.get("/v1/account")).json()["balance"] == "99.60000000"
        ledger = (await c.get("/v1/ledger")).json()
        assert len(ledger) == 1 + 4 * 2
