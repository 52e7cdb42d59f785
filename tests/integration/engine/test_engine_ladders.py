"""Take-profit ladders through the engine (SPEC 5.2): each leg its own key in the book,
filled once by a partial close, the last leg (or a stop) closing the rest."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side
from cogmora.domain.orders import OpenRequest
from cogmora.domain.takeprofits import TakeProfitLeg, leg_key
from cogmora.domain.trailing import TrailingStop
from conditions import until

from .conftest import Rig, book_matches_store

D = Decimal


async def open_ladder(rig: Rig, *legs: tuple[str, str], move_after: int | None = None) -> str:
    doc = await rig.system.positions.open(
        "u",
        OpenRequest(
            "XBTUSDTM",
            Market.FUTURES,
            Side.LONG,
            qty=D("4"),
            leverage=D("10"),
            stop_loss=D("58000"),
            take_profits=tuple(TakeProfitLeg(D(p), D(f)) for p, f in legs),
            move_stop_to_entry_after=move_after,
        ),
    )
    await rig.synced()
    return str(doc["id"])


async def ledger_sums(rig: Rig) -> None:
    user = await rig.system.accounts.get_user("u")
    entries = await rig.system.accounts.ledger("u")
    assert sum((e.amount for e in entries), D(0)) == user.balance


async def test_each_leg_is_its_own_key_and_fills_once_then_the_last_closes_the_rest(
    rig: Rig,
) -> None:
    """Legs at 61000/62000/63000 of 0.25/0.25/0.5: the first tick past 61000 closes 1 of 4,
    a tick past both the others closes 1 more and the rest; ledger sums to the balance."""
    await rig.system.accounts.create_user("u", D("100000"))
    rig.price("XBTUSDTM", "60000")
    pid = await open_ladder(rig, ("61000", "0.25"), ("62000", "0.25"), ("63000", "0.5"))
    assert all(leg_key(pid, i) in rig.engine.book for i in range(3))
    rig.ticks("XBTUSDTM", "61000.5")
    await rig.settle()
    await rig.synced()
    position = await rig.system.positions.get("u", pid)
    assert (position.status, position.qty, position.details.legs_filled) == (
        PositionStatus.OPEN, D("3"), (0,)
    )
    assert leg_key(pid, 0) not in rig.engine.book
    await book_matches_store(rig)
    history = await rig.system.positions.history("u")
    assert [(h["id"], h["qty"], h["closePrice"], h["partOf"]) for h in history] == [
        (f"{pid}-1", "1.00000000", "61000.50000000", pid)
    ]
    rig.ticks("XBTUSDTM", "61500", "63100")
    await rig.settle()
    position = await rig.system.positions.get("u", pid)
    assert position.status is PositionStatus.CLOSED
    assert position.details.close_reason is CloseReason.TAKE_PROFIT
    assert position.qty == D("2")
    assert position.details.legs_filled == (0, 1, 2)
    ids = sorted(h["id"] for h in await rig.system.positions.history("u"))
    assert ids == sorted([pid, f"{pid}-1", f"{pid}-2"])
    await ledger_sums(rig)


async def test_the_stop_closes_the_rest_and_moves_to_entry_after_leg_n(rig: Rig) -> None:
    """moveStopToEntryAfter 1: once leg 1 fills the stop is the entry price, so a fall
    to the entry closes the rest as a stop loss."""
    await rig.system.accounts.create_user("u", D("100000"))
    rig.price("XBTUSDTM", "60000")
    pid = await open_ladder(rig, ("61000", "0.5"), ("63000", "0.5"), move_after=1)
    rig.ticks("XBTUSDTM", "61000")
    await rig.settle()
    await rig.synced()
    position = await rig.system.positions.get("u", pid)
    assert (position.qty, position.details.stop_loss) == (D("2"), D("60000"))
    rig.ticks("XBTUSDTM", "59990")
    await rig.settle()
    position = await rig.system.positions.get("u", pid)
    assert (position.status, position.details.close_reason) == (
        PositionStatus.CLOSED, CloseReason.STOP_LOSS
    )
    await ledger_sums(rig)


async def test_a_gap_replayed_through_the_engine_fills_legs_at_their_levels_recovered(
    rig: Rig,
) -> None:
    """Two candles of a gap reach leg 1 then legs 2 and 3: a partial close at 61000 and
    one at 62000 (history marked recovered), then the rest closes at 63000."""
    from datetime import UTC, datetime

    from cogmora.domain.gap import GapCandle, cross_candle

    await rig.system.accounts.create_user("u", D("100000"))
    rig.price("XBTUSDTM", "60000")
    pid = await open_ladder(rig, ("61000", "0.25"), ("62000", "0.25"), ("63000", "0.5"))
    start = int(datetime.now(UTC).timestamp()) + 60
    for i, (high, low) in enumerate((("61200", "60500"), ("63500", "61500"))):
        candle = GapCandle(start + 60 * i, D(low), D(high), D(low))
        fills = cross_candle(rig.engine.book, "XBTUSDTM", candle, {})
        rig.engine.on_recovered(Market.FUTURES, fills, datetime.now(UTC))
        await rig.settle()
    position = await rig.system.positions.get("u", pid)
    assert (position.status, position.details.close_price, position.details.recovered) == (
        PositionStatus.CLOSED, D("63000"), True
    )
    parts = [h for h in await rig.system.positions.history("u") if h.get("partOf")]
    assert sorted((h["closePrice"], h["details"].get("recovered")) for h in parts) == [
        ("61000.00000000", True), ("62000.00000000", True)
    ]
    await ledger_sums(rig)


async def test_a_book_reloaded_after_the_feed_was_pruned_keeps_the_unfilled_legs(
    rig: Rig,
) -> None:
    """A reload (the feed pruned past the engine's cursor) puts every open position back
    with its legs: a leg's key is not a document, so it must not be dropped as one the
    store no longer has; the leg still fills afterwards."""
    await rig.system.accounts.create_user("u", D("1000000"))
    rig.price("XBTUSDTM", "60000")
    pid = await open_ladder(rig, ("61000", "0.5"), ("62000", "0.5"))
    assert leg_key(pid, 0) in rig.engine.book and leg_key(pid, 1) in rig.engine.book
    other = await open_ladder(rig, ("61500", "1"))

    follow = rig.tasks.pop()  # the follower stalls while the feed is pruned past it
    follow.cancel()
    await asyncio.gather(follow, return_exceptions=True)
    stale = rig.engine.cursor
    await rig.system.positions.request_close("u", other)
    await rig.system.settler.settle_all()
    await rig.system.store.prune_changes(0)  # type: ignore[attr-defined]
    rig.tasks.append(asyncio.create_task(rig.engine.follow()))
    await until(lambda: rig.engine.cursor > stale, what="the engine reloaded")
    await rig.synced()

    book = rig.engine.book
    assert leg_key(pid, 0) in book and leg_key(pid, 1) in book
    assert leg_key(other, 0) not in book
    rig.ticks("XBTUSDTM", "61000.5")
    await rig.settle()
    position = await rig.system.positions.get("u", pid)
    assert position.status is PositionStatus.OPEN and position.qty == D("2")
    await ledger_sums(rig)


async def test_a_ladder_scales_out_and_a_trailing_stop_closes_the_rest(rig: Rig) -> None:
    """A futures long with two legs and a 2% trailing stop: the first leg fills at 61000
    (half of 4), the peak follows the price to 61800, and the fall to 61800 * 0.98 closes
    the remaining 2 for `trailing_stop` before the second leg is reached; the ledger sums."""
    await rig.system.accounts.create_user("u", D("1000000"))
    rig.price("XBTUSDTM", "60000")
    doc = await rig.system.positions.open(
        "u",
        OpenRequest(
            "XBTUSDTM",
            Market.FUTURES,
            Side.LONG,
            qty=D("4"),
            leverage=D("10"),
            take_profits=(
                TakeProfitLeg(D("61000"), D("0.5")),
                TakeProfitLeg(D("63000"), D("0.5")),
            ),
            trailing_stop=TrailingStop(D("0.02")),
        ),
    )
    pid = str(doc["id"])
    await rig.synced()
    rig.ticks("XBTUSDTM", "61000.5", "61800", "60564.1", "60564")
    await rig.settle()
    position = await rig.system.positions.get("u", pid)
    assert position.status is PositionStatus.CLOSED
    assert position.details.legs_filled == (0,)
    assert (position.details.close_reason, position.details.close_price) == (
        CloseReason.TRAILING_STOP,
        D("60564"),
    )
    assert await history_qty_of(rig, pid) == D("4")
    await ledger_sums(rig)


async def history_qty_of(rig: Rig, pid: str) -> Decimal:
    docs = await rig.system.positions.history("u")
    return sum((D(h["qty"]) for h in docs if h["id"] == pid or h.get("partOf") == pid), D(0))
