"""The engine end to end on SQLite: ticks in, closing/triggered documents out, settled once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from cogmora.domain.enums import (
    CloseReason,
    Market,
    PositionStatus,
    Side,
    TriggerOp,
    TriggerStatus,
)
from cogmora.domain.models import TriggerAction, TriggerCondition
from cogmora.domain.orders import OpenRequest
from cogmora.domain.ticks import PriceKind
from cogmora.engine.engine import Engine
from cogmora.engine.metrics import EngineMetrics
from cogmora.errors import Conflict

from .conftest import Rig, close_rig, make_rig
from .test_engine_hot_path import frame

D = Decimal


async def open_position(rig: Rig, uid: str, symbol: str, side: Side, **kw: str) -> str:
    market = Market.SPOT if "-" in symbol else Market.FUTURES
    values = {k: D(v) for k, v in kw.items()}
    doc = await rig.system.positions.open(
        uid,
        OpenRequest(
            symbol,
            market,
            side,
            qty=values.get("qty", D("1")),
            leverage=values.get("leverage"),
            stop_loss=values.get("stop_loss"),
            take_profit=values.get("take_profit"),
        ),
    )
    await rig.synced()
    return str(doc["id"])


CASES = [
    # symbol, side, leverage, SL, TP, tick, reason
    ("BTC-USDT", Side.LONG, None, "59000", "62000", "58999.5", CloseReason.STOP_LOSS),
    ("BTC-USDT", Side.LONG, None, "59000", "62000", "62000", CloseReason.TAKE_PROFIT),
    ("XBTUSDTM", Side.LONG, "10", "58000", "62000", "58000", CloseReason.STOP_LOSS),
    ("XBTUSDTM", Side.LONG, "10", "58000", "62000", "62500", CloseReason.TAKE_PROFIT),
    ("XBTUSDTM", Side.LONG, "10", None, None, "54300", CloseReason.LIQUIDATION),
    ("XBTUSDTM", Side.SHORT, "10", "61000", "58000", "61000", CloseReason.STOP_LOSS),
    ("XBTUSDTM", Side.SHORT, "10", "61000", "58000", "57000", CloseReason.TAKE_PROFIT),
    ("XBTUSDTM", Side.SHORT, "10", None, None, "65700", CloseReason.LIQUIDATION),
]


@pytest.mark.parametrize(("symbol", "side", "lev", "sl", "tp", "tick", "reason"), CASES)
async def test_crossing_tick_closes_at_its_price_with_its_reason(
    rig: Rig,
    symbol: str,
    side: Side,
    lev: str | None,
    sl: str | None,
    tp: str | None,
    tick: str,
    reason: CloseReason,
) -> None:
    """A tick reaching SL, TP or liquidation marks the position closing at the tick's price."""
    await rig.system.accounts.create_user("u", D("100000"))
    rig.price(symbol, "60000")
    levels = {k: v for k, v in (("leverage", lev), ("stop_loss", sl), ("take_profit", tp)) if v}
    pid = await open_position(rig, "u", symbol, side, **levels)
    rig.ticks(symbol, "60000", tick)
    await rig.settle()
    position = await rig.system.positions.get("u", pid)
    assert position.status is PositionStatus.CLOSED
    assert position.details.close_reason is reason
    assert position.details.close_price == D(tick)
    assert len(await rig.system.positions.history("u")) == 1


async def test_gap_through_several_levels_closes_once_with_the_worst_reason(rig: Rig) -> None:
    """A gap below both the stop loss and the liquidation price is one liquidation."""
    await rig.system.accounts.create_user("u", D("100000"))
    rig.price("XBTUSDTM", "60000")
    pid = await open_position(rig, "u", "XBTUSDTM", Side.LONG, leverage="10", stop_loss="58000")
    rig.ticks("XBTUSDTM", "50000", "49000")
    await rig.settle()
    position = await rig.system.positions.get("u", pid)
    assert position.details.close_reason is CloseReason.LIQUIDATION
    assert position.details.close_price == D("50000")
    ledger = await rig.system.accounts.ledger("u")
    assert [e.kind.value for e in ledger] == ["deposit", "open", "fee", "liquidation"]
    assert sum(e.amount for e in ledger) == (await rig.system.accounts.get_user("u")).balance


async def test_mark_price_liquidates_but_does_not_stop_out(rig: Rig) -> None:
    """A mark tick past the stop loss but not the liquidation price closes nothing."""
    await rig.system.accounts.create_user("u", D("100000"))
    rig.price("XBTUSDTM", "60000")
    pid = await open_position(rig, "u", "XBTUSDTM", Side.LONG, leverage="10", stop_loss="58000")
    rig.ticks("XBTUSDTM", "57000", kind=PriceKind.MARK)
    await rig.settle()
    assert (await rig.system.positions.get("u", pid)).status is PositionStatus.OPEN
    rig.ticks("XBTUSDTM", "54000", kind=PriceKind.MARK)
    await rig.settle()
    position = await rig.system.positions.get("u", pid)
    assert position.details.close_reason is CloseReason.LIQUIDATION


