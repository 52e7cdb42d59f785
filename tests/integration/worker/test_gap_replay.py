"""A gap in the feed is replayed, not forgotten (SPEC 5.1): the whole worker over real
websockets against the simulator, whose candles are exactly the trades it made, heard or
not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cogmora.domain.enums import Market
from cogmora.domain.paths import price_path
from cogmora.domain.ticks import Tick
from cogmora.domain.timeutil import to_iso
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore

from .conftest import Live, start_live, stop_live

SYM = "BTC-USDT"
SIM = SimulatorConfig(tick_rate=0, mark_rate=0, seed=7, spot={SYM: "60000", "ETH-USDT": "3500"},
                      futures={"XBTUSDTM": "60000"})


@pytest.fixture
async def gap_live(tmp_path: Path) -> AsyncIterator[Live]:
    lv = await start_live(tmp_path / "gap.db", SIM)
    yield lv
    await stop_live(lv)


async def until(check: Any, within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check() if asyncio.iscoroutinefunction(check) else check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def same_minute(room_s: float = 20.0) -> None:
    """Wait until at least `room_s` seconds of the current minute are left, so a few trades
    made now land in one 1-minute candle."""
    await until(lambda: time.time() % 60 < 60 - room_s, within=61)


def expected_fill(live: Live, level: Decimal, falls: bool, since_s: int) -> Decimal:
    """The rule's fill price, from the simulator's own candles: the first candle from
    `since_s` that crosses `level`; its open when it opened beyond the level."""
    inst = live.sim.host(SYM).instruments[SYM]
    for c in inst.candles(since_s, int(time.time()), 60):
        if (c.low <= level) if falls else (c.high >= level):
            beyond = c.open <= level if falls else c.open >= level
            return c.open if beyond else level
    raise AssertionError("no candle crossed the level")


async def open_long(live: Live, auth: dict[str, str], **levels: str) -> str:
    response = await live.http.post(
        "/v1/positions",
        json={"symbol": SYM, "market": "spot", "side": "long", "qty": "0.1", **levels},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def position(live: Live, auth: dict[str, str], pid: str) -> dict[str, Any]:
    return dict((await live.http.get(f"/v1/positions/{pid}", headers=auth)).json())


async def followed(live: Live, symbol: str = SYM) -> None:
    feed = live.worker.feeds[Market.SPOT]
    await asyncio.wait_for(live.sim.wait_subscribed([symbol]), 60)
    await until(lambda: symbol in feed.subscribed_symbols and not live.worker.recovering)


async def outage(live: Live) -> None:
    """The spot websocket goes down and stays down until `back`."""
    feed = live.worker.feeds[Market.SPOT]
    live.sim.refuse_connections(True, Market.SPOT)
    await live.sim.drop_connections(Market.SPOT)
    await until(lambda: not feed.connected)


def back(live: Live) -> None:
    live.sim.refuse_connections(False, Market.SPOT)


async def closed(live: Live, auth: dict[str, str], pid: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        doc = await position(live, auth, pid)
        return doc if doc["details"]["status"] == "closed" else None

    return dict(await until(check))


async def dip_through_the_stop(live: Live) -> None:
    """Trades unheard by the worker: a minute's candle that opens at 60000, above a 59000
    stop, trades through it at 58500 and comes back to 60000."""
    await live.sim.set_price(SYM, "60000")
    await live.sim.set_price(SYM, "58500")
    await live.sim.set_price(SYM, "60000")


async def stop_and_profit_dipped_in_a_gap(live: Live, uid: str) -> tuple[dict[str, str], str, str]:
    """`uid` holds a long stopped at 59000 and one taking profit at 62500; then the
    websocket goes down and the market dips through the stop (`dip_through_the_stop`),
    within one minute's candle. Returns (auth headers, the stop's id, the profit's id)."""
    auth = await live.user(uid)
    await live.sim.set_price(SYM, "60000")
    stop = await open_long(live, auth, stopLoss="59000")
    profit = await open_long(live, auth, takeProfit="62500")
    await followed(live)
    await same_minute()
    await outage(live)
    await dip_through_the_stop(live)
    return auth, stop, profit


async def test_a_stop_crossed_and_recrossed_while_the_websocket_was_down_closes_once(
    gap_live: Live,
) -> None:
    """A long's stop crossed and returned during an outage closes on reconnect, recovered,
    at the rule's fill price, and is credited once."""
    live = gap_live
    auth = await live.user("alice")
    await live.sim.set_price(SYM, "60000")
    pid = await open_long(live, auth, stopLoss="59000", takeProfit="65000")
    await followed(live)
    await live.sim.set_price(SYM, "60010")  # heard live: the gap starts after it
    since = int(time.time()) // 60 * 60
    await outage(live)
    await live.sim.set_price(SYM, "58500")
    await live.sim.set_price(SYM, "60000")
    back(live)
    doc = await closed(live, auth, pid)
    assert doc["details"]["closeReason"] == "stop_loss"
    assert doc["details"]["recovered"] is True
    assert Decimal(doc["details"]["closePrice"]) == expected_fill(
        live, Decimal("59000"), True, since
    )
    history = (await live.http.get("/v1/history", headers=auth)).json()
    assert [h["id"] for h in history] == [pid]
    metrics = (await live.http.get("/metrics")).text
    assert 'cogmora_engine_recovered_total{kind="close"} 1.0' in metrics


