"""The services on every backend: the money paths written once against the port.

The root conftest's `system` is built on this directory's `store`, so each test here runs
the production composition on SQLite, PostgreSQL and Firestore alike.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

from cogmora.cli.compose import System
from cogmora.domain.enums import (
    CloseReason,
    LedgerKind,
    Market,
    PositionStatus,
    Side,
    TriggerOp,
    TriggerStatus,
)
from cogmora.domain.models import TriggerAction, TriggerCondition
from cogmora.domain.orders import OpenRequest
from cogmora.services.crossings import PositionHit, TriggerHit, apply_crossings
from cogmora.services.settlement import Settler


def long_x10(qty: str = "2") -> OpenRequest:
    return OpenRequest("XBTUSDTM", Market.FUTURES, Side.LONG, qty=D(qty), leverage=D(10))


async def ledger_matches_balance(system: System, uid: str) -> D:
    """The balance is the sum of the ledger, and the last entry's balanceAfter."""
    balance = (await system.accounts.get_user(uid)).balance
    entries = await system.accounts.ledger(uid)
    assert sum((e.amount for e in entries), D(0)) == balance
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[-1].balance_after == balance
    return balance


async def burst(system: System, positions: list[PositionHit], triggers: list[TriggerHit]) -> Any:
    fees, now = system.settings.fees, system.clock.now()
    return await system.store.transact(
        lambda tx: apply_crossings(tx, positions, triggers, fees, now)
    )


async def test_open_close_and_settle_move_the_money_once(
    system: System, make_user: Any, quote: Any
) -> None:
    """Open a long x10, request its close, settle it: margin and fees out, payout in, one
    history document; settling again changes nothing."""
    await make_user("alice", "10000")
    quote("XBTUSDTM", "3000")
    pid = (await system.positions.open("alice", long_x10()))["id"]
    assert (await system.accounts.get_user("alice")).balance == D("9396.4")
    quote("XBTUSDTM", "3150")
    closing = await system.positions.request_close("alice", pid)
    assert closing["details"]["status"] == "closing"
    assert await system.settler.settle_all() == 1
    assert await ledger_matches_balance(system, "alice") == D("10292.62")
    ledger = await system.accounts.ledger("alice")
    assert await system.settler.settle_all() == 0
    assert await system.accounts.ledger("alice") == ledger
    closed = await system.positions.get("alice", pid)
    assert closed.status is PositionStatus.CLOSED
    assert [h["id"] for h in await system.positions.history("alice")] == [pid]
    assert [p.id for p in await system.positions.list_for_user("alice")] == [pid]


async def test_two_settlers_racing_credit_each_position_once(
    system: System, make_user: Any, quote: Any
) -> None:
    """Two settlers running at once over the same closing positions settle each once."""
    await make_user("bob", "100000")
    quote("XBTUSDTM", "3000")
    pids = [(await system.positions.open("bob", long_x10("1")))["id"] for _ in range(3)]
    for pid in pids:
        await system.positions.request_close("bob", pid)
    other = Settler(system.store, system.settings.fees, system.clock)
    settled = await asyncio.gather(system.settler.settle_all(), other.settle_all())
    assert sum(settled) == 3
    balance = await ledger_matches_balance(system, "bob")
    closes = [e for e in await system.accounts.ledger("bob") if e.kind is LedgerKind.CLOSE]
    assert sorted(e.position_id for e in closes) == sorted(pids)
    assert len(await system.positions.history("bob")) == 3
    assert balance == D("100000") - 3 * D("1.8") - 3 * D("1.8")  # open and close fees


