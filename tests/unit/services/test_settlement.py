"""The close handler's transaction: exact P&L, one credit, one history document, once."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

from cogmora.cli.compose import System
from cogmora.domain.enums import CloseReason, LedgerKind, Market, PositionStatus, Side
from cogmora.domain.models import Position, PriceQuote
from cogmora.domain.orders import OpenRequest
from cogmora.services.crossings import PositionHit, apply_crossings
from cogmora.services.settlement import Settler

Quote = Callable[..., PriceQuote]


def long_x10(qty: str = "2") -> OpenRequest:
    return OpenRequest("XBTUSDTM", Market.FUTURES, Side.LONG, qty=D(qty), leverage=D(10))


async def mark_closing(system: System, uid: str, pid: str, reason: CloseReason, price: D) -> None:
    """The worker's compare-and-set, exactly as the engine calls it."""
    hit = PositionHit(uid, pid, reason, price)
    fees, now = system.settings.fees, system.clock.now()
    await system.store.transact(lambda tx: apply_crossings(tx, [hit], [], fees, now))


async def test_settling_a_manual_close_credits_payout_and_writes_history(
    system: System, make_user: Any, quote: Quote
) -> None:
    """Long 2 x10 from 3000 closed at 3150: +900 - 3.78 fee, pnl 292.62, history written."""
    await make_user("alice", "10000")
    quote("XBTUSDTM", "3000")
    pid = (await system.positions.open("alice", long_x10()))["id"]
    quote("XBTUSDTM", "3150")
    await system.positions.request_close("alice", pid)
    system.clock.advance(1)  # type: ignore[attr-defined]
    assert await system.settler.settle_all() == 1

    assert (await system.accounts.get_user("alice")).balance == D("10292.62")
    entries = await system.accounts.ledger("alice")
    assert [(e.kind, e.amount) for e in entries] == [
        (LedgerKind.DEPOSIT, D(10000)),
        (LedgerKind.OPEN, D(-600)),
        (LedgerKind.FEE, D("-3.6")),
        (LedgerKind.CLOSE, D(900)),
        (LedgerKind.FEE, D("-3.78")),
    ]
    assert all(e.position_id == pid for e in entries[1:])
    assert entries[-1].balance_after == D("10292.62")

    closed = await system.positions.get("alice", pid)
    assert closed.status is PositionStatus.CLOSED
    assert closed.settlement is not None
    assert closed.settlement.realized_pnl == D("292.62")
    assert closed.settlement.fee_close == D("3.78")
    assert closed.settlement.closed_at == system.clock.now()

    history = await system.positions.history("alice")
    assert len(history) == 1
    h = history[0]
    assert h["id"] == pid
    assert (h["closePrice"], h["closeReason"], h["feeClose"], h["realizedPnl"]) == (
        "3150.00000000", "manual", "3.78000000", "292.62000000"
    )
    assert h["details"]["status"] == "closed"


async def test_settling_twice_credits_once(system: System, make_user: Any, quote: Quote) -> None:
    """A second pass finds nothing closing and changes nothing."""
    await make_user("alice", "10000")
    quote("XBTUSDTM", "3000")
    pid = (await system.positions.open("alice", long_x10()))["id"]
    await system.positions.request_close("alice", pid)
    assert await system.settler.settle_all() == 1
    balance = (await system.accounts.get_user("alice")).balance
    ledger = await system.accounts.ledger("alice")
    assert await system.settler.settle_all() == 0
    assert await Settler(system.store, system.settings.fees, system.clock).settle_pending() == 0
    assert (await system.accounts.get_user("alice")).balance == balance
    assert await system.accounts.ledger("alice") == ledger
    assert len(await system.positions.history("alice")) == 1


