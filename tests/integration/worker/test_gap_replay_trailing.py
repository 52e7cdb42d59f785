"""A trailing stop across a restart (SPEC 5.1, 5.2): the stored peak and the gap's candles
rebuild the peak, so the stop fires as if the worker had never stopped."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cogmora.domain.paths import price_path
from cogmora.domain.timeutil import to_iso
from cogmora.simulator import KucoinSimulator
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore

from .conftest import start_live, stop_live
from .test_gap_replay import SIM, SYM, closed, followed, open_long, position, until


async def test_a_trailing_stop_fires_in_the_gap_from_the_stored_peak_and_the_candles(
    tmp_path: Path,
) -> None:
    """Live, the peak reaches 61000 and is stored; while no worker runs the price climbs to
    62000 and falls to 60500; on start the candles raise the peak to 62000 and fire the
    stop at 62000 * 0.98 = 60760, recovered (the stored peak alone would put it at 59780)."""
    db = tmp_path / "trail.db"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    lv = await start_live(db, SIM)
    try:
        auth = await lv.user("tia")
        await lv.sim.set_price(SYM, "60000")
        pid = await open_long(lv, auth, trailingStop={"callbackRate": "0.02"})  # type: ignore[arg-type]
        await followed(lv)
        await lv.synced()
        await lv.sim.set_price(SYM, "61000")

        async def stored() -> bool:
            doc = await position(lv, auth, pid)
            return bool(doc["details"]["trailingPeak"] == "61000.00000000")

        await until(stored)
        doc = await position(lv, auth, pid)
        assert doc["details"]["trailingStop"] == "59780.00000000"
    finally:
        await stop_live(lv)
    store = SqliteStore(db)
    await store.start()

    def rewrite(tx: Tx) -> None:
        path = f"users/tia/openPositions/{pid}"
        doc = tx.get(path)
        assert doc is not None
        tx.set(path, {**doc, "openedAt": to_iso(now - timedelta(minutes=4))})
        tx.set(price_path(SYM), {"symbol": SYM, "price": "61000",
                                 "at": to_iso(now - timedelta(minutes=3))})

    await store.transact(rewrite)
    await store.close()
    # Created at the stored price: the simulator's synthetic candles before its first
    # scripted trade wander around its creation price, which must not be near the stop.
    sim = KucoinSimulator(replace(SIM, spot={**SIM.spot, SYM: "61000"}))
    await sim.start()
    dip_ms = int((now - timedelta(minutes=2)).timestamp() * 1000) + 5000
    await sim.set_price(SYM, "62000", at_ms=dip_ms - 1000)
    await sim.set_price(SYM, "60500", at_ms=dip_ms)
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
