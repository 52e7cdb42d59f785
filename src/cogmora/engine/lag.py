"""How far the book trails the store's change feed, in seconds (for /healthz, SPEC 5.1).

The engine's cursor is the seq of the last watched change it applied; the store's head
also counts writes the engine does not follow (balances, prices), so the two are not
comparable directly. Instead, once a second, this asks the feed for the first watched
change after the cursor (one indexed row, `limit=1`). When there is one, the time it was
first seen is remembered; the lag is how long ago that was while the cursor has not
passed it. A follower that keeps up clears each such change within a sample or two; a
stuck one (store away, a crash loop) lets the lag grow, and so does a sample that fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from prometheus_client import CollectorRegistry, Gauge

from cogmora.engine.book_sync import WATCHED_GROUPS
from cogmora.errors import CogmoraError
from cogmora.store.port import Store

log = structlog.get_logger("cogmora.engine")


class BookLag:
    def __init__(
        self,
        store: Store,
        cursor: Callable[[], int],
        registry: CollectorRegistry | None = None,
        period: float = 1.0,
    ) -> None:
        self._store = store
        self._cursor = cursor
        self._period = period
        self._timeout = max(2.0, 2 * period)
        self._behind: tuple[int, float] | None = None  # (first unapplied seq, seen at)
        self._last_ok = time.monotonic()
        self.error: str | None = None
        self._gauge = (
            None
            if registry is None
            else Gauge(
                "cogmora_engine_book_lag_seconds",
                "How long the oldest store change the book has not applied yet has waited",
                registry=registry,
            )
        )

    def seconds(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        lag = 0.0 if self._behind is None else now - self._behind[1]
        if self.error is not None:
            lag = max(lag, now - self._last_ok)
        return max(0.0, lag)

    async def sample(self) -> None:
        now = time.monotonic()
        cursor = self._cursor()
        if self._behind is not None and cursor >= self._behind[0]:
            self._behind = None
        try:
            async with asyncio.timeout(self._timeout):
                first = await self._store.changes(cursor, groups=WATCHED_GROUPS, limit=1)
        except TimeoutError:
            self.error = f"the change feed did not answer in {self._timeout:.0f} s"
        except CogmoraError as exc:  # FeedResync included: the follower is rebuilding
            self.error = f"{type(exc).__name__}: {exc}"
        else:
            self.error = None
            self._last_ok = now
            if not first:
                self._behind = None
            elif self._behind is None:
                self._behind = (first[0].seq, now)
        if self._gauge is not None:
            self._gauge.set(self.seconds())

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            await self.sample()
            await asyncio.sleep(self._period)
