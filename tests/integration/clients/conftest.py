"""A simulator for the client contract tests: scripted prices (no walk), fast timed pushes.

The clients under test (ccxt, kucoin-universal-sdk) are pointed at it by their URL options
only, exactly as docs/SIMULATOR.md tells a user to do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cogmora.simulator import KucoinSimulator, SimulatorConfig


@pytest.fixture
async def sim() -> AsyncIterator[KucoinSimulator]:
    config = SimulatorConfig(
        tick_rate=0, mark_rate=5, ping_interval_ms=2000, ping_timeout_ms=2000,
        silent_client_timeout_s=30, snapshot_interval_s=0.2,
        futures_snapshot_interval_s=0.2, funding_interval_s=0.2,
        spot={"BTC-USDT": "67000.0", "ETH-USDT": "3500.00"},
        futures={"XBTUSDTM": "67000.0", "ETHUSDTM": "3500.00"},
    )
    async with KucoinSimulator(config) as simulator:
        yield simulator

