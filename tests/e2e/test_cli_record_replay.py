"""`cogmora record` and `cogmora replay` as a user runs them, against the simulator."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

from cogmora_cli import run

from cogmora.cli.compose import build_system
from cogmora.domain.enums import Market, Side, TriggerOp
from cogmora.domain.models import TriggerAction, TriggerCondition
from cogmora.feeds.recording import count_ticks
from cogmora.services.symbols import SymbolCatalog
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.sqlite import SqliteStore


async def test_recorded_ticks_replay_as_a_backtest_of_resting_triggers(tmp_path: Path) -> None:
    """A recorded rise fires a user's `above` trigger in the replay; the store stays as it was."""
    sim = KucoinSimulator(SimulatorConfig(tick_rate=0, seed=3))
    await sim.start()
    try:
        env = {
            "COGMORA_KUCOIN_SPOT_URL": sim.spot_url,
            "COGMORA_KUCOIN_FUTURES_URL": sim.futures_url,
            "COGMORA_STORE": f"sqlite:///{tmp_path / 'real.db'}",
            "COGMORA_LOG_LEVEL": "WARNING",
        }
        recording = tmp_path / "ticks.jsonl"
        recorder = asyncio.create_task(
            run(
                "record",
                "--symbols",
                "ETH-USDT",
                "--out",
                str(recording),
                "--duration",
                "3",
                env=env,
            )
        )
        await asyncio.wait_for(sim.wait_subscribed(["ETH-USDT"]), 60)
        await sim.play([("ETH-USDT", p) for p in ("3500", "3550", "3610", "3590")], 0.05)
        code, out, err = await recorder
        assert code == 0, err
        assert await count_ticks(recording) >= 4
    finally:
        await sim.stop()

    store = SqliteStore(tmp_path / "real.db")
    await store.start()
    system = build_system(Settings(), store, catalog=SymbolCatalog(["ETH-USDT"], []))
    await system.accounts.create_user("ann", Decimal("10000"))
    await system.triggers.create(
        "ann",
        "ETH-USDT",
        Market.SPOT,
        TriggerCondition(TriggerOp.ABOVE, Decimal("3600")),
        TriggerAction(Side.LONG, qty=Decimal("1")),
    )
    await store.close()

    code, out, err = await run("replay", str(recording), env=env)
    assert code == 0, err
    report = json.loads(out[: out.rindex("}") + 1])
    assert report["users"]["ann"]["triggersFired"] == 1
    assert Decimal(report["users"]["ann"]["endBalance"]) < Decimal("10000")

    store = SqliteStore(tmp_path / "real.db")
    await store.start()
    system = build_system(Settings(), store, catalog=SymbolCatalog(["ETH-USDT"], []))
    [trigger] = await system.triggers.list_for_user("ann")
    assert trigger.status.value == "active"  # the real store is untouched
    await store.close()
