"""How long the SQL backends keep their change feed, and the task that enforces it.

The feed is for followers, not an archive: without pruning it grows by every write
forever. The rule is the union of two guarantees, so a follower is cut off only when it
is both far behind and long behind:

- the latest `keep` changes are always kept (a burst of writes cannot outrun a follower
  that is merely busy for a moment), and
- every change younger than `min_age` seconds is kept (a follower that pauses, a
  restarting replica, a GC pause, catches up from where it was).

The long-running roles take both numbers from COGMORA_FEED_RETENTION_ROWS and
COGMORA_FEED_RETENTION_SECONDS (settings.py; composed in cli/stores.py); the defaults
below are theirs.

A follower whose cursor is older than the pruned point gets `FeedResync` from
`changes()` and rebuilds its view; nothing is ever skipped silently.

Ages are measured by marks this pruner takes itself, (when, head) at each pass, rather
than a time column on every change: the change rows stay as small as they were, and a
pruner that has only just started has no old marks, so it prunes by age only once it has
watched the feed for `min_age` itself (a restart can only keep more, never less). Each
process that opens a store runs one pruner; two pruning at once is harmless (each pass
deletes only below the floor it sets, in the same transaction).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from cogmora.errors import CogmoraError, FeedResync

log = structlog.get_logger("cogmora.store.retention")


@dataclass(frozen=True, slots=True)
class Retention:
    keep: int = 100_000  # at least the latest N changes
    min_age: float = 600.0  # and every change younger than this, in seconds
    period: float = 30.0  # seconds between passes
    batch: int = 20_000  # rows deleted per transaction, so a pass never holds the writer long

    def __post_init__(self) -> None:
        if self.keep < 1 or self.min_age < 0 or self.period <= 0 or self.batch < 1:
            raise ValueError(f"invalid feed retention {self}")


DEFAULT_RETENTION = Retention()  # immutable: the rule, not a shared pruner


class PrunableFeed(Protocol):
    async def head(self) -> int: ...

    async def prune_through(self, seq: int, *, batch: int = 20_000) -> int: ...


class FeedPruner:
    """Applies a `Retention` to one store, pass by pass."""

    def __init__(
        self,
        feed: PrunableFeed,
        retention: Retention,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._feed = feed
        self._retention = retention
        self._clock = clock
        self._marks: deque[tuple[float, int]] = deque()  # (when, head), oldest first
        self.pruned = 0  # changes removed by this pruner, for tests and benchmarks

    def _aged_head(self, now: float) -> int:
        """The newest head seen at least `min_age` ago (0 if none yet)."""
        aged = 0
        marks, min_age = self._marks, self._retention.min_age
        while marks and now - marks[0][0] >= min_age:
            aged = marks.popleft()[1]
        if aged:
            marks.appendleft((now - min_age, aged))  # still the bound for the next pass
        return aged

    async def run_once(self) -> int:
        """One pass: prune what both rules allow; returns the number of changes removed."""
        now = self._clock()
        head = await self._feed.head()
        self._marks.append((now, head))
        through = min(head - self._retention.keep, self._aged_head(now))
        if through <= 0:
            return 0
        removed = await self._feed.prune_through(through, batch=self._retention.batch)
        self.pruned += removed
        if removed:
            log.debug("pruned change feed", through=through, removed=removed)
        return removed

    async def run(self) -> None:
        """Prune every `period` seconds until cancelled; a failed pass is retried next time."""
        while True:
            await asyncio.sleep(self._retention.period)
            try:
                await self.run_once()
            except CogmoraError as exc:
                log.warning("change feed prune failed; retrying next pass", error=str(exc))


def check_floor(after: int, floor: int) -> None:
    """Raise FeedResync if a reader at `after` has missed changes pruned through `floor`."""
    if after < floor:
        raise FeedResync(
            f"change feed cursor {after} is older than what is kept (pruned through {floor}):"
            " rebuild from the store and follow from head()"
        )
