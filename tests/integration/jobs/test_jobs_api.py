"""/v1/watchlist and /v1/agent through the real app on a real uvicorn server."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from jobs_testkit import jobs_for, rising

from cogmora.domain.models import PriceQuote
from cogmora.testing import FixedCandles

DUE = datetime(2026, 1, 1, 0, 15, 1, tzinfo=UTC)


@pytest.fixture
async def ann(live_server, make_user):  # type: ignore[no-untyped-def]
    _, token = await make_user("ann")
    async with live_server.client(token) as client:
        yield client


def refused(response: Any, field: str) -> str:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field, body
    return str(body["detail"])


async def test_the_watchlist_round_trip_keeps_order_and_reports_unknown_symbols(
    ann, live_server
) -> None:
    """A saved watchlist comes back in the user's order, with stats after a refresh and an
    error on the symbol KuCoin does not list."""
    empty = await ann.get("/v1/watchlist")
    assert empty.json() == {"symbols": [], "entries": []}
    saved = await ann.put("/v1/watchlist", json={"symbols": ["eth-usdt", "NOPE-USDT", "XBTUSDTM"]})
    assert saved.status_code == 200, saved.text
    assert saved.json()["symbols"] == ["ETH-USDT", "NOPE-USDT", "XBTUSDTM"]
    assert {e["error"] for e in saved.json()["entries"]} == {"no market data yet"}

    await jobs_for(live_server.system).watchlist.run_once()

    got = (await ann.get("/v1/watchlist")).json()
    assert got["symbols"] == ["ETH-USDT", "NOPE-USDT", "XBTUSDTM"]
    entries = {e["symbol"]: e for e in got["entries"]}
    assert entries["ETH-USDT"]["lastPrice"] == "3500.00000000"
    assert entries["XBTUSDTM"]["market"] == "futures" and entries["XBTUSDTM"]["error"] is None
    assert entries["NOPE-USDT"]["error"] == "unknown or delisted symbol on KuCoin"
    again = await ann.put("/v1/watchlist", json=got)  # a GET answer can be sent back
    assert again.status_code == 200
    assert again.json()["entries"][0]["lastPrice"] == "3500.00000000"
    trimmed = await ann.put("/v1/watchlist", json={"symbols": ["XBTUSDTM"]})
    assert trimmed.json()["symbols"] == ["XBTUSDTM"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"symbols": ["BTC-USDT", "btc-usdt"]}, "symbols[1]"),
        ({"symbols": ["BTC/USDT"]}, "symbols[0]"),
        ({"symbols": [7]}, "symbols[0]"),
        ({"symbols": "BTC-USDT"}, "symbols"),
        ({}, "symbols"),
        ({"symbols": [], "colour": "red"}, "colour"),
        ({"symbols": [f"S{i}-USDT" for i in range(51)]}, "symbols"),
    ],
)
async def test_a_bad_watchlist_is_refused_naming_the_field(
    ann, body: dict[str, Any], field: str
) -> None:
    """Each broken rule is a 422 that names the field, and nothing is saved."""
    refused(await ann.put("/v1/watchlist", json=body), field)
    assert (await ann.get("/v1/watchlist")).json()["symbols"] == []


async def test_the_agent_config_is_saved_and_scheduled(ann) -> None:
    """The defaults are off; a saved config is normalized, scheduled for its next slot,
    and can be sent back as it came."""
    default = (await ann.get("/v1/agent")).json()
    assert default["enabled"] is False and default["provider"] == "builtin"
    body = {
        "enabled": True,
        "schedule": "Every  15m",
        "symbols": ["btc-usdt", "XBTUSDTM"],
        "risk": {"maxLeverage": 5, "maxDailyLoss": 50.5, "maxPositionNotional": "250"},
    }
    saved = await ann.put("/v1/agent", json=body)
    assert saved.status_code == 200, saved.text
    doc = saved.json()
    assert doc["schedule"] == "every 15m"
    assert doc["symbols"] == ["BTC-USDT", "XBTUSDTM"]
    assert doc["risk"]["maxDailyLoss"] == "50.50000000"
    assert doc["risk"]["maxOpenPositions"] == 3
    assert doc["nextRunAt"] == "2026-01-01T00:15:00.000000Z"
    assert "run" not in doc
    assert (await ann.get("/v1/agent")).json() == doc
    assert (await ann.put("/v1/agent", json=doc)).status_code == 200


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"provider": "llm"}, "provider", "COGMORA_LLM_URL"),
        ({"provider": "oracle"}, "provider", "builtin"),
        ({"schedule": "sometimes"}, "schedule", "every"),
        ({"schedule": "every 10s"}, "schedule", "every"),
        ({"enabled": True}, "symbols", "at least one"),
        ({"symbols": ["BTC-EUR"]}, "symbols[0]", "USDT"),
        ({"risk": {"maxLeverage": "200"}}, "risk.maxLeverage", "1 to 125"),
        ({"risk": {"maxLevrage": "2"}}, "risk.maxLevrage", "not a known field"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"colour": "red"}, "colour", "not a known field"),
        ([1, 2], "body", "JSON object"),
    ],
)
async def test_a_bad_agent_config_is_refused_naming_the_field(
    ann, body: Any, field: str, words: str
) -> None:
    """Every broken rule is a 422 naming the field, and the stored config is untouched."""
    assert words in refused(await ann.put("/v1/agent", json=body), field)
    assert (await ann.get("/v1/agent")).json()["enabled"] is False


async def test_a_body_that_is_not_json_is_refused(ann) -> None:
    """Garbage is a 422 on `body`, not a 500."""
    response = await ann.put(
        "/v1/agent", content=b"{enabled", headers={"Content-Type": "application/json"}
    )
    refused(response, "body")


async def test_decisions_are_listed_newest_first_and_only_to_their_user(
    ann, live_server, make_user
) -> None:
    """Two runs give two decisions, newest first; another user sees none of them."""
    system = live_server.system
    await ann.put(
        "/v1/agent", json={"enabled": True, "schedule": "every 15m", "symbols": ["BTC-USDT"]}
    )
    jobs = jobs_for(system, FixedCandles({"BTC-USDT": rising("67000", DUE)}))
    for minute in (15, 30):
        system.clock.set(DUE.replace(minute=minute))
        system.live.put(PriceQuote("BTC-USDT", Decimal(67000), system.clock.now()))
        assert await jobs.agents.run_due() == 1
    listed = (await ann.get("/v1/agent/decisions")).json()
    assert [d["scheduledFor"][11:16] for d in listed] == ["00:30", "00:15"]
    assert listed[1]["applied"][0]["action"]["type"] == "open_position"
    assert listed[0]["actions"][0]["type"] == "hold"
    assert len((await ann.get("/v1/agent/decisions", params={"limit": 1})).json()) == 1
    refused(await ann.get("/v1/agent/decisions", params={"limit": 0}), "limit")
    _, token = await make_user("bob")
    async with live_server.client(token) as bob:
        assert (await bob.get("/v1/agent/decisions")).json() == []
    async with live_server.client() as nobody:
        assert (await nobody.get("/v1/agent/decisions")).status_code == 401