async def test_settlement_leaves_open_positions_alone(
    system: System, make_user: Any, quote: Quote
) -> None:
    """Only `closing` positions are settled; an open one keeps its status and its margin."""
    await make_user("alice", "10000")
    quote("XBTUSDTM", "3000")
    kept = (await system.positions.open("alice", long_x10()))["id"]
    closed = (await system.positions.open("alice", long_x10()))["id"]
    await system.positions.request_close("alice", closed)
    assert await system.settler.settle_all() == 1
    assert (await system.positions.get("alice", kept)).status is PositionStatus.OPEN
    assert (await system.positions.get("alice", closed)).status is PositionStatus.CLOSED
    # 10000 - 2 x 603.6 + (600 - 3.6 close fee at 3000)
    assert (await system.accounts.get_user("alice")).balance == D("9389.2")


async def test_liquidation_pays_nothing_and_books_a_zero_liquidation_entry(
    system: System, make_user: Any, quote: Quote
) -> None:
    """A x10 long of 2 at 3000 liquidated at 2715 loses margin and fee: pnl -603.6."""
    await make_user("alice", "1000")
    quote("XBTUSDTM", "3000")
    pid = (await system.positions.open("alice", long_x10()))["id"]
    await mark_closing(system, "alice", pid, CloseReason.LIQUIDATION, D(2715))
    assert await system.settler.settle_all() == 1
    assert (await system.accounts.get_user("alice")).balance == D("396.4")
    last = (await system.accounts.ledger("alice"))[-1]
    assert (last.kind, last.amount, last.balance_after) == (
        LedgerKind.LIQUIDATION, D(0), D("396.4")
    )
    h = (await system.positions.history("alice"))[0]
    assert (h["realizedPnl"], h["feeClose"], h["closeReason"], h["payout"]) == (
        "-603.60000000", "0.00000000", "liquidation", "0.00000000"
    )


async def test_short_stop_loss_settles_at_the_crossing_price(
    system: System, make_user: Any, quote: Quote
) -> None:
    """Short 2 x5 from 3000, stopped at 3100: payout 996.28, pnl -207.32."""
    await make_user("alice", "2000")
    quote("XBTUSDTM", "3000")
    request = OpenRequest("XBTUSDTM", Market.FUTURES, Side.SHORT, qty=D(2), leverage=D(5))
    pid = (await system.positions.open("alice", request))["id"]
    await mark_closing(system, "alice", pid, CloseReason.STOP_LOSS, D(3100))
    await system.settler.settle_all()
    # 2000 - 1200 - 3.6 + 996.28
    assert (await system.accounts.get_user("alice")).balance == D("1792.68")
    h = (await system.positions.history("alice"))[0]
    assert h["realizedPnl"] == "-207.32000000"


async def test_settle_all_drains_every_batch_across_users(
    system: System, make_user: Any, quote: Quote
) -> None:
    """Ten closing positions of two users settle in batches of three, each exactly once."""
    for uid in ("alice", "bob"):
        await make_user(uid, "100000")
    quote("BTC-USDT", "100")
    pids: list[tuple[str, str]] = []
    for i in range(10):
        uid = ("alice", "bob")[i % 2]
        request = OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D(1))
        pids.append((uid, (await system.positions.open(uid, request))["id"]))
    quote("BTC-USDT", "110")
    for uid, pid in pids:
        await system.positions.request_close(uid, pid)
    settler = Settler(system.store, system.settings.fees, system.clock, batch_size=3)
    assert await settler.settle_pending() == 3
    assert await settler.settle_all() == 7
    for uid in ("alice", "bob"):
        # 5 x (-100.1 + 110 - 0.11) = +48.95
        assert (await system.accounts.get_user(uid)).balance == D("100048.95")
        entries = await system.accounts.ledger(uid)
        assert sum(e.amount for e in entries) == D("100048.95")
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        positions: list[Position] = await system.positions.list_for_user(uid)
        assert all(p.status is PositionStatus.CLOSED for p in positions)
        assert len(await system.positions.history(uid)) == 5
