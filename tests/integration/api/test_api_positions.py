"""Positions over real HTTP: a uvicorn server on loopback, httpx as the client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from cogmora.domain.models import PriceQuote

if TYPE_CHECKING:
    from conftest import LiveServer

Quote = Callable[..., PriceQuote]


async def user_client(
    live_server: LiveServer, make_user: Any, uid: str, balance: str
) -> httpx.AsyncClient:
    _, token = await make_user(uid, balance)
    return live_server.client(token)


async def balance_of(client: httpx.AsyncClient) -> str:
    r = await client.get("/v1/account")
    assert r.status_code == 200
    return str(r.json()["balance"])


async def counts(client: httpx.AsyncClient) -> tuple[str, int, int]:
    """What a refused request must leave alone: balance, ledger length, positions."""
    ledger = (await client.get("/v1/ledger")).json()
    positions = (await client.get("/v1/positions")).json()
    return await balance_of(client), len(ledger), len(positions)


SPOT = {"symbol": "BTC-USDT", "market": "spot", "side": "long"}
FUT = {"symbol": "XBTUSDTM", "market": "futures"}


# ---------------------------------------------------------------- opening


async def test_open_spot_by_qty_fills_at_the_latest_price(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """201 with the stored document plus id; the balance drops by notional and fee."""
    quote("BTC-USDT", "50000")
    async with await user_client(live_server, make_user, "alice", "10000") as c:
        r = await c.post("/v1/positions", json={**SPOT, "qty": "0.1", "stopLoss": "45000"})
        assert r.status_code == 201, r.text
        doc = r.json()
        assert set(doc) >= {
            "id", "uid", "symbol", "market", "side", "qty", "entryPrice", "leverage", "margin",
            "feeOpen", "openedAt", "source", "details",
        }
        assert (doc["uid"], doc["entryPrice"], doc["margin"], doc["feeOpen"]) == (
            "alice", "50000.00000000", "5000.00000000", "5.00000000"
        )
        assert doc["details"]["status"] == "open"
        assert doc["details"]["stopLoss"] == "45000.00000000"
        assert await balance_of(c) == "4995.00000000"
        got = await c.get(f"/v1/positions/{doc['id']}")
        assert got.status_code == 200
        assert got.json() == doc


async def test_open_futures_short_by_notional(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """Notional 6000 at 60000 x10 short: qty 0.1, margin 600, fee 3.6, liquidation 65700."""
    quote("XBTUSDTM", "60000")
    async with await user_client(live_server, make_user, "alice", "1000") as c:
        r = await c.post(
            "/v1/positions", json={**FUT, "side": "short", "notional": "6000", "leverage": 10}
        )
        assert r.status_code == 201, r.text
        d = r.json()
        assert (d["qty"], d["margin"], d["feeOpen"], d["leverage"]) == (
            "0.10000000", "600.00000000", "3.60000000", "10.00000000"
        )
        assert d["details"]["liquidationPrice"] == "65700.00000000"
        assert await balance_of(c) == "396.40000000"


async def test_json_numbers_are_taken_exactly(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """A JSON number 0.1 is the decimal 0.1, not the float next to it."""
    quote("BTC-USDT", "3")
    async with await user_client(live_server, make_user, "alice", "10") as c:
        r = await c.post("/v1/positions", json={**SPOT, "qty": 0.1})
        assert r.status_code == 201, r.text
        assert (r.json()["qty"], r.json()["margin"]) == ("0.10000000", "0.30000000")


@pytest.mark.parametrize(
    ("body", "field", "detail"),
    [
        ({**SPOT, "qty": "1", "stopLoss": "51000"}, "stopLoss",
         "stopLoss must be below the entry price for a long"),
        ({**SPOT, "qty": "1", "takeProfit": "49000"}, "takeProfit",
         "takeProfit must be above the entry price for a long"),
        ({**SPOT, "side": "short", "qty": "1"}, "side", "side must be long for spot"),
        ({**SPOT, "qty": "1", "leverage": "3"}, "leverage", "leverage must be 1 for spot"),
        ({**SPOT, "qty": "1", "notional": "10"}, "qty",
         "exactly one of qty and notional must be given"),
        ({**SPOT}, "qty", "exactly one of qty and notional must be given"),
        ({**SPOT, "qty": "0"}, "qty", "qty must be greater than 0"),
        ({**SPOT, "qty": "-1"}, "qty", "qty must be greater than 0"),
        ({**SPOT, "qty": "0.123456789"}, "qty", "qty must have at most 8 decimal places"),
        ({**SPOT, "symbol": "BTC-USDX", "qty": "1"}, "symbol",
         "symbol BTC-USDX is not a known spot symbol on KuCoin"),
        ({**SPOT, "symbol": "XBTUSDTM", "qty": "1"}, "symbol",
         "symbol XBTUSDTM is not a known spot symbol on KuCoin (it is a futures symbol)"),
    ],
)
async def test_domain_validation_is_422_naming_field_and_rule(
    live_server: LiveServer, make_user: Any, quote: Quote,
    body: dict[str, Any], field: str, detail: str,
) -> None:
    """Each broken rule answers 422 with the SPEC's message, and nothing moves."""
    quote("BTC-USDT", "50000")
    async with await user_client(live_server, make_user, "alice", "100000") as c:
        before = await counts(c)
        r = await c.post("/v1/positions", json=body)
        assert r.status_code == 422, r.text
        assert r.json() == {"detail": detail, "field": field}
        assert await counts(c) == before


