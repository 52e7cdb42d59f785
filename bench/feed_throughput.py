"""KuCoin ticker frames per second through a real loopback websocket into on_ticks.

    .venv/bin/python bench/feed_throughput.py

The simulator's firehose sends N spot ticker frames as fast as it can; the KucoinFeed
reads, decodes and delivers them in bursts. Server and client share one event loop (one
core), so the figure is a floor for the client alone. Also prints the mean burst size.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import machine

from cogmora.domain.enums import Market
from cogmora.domain.ticks import Tick
from cogmora.feeds.kucoin.client import KucoinFeed
from cogmora.feeds.kucoin.metrics import FeedMetrics
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.simulator import KucoinSimulator, SimulatorConfig

N = 200_000
SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT", "DOGE-USDT"]


async def main() -> None:
    print(f"machine at start: {machine()} (one run: no repeats)")
    config = SimulatorConfig(tick_rate=0, mark_rate=0)
    async with KucoinSimulator(config) as sim:
        received = 0
        bursts = 0
        done = asyncio.Event()

        def on_ticks(ticks: list[Tick]) -> None:
            nonlocal received, bursts
            received += len(ticks)
            bursts += 1
            if received >= N:
                done.set()

        async with KucoinRest(sim.spot_url, Market.SPOT) as rest:
            feed = KucoinFeed(rest, Market.SPOT, on_ticks, FeedMetrics(CollectorRegistry()))
            await feed.subscribe(SYMBOLS)
            task = asyncio.create_task(feed.run())
            async with asyncio.timeout(10):
                await sim.wait_subscribed(SYMBOLS)
            start = time.perf_counter()
            sent = await sim.firehose(N, Market.SPOT, SYMBOLS)
            async with asyncio.timeout(120):
                await done.wait()
            elapsed = time.perf_counter() - start
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    print(f"frames sent {sent:,}, ticks delivered {received:,} in {elapsed:.2f}s")
    print(f"end-to-end (server + client on one core): {received / elapsed:,.0f} frames/s")
    print(f"mean burst size: {received / bursts:.1f} ticks per on_ticks call")


if __name__ == "__main__":
    asyncio.run(main())
