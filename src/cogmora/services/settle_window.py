"""Which `closing` positions a close handler takes next, so that replicas do not collide.

Every deployment shape runs at least two close handlers (`cogmora worker` and `cogmora
jobs` each run one), and each used to query the first batch of `closing` positions and
settle it: both got the SAME batch, in the same order, and on Firestore the second
transaction waited about 2 s on the first one's locks before it was aborted and found
nothing left to do (the storm's settlement on the emulator: 23-37 positions/s where one
handler alone settles 200/s). Here a handler reads a window of several batches at once
(one query on a snapshot, outside any transaction), cuts it into batches owner by owner,
and walks the full ones round from a random one (the short one last), so two handlers
start apart and go the same way round; before each batch, a snapshot read drops the
positions another handler has settled meanwhile, so one that catches up with the other's
finished batches passes them by without taking a lock. Correctness does not depend on
any of this: the settling transaction re-reads its documents and settles only those
still `closing`.

That alone still let two handlers meet once a window and then march in step: the one
behind takes the batch the other is settling, waits on its locks (about 2.5 s on the
emulator), finds it settled, and takes the next, which the other has just begun (10,000
positions with two handlers: 60 settled/s against 216/s for one, 84 waits of 2.4-2.8 s).
So a handler that finds part of its batch settled by someone else jumps half its queue
ahead, away from the other; and each window is read from a random owner on (wrapping
round to the first owners when that leaves it short), so handlers in a storm over many
users mostly work on different windows at all. Owner ids are Firebase's or ours, random
[A-Za-z0-9]: a random first character cuts them evenly; other ids only lose the spread.
"""

from __future__ import annotations

import random
import string
from collections import deque
from collections.abc import Sequence

from cogmora.domain.enums import PositionStatus
from cogmora.domain.models import Doc
from cogmora.store import queries as q
from cogmora.store.port import Store, Tx

CLOSING = q.positions_with_status(PositionStatus.CLOSING.value)
WINDOW_BATCHES = 12
_OWNER_BOUNDS = sorted(string.ascii_letters + string.digits)


def owner_batches(rows: Sequence[tuple[str, Doc]], size: int) -> list[list[str]]:
    """The rows' paths in batches of `size` (the last may be short), owner after owner, so
    a user document is written by as few batches as possible."""
    paths = [p for _, p in sorted((str(d["uid"]), p) for p, d in rows)]
    return [paths[i : i + size] for i in range(0, len(paths), size)]


def _closing(doc: Doc | None) -> bool:
    return doc is not None and doc.get("details", {}).get("status") == PositionStatus.CLOSING.value


class ClosingWindow:
    def __init__(self, store: Store, batch: int, batches: int = WINDOW_BATCHES) -> None:
        self._store = store
        self._batch = batch
        self._limit = batch * batches
        self._queue: deque[list[str]] = deque()
        self._open = False  # a window was read and not yet walked to its end
        self._gone = 0  # of this window's positions, found settled by someone else
        self._settled = 0  # of this window's positions, settled by us
        self._taken = 0  # positions in the batch last handed out

    def settled(self, n: int) -> None:
        """`n` of the batch last handed out were settled by us; fewer means another
        handler was on it: jump half the queue ahead rather than follow it."""
        self._settled += n
        if n < self._taken and len(self._queue) > 1:
            self._queue.rotate(-(len(self._queue) // 2))
        self._taken = 0

    async def _window(self) -> list[tuple[str, Doc]]:
        """Up to a window of `closing` positions, owner by owner from a random owner on,
        then from the first owner for what that leaves short."""
        bound = random.choice(_OWNER_BOUNDS)
        status = PositionStatus.CLOSING.value
        limit = self._limit
        rows = await self._store.read(
            lambda tx: tx.query(q.positions_with_status(status, bound).limited(limit))
        )
        if len(rows) < limit:
            seen = {p for p, _ in rows}
            more = await self._store.read(lambda tx: tx.query(CLOSING.limited(limit)))
            rows = [*rows, *(r for r in more if r[0] not in seen)][:limit]
        return rows

    async def next_batch(self) -> list[str] | None:
        """Paths of positions still `closing` to settle in one transaction; None when no
        window has any left (nothing closing, or only positions nobody can settle)."""
        while True:
            if not self._queue:
                if self._open and not self._gone and not self._settled:
                    self._open = False  # what is left is what settle_in skips: stop here
                    return None
                rows = await self._window()
                if not rows:
                    self._open = False
                    return None
                batches = owner_batches(rows, self._batch)
                full, short = (
                    batches[: len(rows) // self._batch],
                    batches[len(rows) // self._batch :],
                )
                start = random.randrange(len(full)) if full else 0
                self._queue = deque(full[start:] + full[:start] + short)
                self._open, self._gone, self._settled = True, 0, 0
                # The first batch is as fresh as the query that just found it closing:
                # reading it again on a snapshot would decode 1,000 documents for nothing.
                first = self._queue.popleft()
                self._taken = len(first)
                return first
            paths = self._queue.popleft()

            def body(tx: Tx, paths: list[str] = paths) -> list[Doc | None]:
                return tx.get_many(paths)

            docs = await self._store.read(body)
            still = [p for p, d in zip(paths, docs, strict=True) if _closing(d)]
            self._gone += len(paths) - len(still)
            if still:
                self._taken = len(still)
                return still
