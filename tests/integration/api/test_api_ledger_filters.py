"""`GET /v1/ledger` filters over real HTTP: kind, since/until, cursor/limit and CSV, served by
registered queries; every bad filter is a 422 naming it."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from decimal import Decimal as D
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from cogmora.domain.models import PriceQuote
from cogmora.services.clock import ManualClock

if TYPE_CHECKING:
    from conftest import LiveServer

Quote = Callable[..., PriceQuote]
DAY = 86400.0


@pytest.fixture
async def alice(
    live_server: LiveServer, make_user: Any, quote: Quote, clock: ManualClock
) -> httpx.AsyncClient:
    """alice: a deposit on Jan 1 (opening), an open and its fee on Jan 2 (one `at`), a
    deposit on Jan 3 and one on Jan 4; bob has entries on the same days."""
    _, token = await make_user("alice", "10000")
    _, bob = await make_user("bob", "777")
    clock.advance(DAY)
    quote("BTC-USDT", "50000")
    async with live_server.client(token) as c:
        body = {"symbol": "BTC-USDT", "market": "spot", "side": "long", "qty": "0.01"}
        r = await c.post("/v1/positions", json=body)
    assert r.status_code == 201, r.text
    clock.advance(DAY)
    await live_server.system.accounts.deposit("alice", D("500"))
    await live_server.system.accounts.deposit("bob", D("5"))
    clock.advance(DAY)
    await live_server.system.accounts.deposit("alice", D("100"))
    assert bob
    return live_server.client(token)  # opened by the test


async def entries(c: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await c.get("/v1/ledger", params=params)
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()
    return out


async def test_kind_keeps_only_that_kind_in_booking_order(alice: httpx.AsyncClient) -> None:
    """`kind=deposit` is the three deposits, oldest first; `kind=fee` the open's fee."""
    async with alice as c:
        deposits = await entries(c, kind="deposit")
        fees = await entries(c, kind="fee")
    assert [e["amount"] for e in deposits] == ["10000.00000000", "500.00000000", "100.00000000"]
    assert [e["seq"] for e in deposits] == sorted(e["seq"] for e in deposits)
    assert {e["uid"] for e in deposits} == {"alice"}
    assert [e["kind"] for e in fees] == ["fee"] and fees[0]["at"].startswith("2026-01-02")


async def test_since_includes_and_until_excludes_days_and_times(alice: httpx.AsyncClient) -> None:
    """A day is its 00:00 UTC; an ISO time with its zone is taken as given."""
    async with alice as c:
        day2 = await entries(c, since="2026-01-02", until="2026-01-03")
        from_day3 = await entries(c, since="2026-01-03T00:00:00Z")
        before_day2 = await entries(c, until="2026-01-02T01:00:00+01:00")
        deposits_later = await entries(c, kind="deposit", since="2026-01-02")
    assert [e["kind"] for e in day2] == ["open", "fee"]
    assert [e["amount"] for e in from_day3] == ["500.00000000", "100.00000000"]
    assert [e["amount"] for e in before_day2] == ["10000.00000000"]
    assert [e["amount"] for e in deposits_later] == ["500.00000000", "100.00000000"]


async def test_pages_of_one_walk_the_whole_ledger_in_either_order(alice: httpx.AsyncClient) -> None:
    """With limit=1 each page's X-Next-Cursor leads to the next entry, through the open and
    its fee booked at the same instant; the last page carries no cursor."""
    async with alice as c:
        whole = await entries(c)
        for filters in ({}, {"since": "2026-01-01"}, {"until": "2027-01-01"}):
            seen: list[str] = []
            cursor: str | None = None
            for _ in range(len(whole) + 1):
                params = {**filters, "limit": 1, **({"cursor": cursor} if cursor else {})}
                r = await c.get("/v1/ledger", params=params)
                assert r.status_code == 200, r.text
                seen += [e["id"] for e in r.json()]
                cursor = r.headers.get("x-next-cursor")
                if cursor is None:
                    break
            assert seen == [e["id"] for e in whole], filters
        r = await c.get("/v1/ledger", params={"limit": 3})
        assert len(r.json()) == 3 and "x-next-cursor" in r.headers
        rest = await entries(c, cursor=r.headers["x-next-cursor"])
    assert [e["id"] for e in r.json() + rest] == [e["id"] for e in whole]


async def test_csv_holds_the_filtered_entries(alice: httpx.AsyncClient) -> None:
    """`format=csv` answers the same entries as the JSON, with a header row."""
    async with alice as c:
        as_json = await entries(c, since="2026-01-02", until="2026-01-04")
        r = await c.get(
            "/v1/ledger", params={"since": "2026-01-02", "until": "2026-01-04", "format": "csv"}
        )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    columns = ["seq", "at", "kind", "amount", "balanceAfter", "positionId", "note", "id"]
    assert list(rows[0]) == columns
    assert [(r["id"], r["kind"], r["amount"]) for r in rows] == [
        (e["id"], e["kind"], e["amount"]) for e in as_json
    ]
    assert [r["kind"] for r in rows] == ["open", "fee", "deposit"]


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"kind": "bonus"}, "kind", "kind: Input should be"),
        ({"since": "yesterday"}, "since", "since: must be a date (2026-05-01) or an ISO time"),
        ({"until": "2026-02-30"}, "until", "until: must be a date"),
        ({"since": "2026-01-02T00:00:00"}, "since", "since: must include a timezone"),
        ({"since": "2026-01-03", "until": "2026-01-02"}, "until", "until: must be after since"),
        ({"cursor": "not-ours"}, "cursor", "cursor: is not a cursor this API gave"),
        ({"limit": "0"}, "limit", "limit: Input should be greater than or equal to 1"),
        ({"limit": "many"}, "limit", "limit: Input should be a valid integer"),
        ({"format": "xlsx"}, "format", "format: Input should be 'json' or 'csv'"),
        ({"symbol": "BTC-USDT"}, "symbol", "symbol: is not a ledger filter (known: cursor,"),
    ],
)
async def test_a_bad_filter_is_a_422_naming_it(
    live_server: LiveServer, make_user: Any, params: dict[str, str], field: str, says: str
) -> None:
    _, token = await make_user("carol")
    async with live_server.client(token) as c:
        r = await c.get("/v1/ledger", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert r.json()["detail"].startswith(says), r.text


async def test_the_filters_are_documented_in_openapi(live_server: LiveServer) -> None:
    """Each filter is a documented query parameter; the next-page header and CSV too."""
    async with live_server.client() as c:
        spec = (await c.get("/openapi.json")).json()
    op = spec["paths"]["/v1/ledger"]["get"]
    names = {p["name"] for p in op["parameters"] if p["in"] == "query"}
    assert names == {"kind", "since", "until", "cursor", "limit", "format"}
    assert all(p.get("description") for p in op["parameters"] if p["in"] == "query")
    ok = op["responses"]["200"]
    assert "X-Next-Cursor" in ok["headers"]
    assert "text/csv" in ok["content"]
    assert "422" in op["responses"]
