"""A recorded file as a feed: the engine sees the same `on_ticks(list[Tick])` bursts it gets
from KuCoin, so a replay is a backtest of the users' triggers through the real code path.

As fast as possible (`speed=None`), ticks are handed over in bursts of `burst_size`; at a
recorded pace (`speed=1.0` real time, `2.0` twice as fast), ticks that share a timestamp
window form a burst and the replay sleeps between them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from cogmora.domain.ticks import Tick
from cogmora.feeds.recording import count_ticks, read_recording


class ReplayFeed:
    def __init__(
        self,
        path: Path,
        on_ticks: Callable[[list[Tick]], None],
        *,
        speed: float | None = None,
        burst_size: int = 1000,
        window_ns: int = 1_000_000,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (or None for as fast as possible)")
        self.path = path
        self.speed = speed
        self.burst_size = burst_size
        self.window_ns = window_ns
        self.delivered = 0
        self._on_ticks = on_ticks
        self._on_progress = on_progress

    async def total(self) -> int:
        """Ticks in the file (for a progress bar)."""
        return await count_ticks(self.path)

    async def run(self) -> int:
        """Replay the whole file; returns how many ticks were delivered."""
        start_wall = time.monotonic()
        first_ns: int | None = None
        async for chunk in read_recording(self.path):
            if self.speed is None:
                for i in range(0, len(chunk), self.burst_size):
                    self._deliver(chunk[i : i + self.burst_size])
                await asyncio.sleep(0)  # let the engine's tasks run between chunks
                continue
            burst: list[Tick] = []
            for tick in chunk:
                if first_ns is None:
                    first_ns = tick.exchange_ns
                if burst and tick.exchange_ns - burst[0].exchange_ns > self.window_ns:
                    await self._pace(burst, first_ns, start_wall)
                    burst = []
                burst.append(tick)
            if burst:
                await self._pace(burst, first_ns or 0, start_wall)
        return self.delivered

    async def _pace(self, burst: list[Tick], first_ns: int, start_wall: float) -> None:
        assert self.speed is not None
        due = (burst[0].exchange_ns - first_ns) / 1e9 / self.speed
        delay = due - (time.monotonic() - start_wall)
        if delay > 0:
            await asyncio.sleep(delay)
        self._deliver(burst)

    def _deliver(self, burst: list[Tick]) -> None:
        if not burst:
            return
        self._on_ticks(burst)
        self.delivered += len(burst)
        if self._on_progress is not None:
            self._on_progress(self.delivered)
