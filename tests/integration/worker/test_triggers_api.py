"""Trade triggers through the HTTP API, fired by ticks from the simulated exchange."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .conftest import Live


def trigger_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": "ETH-USDT",
        "market": "spot",
        "condition": {"op": "above", "price": "3600"},
        "action": {"side": "long", "qty": "0.5", "stopLoss": "3500", "takeProfit": "3800"},
    }
    body.update(over)
    return body


async def test_trigger_fires_on_a_tick_and_opens_its_position(live: Live) -> None:
    """An `above` trigger fires on the first tick at or above its price and opens a position."""
    auth = await live.user("ann")
    created = await live.http.post("/v1/triggers", json=trigger_body(), headers=auth)
    assert created.status_code == 201, created.text
    tid = created.json()["id"]
    assert created.json()["details"]["status"] == "active"
    await live.sim.wait_subscribed(["ETH-USDT"])
    await live.synced()  # the trigger is in the book before the tick that crosses it
    await live.sim.publish_burst("ETH-USDT", ["3590", "3600.5"])

    async def fired() -> dict[str, Any] | None:
        doc = (await live.http.get(f"/v1/triggers/{tid}", headers=auth)).json()
        return doc if doc["details"]["status"] == "triggered" else None

    doc = await live.until(fired)
    assert doc["details"]["firedPrice"] == "3600.50000000"
    position = (
        await live.http.get(f"/v1/positions/{doc['details']['positionId']}", headers=auth)
    ).json()
    assert position["source"] == "trigger"
    assert position["entryPrice"] == "3600.50000000"
    assert position["details"]["stopLoss"] == "3500.00000000"


async def test_cancelled_trigger_never_fires(live: Live) -> None:
    """DELETE cancels an active trigger; a second DELETE is a 409; ticks then do nothing."""
    auth = await live.user("ben")
    tid = (await live.http.post("/v1/triggers", json=trigger_body(), headers=auth)).json()["id"]
    cancelled = await live.http.delete(f"/v1/triggers/{tid}", headers=auth)
    assert cancelled.json()["details"]["status"] == "cancelled"
    again = await live.http.delete(f"/v1/triggers/{tid}", headers=auth)
    assert again.status_code == 409
    await live.sim.set_price("ETH-USDT", "3700")
    listed = (await live.http.get("/v1/triggers?status=cancelled", headers=auth)).json()
    assert [t["id"] for t in listed] == [tid]
    assert (await live.http.get("/v1/positions", headers=auth)).json() == []


async def test_trigger_validation_names_the_field(live: Live) -> None:
    """Bad triggers are refused with 422 and a message naming the field and the rule."""
    auth = await live.user("cat")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    cases = [
        (trigger_body(condition={"op": "sideways", "price": "1"}), "condition.op"),
        (trigger_body(expiresAt=past), "expiresAt"),
        (trigger_body(symbol="NOPE-USDT"), "symbol"),
        (trigger_body(action={"side": "long", "qty": "1", "stopLoss": "3700"}), "stopLoss"),
        (trigger_body(action={"side": "short", "qty": "1"}), "side"),
        (trigger_body(action={"side": "long"}), "qty"),
    ]
    for body, field in cases:
        response = await live.http.post("/v1/triggers", json=body, headers=auth)
        assert response.status_code == 422, (field, response.text)
        assert field in response.json()["detail"], (field, response.json())


async def test_another_users_trigger_is_not_found(live: Live) -> None:
    """A user cannot see or cancel another user's trigger: 404."""
    owner = await live.user("dan")
    other = await live.user("eve")
    tid = (await live.http.post("/v1/triggers", json=trigger_body(), headers=owner)).json()["id"]
    assert (await live.http.get(f"/v1/triggers/{tid}", headers=other)).status_code == 404
    assert (await live.http.delete(f"/v1/triggers/{tid}", headers=other)).status_code == 404


async def test_expired_trigger_is_swept_to_expired(live: Live) -> None:
    """A trigger past its expiresAt becomes `expired` without any tick."""
    auth = await live.user("fay")
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    tid = (
        await live.http.post("/v1/triggers", json=trigger_body(expiresAt=soon), headers=auth)
    ).json()["id"]

    async def expired() -> bool:
        doc = (await live.http.get(f"/v1/triggers/{tid}", headers=auth)).json()
        return bool(doc["details"]["status"] == "expired")

    assert await live.until(expired, within=60)
