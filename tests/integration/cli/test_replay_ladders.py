"""`cogmora replay` backtests take-profit ladders: the real engine on a scratch store fills
the legs as partial closes, and the report counts them (SPEC 5.2)."""

from __future__ import annotations

import time
from decimal import Decimal as D
from pathlib import Path

from rich.console import Console

from cogmora.cli.compose import build_system
from cogmora.cli.replay_cmd import run_replay
from cogmora.domain.enums import Market, Side
from cogmora.domain.models import PriceQuote
from cogmora.domain.orders import OpenRequest
from cogmora.domain.takeprofits import TakeProfitLeg
from cogmora.domain.ticks import Tick
from cogmora.feeds.recording import encode_tick
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.store.sqlite import SqliteStore


async def test_a_replay_fills_a_ladder_leg_by_leg_and_reports_the_partial_closes(
    tmp_path: Path,
) -> None:
    """A rise through 3100 then 3200 fills both legs of a 0.25/0.75 ladder: one partial
    close, then the rest; the real store keeps the position open."""
    db = tmp_path / "real.db"
    store = SqliteStore(db)
    await store.start()
    system = build_system(Settings(), store, catalog=SymbolCatalog(["ETH-USDT"], []))
    await system.accounts.create_user("ann", D("10000"))
    system.live.put(PriceQuote("ETH-USDT", D("3000"), system.clock.now()))
    ladder = (TakeProfitLeg(D("3100"), D("0.25")), TakeProfitLeg(D("3200"), D("0.75")))
    request = OpenRequest("ETH-USDT", Market.SPOT, Side.LONG, qty=D("2"), take_profits=ladder)
    pid = (await system.positions.open("ann", request))["id"]
    await store.close()

    recording = tmp_path / "ticks.jsonl"
    now = time.time_ns()
    with recording.open("wb") as out:
        for i, price in enumerate(("3050", "3100.5", "3150", "3201")):
            tick = Tick("ETH-USDT", Market.SPOT, D(price), exchange_ns=now + i * 1_000_000)
            out.write(encode_tick(tick))
    settings = Settings(store_url=f"sqlite:///{db}")
    report = await run_replay(settings, recording, None, Console(quiet=True))
    ann = report["users"]["ann"]
    assert (ann["partialCloses"], ann["closes"]) == (1, {"take_profit": 2})
    assert D(ann["realizedPnl"]) > 0

    store = SqliteStore(db)
    await store.start()
    system = build_system(Settings(), store, catalog=SymbolCatalog(["ETH-USDT"], []))
    position = await system.positions.get("ann", pid)
    assert (position.qty, position.details.legs_filled) == (D("2"), ())
    await store.close()