def by_ticks(rig: Rig, symbol: str, prices: Sequence[str]) -> None:
    rig.ticks(symbol, *prices)


def by_frames(rig: Rig, symbol: str, prices: Sequence[str]) -> None:
    """Raw spot ticker frames through the prefiltered hot path, as the worker feeds them."""
    rig.engine.hot_path().on_frames([frame(symbol, p) for p in prices])


@pytest.mark.parametrize("send", [by_ticks, by_frames], ids=["ticks", "frames"])
async def test_trigger_opens_a_position_that_the_same_burst_closes(
    rig: Rig, send: Callable[[Rig, str, Sequence[str]], None]
) -> None:
    """A trigger fires, its position opens, and a later tick of the same burst stops it out:
    the predicted position is in the book for the very next tick, Tick or raw frame."""
    await rig.system.accounts.create_user("u", D("10000"))
    await rig.system.triggers.create(
        "u",
        "ETH-USDT",
        Market.SPOT,
        TriggerCondition(TriggerOp.ABOVE, D("4000")),
        TriggerAction(Side.LONG, qty=D("1"), stop_loss=D("3900")),
    )
    await rig.synced()
    send(rig, "ETH-USDT", ("3990", "4001", "3950", "3899"))
    await rig.settle()
    [trigger] = await rig.system.triggers.list_for_user("u")
    assert trigger.status is TriggerStatus.TRIGGERED
    assert trigger.details.fired_price == D("4001")
    position = await rig.system.positions.get("u", str(trigger.details.position_id))
    assert position.entry_price == D("4001")
    assert position.details.close_reason is CloseReason.STOP_LOSS
    assert position.details.close_price == D("3899")
    assert position.status is PositionStatus.CLOSED


async def test_trigger_that_cannot_pay_fails_and_moves_no_money(rig: Rig) -> None:
    """A fire the balance cannot cover marks the trigger failed with the reason; nothing moves."""
    await rig.system.accounts.create_user("u", D("100"))
    await rig.system.triggers.create(
        "u",
        "BTC-USDT",
        Market.SPOT,
        TriggerCondition(TriggerOp.BELOW, D("50000")),
        TriggerAction(Side.LONG, qty=D("1")),
    )
    await rig.synced()
    rig.ticks("BTC-USDT", "49000")
    await rig.settle()
    [trigger] = await rig.system.triggers.list_for_user("u")
    assert trigger.status is TriggerStatus.FAILED
    assert trigger.details.error is not None and "insufficient balance" in trigger.details.error
    assert (await rig.system.accounts.get_user("u")).balance == D("100")
    assert await rig.system.positions.list_for_user("u") == []


async def test_manual_close_racing_a_stop_loss_has_exactly_one_winner(rig: Rig) -> None:
    """A manual close and an SL tick at the same moment close and credit the position once."""
    await rig.system.accounts.create_user("u", D("100000"))
    rig.price("BTC-USDT", "60000")
    pids = [
        await open_position(rig, "u", "BTC-USDT", Side.LONG, qty="0.01", stop_loss="59000")
        for _ in range(20)
    ]
    rig.price("BTC-USDT", "58990")

    async def manual(pid: str) -> str:
        try:
            await rig.system.positions.request_close("u", pid)
            return "manual"
        except Conflict:
            return "lost"

    early = [await manual(pid) for pid in pids[:5]]  # committed before the tick reaches them
    closes = [asyncio.create_task(manual(pid)) for pid in pids[5:]]  # these race the tick
    rig.ticks("BTC-USDT", "58990")
    results = early + list(await asyncio.gather(*closes))
    assert {"manual", "lost"} <= set(results)
    await rig.settle()
    reasons = {p: (await rig.system.positions.get("u", p)).details.close_reason for p in pids}
    assert all(r in (CloseReason.MANUAL, CloseReason.STOP_LOSS) for r in reasons.values())
    for pid, result in zip(pids, results, strict=True):
        assert (reasons[pid] is CloseReason.MANUAL) == (result == "manual")
    history = await rig.system.positions.history("u")
    assert sorted(h["id"] for h in history) == sorted(pids)
    ledger = await rig.system.accounts.ledger("u")
    assert sum(e.amount for e in ledger) == (await rig.system.accounts.get_user("u")).balance
    assert sum(1 for e in ledger if e.kind.value == "close") == len(pids)


