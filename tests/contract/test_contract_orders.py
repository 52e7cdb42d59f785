"""Partial closes, take-profit ladders and OCO triggers on every backend (SPEC 5.2):
exactly once under retries and races, and the ledger always sums to the balance."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

from cogmora.cli.compose import System
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
from cogmora.domain.takeprofits import TakeProfitLeg, leg_key
from cogmora.errors import Conflict
from cogmora.services.crossings import PositionHit, TriggerHit, apply_crossings
from cogmora.services.idempotency import IdempotencyKey


async def ledger_matches_balance(system: System, uid: str) -> D:
    balance = (await system.accounts.get_user(uid)).balance
    entries = await system.accounts.ledger(uid)
    assert sum((e.amount for e in entries), D(0)) == balance
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    return balance


def ladder_long(*legs: tuple[str, str]) -> OpenRequest:
    return OpenRequest(
        "XBTUSDTM",
        Market.FUTURES,
        Side.LONG,
        qty=D("4"),
        leverage=D("10"),
        stop_loss=D("2900"),
        take_profits=tuple(TakeProfitLeg(D(p), D(f)) for p, f in legs),
    )


async def burst(system: System, positions: list[PositionHit], triggers: list[TriggerHit]) -> Any:
    fees, now = system.settings.fees, system.clock.now()
    return await system.store.transact(
        lambda tx: apply_crossings(tx, positions, triggers, fees, now)
    )


async def history_qty(system: System, uid: str, pid: str) -> D:
    docs = await system.positions.history(uid)
    return sum((D(h["qty"]) for h in docs if h["id"] == pid or h.get("partOf") == pid), D(0))


async def test_a_partial_close_retried_and_racing_a_full_close_and_a_stop_settles_once(
    system: System, make_user: Any, quote: Any
) -> None:
    """A partial close sent twice with one key, a full close and a stop loss crossing, all
    at once: whoever wins, the parts add up to the opened qty and the ledger to the balance."""
    await make_user("alice", "100000")
    quote("XBTUSDTM", "3000")
    pid = (await system.positions.open("alice", ladder_long(("3100", "0.5"))))["id"]
    key = IdempotencyKey.of("alice", "k1", f"POST /v1/positions/{pid}/close", {"qty": "1"})
    stop = PositionHit("alice", pid, CloseReason.STOP_LOSS, D("2899"), D("2900"))
    results = await asyncio.gather(
        system.positions.request_close("alice", pid, key=key, qty=D("1")),
        system.positions.request_close("alice", pid, key=key, qty=D("1")),
        system.positions.request_close("alice", pid),
        burst(system, [stop], []),
        return_exceptions=True,
    )
    for r in results:
        assert not isinstance(r, BaseException) or isinstance(r, Conflict), r
    partials = [r for r in results[:2] if isinstance(r, dict)]
    if len(partials) == 2:
        assert partials[0] == partials[1]  # the retry answered the first answer
    await system.settler.settle_all()
    assert (await system.positions.get("alice", pid)).status is PositionStatus.CLOSED
    assert await history_qty(system, "alice", pid) == D("4")
    assert len(await system.positions.history("alice")) in (1, 2)
    await ledger_matches_balance(system, "alice")


async def test_a_ladder_leg_fills_once_across_racing_and_replayed_bursts(
    system: System, make_user: Any, quote: Any
) -> None:
    """The same leg's hit in two bursts at once, then again: one partial close; the last
    leg then closes the rest, settled once."""
    await make_user("bob", "100000")
    quote("XBTUSDTM", "3000")
    pid = (await system.positions.open("bob", ladder_long(("3100", "0.25"), ("3200", "0.75"))))[
        "id"
    ]
    leg0 = PositionHit("bob", leg_key(pid, 0), CloseReason.TAKE_PROFIT, D("3100"), D("3100"))
    first, second = await asyncio.gather(burst(system, [leg0], []), burst(system, [leg0], []))
    again = await burst(system, [leg0], [])
    wins = [len(o.closing) for o in (first, second, again)]
    assert sorted(wins) == [0, 0, 1]
    position = await system.positions.get("bob", pid)
    assert (position.qty, position.details.legs_filled) == (D("3"), (0,))
    leg1 = PositionHit("bob", leg_key(pid, 1), CloseReason.TAKE_PROFIT, D("3201"), D("3200"))
    out = await burst(system, [leg1], [])
    assert [h.reason for h in out.closing] == [CloseReason.TAKE_PROFIT]
    assert await system.settler.settle_all() == 1
    closed = await system.positions.get("bob", pid)
    assert (closed.status, closed.details.legs_filled) == (PositionStatus.CLOSED, (0, 1))
    assert await history_qty(system, "bob", pid) == D("4")
    await ledger_matches_balance(system, "bob")


async def test_a_leg_whose_level_changed_is_judged_against_the_stored_leg(
    system: System, make_user: Any, quote: Any
) -> None:
    """A hit carrying a level the leg no longer has fills only if the tick still reaches
    the stored leg."""
    await make_user("erin", "100000")
    quote("XBTUSDTM", "3000")
    pid = (await system.positions.open("erin", ladder_long(("3100", "0.5"), ("3300", "0.5"))))[
        "id"
    ]
    stale = PositionHit("erin", leg_key(pid, 0), CloseReason.TAKE_PROFIT, D("3050"), D("3050"))
    out = await burst(system, [stale], [])
    assert (out.closing, [p.id for p in out.kept]) == ([], [pid])
    assert (await system.positions.get("erin", pid)).qty == D("4")


async def test_oco_siblings_fired_on_one_tick_or_by_racing_bursts_have_one_winner(
    system: System, make_user: Any, quote: Any
) -> None:
    """Two members crossed in one burst: the first fires, the second is cancelled; two
    members fired by two bursts at once: exactly one triggered, the other cancelled."""
    await make_user("carol", "100000")
    quote("XBTUSDTM", "3000")
    action = TriggerAction(Side.LONG, qty=D("1"), leverage=D("10"))

    async def place(op: TriggerOp, price: str, group: str) -> str:
        doc = await system.triggers.create(
            "carol",
            "XBTUSDTM",
            Market.FUTURES,
            TriggerCondition(op, D(price)),
            action,
            oco_group=group,
        )
        return str(doc["id"])

    a = await place(TriggerOp.ABOVE, "3100", "g1")
    b = await place(TriggerOp.ABOVE, "3050", "g1")
    c = await place(TriggerOp.ABOVE, "3050", "other")
    out = await burst(
        system,
        [],
        [
            TriggerHit("carol", a, D("3100")),
            TriggerHit("carol", b, D("3100")),
            TriggerHit("carol", c, D("3100")),
        ],
    )
    assert sorted(t.id for t in out.fired) == sorted([a, c])
    assert [t.id for t in out.cancelled] == [b]
    assert (await system.triggers.get("carol", b)).status is TriggerStatus.CANCELLED

    x = await place(TriggerOp.ABOVE, "3100", "g2")
    y = await place(TriggerOp.BELOW, "2900", "g2")
    await asyncio.gather(
        burst(system, [], [TriggerHit("carol", x, D("3100"))]),
        burst(system, [], [TriggerHit("carol", y, D("2900"))]),
    )
    statuses = sorted([(await system.triggers.get("carol", t)).status.value for t in (x, y)])
    assert statuses == ["cancelled", "triggered"]
    opened = [p for p in await system.positions.list_for_user("carol")]
    assert len(opened) == 3  # a, c and one of x, y
    await ledger_matches_balance(system, "carol")


async def test_a_trigger_with_a_ladder_opens_a_laddered_position_whose_legs_fill(
    system: System, make_user: Any, quote: Any
) -> None:
    """A trigger's action with takeProfits: the position it opens carries the ladder
    (original qty, no legs filled), and a leg's hit then closes its share."""
    await make_user("gail", "100000")
    quote("XBTUSDTM", "3000")
    legs = (TakeProfitLeg(D("3200"), D("0.5")), TakeProfitLeg(D("3300"), D("0.5")))
    action = TriggerAction(Side.LONG, qty=D("2"), leverage=D("10"), take_profits=legs)
    trigger = await system.triggers.create(
        "gail", "XBTUSDTM", Market.FUTURES, TriggerCondition(TriggerOp.ABOVE, D("3100")), action
    )
    assert trigger["action"]["takeProfits"][1]["price"] == "3300.00000000"
    out = await burst(system, [], [TriggerHit("gail", trigger["id"], D("3100"))])
    [opened] = out.opened
    assert (opened.details.take_profits, opened.details.original_qty) == (legs, D("2"))
    leg0 = PositionHit("gail", leg_key(opened.id, 0), CloseReason.TAKE_PROFIT, D("3200"), D("3200"))
    await burst(system, [leg0], [])
    position = await system.positions.get("gail", opened.id)
    assert (position.qty, position.details.legs_filled) == (D("1"), (0,))
    await ledger_matches_balance(system, "gail")
