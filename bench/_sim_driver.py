"""The simulator in its own process for the end-to-end benchmarks, driven over stdin/stdout.

Commands (one JSON object per line): {"cmd": "cross", "symbol", "price", "reset"} publishes
a crossing tick, prints the time.time_ns() taken just before the frame is written, then
publishes `reset`; {"cmd": "firehose", "n"} publishes n frames as fast as it can;
{"cmd": "quit"}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from decimal import Decimal

from cogmora.domain.enums import Market
from cogmora.simulator import DEFAULT_SPOT, KucoinSimulator, SimulatorConfig


async def main() -> None:
    tick_rate = float(sys.argv[1])
    spot = dict(DEFAULT_SPOT)
    spot["LAT-USDT"] = "10.0"
    sim = KucoinSimulator(
        SimulatorConfig(tick_rate=tick_rate, seed=11, spot=spot, volatility=Decimal("0.0002"))
    )
    await sim.start()
    print(json.dumps({"spot_url": sim.spot_url, "futures_url": sim.futures_url}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "cross":
            sent = time.time_ns()
            await sim.set_price(cmd["symbol"], cmd["price"])
            await sim.set_price(cmd["symbol"], cmd["reset"])
            print(json.dumps({"sent_ns": sent}), flush=True)
        elif cmd["cmd"] == "firehose":
            t0 = time.perf_counter()
            n = await sim.firehose(int(cmd["n"]), Market.SPOT)
            print(json.dumps({"sent": n, "seconds": time.perf_counter() - t0}), flush=True)
        elif cmd["cmd"] == "wait":
            await sim.wait_subscribed(cmd["symbols"])
            print(json.dumps({"ok": True}), flush=True)
        elif cmd["cmd"] == "quit":
            break
    await sim.stop()


if __name__ == "__main__":
    asyncio.run(main())
