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
    """Keys of the current round not yet handed out, in queue order, each handed out at
    most once a round (a key both activated and in a moved group is queued twice; the
    duplicate is dropped when reached, which keeps starting a round a C loop)."""

    __slots__ = ("_done", "_queue")

    def __init__(self) -> None:
        self._queue: deque[str] = deque()
        self._done: set[str] = set()

    def __len__(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        """A new round: what an earlier round (cut short) left queued joins it."""
        self._done.clear()

    def extend(self, keys: Iterable[str]) -> None:
        self._queue.extend(keys)

    def take(self, limit: int | None) -> list[str]:
        """Up to `limit` keys not handed out yet this round (all with None)."""
        queue, done = self._queue, self._done
        out: list[str] = []
        if limit is None:
            limit = len(queue)
        pop, add = queue.popleft, done.add
        while queue and len(out) < limit:
            key = pop()
            if key not in done:
                add(key)
                out.append(key)
        return out
