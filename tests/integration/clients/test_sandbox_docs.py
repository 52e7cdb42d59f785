"""Every Python snippet in docs/SIMULATOR.md runs as written against the simulator.

Each snippet runs in its own interpreter, as a user would paste it, with only the
documented ports (8181/8182) replaced by the test simulator's ephemeral ones; the
simulator here behaves like `cogmora simulator` (every symbol walks) with faster timed
pushes.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cogmora.simulator import KucoinSimulator, SimulatorConfig

DOC = Path(__file__).resolve().parents[3] / "docs" / "SIMULATOR.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


@pytest.fixture
async def sandbox() -> AsyncIterator[KucoinSimulator]:
    config = SimulatorConfig(
        tick_rate=10, walk_unwatched=True, snapshot_interval_s=0.2,
        futures_snapshot_interval_s=0.2, ping_interval_ms=2000, ping_timeout_ms=2000,
        spot={"BTC-USDT": "67000.0", "ETH-USDT": "3500.00"},
        futures={"XBTUSDTM": "67000.0"},
    )
    async with KucoinSimulator(config) as simulator:
        yield simulator


def test_the_doc_has_snippets_for_ccxt_and_the_sdk() -> None:
    """The doc shows ccxt REST, ccxt.pro streams and the official SDK."""
    joined = "\n".join(SNIPPETS)
    assert len(SNIPPETS) >= 3
    assert "ccxt.kucoin(" in joined and "ccxtpro.kucoin(" in joined
    assert "DefaultClient(option)" in joined


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
async def test_doc_snippet_runs_against_the_simulator(
    sandbox: KucoinSimulator, index: int
) -> None:
    """The snippet exits 0 and prints what it fetched."""
    code = (SNIPPETS[index]
            .replace("http://127.0.0.1:8181", sandbox.spot_url)
            .replace("http://127.0.0.1:8182", sandbox.futures_url))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(120):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-3000:]
    assert out.strip(), "the snippet printed nothing"