async def test_a_burst_closes_by_compare_and_set_and_fires_triggers(
    system: System, make_user: Any, quote: Any
) -> None:
    """One burst: an open position goes closing, a funded trigger opens its position, an
    unfunded one fails with the reason and moves no money; replaying the burst loses."""
    await make_user("carol", "10000")
    await make_user("dave", "10")
    quote("XBTUSDTM", "3000")
    pid = (await system.positions.open("carol", long_x10()))["id"]
    action = TriggerAction(Side.LONG, qty=D("1"), leverage=D("10"))
    above = TriggerCondition(TriggerOp.ABOVE, D("3100"))
    funded = await system.triggers.create("carol", "XBTUSDTM", Market.FUTURES, above, action)
    unfunded = await system.triggers.create("dave", "XBTUSDTM", Market.FUTURES, above, action)
    carol_before = (await system.accounts.get_user("carol")).balance
    dave_ledger = await system.accounts.ledger("dave")

    hits = [PositionHit("carol", pid, CloseReason.TAKE_PROFIT, D("3100"))]
    fires = [
        TriggerHit("carol", funded["id"], D("3100")),
        TriggerHit("dave", unfunded["id"], D("3100")),
    ]
    out = await burst(system, hits, fires)

    assert [h.position_id for h in out.closing] == [pid]
    assert [t.id for t in out.fired] == [funded["id"]]
    assert [t.id for t in out.failed] == [unfunded["id"]]
    assert "insufficient balance" in (out.failed[0].details.error or "")
    assert (await system.positions.get("carol", pid)).status is PositionStatus.CLOSING
    opened = out.opened[0]
    assert (await system.positions.get("carol", opened.id)).status is PositionStatus.OPEN
    fired = await system.triggers.get("carol", funded["id"])
    assert fired.status is TriggerStatus.TRIGGERED and fired.details.position_id == opened.id
    assert (await system.triggers.get("dave", unfunded["id"])).status is TriggerStatus.FAILED
    assert await system.accounts.ledger("dave") == dave_ledger
    carol_after = await ledger_matches_balance(system, "carol")
    assert carol_after == carol_before - opened.margin - opened.fee_open

    again = await burst(system, hits, fires[:1])
    assert not again.closing and not again.fired and not again.opened
    assert sorted(again.lost) == sorted([pid, funded["id"]])
    assert await ledger_matches_balance(system, "carol") == carol_after


async def test_a_position_opened_and_crossed_in_one_burst_is_closing(
    system: System, make_user: Any, quote: Any
) -> None:
    """A trigger's new position that a later tick of the same burst crosses is written
    closing in that same transaction, and settles like any other."""
    await make_user("erin", "10000")
    quote("XBTUSDTM", "3000")
    action = TriggerAction(Side.LONG, qty=D("1"), leverage=D("10"), stop_loss=D("2950"))
    below = TriggerCondition(TriggerOp.BELOW, D("2990"))
    trig = await system.triggers.create("erin", "XBTUSDTM", Market.FUTURES, below, action)
    fire = TriggerHit("erin", trig["id"], D("2990"))
    stop = PositionHit("erin", fire.position_id, CloseReason.STOP_LOSS, D("2940"))
    out = await burst(system, [stop], [fire])
    assert [p.id for p in out.opened] == [fire.position_id]
    assert [h.position_id for h in out.closing] == [fire.position_id]
    assert await system.settler.settle_all() == 1
    await ledger_matches_balance(system, "erin")


async def test_crossings_found_in_a_gap_carry_recovered(
    system: System, make_user: Any, quote: Any
) -> None:
    """A recovered close and a recovered fire say `details.recovered`, as does the fired
    trigger's position, and the settled close keeps it; a live close does not."""
    await make_user("gil", "10000")
    quote("XBTUSDTM", "3000")
    live_pid = (await system.positions.open("gil", long_x10("1")))["id"]
    gap_pid = (await system.positions.open("gil", long_x10("1")))["id"]
    action = TriggerAction(Side.LONG, qty=D("1"), leverage=D("10"))
    above = TriggerCondition(TriggerOp.ABOVE, D("3100"))
    trig = await system.triggers.create("gil", "XBTUSDTM", Market.FUTURES, above, action)
    hits = [
        PositionHit("gil", live_pid, CloseReason.TAKE_PROFIT, D("3100")),
        PositionHit("gil", gap_pid, CloseReason.TAKE_PROFIT, D("3100"), recovered=True),
    ]
    fire = TriggerHit("gil", trig["id"], D("3100"), recovered=True)
    out = await burst(system, hits, [fire])
    assert sorted(h.position_id for h in out.closing) == sorted([live_pid, gap_pid])
    assert (await system.triggers.get("gil", trig["id"])).details.recovered is True
    opened = await system.positions.get("gil", fire.position_id)
    assert opened.details.recovered is True and opened.status is PositionStatus.OPEN
    assert await system.settler.settle_all() == 2
    assert (await system.positions.get("gil", gap_pid)).details.recovered is True
    assert (await system.positions.get("gil", live_pid)).details.recovered is False
    await ledger_matches_balance(system, "gil")
