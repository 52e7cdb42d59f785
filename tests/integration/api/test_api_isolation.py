"""Tenant isolation, route by route: the walk reads the running app's own route table (not
its OpenAPI document, which leaves out any route marked `include_in_schema=False`), so a
route cannot ship without this file saying how another user's data is kept out of it; a
route of a kind the walk cannot call (a websocket, another mount) fails it by name."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount, Route

from cogmora.cli.compose import System, build_system
from cogmora.domain.models import PriceQuote
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.sqlite import SqliteStore
from cogmora.testing import ManualClock

if TYPE_CHECKING:
    from conftest import LiveServer

Quote = Callable[..., PriceQuote]

# Routes that carry no user's data at all.
# /v1/auth/config tells a signed-out page how to sign in: it holds no user data.
PUBLIC = frozenset({"/healthz", "/livez", "/metrics", "/v1/auth/config"})
# FastAPI's own pages about the API (its schema and the two viewers of it).
API_DOCS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
# Mounts of static files: the dashboard is a client of the routes walked here, and holds
# nothing of any user's (src/cogmora/web).
STATIC_MOUNTS = frozenset({"dashboard"})
# Streams cannot be walked with one request; each names the test that isolates it.
STREAMS = {
    "/v1/events": "test_api_events.py::"
    "test_an_open_streams_the_position_and_the_balance_only_to_its_owner",
}
# Bodies for the routes that need one: valid for the caller (Bob) himself, so the route
# runs all the way through and its answer can be searched for Alice's data.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/positions"): {
        "symbol": "BTC-USDT",
        "market": "spot",
        "side": "long",
        "qty": "0.1",
    },
    ("PATCH", "/v1/positions/{position_id}"): {"stopLoss": "90"},
    ("POST", "/v1/triggers"): {
        "symbol": "BTC-USDT",
        "market": "spot",
        "condition": {"op": "above", "price": "150"},
        "action": {"side": "long", "qty": "0.1"},
    },
    ("PUT", "/v1/watchlist"): {"symbols": ["ETH-USDT"]},
    ("PUT", "/v1/agent"): {"enabled": False, "symbols": ["ETH-USDT"]},
}


@pytest.fixture
async def system(
    store: SqliteStore, db_path: Path, catalog: SymbolCatalog, clock: ManualClock
) -> AsyncIterator[System]:
    """The conftest's system, with the KuCoin simulator as its KuCoin (the market routes
    proxy it), so the walk reaches every route's answer, not a 503."""
    sim = KucoinSimulator(SimulatorConfig(tick_rate=0, seed=7))
    await sim.start()
    settings = Settings(
        store_url=f"sqlite:///{db_path}",
        kucoin_spot_url=sim.spot_url,
        kucoin_futures_url=sim.futures_url,
    )
    built = build_system(settings, store, catalog=catalog, clock=clock)
    yield built
    await built.aclose()
    await sim.stop()


def _routes(live_server: LiveServer) -> list[tuple[str, str]]:
    """Every (method, path) in the served app's route table but its docs and static
    mounts (HEAD is GET without the body); anything else there fails, named."""
    served = []
    # FastAPI keeps an included router as one entry of `app.routes`; this is its own
    # walk of the table, through every included router.
    for route in iter_route_contexts(live_server.app.routes):
        kind = route.original_route
        if isinstance(kind, Mount) and kind.name in STATIC_MOUNTS:
            continue
        assert isinstance(kind, Route) and route.path, (
            f"{kind!r} is a route this walk cannot call: teach it how, so the route's "
            "isolation is checked"
        )
        if route.path in API_DOCS:
            continue
        served += [(m, route.path) for m in route.methods or () if m != "HEAD"]
    return sorted(served)


async def _alices_world(live_server: LiveServer, token: str) -> dict[str, Any]:
    """Alice's position, trigger, watchlist and agent config, as she sees them."""
    async with live_server.client(token) as alice:
        position = await alice.post("/v1/positions", json=BODIES[("POST", "/v1/positions")])
        trigger = await alice.post("/v1/triggers", json=BODIES[("POST", "/v1/triggers")])
        assert position.status_code == 201, position.text
        assert trigger.status_code == 201, trigger.text
        await alice.put("/v1/watchlist", json={"symbols": ["BTC-USDT"]})
        await alice.put("/v1/agent", json={"enabled": False, "symbols": ["BTC-USDT"]})
        return {
            "position": position.json(),
            "trigger": trigger.json(),
            "watchlist": (await alice.get("/v1/watchlist")).json(),
            "agent": (await alice.get("/v1/agent")).json(),
        }


