"""compare_and_set expecting levels (SPEC 5.1): a decimal string, a null and an absent field,
and the burst transaction built on them, the same on every backend."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from cogmora.cli.compose import System
from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side, TriggerOp, TriggerStatus
from cogmora.domain.models import TriggerAction, TriggerCondition
from cogmora.domain.orders import OpenRequest
from cogmora.services.crossings import PositionHit, TriggerHit, apply_crossings, rejudge_positions
from cogmora.store.port import Store, Tx

GROUP = "users/u1/openPositions"


def position(pid: str, **details: Any) -> tuple[str, dict[str, Any]]:
    return f"{GROUP}/{pid}", {
        "uid": "u1",
        "symbol": "BTC-USDT",
        "openedAt": "2024-01-01T00:00:00.000000Z",
        "details": {"status": "open", **details},
    }


async def put(store: Store, *docs: tuple[str, dict[str, Any]]) -> list[str]:
    def body(tx: Tx) -> None:
        for path, doc in docs:
            tx.set(path, doc)

    await store.transact(body)
    return [path for path, _ in docs]


async def cas(store: Store, paths: list[str], expect: dict[str, Any]) -> list[str]:
    return sorted(
        await store.transact(
            lambda tx: tx.compare_and_set(paths, expect, {"details.status": "closing"})
        )
    )


async def test_expecting_a_decimal_string_level_takes_only_documents_holding_that_string(
    store: Store,
) -> None:
    """A level expectation matches the exact stored string, not a moved, cleared or missing one."""
    paths = await put(
        store,
        position("same", stopLoss="59000.00000000"),
        position("moved", stopLoss="59500.00000000"),
        position("cleared", stopLoss=None),
        position("absent"),
        position("number", stopLoss=59000),
    )
    expect = {"details.status": "open", "details.stopLoss": "59000.00000000"}
    assert await cas(store, paths, expect) == [f"{GROUP}/same"]
    docs = await store.read(lambda tx: tx.get_many(paths))
    assert [d["details"]["status"] for d in docs if d] == [
        "closing",
        "open",
        "open",
        "open",
        "open",
    ]


async def test_expecting_none_matches_a_null_or_absent_field_only(store: Store) -> None:
    """Expecting None takes a position whose take profit is null or not stored, not a set one."""
    paths = await put(
        store,
        position("null", takeProfit=None),
        position("absent"),
        position("set", takeProfit="62000.00000000"),
        position("closing_null", takeProfit=None),
    )
    await store.transact(
        lambda tx: tx.compare_and_set([f"{GROUP}/closing_null"], {}, {"details.status": "closing"})
    )
    expect = {"details.status": "open", "details.takeProfit": None}
    assert await cas(store, paths, expect) == [f"{GROUP}/absent", f"{GROUP}/null"]


async def test_expecting_several_levels_requires_all_of_them(store: Store) -> None:
    """Status, a level and a null level together: any one of them differing leaves the document."""
    paths = await put(
        store,
        position("all", stopLoss="1.5", takeProfit=None),
        position("tp_set", stopLoss="1.5", takeProfit="3"),
        position("sl_moved", stopLoss="1.25", takeProfit=None),
    )
    expect = {"details.status": "open", "details.stopLoss": "1.5", "details.takeProfit": None}
    assert await cas(store, paths, expect) == [f"{GROUP}/all"]
    assert await cas(store, paths, expect) == []  # now closing: the status no longer holds


async def test_a_crossing_whose_level_changed_misses_and_is_judged_again_at_its_price(
    system: System, make_user: Any, quote: Any
) -> None:
    """The burst misses a moved stop; judged again it stays open at 58900 and closes at 58400
    with the stop loss it now stores, on every backend."""
    await make_user("ann", "100000")
    quote("BTC-USDT", "60000")
    request = OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D("0.1"), stop_loss=D("59000"))
    pid = (await system.positions.open("ann", request))["id"]
    await system.positions.amend("ann", pid, {"stopLoss": D("58500")})
    fees, now = system.settings.fees, system.clock.now()
    results = []
    for price in ("58900", "58400"):
        hit = PositionHit("ann", pid, CloseReason.STOP_LOSS, D(price), level=D("59000"))
        out = await system.store.transact(lambda tx, h=hit: apply_crossings(tx, [h], [], fees, now))
        assert (out.closing, out.missed) == ([], [hit])
        again = await system.store.transact(lambda tx, o=out: rejudge_positions(tx, o.missed, now))
        results.append(again)
    kept, closed = results
    assert [p.id for p in kept.kept] == [pid] and kept.closing == []
    [hit] = closed.closing
    assert (hit.reason, hit.level, hit.price) == (CloseReason.STOP_LOSS, D("58500"), D("58400"))
    position = await system.positions.get("ann", pid)
    assert position.status is PositionStatus.CLOSING
    assert (position.details.close_price, position.details.stop_loss) == (D("58400"), D("58500"))


async def test_a_trigger_whose_condition_changed_fires_only_if_the_tick_still_reaches_it(
    system: System, make_user: Any
) -> None:
    """A trigger the book held at below 59000, now stored at below 58000: kept at 58900."""
    await make_user("bob", "100000")
    condition = TriggerCondition(TriggerOp.BELOW, D("58000"))
    action = TriggerAction(Side.LONG, qty=D("0.1"))
    tid = (await system.triggers.create("bob", "BTC-USDT", Market.SPOT, condition, action))["id"]
    fees, now = system.settings.fees, system.clock.now()
    hit = TriggerHit("bob", tid, D("58900"), op=TriggerOp.BELOW, level=D("59000"))
    out = await system.store.transact(lambda tx: apply_crossings(tx, [], [hit], fees, now))
    assert [t.id for t in out.kept_triggers] == [tid] and out.fired == []
    assert (await system.triggers.get("bob", tid)).status is TriggerStatus.ACTIVE
    hit = TriggerHit("bob", tid, D("57900"), op=TriggerOp.BELOW, level=D("59000"))
    out = await system.store.transact(lambda tx: apply_crossings(tx, [], [hit], fees, now))
    assert [t.id for t in out.fired] == [tid]
