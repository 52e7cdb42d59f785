"""KuCoin ticker frames per second through a real loopback websocket into on_ticks.

    .venv/bin/python bench/feed_throughput.py [--frames 200000] [--repeat 5]

The simulator's firehose sends N spot ticker frames as fast as it can; the KucoinFeed
reads, decodes and delivers them in bursts. Server and client share one event loop (one
core), so the figure is a floor for the client alone. Also prints the mean burst size.

The naive way, for the ratio: a bare aiohttp websocket on the same simulator (same token
call, welcome and subscribe), `json.loads` of every frame, dict lookups, Decimal and a
Tick, one `on_ticks` call per frame (bench/feed_decode.py's `naive_spot`). Both ways pay
for the same server in the same loop, so the ratio understates the client's own.
Every way runs once a round on a fresh simulator, `--repeat` rounds interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import Row, Runs, add_repeat, on_machine, rounds
from feed_decode import naive_spot

from cogmora.domain.enums import Market
from cogmora.domain.ticks import Tick
from cogmora.feeds.kucoin.client import KucoinFeed
from cogmora.feeds.kucoin.metrics import FeedMetrics
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.simulator import KucoinSimulator, SimulatorConfig

SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT", "DOGE-USDT"]

Client = Callable[[KucoinSimulator, Callable[[list[Tick]], None]], Coroutine[Any, Any, None]]


async def kucoin_feed(sim: KucoinSimulator, on_ticks: Callable[[list[Tick]], None]) -> None:
    async with KucoinRest(sim.spot_url, Market.SPOT) as rest:
        feed = KucoinFeed(rest, Market.SPOT, on_ticks, FeedMetrics(CollectorRegistry()))
        await feed.subscribe(SYMBOLS)
        await feed.run()


async def naive_reader(sim: KucoinSimulator, on_ticks: Callable[[list[Tick]], None]) -> None:
    """What one writes first: read a frame, parse all of it, hand one tick over."""
    async with KucoinRest(sim.spot_url, Market.SPOT) as rest:
        token = await rest.bullet_public()
    endpoint = token.instance_servers[0].endpoint
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{endpoint}{'&' if '?' in endpoint else '?'}token={token.token}&connectId=naive"
        ) as ws,
    ):
        while json.loads((await ws.receive()).data).get("type") != "welcome":
            pass
        topic = "/market/ticker:" + ",".join(SYMBOLS)
        await ws.send_str(json.dumps({"id": "1", "type": "subscribe", "topic": topic}))
        async for msg in ws:
            tick = naive_spot(msg.data, time.time_ns())
            if tick is not None:
                on_ticks([tick])


async def measure(client: Client, n: int) -> tuple[float, float]:
    """(ticks delivered per second from the firehose's start, mean ticks per on_ticks)."""
    config = SimulatorConfig(tick_rate=0, mark_rate=0)
    async with KucoinSimulator(config) as sim:
        received = 0
        bursts = 0
        done = asyncio.Event()

        def on_ticks(ticks: list[Tick]) -> None:
            nonlocal received, bursts
            received += len(ticks)
            bursts += 1
            if received >= n:
                done.set()

        task = asyncio.create_task(client(sim, on_ticks))
        try:
            async with asyncio.timeout(10):
                await sim.wait_subscribed(SYMBOLS)
            start = time.perf_counter()
            sent = await sim.firehose(n, Market.SPOT, SYMBOLS)
            async with asyncio.timeout(120):
                await done.wait()
            elapsed = time.perf_counter() - start
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert sent == n == received, (sent, n, received)
    return received / elapsed, received / bursts


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200_000)
    add_repeat(parser)
    args = parser.parse_args()
    with on_machine():
        runs = Runs()
        for _ in rounds(args.repeat):
            rate, burst = await measure(kucoin_feed, args.frames)
            runs.add("feed", rate)
            runs.add("burst", burst)
            runs.add("naive", (await measure(naive_reader, args.frames))[0])
        print(f"{args.frames:,} spot ticker frames a run, server and client on one core")
        print(
            runs.table(
                [
                    Row("feed", "KucoinFeed -> on_ticks, frames/s", "naive"),
                    Row("naive", "naive: json.loads + one on_ticks per frame, frames/s"),
                    Row("burst", "KucoinFeed mean burst, ticks per on_ticks call", fmt="{:,.1f}"),
                ]
            )
        )


if __name__ == "__main__":
    asyncio.run(main())
