"""Absurd prices over the simulator's websocket never reach the book (SPEC 5.1): the
position stays open and protected, and a real tick afterwards still closes it at its stop."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from cogmora.domain.enums import Market

from .conftest import Live

SYMBOL = "XBTUSDTM"
ABSURD = ["1e-400", "1e400", "1E+35", "NaN", "-1", "0"]


def execution(price: str, sequence: int) -> str:
    """A well-formed futures match frame, as KuCoin sends it, at any price text."""
    return (
        f'{{"topic":"/contractMarket/execution:{SYMBOL}","type":"message","subject":"match",'
        f'"sn":{sequence},"data":{{"symbol":"{SYMBOL}","sequence":{sequence},"side":"sell",'
        f'"size":1,"price":"{price}","tradeId":"{sequence}","ts":{time.time_ns()}}}}}'
    )


async def test_absurd_frames_close_nothing_and_a_real_tick_still_stops_out(live: Live) -> None:
    """1e-400, 1e400, 1E+35, NaN, -1, 0 and a 10x drop, each crossing the stop, leave the
    position open in the book; the next real tick below the stop closes it at that price."""
    auth = await live.user("pia")
    price = live.sim.price(SYMBOL)
    stop = (price * Decimal("0.95")).quantize(Decimal("0.1"))
    opened = await live.http.post(
        "/v1/positions",
        json={
            "symbol": SYMBOL.lower(),  # normalised at the edge
            "market": "futures",
            "side": "long",
            "qty": "0.01",
            "leverage": "5",
            "stopLoss": str(stop),
        },
        headers=auth,
    )
    assert opened.status_code == 201, opened.text
    pid = opened.json()["id"]
    assert opened.json()["symbol"] == SYMBOL
    await live.sim.wait_subscribed([SYMBOL])

    async def in_book() -> bool:
        return live.worker.engine.book.levels_count() >= 1

    await live.until(in_book)
    levels = live.worker.engine.book.levels_count()
    tenth = str((price / 11).quantize(Decimal("0.1")))
    for seq, bad in enumerate([*ABSURD, tenth], start=1):
        await live.sim.send_malformed(execution(bad, seq), Market.FUTURES)
    dropped = len(ABSURD) + 1
    # NaN, -1 and 0 are refused by the decoder itself; the rest by the price filter.

    async def all_judged() -> bool:
        return live.worker.price_filter.dropped >= dropped - 3

    await live.until(all_judged, within=30)
    assert live.worker.engine.book.levels_count() == levels
    doc = (await live.http.get(f"/v1/positions/{pid}", headers=auth)).json()
    assert doc["details"]["status"] == "open"

    below = str(stop - Decimal("0.1"))
    await live.sim.send_malformed(execution(below, 100), Market.FUTURES)

    async def settled() -> dict[str, Any] | None:
        d = (await live.http.get(f"/v1/positions/{pid}", headers=auth)).json()
        return d if d["details"]["status"] == "closed" else None

    closed = await live.until(settled, within=30)
    assert closed["details"]["closeReason"] == "stop_loss"
    assert Decimal(closed["details"]["closePrice"]) == Decimal(below)
