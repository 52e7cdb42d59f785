"""The engine's safety net after a failed follow-up (`Engine._reconcile`) keeps the
trailing peaks the book had seen: a stop never falls back behind real market highs."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from cogmora.domain.enums import CloseReason, PositionStatus
from cogmora.engine.faults import Step

from .conftest import close_rig, make_rig, pause, restart, trailed_long
from .test_engine_faults import FailOnce

COMMITS, FEED = 0, 1


async def test_a_failed_judging_again_keeps_the_books_further_peak(tmp_path: Path) -> None:
    """The peak rose to 62000 (the store has 60000) and 58950 crossed the stop loss, which a
    PATCH cleared first; judging the crossing again fails, so the book is set from the
    stored document: it keeps trailing from 62000 (stop 58900), not from 60000 (stop
    57000), the writer's next round stores 62000, and 58900 closes the position."""
    hook = FailOnce(Step.REJUDGE, RuntimeError("injected"))
    rig = await make_rig(tmp_path / "reconcile.db", faults=hook)
    try:
        pid = await trailed_long(rig)
        rig.ticks("BTC-USDT", "62000")
        await pause(rig, COMMITS)
        await pause(rig, FEED)  # the PATCH reaches the book by the re-read, not the feed
        rig.ticks("BTC-USDT", "58950")
        await rig.system.positions.amend("u", pid, {"stopLoss": None})
        restart(rig, COMMITS)
        await rig.settle()
        assert hook.fired
        state = rig.engine.book.trailing_state(pid)
        assert state is not None and state.peak_price() == D("62000")
        restart(rig, FEED)
        await rig.synced()
        assert await rig.engine.trailing.flush() == 1
        stored = (await rig.system.positions.get("u", pid)).details
        assert stored.stop_loss is None
        assert (stored.trailing_peak, stored.trailing_stop) == (D("62000"), D("58900"))
        rig.ticks("BTC-USDT", "58900")
        await rig.settle()
        closed = await rig.system.positions.get("u", pid)
        assert closed.status is not PositionStatus.OPEN
        assert (closed.details.close_reason, closed.details.close_price) == (
            CloseReason.TRAILING_STOP,
            D("58900"),
        )
    finally:
        await close_rig(rig)
