"""A trailing stop across a restart (SPEC 5.1, 5.2): the stored peak and the gap's candles
rebuild the peak, so the stop fires as if the worker had never stopped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from .conftest import start_live, stop_live
from .test_gap_replay import SYM, closed
from .trailing_restart import market_after_gap, trailed_then_stopped


async def test_a_trailing_stop_fires_in_the_gap_from_the_stored_peak_and_the_candles(
    tmp_path: Path,
) -> None:
    """Live, the peak reaches 61000 and is stored; while no worker runs the price climbs to
    62000 and falls to 60500; on start the candles raise the peak to 62000 and fire the
    stop at 62000 * 0.98 = 60760, recovered (the stored peak alone would put it at 59780)."""
    db = tmp_path / "trail.db"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    auth, pid = await trailed_then_stopped(db, "tia", now)
    sim = await market_after_gap(now, then="60500")
    await sim.set_price(SYM, "60900")
    lv = await start_live(db, sim=sim)
    try:
        doc = await closed(lv, auth, pid)
        details = doc["details"]
        assert (details["closeReason"], details["recovered"], details["closePrice"]) == (
            "trailing_stop",
            True,
            "60760.00000000",
        )
    finally:
        await stop_live(lv)
