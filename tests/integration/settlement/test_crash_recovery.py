"""Settlement survives SIGKILL at any step: a new process settles everything exactly once.

The crashing process is a real subprocess on the same SQLite file (`crash_child.py`); the
crash is a real SIGKILL, either from inside at a chosen SQL statement of a settlement
transaction, or from the parent while the child is settling batch after batch.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path

import pytest

from cogmora.cli.compose import System
from cogmora.domain.enums import CloseReason, LedgerKind, Market, PositionStatus, Side
from cogmora.domain.models import Position, PriceQuote
from cogmora.domain.orders import OpenRequest
from cogmora.domain.positions import close_fill
from cogmora.services.crossings import PositionHit, apply_crossings

CHILD = Path(__file__).with_name("crash_child.py")
USERS = ("alice", "bob", "carol")
Quote = Callable[..., PriceQuote]


async def run_child(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"child failed ({proc.returncode}): {err.decode()}")
    return proc.returncode, out.decode()


async def open_book(system: System, quote: Quote, count: int = 40) -> None:
    """`count` positions over three users: spot longs and futures longs/shorts, x1 to x20."""
    for uid in USERS:
        await system.accounts.create_user(uid, D(1_000_000))
    quote("BTC-USDT", "100")
    quote("XBTUSDTM", "100")
    for i in range(count):
        uid = USERS[i % 3]
        if i % 3 == 0:
            request = OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D("1.5") + i)
        else:
            side = Side.LONG if i % 2 else Side.SHORT
            request = OpenRequest(
                "XBTUSDTM", Market.FUTURES, side, qty=D("0.37") * (i + 1), leverage=D(1 + i % 20)
            )
        await system.positions.open(uid, request)


async def positions(system: System) -> list[Position]:
    out: list[Position] = []
    for uid in USERS:
        out += await system.positions.list_for_user(uid)
    return out


async def mark_all_closing(system: System, quote: Quote) -> None:
    """Manual closes through the API path, and worker closes (SL, liquidation) by CAS."""
    quote("BTC-USDT", "103.25")
    quote("XBTUSDTM", "97.5")
    hits = []
    for i, p in enumerate(await positions(system)):
        if i % 4 == 0:
            await system.positions.request_close(p.uid, p.id)
        elif i % 4 == 1 and p.details.liquidation_price is not None:
            hits.append(PositionHit(p.uid, p.id, CloseReason.LIQUIDATION,
                                    p.details.liquidation_price))
        else:
            hits.append(PositionHit(p.uid, p.id, CloseReason.STOP_LOSS, D("91.123")))
    fees, now = system.settings.fees, system.clock.now()
    await system.store.transact(lambda tx: apply_crossings(tx, hits, [], fees, now))


async def expected_balances(
    system: System, price_of: Callable[[Position], tuple[CloseReason, D]] | None = None
) -> dict[str, D]:
    """Balances once every closing (or, with `price_of`, every open) position is settled,
    from the domain's close maths (itself checked against hand-computed numbers)."""
    out = {uid: (await system.accounts.get_user(uid)).balance for uid in USERS}
    fees = system.settings.fees
    for p in await positions(system):
        if price_of is not None and p.status is PositionStatus.OPEN:
            reason, price = price_of(p)
        elif p.status is PositionStatus.CLOSING:
            reason, price = p.details.close_reason, p.details.close_price  # type: ignore[assignment]
        else:
            continue
        fill = close_fill(p.market, p.side, p.qty, p.entry_price, p.margin, p.fee_open,
                          price, reason, fees)
        out[p.uid] += fill.payout
    return out


