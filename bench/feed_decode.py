"""KuCoin frames decoded into domain Ticks per second, on one core (the FrameDecoder).

    .venv/bin/python bench/feed_decode.py [--repeat 5]

Prints frames/s for spot ticker frames, futures execution frames and futures mark frames,
and the same for the naive way (json.loads + dict lookups + Decimal + Tick) as a ratio;
each figure min / median / max of `--repeat` runs, with the CPU and the load average.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _setup import machine, median, spread

from cogmora.domain.enums import Market
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.feeds.kucoin.decode import FrameDecoder

N = 1_000_000
SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT", "DOGE-USDT"]
CONTRACTS = ["XBTUSDTM", "ETHUSDTM", "SOLUSDTM", "XRPUSDTM", "DOGEUSDTM"]


def spot_frames(k: int = 1000) -> list[bytes]:
    return [
        (
            f'{{"type":"message","topic":"/market/ticker:{SYMBOLS[i % 5]}",'
            f'"subject":"trade.ticker","data":{{"sequence":"{1545896668986 + i}",'
            f'"price":"{67000 + i * 0.1:.1f}","size":"0.011","bestAsk":"{67000.1 + i * 0.1:.1f}",'
            f'"bestAskSize":"0.18","bestBid":"{67000 + i * 0.1:.1f}","bestBidSize":"0.036",'
            f'"time":{1704873323416 + i}}}}}'
        ).encode()
        for i in range(k)
    ]


def execution_frames(k: int = 1000) -> list[bytes]:
    return [
        (
            f'{{"topic":"/contractMarket/execution:{CONTRACTS[i % 5]}","type":"message",'
            f'"subject":"match","sn":{1794100537695 + i},"data":{{"symbol":"{CONTRACTS[i % 5]}",'
            f'"sequence":{1794100537695 + i},"side":"buy","size":2,"price":"{90503.9 + i:.1f}",'
            f'"takerOrderId":"247822202957807616","makerOrderId":"247822167163555840",'
            f'"tradeId":"{1794100537695 + i}","ts":{1731898619520000000 + i}}}}}'
        ).encode()
        for i in range(k)
    ]


def mark_frames(k: int = 1000) -> list[bytes]:
    return [
        (
            f'{{"topic":"/contract/instrument:{CONTRACTS[i % 5]}","type":"message",'
            f'"subject":"mark.index.price","data":{{"markPrice":{90445.02 + i:.2f},'
            f'"indexPrice":{90445.02 + i:.2f},"granularity":1000,'
            f'"timestamp":{1731899129000 + i}}}}}'
        ).encode()
        for i in range(k)
    ]


def naive_spot(raw: bytes, received_ns: int) -> Tick | None:
    """What one writes first: parse everything, pick fields out of dicts."""
    msg = json.loads(raw)
    if msg.get("type") != "message":
        return None
    data = msg["data"]
    symbol = msg["topic"].split(":", 1)[1]
    return Tick(symbol, Market.SPOT, Decimal(data["price"]), PriceKind.TRADE,
                int(data["time"]) * 1_000_000, received_ns)


def rate(decode: Callable[[bytes, int], Tick | None], frames: list[bytes], n: int) -> float:
    k = len(frames)
    rounds = n // k
    start = time.perf_counter()
    for _ in range(rounds):
        for raw in frames:
            decode(raw, 1)
    return rounds * k / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"machine at start: {machine()}")
    spot = FrameDecoder(Market.SPOT).decode
    futures = FrameDecoder(Market.FUTURES).decode
    s_frames, e_frames, m_frames = spot_frames(), execution_frames(), mark_frames()
    assert spot(s_frames[0], 1) == naive_spot(s_frames[0], 1)
    runs: dict[str, list[float]] = {"spot": [], "naive": [], "exec": [], "mark": []}
    for _ in range(args.repeat):  # interleaved, so the load falls on every way alike
        runs["spot"].append(rate(spot, s_frames, N))
        runs["naive"].append(rate(naive_spot, s_frames, N // 4))
        runs["exec"].append(rate(futures, e_frames, N))
        runs["mark"].append(rate(futures, m_frames, N))
    fmt = "{:,.0f}"
    ratio = median(runs["spot"]) / median(runs["naive"])
    print(f"spot ticker frames -> Tick:       {spread(runs['spot'], fmt)} frames/s, "
          f"{ratio:.2f}x the naive way (medians)")
    print(f"futures execution frames -> Tick: {spread(runs['exec'], fmt)} frames/s")
    print(f"futures mark frames -> Tick:      {spread(runs['mark'], fmt)} frames/s")
    print(f"naive json.loads + dicts (spot):  {spread(runs['naive'], fmt)} frames/s")
    print(f"machine at end: {machine()}")


if __name__ == "__main__":
    main()
