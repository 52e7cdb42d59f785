"""KuCoin frames decoded into domain Ticks per second, on one core (the FrameDecoder).

    .venv/bin/python bench/feed_decode.py [--frames 1000000] [--repeat 5]

Prints frames/s for spot ticker frames, futures execution frames and futures mark frames,
and the same for the naive way (json.loads + dict lookups + Decimal + Tick) as a ratio;
each figure min / median / max of `--repeat` rounds (every way once a round, interleaved),
with `machine()` (CPU, load average) at start and end.
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

from _setup import Row, Runs, add_repeat, on_machine, rounds

from cogmora.domain.enums import Market
from cogmora.domain.ticks import PriceKind, Tick
from cogmora.feeds.kucoin.decode import FrameDecoder

N = 1_000_000
SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT", "DOGE-USDT"]
CONTRACTS = ["XBTUSDTM", "ETHUSDTM", "SOLUSDTM", "XRPUSDTM", "DOGEUSDTM"]


def encoded(frame: Callable[[int], str], k: int = 1000) -> list[bytes]:
    """Frames 0..k-1 of one kind, bytes as the websocket hands them over."""
    return [frame(i).encode() for i in range(k)]


def spot_frame(i: int) -> str:
    return (
        f'{{"type":"message","topic":"/market/ticker:{SYMBOLS[i % 5]}",'
        f'"subject":"trade.ticker","data":{{"sequence":"{1545896668986 + i}",'
        f'"price":"{67000 + i * 0.1:.1f}","size":"0.011","bestAsk":"{67000.1 + i * 0.1:.1f}",'
        f'"bestAskSize":"0.18","bestBid":"{67000 + i * 0.1:.1f}","bestBidSize":"0.036",'
        f'"time":{1704873323416 + i}}}}}'
    )


def execution_frame(i: int) -> str:
    return (
        f'{{"topic":"/contractMarket/execution:{CONTRACTS[i % 5]}","type":"message",'
        f'"subject":"match","sn":{1794100537695 + i},"data":{{"symbol":"{CONTRACTS[i % 5]}",'
        f'"sequence":{1794100537695 + i},"side":"buy","size":2,"price":"{90503.9 + i:.1f}",'
        f'"takerOrderId":"247822202957807616","makerOrderId":"247822167163555840",'
        f'"tradeId":"{1794100537695 + i}","ts":{1731898619520000000 + i}}}}}'
    )


def mark_frame(i: int) -> str:
    return (
        f'{{"topic":"/contract/instrument:{CONTRACTS[i % 5]}","type":"message",'
        f'"subject":"mark.index.price","data":{{"markPrice":{90445.02 + i:.2f},'
        f'"indexPrice":{90445.02 + i:.2f},"granularity":1000,'
        f'"timestamp":{1731899129000 + i}}}}}'
    )


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
    parser.add_argument("--frames", type=int, default=N, help="frames a run (naive: a quarter)")
    add_repeat(parser)
    args = parser.parse_args()
    n = args.frames
    with on_machine():
        spot = FrameDecoder(Market.SPOT).decode
        futures = FrameDecoder(Market.FUTURES).decode
        s_frames, e_frames = encoded(spot_frame), encoded(execution_frame)
        m_frames = encoded(mark_frame)
        assert spot(s_frames[0], 1) == naive_spot(s_frames[0], 1)
        runs = Runs()
        for _ in rounds(args.repeat):  # interleaved, so the load falls on every way alike
            runs.add("spot", rate(spot, s_frames, n))
            runs.add("naive", rate(naive_spot, s_frames, n // 4))
            runs.add("exec", rate(futures, e_frames, n))
            runs.add("mark", rate(futures, m_frames, n))
        print(f"{n:,} frames a run (naive {n // 4:,}), one core")
        print(
            runs.table(
                [
                    Row("spot", "spot ticker frames -> Tick, frames/s", "naive"),
                    Row("exec", "futures execution frames -> Tick, frames/s", "naive"),
                    Row("mark", "futures mark frames -> Tick, frames/s", "naive"),
                    Row("naive", "naive json.loads + dicts (spot), frames/s"),
                ]
            )
        )
        print("(the futures rows' ratio is against the naive spot decoder: what one writes first")
        print(" is the same json.loads + dicts for every kind)")


if __name__ == "__main__":
    main()