async def test_a_level_standing_crossed_at_reconnect_closes_without_a_new_trade(
    gap_live: Live,
) -> None:
    """A stop the price went through and stayed beyond closes on reconnect with no trade
    after it."""
    live = gap_live
    auth = await live.user("bob")
    await live.sim.set_price(SYM, "60000")
    pid = await open_long(live, auth, stopLoss="59000")
    await followed(live)
    await outage(live)
    await live.sim.set_price(SYM, "58000")
    back(live)
    doc = await closed(live, auth, pid)
    assert doc["details"]["closeReason"] == "stop_loss"
    assert Decimal(doc["details"]["closePrice"]) <= Decimal("59000")


async def test_a_trigger_standing_crossed_fires_from_the_rest_price_at_subscription(
    gap_live: Live,
) -> None:
    """A trigger whose condition already holds when its symbol is first subscribed fires at
    the REST price at once, without waiting for a websocket trade."""
    live = gap_live
    auth = await live.user("cat")
    response = await live.http.post(
        "/v1/triggers",
        json={"symbol": "ETH-USDT", "market": "spot", "condition": {"op": "above", "price": "3000"},
              "action": {"side": "long", "qty": "0.1"}},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    tid = response.json()["id"]

    async def fired() -> dict[str, Any] | None:
        doc = (await live.http.get("/v1/triggers", headers=auth)).json()
        [t] = [t for t in doc if t["id"] == tid]
        return t if t["details"]["status"] == "triggered" else None

    trigger = await until(fired)
    assert trigger["details"]["firedPrice"] == "3500.00000000"
    assert "recovered" not in trigger["details"]


async def test_one_candle_crossing_stop_and_take_profit_closes_as_stop_loss(
    gap_live: Live,
) -> None:
    """When one candle of the gap reaches both the stop and the take profit, the stop is
    assumed to have come first."""
    live = gap_live
    auth = await live.user("dan")
    await live.sim.set_price(SYM, "60000")
    pid = await open_long(live, auth, stopLoss="59000", takeProfit="61000")
    await followed(live)
    await same_minute()
    await outage(live)
    await live.sim.set_price(SYM, "61500")
    await live.sim.set_price(SYM, "58500")
    await live.sim.set_price(SYM, "60000")
    back(live)
    doc = await closed(live, auth, pid)
    assert doc["details"]["closeReason"] == "stop_loss"
    assert doc["details"]["closePrice"] == "59000.00000000"
    assert doc["details"]["recovered"] is True


async def test_a_trigger_crossed_in_the_gap_fires_and_opens_at_the_fill_price(
    gap_live: Live,
) -> None:
    """A trigger whose level the gap crossed and left fires on reconnect; its position opens
    at the trigger's fill price, both marked recovered."""
    live = gap_live
    auth = await live.user("eve")
    await live.sim.set_price(SYM, "60000")
    response = await live.http.post(
        "/v1/triggers",
        json={"symbol": SYM, "market": "spot", "condition": {"op": "above", "price": "61000"},
              "action": {"side": "long", "qty": "0.1", "stopLoss": "55000"}},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    tid = response.json()["id"]
    await followed(live)
    await live.sim.set_price(SYM, "60010")
    since = int(time.time()) // 60 * 60
    await outage(live)
    await live.sim.set_price(SYM, "61500")
    await live.sim.set_price(SYM, "60500")
    back(live)

    async def fired() -> dict[str, Any] | None:
        doc = (await live.http.get("/v1/triggers", headers=auth)).json()
        [t] = [t for t in doc if t["id"] == tid]
        return t if t["details"]["status"] == "triggered" else None

    trigger = await until(fired)
    fill = expected_fill(live, Decimal("61000"), False, since)
    assert Decimal(trigger["details"]["firedPrice"]) == fill
    assert trigger["details"]["recovered"] is True
    opened = await position(live, auth, trigger["details"]["positionId"])
    assert Decimal(opened["entryPrice"]) == fill
    assert opened["details"]["status"] == "open"
    assert opened["details"]["recovered"] is True


async def test_after_a_restart_candles_ending_before_a_position_opened_are_ignored(
    tmp_path: Path,
) -> None:
    """From the stored price's time on, the gap's candles close a position opened before the
    dip and leave one opened after the dip's candle ended."""
    db = tmp_path / "restart.db"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    lv = await start_live(db, SIM)
    try:
        auth = await lv.user("fay")
        await lv.sim.set_price(SYM, "60000")
        early = await open_long(lv, auth, stopLoss="59000")
        late = await open_long(lv, auth, stopLoss="59000")
    finally:
        await stop_live(lv)
    # Back-date what happened while no worker ran: the last heard price three minutes ago,
    # `early` opened before the dip two minutes ago, `late` opened a minute ago.
    store = SqliteStore(db)
    await store.start()

    def rewrite(tx: Tx) -> None:
        times = {early: now - timedelta(minutes=4), late: now - timedelta(minutes=1)}
        paths = {pid: f"users/fay/openPositions/{pid}" for pid in times}
        docs = dict(zip(times, tx.get_many(list(paths.values())), strict=True))
        for pid, at in times.items():
            doc = docs[pid]
            assert doc is not None
            tx.set(paths[pid], {**doc, "openedAt": to_iso(at)})
        tx.set(price_path(SYM), {"symbol": SYM, "price": "60000",
                                 "at": to_iso(now - timedelta(minutes=3))})

    await store.transact(rewrite)
    await store.close()
    sim = KucoinSimulator(SIM)
    await sim.start()
    dip_ms = int((now - timedelta(minutes=2)).timestamp() * 1000) + 5000
    await sim.set_price(SYM, "60000", at_ms=dip_ms - 1000)  # the dip's candle opens above
    await sim.set_price(SYM, "58000", at_ms=dip_ms)
    await sim.set_price(SYM, "60000", at_ms=dip_ms + 1000)
    await sim.set_price(SYM, "60000")
    lv = await start_live(db, sim=sim)
    try:
        doc = await closed(lv, auth, early)
        assert doc["details"]["recovered"] is True
        assert doc["details"]["closePrice"] == "59000.00000000"
        await until(lambda: not lv.worker.recovering and not lv.worker.gaps.held)
        await lv.worker.engine.drained()
        assert (await position(lv, auth, late))["details"]["status"] == "open"
    finally:
        await stop_live(lv)


async def test_a_live_tick_held_during_the_replay_reaches_the_book_after_the_candles(
    gap_live: Live,
) -> None:
    """Ticks that arrive while a gap is pending wait for its candles: the candles close the
    stop at its level first, then the held tick closes a take profit at its own price."""
    live = gap_live
    auth, stop, profit = await stop_and_profit_dipped_in_a_gap(live, "gus")
    gaps = live.worker.gaps
    assert SYM in gaps.held
    stamp = time.time_ns()
    gaps.on_ticks([Tick(SYM, Market.SPOT, Decimal("58000"), received_ns=stamp),
                   Tick(SYM, Market.SPOT, Decimal("62500"), received_ns=stamp)])
    back(live)
    first = await closed(live, auth, stop)
    assert first["details"]["closePrice"] == "59000.00000000"
    assert first["details"]["recovered"] is True
    second = await closed(live, auth, profit)
    assert second["details"]["closeReason"] == "take_profit"
    assert second["details"]["closePrice"] == "62500.00000000"
    assert "recovered" not in second["details"]


async def test_a_stop_crossed_while_the_feed_was_stalled_closes_after_the_stall(
    tmp_path: Path,
) -> None:
    """A silent websocket (no data, no pong) is noticed by its ping, and the stop that the
    market crossed and left meanwhile closes from the candles, recovered."""
    config = SimulatorConfig(tick_rate=0, mark_rate=0, seed=7, spot={SYM: "60000"},
                             futures={"XBTUSDTM": "60000"}, ping_interval_ms=1000,
                             ping_timeout_ms=1000)
    live = await start_live(tmp_path / "stall.db", config)
    try:
        auth = await live.user("hal")
        await live.sim.set_price(SYM, "60000")
        pid = await open_long(live, auth, stopLoss="59000")
        await followed(live)
        feed = live.worker.feeds[Market.SPOT]
        before = feed.reconnects
        await same_minute()
        live.sim.freeze(True, Market.SPOT)
        await dip_through_the_stop(live)
        await until(lambda: feed.reconnects > before)
        live.sim.freeze(False, Market.SPOT)
        doc = await closed(live, auth, pid)
        assert doc["details"]["closeReason"] == "stop_loss"
        assert doc["details"]["closePrice"] == "59000.00000000"
        assert doc["details"]["recovered"] is True
    finally:
        await stop_live(live)


async def test_candles_that_cannot_be_fetched_release_the_live_ticks_and_are_retried(
    gap_live: Live,
) -> None:
    """While the candle endpoint fails, the held live ticks go on after a few tries, and the
    gap is replayed once the candles come back."""
    live = gap_live
    auth, stop, profit = await stop_and_profit_dipped_in_a_gap(live, "ivy")
    live.sim.fail_candles(5, Market.SPOT)
    live.worker.gaps.on_ticks([Tick(SYM, Market.SPOT, Decimal("62500"),
                                    received_ns=time.time_ns())])
    back(live)
    second = await closed(live, auth, profit)
    assert second["details"]["closePrice"] == "62500.00000000"
    first = await closed(live, auth, stop)
    assert first["details"]["closePrice"] == "59000.00000000"
    assert first["details"]["recovered"] is True
    metrics = (await live.http.get("/metrics")).text
    assert 'cogmora_engine_gap_replays_total{result="deferred"} 1.0' in metrics