@pytest.mark.parametrize(
    ("body", "field", "detail_start"),
    [
        ({**SPOT, "qty": "1", "stoploss": "1"}, "stoploss", "stoploss: is not a known field"),
        ({"market": "spot", "side": "long", "qty": "1"}, "symbol", "symbol: is required"),
        ({**SPOT, "market": "margin", "qty": "1"}, "market", "market: "),
        ({**SPOT, "qty": "abc"}, "qty", "qty: "),
        ({**SPOT, "qty": "NaN"}, "qty", "qty: "),
        ({**SPOT, "qty": "Infinity"}, "qty", "qty: "),
        ({**FUT, "side": "long", "qty": "1", "leverage": "2.5"}, "leverage",
         "leverage must be a whole number from 1 to 125"),
        ({**FUT, "side": "long", "qty": "1", "leverage": "126"}, "leverage",
         "leverage must be a whole number from 1 to 125"),
    ],
)
async def test_schema_validation_is_422_naming_the_field(
    live_server: LiveServer, make_user: Any, quote: Quote,
    body: dict[str, Any], field: str, detail_start: str,
) -> None:
    """Malformed bodies are 422 with one sentence that starts with the field's name."""
    quote("BTC-USDT", "50000")
    quote("XBTUSDTM", "50000")
    async with await user_client(live_server, make_user, "alice", "100000") as c:
        r = await c.post("/v1/positions", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
        assert r.json()["detail"].startswith(detail_start)


@pytest.mark.parametrize("field", ["qty", "notional", "stopLoss", "takeProfit", "leverage"])
async def test_absurdly_large_numbers_are_422_not_500(
    live_server: LiveServer, make_user: Any, quote: Quote, field: str
) -> None:
    """1e400 cannot be stored at 8 places: it is refused as too large, not a server error."""
    quote("XBTUSDTM", "100")
    body: dict[str, Any] = {**FUT, "side": "long", "qty": "1", field: "1e400"}
    if field == "notional":
        del body["qty"]
    async with await user_client(live_server, make_user, "alice", "1000") as c:
        r = await c.post("/v1/positions", json=body)
        assert r.status_code == 422, r.text
        assert r.json() == {"detail": f"{field}: is too large", "field": field}
        pid = (await c.post("/v1/positions", json={**FUT, "side": "long", "qty": "1"})).json()
        r = await c.patch(f"/v1/positions/{pid['id']}", json={"takeProfit": "1e400"})
        assert (r.status_code, r.json()["field"]) == (422, "takeProfit")


async def test_levels_finer_than_storage_are_refused(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """A take profit of 100.000000001 over an entry of 100 would be stored as 100, on the
    wrong side of the rule it passed: it is refused instead."""
    quote("BTC-USDT", "100")
    async with await user_client(live_server, make_user, "alice", "1000") as c:
        r = await c.post(
            "/v1/positions", json={**SPOT, "qty": "1", "takeProfit": "100.000000001"}
        )
        assert r.status_code == 422, r.text
        assert r.json() == {
            "detail": "takeProfit must have at most 8 decimal places", "field": "takeProfit"
        }
        r = await c.post("/v1/positions", json={**SPOT, "qty": "1", "stopLoss": "1e-30"})
        assert (r.status_code, r.json()["field"]) == (422, "stopLoss")


async def test_malformed_json_is_422_not_500(live_server: LiveServer, make_user: Any) -> None:
    """A body that is not JSON at all is a client error naming the body."""
    async with await user_client(live_server, make_user, "alice", "1") as c:
        r = await c.post(
            "/v1/positions", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422
        assert r.json()["field"] == "body"


async def test_stale_price_is_409_and_moves_nothing(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """A price 6 s old is not good enough: 409 `no fresh price for BTC-USDT`."""
    quote("BTC-USDT", "50000", age=6)
    async with await user_client(live_server, make_user, "alice", "100000") as c:
        before = await counts(c)
        r = await c.post("/v1/positions", json={**SPOT, "qty": "1"})
        assert r.status_code == 409
        assert r.json()["detail"] == "no fresh price for BTC-USDT"
        assert await counts(c) == before
        r = await c.post("/v1/positions", json={**FUT, "side": "long", "qty": "1"})
        assert (r.status_code, r.json()["detail"]) == (409, "no fresh price for XBTUSDTM")


async def test_insufficient_balance_is_422_and_moves_nothing(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """Needing 5005 with 5000 is 422 with need and have, and no position or ledger entry."""
    quote("BTC-USDT", "50000")
    async with await user_client(live_server, make_user, "alice", "5000") as c:
        before = await counts(c)
        r = await c.post("/v1/positions", json={**SPOT, "qty": "0.1"})
        assert r.status_code == 422
        assert r.json()["detail"] == "insufficient balance: need 5005.00000000, have 5000.00000000"
        assert await counts(c) == before


async def test_idempotency_key_retry_opens_once(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """The same key and body returns the first 201 again; one position, one debit."""
    quote("BTC-USDT", "100")
    async with await user_client(live_server, make_user, "alice", "1000") as c:
        headers = {"Idempotency-Key": "order-1"}
        first = await c.post("/v1/positions", json={**SPOT, "qty": "1"}, headers=headers)
        quote("BTC-USDT", "150")
        again = await c.post("/v1/positions", json={**SPOT, "qty": "1"}, headers=headers)
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json()
        assert len((await c.get("/v1/positions")).json()) == 1
        assert await balance_of(c) == "899.90000000"
        other = await c.post("/v1/positions", json={**SPOT, "qty": "2"}, headers=headers)
        assert other.status_code == 422
        assert other.json()["field"] == "Idempotency-Key"
        fresh = await c.post("/v1/positions", json={**SPOT, "qty": "1"},
                             headers={"Idempotency-Key": "order-2"})
        assert fresh.status_code == 201
        assert fresh.json()["id"] != first.json()["id"]


async def test_idempotency_keys_are_per_user(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """Bob using Alice's key opens his own position, not a replay of hers."""
    quote("BTC-USDT", "100")
    headers = {"Idempotency-Key": "same"}
    async with await user_client(live_server, make_user, "alice", "1000") as a, \
            await user_client(live_server, make_user, "bob", "1000") as b:
        ra = await a.post("/v1/positions", json={**SPOT, "qty": "1"}, headers=headers)
        rb = await b.post("/v1/positions", json={**SPOT, "qty": "1"}, headers=headers)
        assert (ra.status_code, rb.status_code) == (201, 201)
        assert rb.json()["uid"] == "bob"
        assert rb.json()["id"] != ra.json()["id"]


# ---------------------------------------------------------------- close, amend, read


async def test_close_is_202_closing_manual_and_settles_to_history(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """Close answers 202 `closing`/manual; once settled, the position carries realizedPnl."""
    quote("XBTUSDTM", "3000")
    system = live_server.system
    async with await user_client(live_server, make_user, "alice", "10000") as c:
        pid = (await c.post("/v1/positions", json={**FUT, "side": "long", "qty": "2",
                                                   "leverage": 10})).json()["id"]
        quote("XBTUSDTM", "3150")
        r = await c.post(f"/v1/positions/{pid}/close")
        assert r.status_code == 202
        assert r.json()["details"]["status"] == "closing"
        assert r.json()["details"]["closeReason"] == "manual"
        again = await c.post(f"/v1/positions/{pid}/close")
        assert again.status_code == 409
        assert again.json()["detail"] == f"position {pid} is closing, not open"
        closing = (await c.get("/v1/positions", params={"status": "closing"})).json()
        assert [p["id"] for p in closing] == [pid]

        await system.settler.settle_all()
        doc = (await c.get(f"/v1/positions/{pid}")).json()
        assert doc["details"]["status"] == "closed"
        assert doc["realizedPnl"] == "292.62000000"
        assert await balance_of(c) == "10292.62000000"
        history = (await c.get("/v1/history")).json()
        assert [(h["id"], h["realizedPnl"], h["closeReason"]) for h in history] == [
            (pid, "292.62000000", "manual")
        ]
        ledger = (await c.get("/v1/ledger")).json()
        assert [(e["kind"], e["amount"]) for e in ledger] == [
            ("deposit", "10000.00000000"),
            ("open", "-600.00000000"),
            ("fee", "-3.60000000"),
            ("close", "900.00000000"),
            ("fee", "-3.78000000"),
        ]
        assert ledger[-1]["balanceAfter"] == "10292.62000000"
        assert [p["id"] for p in (await c.get("/v1/positions",
                                              params={"status": "closed"})).json()] == [pid]


async def test_close_idempotency_key_replays_the_202(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """A retried close with its key answers the first 202, not a 409."""
    quote("BTC-USDT", "100")
    async with await user_client(live_server, make_user, "alice", "1000") as c:
        pid = (await c.post("/v1/positions", json={**SPOT, "qty": "1"})).json()["id"]
        h = {"Idempotency-Key": "close-1"}
        first = await c.post(f"/v1/positions/{pid}/close", headers=h)
        again = await c.post(f"/v1/positions/{pid}/close", headers=h)
        assert (first.status_code, again.status_code) == (202, 202)
        assert again.json() == first.json()


async def test_close_without_fresh_price_is_409_and_stays_open(
    live_server: LiveServer, make_user: Any, quote: Quote, clock: Any
) -> None:
    """No fresh price, no close: the position stays open."""
    quote("BTC-USDT", "100")
    async with await user_client(live_server, make_user, "alice", "1000") as c:
        pid = (await c.post("/v1/positions", json={**SPOT, "qty": "1"})).json()["id"]
        clock.advance(10)
        r = await c.post(f"/v1/positions/{pid}/close")
        assert (r.status_code, r.json()["detail"]) == (409, "no fresh price for BTC-USDT")
        assert (await c.get(f"/v1/positions/{pid}")).json()["details"]["status"] == "open"


async def test_patch_sets_and_clears_levels(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """PATCH sets SL/TP against the current price; null clears; a bad level is 422."""
    quote("BTC-USDT", "100")
    async with await user_client(live_server, make_user, "alice", "1000") as c:
        pid = (await c.post("/v1/positions", json={**SPOT, "qty": "1",
                                                   "takeProfit": "120"})).json()["id"]
        r = await c.patch(f"/v1/positions/{pid}", json={"stopLoss": "95"})
        assert r.status_code == 200, r.text
        assert r.json()["details"]["stopLoss"] == "95.00000000"
        assert r.json()["details"]["takeProfit"] == "120.00000000"
        r = await c.patch(f"/v1/positions/{pid}", json={"takeProfit": None})
        assert r.json()["details"]["takeProfit"] is None
        assert r.json()["details"]["stopLoss"] == "95.00000000"
        r = await c.patch(f"/v1/positions/{pid}", json={"stopLoss": "100"})
        assert r.status_code == 422
        assert r.json() == {
            "detail": "stopLoss must be below the current price for a long",
            "field": "stopLoss",
        }
        r = await c.patch(f"/v1/positions/{pid}", json={"trailing": "1"})
        assert (r.status_code, r.json()["field"]) == (422, "trailing")


async def test_list_rejects_an_unknown_status(live_server: LiveServer, make_user: Any) -> None:
    """?status= must be open, closing or closed."""
    async with await user_client(live_server, make_user, "alice", "1") as c:
        r = await c.get("/v1/positions", params={"status": "pending"})
        assert (r.status_code, r.json()["field"]) == (422, "status")
        assert (await c.get("/v1/positions/nope")).status_code == 404


async def test_concurrent_retries_with_one_key_open_once(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    """Five copies of one keyed request sent at once all answer the same single position."""
    quote("BTC-USDT", "100")
    async with await user_client(live_server, make_user, "alice", "1000") as c:
        headers = {"Idempotency-Key": "burst"}
        answers = await asyncio.gather(*(
            c.post("/v1/positions", json={**SPOT, "qty": "1"}, headers=headers) for _ in range(5)
        ))
        assert {r.status_code for r in answers} == {201}
        assert len({r.json()["id"] for r in answers}) == 1
        assert len((await c.get("/v1/positions")).json()) == 1
        assert await balance_of(c) == "899.90000000"


async def test_a_body_without_a_json_content_type_says_what_to_send(
    live_server: LiveServer, make_user: Any
) -> None:
    """A body sent as text/plain or with no Content-Type is a 422 naming the header to set."""
    _, token = await make_user("alice", "1000")
    body = b'{"symbol":"BTC-USDT","market":"spot","side":"long","qty":"1"}'
    async with live_server.client(token) as c:
        for headers in ({"Content-Type": "text/plain"}, {}):
            r = await c.post("/v1/positions", content=body, headers=headers)
            assert r.status_code == 422, r.text
            assert r.json()["field"] == "body"
            assert "Content-Type: application/json" in r.json()["detail"], r.text


async def post_raw(c: Any, qty: str) -> Any:
    """Open a spot BTC-USDT long whose qty is `qty` written verbatim into the JSON text."""
    body = '{"symbol": "BTC-USDT", "market": "spot", "side": "long", "qty": ' + qty + "}"
    return await c.post("/v1/positions", content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    "raw",
    ['"1_000"', '"\u0661\u0660\u0660\u0660"', '"\uff11"', '" 1 000"', '"0x1"', "NaN",
     "Infinity", "-Infinity"],
)
async def test_numbers_must_be_ascii_decimals_or_are_422_naming_the_field(
    live_server: LiveServer, make_user: Any, quote: Quote, raw: str
) -> None:
    """A qty of "1_000", Arabic-Indic or full-width digits, or NaN/Infinity is a 422 naming
    qty (Python's Decimal would read several of them as numbers), and nothing opens."""
    quote("BTC-USDT", "1")
    async with await user_client(live_server, make_user, "alice", "100000") as c:
        before = await counts(c)
        r = await post_raw(c, raw)
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "qty"
        assert await counts(c) == before


@pytest.mark.parametrize(
    "raw", ["0.123456789", "1000000000.000000001", "0.10000000000000000001", "1.000000001e0"]
)
async def test_a_json_number_finer_than_8_places_is_refused_like_the_string(
    live_server: LiveServer, make_user: Any, quote: Quote, raw: str
) -> None:
    """A JSON number is read from its text, so one with more than 8 places gets the same
    422 as the same value written as a string, never a silently rounded float."""
    quote("BTC-USDT", "0.0001")
    async with await user_client(live_server, make_user, "alice", "100000") as c:
        for qty in (raw, f'"{raw}"'):
            r = await post_raw(c, qty)
            assert r.status_code == 422, (qty, r.text)
            assert r.json() == {"detail": "qty must have at most 8 decimal places", "field": "qty"}
        r = await post_raw(c, "12345678.12345678")
        assert (r.status_code, r.json().get("qty")) == (201, "12345678.12345678"), r.text
