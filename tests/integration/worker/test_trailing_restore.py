"""A trailing peak rebuilt at a restart is stored at once (SPEC 5.2): the stored peak and
the gap's candles rebuild it, and the trailing writer writes what they rebuilt without
waiting for the next trade, so a second crash resumes from it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from cogmora.cli.compose import build_system
from cogmora.domain.enums import Market, Side
from cogmora.domain.models import PriceQuote
from cogmora.domain.orders import OpenRequest
from cogmora.domain.paths import position_path
from cogmora.domain.trailing import TrailingStop
from cogmora.engine.engine import Engine
from cogmora.engine.gap_replay import GapReplay
from cogmora.engine.metrics import EngineMetrics
from cogmora.engine.trail_writes import TrailingWriter
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.store.sqlite import SqliteStore
from conditions import until

from .conftest import Live, start_live, stop_live
from .test_gap_replay import SYM, followed, position
from .trailing_restart import backdate, market_after_gap, trailed_then_stopped


async def _stored(lv: Live, uid: str, pid: str) -> dict[str, Any]:
    doc = await lv.system.store.read(lambda tx: tx.get(position_path(uid, pid)))
    assert doc is not None
    return dict(doc["details"])


async def test_the_peak_a_restart_rebuilds_from_the_candles_is_stored_without_a_new_trade(
    tmp_path: Path,
) -> None:
    """Live, the peak reaches 61000 and is stored; while no worker runs the price climbs to
    62000 and settles at 61500 (above the stop, 60760); on start the candles raise the peak
    to 62000, and the store holds 62000 and 60760 with no trade after the restart."""
    db = tmp_path / "restore.db"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    auth, pid = await trailed_then_stopped(db, "ria", now)
    sim = await market_after_gap(now, then="61500")
    lv = await start_live(db, sim=sim)
    try:
        await followed(lv)
        state = lv.worker.engine.book.trailing_state(pid)
        assert state is not None and str(state.peak_price()) == "62000.00000000"

        async def rebuilt_stored() -> bool:
            details = await _stored(lv, "ria", pid)
            return (details["trailingPeak"], details["trailingStop"]) == (
                "62000.00000000",
                "60760.00000000",
            )

        await until(rebuilt_stored, what="the rebuilt peak stored")
        doc = await position(lv, auth, pid)
        assert doc["details"]["status"] == "open"
        assert doc["details"]["trailingPeak"] == "62000.00000000"
    finally:
        await stop_live(lv)


async def test_the_replay_asks_the_writer_for_a_round_at_once(tmp_path: Path) -> None:
    """The same restore on the engine alone, with a writer whose own rounds are an hour
    apart: the rebuilt peak is stored anyway, so it is the replay that asked for it."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    store = SqliteStore(tmp_path / "engine.db")
    await store.start()
    system = build_system(Settings(), store, catalog=SymbolCatalog([SYM], []))
    await system.accounts.create_user("rex", Decimal("100000"))
    system.live.put(PriceQuote(SYM, Decimal("61000"), system.clock.now()))
    request = OpenRequest(SYM, Market.SPOT, Side.LONG, qty=Decimal("0.1"),
                          trailing_stop=TrailingStop(Decimal("0.02")))
    pid = str((await system.positions.open("rex", request))["id"])
    assert (await system.positions.get("rex", pid)).details.trailing_peak == Decimal("61000")
    await store.transact(backdate("rex", pid, now, last_price=False))
    sim = await market_after_gap(now, then="61500")
    rest = KucoinRest(sim.spot_url, Market.SPOT)
    engine = Engine(store, system.settings.fees, system.clock, system.live,
                    EngineMetrics(CollectorRegistry()))
    await engine.load()
    engine.trailing = TrailingWriter(store, engine.book, engine.index.owners, interval=3600.0)
    tasks = [asyncio.create_task(engine.trailing.run()), asyncio.create_task(engine.follow())]
    gaps = GapReplay(engine, engine.on_ticks, {Market.SPOT: rest}, lambda _: Market.SPOT,
                     engine.metrics)
    try:
        gaps.seed(SYM, now - timedelta(minutes=3))
        gaps.live([SYM])
        await gaps.idle()
        state = engine.book.trailing_state(pid)
        assert state is not None and state.peak_price() == Decimal("62000")

        async def stored() -> bool:
            doc = await store.read(lambda tx: tx.get(position_path("rex", pid)))
            return doc is not None and doc["details"]["trailingPeak"] == "62000.00000000"

        await until(stored, within=30, what="the rebuilt peak stored")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await gaps.aclose()
        await rest.aclose()
        await system.aclose()
        await store.close()
        await sim.stop()
