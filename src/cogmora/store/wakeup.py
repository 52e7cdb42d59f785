"""How a change-feed reader sleeps until a commit wakes it: shared by every backend.

A commit may happen on any thread (SQLite's writer, a psycopg pool thread, a Firestore
listener callback) or in another process (seen through LISTEN/NOTIFY or a poll), while
readers await on the event loop; `wake()` is the one thread-safe door between the two.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TypeVar

from cogmora.waits import woken_within

T = TypeVar("T")


class Wakeup:
    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def wake(self) -> None:
        """From any thread: wake every sleeping reader."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(self.release)

    def release(self) -> None:
        """From the event loop: wake every sleeping reader."""
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def sleep(self, seconds: float) -> None:
        """Until woken, or `seconds` pass."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        try:
            await woken_within(fut, seconds)
        finally:
            self._waiters.discard(fut)

    async def poll(
        self, read: Callable[[], Awaitable[list[T]]], wait: float, period: float
    ) -> list[T]:
        """Read until something comes back or `wait` seconds pass, sleeping between reads
        until woken (or `period` at most, for commits nobody announced)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.add(fut)  # before the read: a commit during it still wakes us
            try:
                rows = await read()
                remaining = deadline - loop.time()
                if rows or remaining <= 0:
                    return rows
                await woken_within(fut, min(remaining, period))
            finally:
                self._waiters.discard(fut)
