"""record(): live ticks from the simulator into a file that replays to the same ticks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from cogmora.domain.enums import Market
from cogmora.domain.ticks import Tick
from cogmora.feeds.record import record, split_by_market
from cogmora.feeds.recording import load_recording
from cogmora.feeds.replay import ReplayFeed
from cogmora.simulator import KucoinSimulator, SimulatorConfig


@pytest.fixture
async def sim() -> AsyncIterator[KucoinSimulator]:
    async with KucoinSimulator(SimulatorConfig(tick_rate=50, mark_rate=10)) as simulator:
        yield simulator


def test_symbols_split_by_kucoin_spelling() -> None:
    """Hyphenated symbols are recorded from spot, the others from futures."""
    assert split_by_market(["BTC-USDT", "XBTUSDTM", "BTC-USDT"]) == {
        Market.SPOT: ["BTC-USDT"], Market.FUTURES: ["XBTUSDTM"]}


async def test_record_writes_spot_and_futures_ticks_that_replay(
    sim: KucoinSimulator, tmp_path: Path
) -> None:
    """Recording for a while writes both markets' ticks; replaying gives them back."""
    path = tmp_path / "live.jsonl"
    progress: list[int] = []
    written = await record(sim.spot_url, sim.futures_url, ["BTC-USDT", "XBTUSDTM"], path,
                           duration=1.0, on_progress=progress.append)
    recorded = await load_recording(path)
    assert written == len(recorded) > 0
    assert {(t.symbol, t.market) for t in recorded} >= {("BTC-USDT", Market.SPOT),
                                                        ("XBTUSDTM", Market.FUTURES)}
    assert all(t.price > 0 for t in recorded)
    replayed: list[Tick] = []
    await ReplayFeed(path, replayed.extend).run()
    assert replayed == recorded


async def test_simulator_replays_a_recording_to_subscribers(tmp_path: Path) -> None:
    """A simulator started on a recording plays the recorded prices."""
    path = tmp_path / "script.jsonl"
    lines = [
        '{"ns": 1000000000, "market": "spot", "symbol": "BTC-USDT", "price": "50000.5"}',
        '{"ns": 1001000000, "market": "spot", "symbol": "BTC-USDT", "price": "50001.5"}',
    ]
    path.write_text("\n".join(lines) + "\n")
    config = SimulatorConfig(tick_rate=0, mark_rate=0, record_file=path, spot={}, futures={})
    async with KucoinSimulator(config) as sim:
        assert sim.symbols(Market.SPOT) == ["BTC-USDT"]
        seen: set[Decimal] = set()

        async def watch() -> None:
            while {Decimal("50000.5"), Decimal("50001.5")} - seen:
                seen.add(sim.price("BTC-USDT"))
                await asyncio.sleep(0.001)

        async with asyncio.timeout(60):
            await watch()