async def assert_settled_exactly_once(system: System, expected: dict[str, D]) -> None:
    everything = await positions(system)
    assert everything
    assert all(p.status is PositionStatus.CLOSED for p in everything)
    for uid in USERS:
        user = await system.accounts.get_user(uid)
        assert user.balance == expected[uid], uid
        entries = await system.accounts.ledger(uid)
        running = D(0)
        for seq, e in enumerate(entries, start=1):
            running += e.amount
            assert (e.seq, e.balance_after) == (seq, running)
        assert running == user.balance
        kinds: dict[str, list[LedgerKind]] = {}
        for e in entries:
            if e.position_id is not None:
                kinds.setdefault(e.position_id, []).append(e.kind)
        history = {h["id"]: h for h in await system.positions.history(uid, limit=10_000)}
        mine = [p for p in everything if p.uid == uid]
        assert set(history) == {p.id for p in mine}
        for p in mine:
            assert kinds[p.id] in (
                [LedgerKind.OPEN, LedgerKind.FEE, LedgerKind.CLOSE, LedgerKind.FEE],
                [LedgerKind.OPEN, LedgerKind.FEE, LedgerKind.LIQUIDATION],
            ), p.id
            assert p.settlement is not None
            assert history[p.id]["realizedPnl"] == p.to_doc()["realizedPnl"]


@pytest.mark.parametrize(
    ("commits", "writes"),
    [
        (0, 1),  # the very first write of the first batch
        (2, 3),  # in the middle of the third batch's writes
        (2, 0),  # all of the third batch written, killed at its COMMIT
        (5, 2),  # inside the last batch
    ],
    ids=["first-write", "mid-batch", "at-commit", "last-batch"],
)
async def test_sigkill_inside_a_settlement_transaction_then_restart_settles_once(
    system: System, quote: Quote, db_path: Path, commits: int, writes: int
) -> None:
    """Killed between two steps of a settlement transaction, the batch leaves no trace; the
    close handler's start settles everything left, and nothing is credited twice."""
    await open_book(system, quote)
    await mark_all_closing(system, quote)
    expected = await expected_balances(system)

    code, out = await run_child(str(db_path), "settle", str(commits), str(writes))
    assert code == -signal.SIGKILL, out
    closed = [p for p in await positions(system) if p.status is PositionStatus.CLOSED]
    assert len(closed) == 7 * commits  # only whole committed batches

    code, out = await run_child(str(db_path), "recover")
    assert (code, out.strip().splitlines()[-1]) == (0, "recovered")
    await assert_settled_exactly_once(system, expected)

    code, _ = await run_child(str(db_path), "recover")  # a second start changes nothing
    await assert_settled_exactly_once(system, expected)


async def test_sigkill_from_outside_mid_settlement_then_restart_settles_once(
    system: System, quote: Quote, db_path: Path
) -> None:
    """A process that marks positions closing and is SIGKILLed while settling them leaves
    work that a new process finishes, exactly once."""
    await open_book(system, quote, count=200)
    expected = await expected_balances(system, lambda p: (CloseReason.MANUAL, D("105")))

    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), str(db_path), "mark-and-settle", "manual", "105",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=120)).decode().strip()
        lines.append(line)
        if line in ("committed 2", "") or line.startswith("finished"):
            break
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    assert lines[0] == "marked 200"
    assert "committed 2" in lines, lines

    left = [p for p in await positions(system) if p.status is PositionStatus.CLOSING]
    assert left  # the kill landed with work left to do (28 of 200 at most were settled)
    code, out = await run_child(str(db_path), "recover")
    assert (code, out.strip().splitlines()[-1]) == (0, "recovered")
    await assert_settled_exactly_once(system, expected)


async def test_two_settlers_racing_on_one_file_credit_once(
    system: System, quote: Quote, db_path: Path
) -> None:
    """Two close handlers in two processes settle the same closing positions: each
    position is settled by exactly one of them."""
    await open_book(system, quote, count=120)
    await mark_all_closing(system, quote)
    expected = await expected_balances(system)
    results = await asyncio.gather(
        run_child(str(db_path), "recover"), run_child(str(db_path), "recover")
    )
    assert [code for code, _ in results] == [0, 0]
    await assert_settled_exactly_once(system, expected)


