"""`cogmora record`: live ticks of some symbols, from KuCoin (or the simulator), to a file."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from cogmora.domain.enums import Market
from cogmora.domain.ticks import Tick
from cogmora.domain.watchlist import market_of
from cogmora.feeds.kucoin.client import KucoinFeed
from cogmora.feeds.kucoin.metrics import FeedMetrics
from cogmora.feeds.kucoin.rest import KucoinRest
from cogmora.feeds.recording import RecordingWriter


def split_by_market(symbols: Sequence[str]) -> dict[Market, list[str]]:
    """KuCoin spelling decides: `BTC-USDT` is spot, `XBTUSDTM` is a futures contract."""
    out: dict[Market, list[str]] = {Market.SPOT: [], Market.FUTURES: []}
    for sym in dict.fromkeys(symbols):
        out[market_of(sym)].append(sym)
    return out


async def record(
    spot_url: str,
    futures_url: str,
    symbols: Sequence[str],
    path: Path,
    duration: float | None,
    *,
    on_progress: Callable[[int], None] | None = None,
    registry: CollectorRegistry | None = None,
) -> int:
    """Append live ticks of `symbols` to `path` for `duration` seconds (None: until
    cancelled); returns the number of ticks written."""
    metrics = FeedMetrics(registry or CollectorRegistry())
    by_market = split_by_market(symbols)
    async with RecordingWriter(path) as writer:

        def on_ticks(ticks: list[Tick]) -> None:
            writer.write(ticks)
            if on_progress is not None:
                on_progress(writer.written + writer.pending)

        rests: list[KucoinRest] = []
        feeds: list[KucoinFeed] = []
        for market, url in ((Market.SPOT, spot_url), (Market.FUTURES, futures_url)):
            if by_market[market]:
                rest = KucoinRest(url, market)
                rests.append(rest)
                feed = KucoinFeed(rest, market, on_ticks, metrics)
                await feed.subscribe(by_market[market])
                feeds.append(feed)
        tasks = [asyncio.create_task(f.run()) for f in feeds]
        try:
            async with asyncio.timeout(duration):
                while True:
                    await asyncio.sleep(0.5)
                    await writer.maybe_flush()
        except TimeoutError:
            pass
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for rest in rests:
                await rest.aclose()
        await writer.flush()
        return writer.written
