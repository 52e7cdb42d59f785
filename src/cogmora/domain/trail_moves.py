"""The write-out of moved trailing peaks, one round at a time and in bounded slices.

A big move can move the peaks of tens of thousands of trailing stops in one tick. The
tick itself only raises a watermark (`trail_book`); what the store must learn is handed
out here, so the writer never holds the event loop for the whole crowd at once:

- a *round* starts once per write interval and takes every key moved since the previous
  round's start into a queue (a set difference and an extend: C loops, not Python ones);
- the writer then takes *slices* of at most `limit` keys, resolving each against the
  book as it is at that moment (a key fired or removed since is skipped; a key moved
  again is written with its newest peak);
- a key is queued at most once per round, so with the writer's pause between rounds a
  position is written at most once per interval, however long a round takes.

Firing never waits for any of this: it is judged on the tick, from the book's own peaks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class WriteQueue:
    """Keys of the current round not yet handed out, oldest first, each at most once."""

    __slots__ = ("_queue", "_queued")

    def __init__(self) -> None:
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()

    def __len__(self) -> int:
        return len(self._queue)

    def extend(self, keys: Iterable[str]) -> int:
        """Queue the keys not queued yet; returns how many were new."""
        fresh = set(keys)
        fresh -= self._queued
        self._queued |= fresh
        self._queue.extend(fresh)
        return len(fresh)

    def take(self, limit: int | None) -> list[str]:
        """Up to `limit` keys (all with None), in queue order."""
        queue = self._queue
        if limit is None or limit >= len(queue):
            out = list(queue)
            queue.clear()
            self._queued.clear()
            return out
        out = [queue.popleft() for _ in range(max(0, limit))]
        self._queued.difference_update(out)
        return out