async def test_every_route_keeps_another_users_data_out(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """Bob, calling every route of the app with Alice's ids, gets 404 or only his own data,
    and Alice's documents are unchanged afterwards."""
    quote("BTC-USDT", "100")
    quote("ETH-USDT", "10")
    _, alice_token = await make_user("alice", "10000")
    _, bob_token = await make_user("bob", "10000")
    before = await _alices_world(live_server, alice_token)
    ids = {
        "position_id": before["position"]["id"],
        "trigger_id": before["trigger"]["id"],
        "symbol": "BTC-USDT",
    }
    secrets = {"alice", ids["position_id"], ids["trigger_id"]}
    walked = []
    async with live_server.client(bob_token) as bob:
        for method, path in _routes(live_server):
            if path in PUBLIC or path in STREAMS:
                continue
            params = re.findall(r"{(\w+)}", path)
            unknown = [p for p in params if p not in ids]
            assert not unknown, (
                f"{method} {path} has path parameters {unknown} this walk cannot fill: teach "
                "it which of Alice's ids to try there, so the route's isolation is checked"
            )
            url = path.format(**{p: ids[p] for p in params})
            response = await bob.request(method, url, json=BODIES.get((method, path)))
            walked.append((method, path, response.status_code))
            assert response.status_code < 500, (method, path, response.text)
            if any(p.endswith("_id") for p in params):
                assert response.status_code == 404, (method, path, response.text)
            # A 404 may echo the id Bob asked for; nothing else of Alice's may appear.
            leaked = [s for s in secrets - set(url.split("/")) if s in response.text]
            assert not leaked, (method, path, leaked, response.text)
    assert walked, "the walk found no user routes"
    assert ("GET", "/v1/candles/{symbol}", 200) in walked, walked  # proxied, not refused
    assert await _alices_world_now(live_server, alice_token, before) == _comparable(before)


def _comparable(world: dict[str, Any]) -> dict[str, Any]:
    return {
        "position": world["position"]["details"],
        "trigger": world["trigger"]["details"],
        "watchlist": [e["symbol"] for e in world["watchlist"]["entries"]],
        "agent": world["agent"]["symbols"],
    }


async def _alices_world_now(
    live_server: LiveServer, token: str, before: dict[str, Any]
) -> dict[str, Any]:
    async with live_server.client(token) as alice:
        return _comparable(
            {
                "position": (await alice.get(f"/v1/positions/{before['position']['id']}")).json(),
                "trigger": (await alice.get(f"/v1/triggers/{before['trigger']['id']}")).json(),
                "watchlist": (await alice.get("/v1/watchlist")).json(),
                "agent": (await alice.get("/v1/agent")).json(),
            }
        )


def test_every_stream_names_the_test_that_isolates_it() -> None:
    """Each stream route excused from the walk points at a test that exists."""
    from pathlib import Path

    here = Path(__file__).parent
    for route, where in STREAMS.items():
        module, name = where.split("::")
        assert f"def {name}(" in (here / module).read_text(), (route, where)


async def test_every_user_route_needs_a_valid_bearer_token(
    live_server: LiveServer, make_user: Any
) -> None:
    """No token, a wrong token or another scheme is 401 with a Bearer challenge, on every
    route the app serves except the public ones."""
    await make_user("alice", "1")
    checked = 0
    async with live_server.client() as anonymous:
        for method, path in _routes(live_server):
            if path in PUBLIC:
                continue
            url = re.sub(r"{\w+}", "x", path)
            for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YTpi"}):
                r = await anonymous.request(method, url, headers=headers, json={})
                assert r.status_code == 401, (method, path, headers, r.text)
                assert r.headers["www-authenticate"] == "Bearer"
                assert r.json()["detail"] in (
                    "missing bearer token (Authorization: Bearer TOKEN)",
                    "invalid bearer token",
                )
            checked += 1
    assert checked >= 10, checked
