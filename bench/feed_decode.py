"""KuCoin frames decoded into domain Ticks per second, on one core (the FrameDecoder).

    .venv/bin/python bench/feed_decode.py

Prints frames/s for spot ticker frames, futures execution frames and futures mark frames,
and the same for the naive way (json.loads + dict lookups + Decimal + Tick) as a ratio.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal

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


def best_of(decode: Callable[[bytes, int], Tick | None], frames: list[bytes], n: int) -> float:
    return max(rate(decode, frames, n) for _ in range(3))


def main() -> None:
    spot = FrameDecoder(Market.SPOT).decode
    futures = FrameDecoder(Market.FUTURES).decode
    s_frames, e_frames, m_frames = spot_frames(), execution_frames(), mark_frames()
    assert spot(s_frames[0], 1) == naive_spot(s_frames[0], 1)
    fast_spot = best_of(spot, s_frames, N)
    naive = best_of(naive_spot, s_frames, N // 4)
    fast_exec = best_of(futures, e_frames, N)
    fast_mark = best_of(futures, m_frames, N)
    print(f"spot ticker frames -> Tick:        {fast_spot:>12,.0f} frames/s "
          f"({1e9 / fast_spot:.0f} ns/frame)")
    print(f"futures execution frames -> Tick:  {fast_exec:>12,.0f} frames/s")
    print(f"futures mark frames -> Tick:       {fast_mark:>12,.0f} frames/s")
    print(f"naive json.loads + dicts (spot):   {naive:>12,.0f} frames/s")
    print(f"FrameDecoder vs naive:             {fast_spot / naive:>12.2f}x")


if __name__ == "__main__":
    main()
