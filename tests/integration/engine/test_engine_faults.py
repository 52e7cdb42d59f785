"""An exception at any step of a burst's evaluation leaves the book and the store in
agreement: what the step took out of the book is committed or put back (SPEC 5.1)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest

from cogmora.domain.enums import CloseReason, Market, PositionStatus, Side, TriggerOp, TriggerStatus
from cogmora.domain.models import TriggerAction, TriggerCondition
from cogmora.domain.orders import OpenRequest
from cogmora.engine.faults import Step
from cogmora.errors import Temporary
from cogmora.store.sqlite import SqliteStore

from .conftest import Rig, book_matches_store, close_rig, make_rig, pause, restart

D = Decimal
COMMITS = 0


class FailOnce:
    """Raises `error` the first time the engine reaches `step`."""

    def __init__(self, step: Step, error: Exception) -> None:
        self.step = step
        self.error = error
        self.fired = False

    def check(self, step: Step) -> None:
        if step is self.step and not self.fired:
            self.fired = True
            raise self.error


async def open_long(rig: Rig, sl: str) -> str:
    doc = await rig.system.positions.open(
        "u", OpenRequest("BTC-USDT", Market.SPOT, Side.LONG, qty=D("0.1"), stop_loss=D(sl))
    )
    return str(doc["id"])


ERRORS = [RuntimeError("injected"), InvalidOperation("injected"), KeyError("injected")]


@pytest.mark.parametrize("step", list(Step), ids=[s.value for s in Step])
@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
async def test_a_failure_at_any_step_leaves_book_and_store_in_agreement(
    tmp_path: Path, step: Step, error: Exception
) -> None:
    """Fail one step of a burst (a stop, a moved stop, a trigger): the book matches a fresh
    load at once, and the next tick through the levels still closes and fires them all."""
    hook = FailOnce(step, error)
    rig = await make_rig(tmp_path / "faults.db", faults=hook)
    try:
        await rig.system.accounts.create_user("u", D("100000"))
        rig.price("BTC-USDT", "60000")
        plain = await open_long(rig, "59000")
        moved = await open_long(rig, "59000")
        trigger = await rig.system.triggers.create(
            "u",
            "BTC-USDT",
            Market.SPOT,
            TriggerCondition(TriggerOp.BELOW, D("58950")),
            TriggerAction(Side.LONG, qty=D("0.1"), stop_loss=D("50000")),
        )
        await rig.synced()
        # The tick crosses all three; the moved stop's PATCH commits before the crossing
        # does, so its crossing misses and is judged again (the REJUDGE step).
        await pause(rig, COMMITS)
        rig.ticks("BTC-USDT", "58900")
        rig.price("BTC-USDT", "60000")
        await rig.system.positions.amend("u", moved, {"stopLoss": D("58500")})
        restart(rig, COMMITS)
        await rig.settle()
        await rig.synced()
        assert hook.fired
        await book_matches_store(rig)

        rig.ticks("BTC-USDT", "58000")
        await rig.settle()
        await rig.synced()
        await book_matches_store(rig)
        for pid in (plain, moved):
            position = await rig.system.positions.get("u", pid)
            assert position.status is PositionStatus.CLOSED
            assert position.details.close_reason is CloseReason.STOP_LOSS
            assert position.details.close_price <= position.details.stop_loss  # type: ignore[operator]
        assert (await rig.system.positions.get("u", moved)).details.stop_loss == D("58500")
        fired = await rig.system.triggers.get("u", str(trigger["id"]))
        assert fired.status is TriggerStatus.TRIGGERED
        ledger = await rig.system.accounts.ledger("u")
        assert sum(e.amount for e in ledger) == (await rig.system.accounts.get_user("u")).balance
        assert sum(1 for e in ledger if e.kind.value == "close") == 2
    finally:
        await close_rig(rig)


async def test_absurd_prices_crossing_triggers_leave_book_and_store_in_agreement(
    rig: Rig,
) -> None:
    """Ticks at 1e400, 1E+35 and 1e-400 through triggers (no price filter in front) leave the
    book equal to a fresh load after each, and a real tick then stops the position out."""
    await rig.system.accounts.create_user("u", D("100000"))
    rig.price("XBTUSDTM", "60000")
    doc = await rig.system.positions.open(
        "u",
        OpenRequest(
            "XBTUSDTM", Market.FUTURES, Side.LONG, qty=D("1"), leverage=D("5"), stop_loss=D("59000")
        ),
    )
    for op, price in ((TriggerOp.ABOVE, "70000"), (TriggerOp.BELOW, "50000")):
        await rig.system.triggers.create(
            "u",
            "XBTUSDTM",
            Market.FUTURES,
            TriggerCondition(op, D(price)),
            TriggerAction(Side.LONG, qty=D("1"), leverage=D("5")),
        )
    await rig.synced()
    for absurd in ("1e400", "1E+35"):
        rig.ticks("XBTUSDTM", absurd)
        await rig.settle()
        await rig.synced()
        await book_matches_store(rig)
    position = await rig.system.positions.get("u", str(doc["id"]))
    assert position.status is PositionStatus.OPEN  # a price above the entry stops nothing
    rig.ticks("XBTUSDTM", "58900")
    await rig.settle()
    await rig.synced()
    await book_matches_store(rig)
    position = await rig.system.positions.get("u", str(doc["id"]))
    assert position.details.close_reason is CloseReason.STOP_LOSS
    assert position.details.close_price == D("58900")
    rig.ticks("XBTUSDTM", "1e-400")
    await rig.settle()
    await rig.synced()
    await book_matches_store(rig)


class FailNth:
    """Raises `error` the `n`-th time the engine reaches `step`, and only then."""

    def __init__(self, step: Step, n: int, error: Exception) -> None:
        self.step = step
        self.n = n
        self.error = error
        self.seen = 0

    def check(self, step: Step) -> None:
        if step is self.step:
            self.seen += 1
            if self.seen == self.n:
                raise self.error


@pytest.mark.parametrize(
    "error", [Temporary("injected"), RuntimeError("injected")], ids=lambda e: type(e).__name__
)
async def test_a_storm_whose_second_part_fails_still_closes_every_position(
    tmp_path: Path, error: Exception
) -> None:
    """A burst cut into parts, the next part's transaction under way while the previous
    part's book catches up: a temporary failure of the second part retries it and the
    parts after it, any other failure splits it until its crossings commit; either way
    every position closes once, for its stop loss, and the book matches the store."""
    hook = FailNth(Step.COMMIT, 2, error)
    store = SqliteStore(tmp_path / "storm_faults.db")
    store.max_writes_per_tx = 18  # type: ignore[misc]  # three crossings a part
    rig = await make_rig(tmp_path / "storm_faults.db", faults=hook, store=store)
    try:
        await rig.system.accounts.create_user("u", D("100000"))
        rig.price("BTC-USDT", "60000")
        ids = [await open_long(rig, "59000") for _ in range(10)]
        await rig.synced()
        rig.ticks("BTC-USDT", "58900")
        await rig.settle()
        await rig.synced()
        assert hook.seen > 4  # four parts, one of them again (or in halves)
        await book_matches_store(rig)
        for pid in ids:
            position = await rig.system.positions.get("u", pid)
            assert position.status is PositionStatus.CLOSED
            assert position.details.close_reason is CloseReason.STOP_LOSS
        ledger = await rig.system.accounts.ledger("u")
        assert sum(1 for e in ledger if e.kind.value == "close") == 10
        assert rig.engine.index.inflight == {}
    finally:
        await close_rig(rig)
