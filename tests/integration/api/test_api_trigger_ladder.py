"""A trigger's action takes the ladder's moveStopToEntryAfter, as a position does (SPEC 5.2):
stored with the action, checked against its ladder when the trigger is placed."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from cogmora.domain.models import PriceQuote

if TYPE_CHECKING:
    from conftest import LiveServer

Quote = Callable[..., PriceQuote]
TRIGGER = {"symbol": "BTC-USDT", "market": "spot", "condition": {"op": "below", "price": "59000"}}
LADDER = [{"price": "61000", "fraction": "0.5"}, {"price": "62000", "fraction": "0.5"}]


async def test_a_trigger_action_keeps_its_ladders_move_stop_to_entry_after(
    live_server: LiveServer, make_user: Any, quote: Quote
) -> None:
    quote("BTC-USDT", "60000")
    _, token = await make_user("mia", "100000")
    action = {"side": "long", "qty": "0.1", "takeProfits": LADDER, "moveStopToEntryAfter": 1}
    async with live_server.client(token) as c:
        r = await c.post("/v1/triggers", json={**TRIGGER, "action": action})
        assert r.status_code == 201, r.text
        assert r.json()["action"]["moveStopToEntryAfter"] == 1
        listed = (await c.get(f"/v1/triggers/{r.json()['id']}")).json()
        assert listed["action"]["moveStopToEntryAfter"] == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"takeProfits": LADDER, "moveStopToEntryAfter": 3}, "a leg number from 1 to 2"),
        ({"moveStopToEntryAfter": 1}, "moveStopToEntryAfter needs takeProfits"),
    ],
)
async def test_a_move_stop_to_entry_after_its_ladder_cannot_meet_is_a_422_naming_it(
    live_server: LiveServer, make_user: Any, quote: Quote, extra: dict[str, Any], message: str
) -> None:
    quote("BTC-USDT", "60000")
    _, token = await make_user("noa", "100000")
    async with live_server.client(token) as c:
        r = await c.post(
            "/v1/triggers", json={**TRIGGER, "action": {"side": "long", "qty": "0.1", **extra}}
        )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "moveStopToEntryAfter"
    assert message in r.json()["detail"]