async def test_amended_stop_loss_is_live_from_the_change_feed(rig: Rig) -> None:
    """Moving a stop loss through the API moves it in the worker's book."""
    await rig.system.accounts.create_user("u", D("100000"))
    rig.price("BTC-USDT", "60000")
    pid = await open_position(rig, "u", "BTC-USDT", Side.LONG, stop_loss="59000")
    await rig.system.positions.amend("u", pid, {"stopLoss": D("59500")})
    await rig.synced()
    rig.ticks("BTC-USDT", "59400")
    await rig.settle()
    assert (await rig.system.positions.get("u", pid)).details.close_price == D("59400")


async def test_restart_rebuilds_the_book_from_the_store(tmp_path: Path) -> None:
    """Levels written before a restart still fire after it."""
    path = tmp_path / "restart.db"
    first = await make_rig(path)
    await first.system.accounts.create_user("u", D("100000"))
    first.price("XBTUSDTM", "60000")
    pid = await open_position(first, "u", "XBTUSDTM", Side.SHORT, leverage="5", stop_loss="61000")
    await close_rig(first)
    second = await make_rig(path)
    try:
        second.ticks("XBTUSDTM", "61000.5")
        await second.settle()
        position = await second.system.positions.get("u", pid)
        assert position.details.close_reason is CloseReason.STOP_LOSS
    finally:
        await close_rig(second)


async def capped_engine(rig: Rig, max_writes_per_tx: int) -> Engine:
    """The rig's engine replaced by one loaded now from a store that caps a transaction at
    `max_writes_per_tx` writes (as Firestore's does), committing but not following the
    feed: the engine sizes its parts when it is made, so a new cap needs a new engine."""
    for task in rig.tasks:
        task.cancel()
    await asyncio.gather(*rig.tasks, return_exceptions=True)
    rig.system.store.max_writes_per_tx = max_writes_per_tx  # type: ignore[misc]
    engine = Engine(
        rig.system.store,
        rig.system.settings.fees,
        rig.system.clock,
        rig.system.live,
        EngineMetrics(CollectorRegistry()),
    )
    rig.engine = engine
    await engine.load()
    rig.tasks = [asyncio.create_task(engine.run_commits())]
    return engine


async def test_a_burst_split_over_several_transactions_keeps_its_predicted_positions(
    tmp_path: Path,
) -> None:
    """With a small per-transaction cap (as Firestore's), every fired trigger's position
    stays in the book across chunks, and the burst's later tick closes each of them."""
    rig = await make_rig(tmp_path / "chunks.db")
    try:
        await rig.system.accounts.create_user("u", D("100000"))
        for _ in range(5):
            await rig.system.triggers.create(
                "u",
                "SOL-USDT",
                Market.SPOT,
                TriggerCondition(TriggerOp.ABOVE, D("150")),
                TriggerAction(Side.LONG, qty=D("1"), stop_loss=D("140")),
            )
        await capped_engine(rig, 12)  # two crossings a chunk
        rig.ticks("SOL-USDT", "151", "139")
        await rig.settle()
        triggers = await rig.system.triggers.list_for_user("u")
        assert {t.status for t in triggers} == {TriggerStatus.TRIGGERED}
        positions = await rig.system.positions.list_for_user("u")
        assert len(positions) == 5
        assert {p.details.close_reason for p in positions} == {CloseReason.STOP_LOSS}
    finally:
        await close_rig(rig)


async def test_a_storm_split_over_several_transactions_closes_every_position_once(
    tmp_path: Path,
) -> None:
    """A positions-only burst larger than one transaction's cap is cut into parts that each
    commit: every position ends closing with its stop loss, and nothing stays in flight or
    owned in the engine's index."""
    rig = await make_rig(tmp_path / "storm_parts.db")
    try:
        await rig.system.accounts.create_user("u", D("1000000"))
        rig.price("BTC-USDT", "60000")
        ids = [
            await open_position(rig, "u", "BTC-USDT", Side.LONG, qty="0.01", stop_loss="59000")
            for _ in range(10)
        ]
        engine = await capped_engine(rig, 18)  # three crossings a part
        rig.ticks("BTC-USDT", "58999")
        await asyncio.sleep(0)
        await engine.drained()
        positions = await rig.system.positions.list_for_user("u")
        assert {p.id for p in positions} == set(ids)
        assert {(p.details.status, p.details.close_reason) for p in positions} == {
            (PositionStatus.CLOSING, CloseReason.STOP_LOSS)
        }
        assert engine.index.inflight == {}
        assert not set(ids) & set(engine.index.owners)
        assert len(engine.book) == 0
    finally:
        await close_rig(rig)
