"""`cogmora replay` backtests trailing stops (SPEC 5.2): a trigger's position trails and
closes for `trailing_stop` in the scratch copy, and the report counts it."""

from __future__ import annotations

import io
import time
from decimal import Decimal as D
from pathlib import Path

from rich.console import Console

from cogmora.cli.compose import build_system
from cogmora.cli.replay_cmd import run_replay
from cogmora.domain.enums import Market, Side, TriggerOp
from cogmora.domain.models import TriggerAction, TriggerCondition
from cogmora.domain.ticks import Tick
from cogmora.domain.trailing import TrailingStop
from cogmora.feeds.recording import RecordingWriter
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.store.sqlite import SqliteStore

from .conftest import FUTURES, SPOT


async def test_a_replay_fires_a_trailing_stop_opened_by_a_trigger(tmp_path: Path) -> None:
    db = tmp_path / "real.db"
    store = SqliteStore(db)
    await store.start()
    system = build_system(Settings(), store, catalog=SymbolCatalog(SPOT, FUTURES))
    await system.accounts.create_user("rey", D("10000"))
    await system.triggers.create(
        "rey",
        "ETH-USDT",
        Market.SPOT,
        TriggerCondition(TriggerOp.ABOVE, D("4000")),
        TriggerAction(Side.LONG, qty=D("1"), trailing_stop=TrailingStop(D("0.01"))),
    )
    await system.aclose()
    await store.close()
    recording = tmp_path / "ticks.jsonl"
    start_ns = time.time_ns()
    async with RecordingWriter(recording) as writer:
        prices = ["3990", "4001", "4200", "4150", "4158", "4157.99"]
        writer.write(
            Tick("ETH-USDT", Market.SPOT, D(p), exchange_ns=start_ns + i * 10**9)
            for i, p in enumerate(prices)
        )
    report = await run_replay(
        Settings(store_url=f"sqlite:///{db}"), recording, None, Console(file=io.StringIO())
    )
    rey = report["users"]["rey"]
    assert (rey["closes"], rey["triggersFired"]) == ({"trailing_stop": 1}, 1)
