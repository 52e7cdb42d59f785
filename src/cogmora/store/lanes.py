"""Per-document lanes: one process never races itself on a hot document.

Why: Firestore (and PostgreSQL's serializable isolation) settle two transactions that read
and write the same document by aborting one and re-running it. With 16 requests over 5
users in one API process, every open reads and rewrites its user's document, so most
attempts were lost to a sibling transaction of the same process, and one in five opens ran
out of its retry budget (issue 7: 503 "Firestore contention"). Here a process's own
transactions on a document wait in line, in arrival order, before they reach the store;
the store's retries are left for what they are for, contention with OTHER processes.

Why the caller names the document instead of the store learning it: a body's writes are
known only once it has read, and on Firestore locked, what it reads; that is too late to
queue it. The money paths know their hot document (the user's) before they start.

Why lanes belong to the store instance (`lanes(store)`): every service on one store in a
process shares them without being wired together, and two stores (a test's, a replay's
scratch store) never wait for each other.

`GroupCommit` goes one step further for a path that is called many times at once: requests
queued behind a transaction in flight are committed together in the next one, so a user
document is written once per batch, not once per request (Firestore's sustained limit is
about one write per second per document).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeAlias, TypeVar, Union

from cogmora.errors import Temporary
from cogmora.store.port import Store

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - an item, as in the docs
R = TypeVar("R")


class _Lane:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # holders and waiters: the lane is forgotten when it drops to 0


class Lanes:
    """The lanes of one store instance, keyed by document path."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lanes: dict[str, _Lane] = {}

    def __len__(self) -> int:
        """Lanes held or waited on now (the rest are forgotten): for tests."""
        return len(self._lanes)

    @asynccontextmanager
    async def hold(self, keys: Iterable[str]) -> AsyncIterator[None]:
        """Hold every lane in `keys`, taken in sorted order, so two holders of overlapping
        sets can never wait for each other."""
        ordered = sorted(set(keys))
        entered: list[_Lane] = []
        acquired: list[_Lane] = []
        try:
            for key in ordered:
                lane = self._lanes.get(key)
                if lane is None:
                    lane = self._lanes[key] = _Lane()
                lane.users += 1
                entered.append(lane)
                await lane.lock.acquire()
                acquired.append(lane)
            yield
        finally:
            for lane in reversed(acquired):
                lane.lock.release()
            for key, lane in zip(ordered, entered, strict=False):
                lane.users -= 1
                if lane.users == 0 and self._lanes.get(key) is lane:
                    del self._lanes[key]

    async def transact(self, keys: Iterable[str], body: Callable[[Any], T]) -> T:
        """`store.transact(body)` once this process holds no other transaction on `keys`."""
        async with self.hold(keys):
            return await self._store.transact(body)


_BY_STORE: weakref.WeakKeyDictionary[Any, Lanes] = weakref.WeakKeyDictionary()


def lanes(store: Store) -> Lanes:
    """The store instance's lanes (made on first use)."""
    found = _BY_STORE.get(store)
    if found is None:
        found = _BY_STORE[store] = Lanes(store)
    return found


Outcome: TypeAlias = Union[R, Exception]  # noqa: UP007 - a generic alias


class GroupCommit(Generic[I, R]):
    """Items submitted for one key are committed in batches, one batch in flight per key.

    `run(key, items)` commits a batch (one transaction, inside the key's lane) and returns
    one outcome per item: its result, or the exception that item alone failed with. An
    item is never held back to wait for company: a batch is whatever queued while the one
    before it was committing, up to `limit` items. Items with the same `token` (say, one
    idempotency key) never share a batch, so the later one sees the earlier one committed.
    If a batch of several raises (other than the store giving up, `Temporary`, which would
    fail them all alike), each of its items is run alone, so one bad item cannot fail the
    others.
    """

    def __init__(
        self,
        store: Store,
        run: Callable[[str, list[I]], Awaitable[list[Outcome[R]]]],
        *,
        limit: int,
        token: Callable[[I], Hashable | None] = lambda _: None,
    ) -> None:
        self._lanes = lanes(store)
        self._run = run
        self._limit = max(1, limit)
        self._token = token
        self._queues: dict[str, deque[tuple[I, asyncio.Future[R]]]] = {}
        self._drainers: dict[str, asyncio.Task[None]] = {}

    async def submit(self, key: str, item: I) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, deque()).append((item, future))
        if key not in self._drainers:
            self._drainers[key] = asyncio.create_task(self._drain(key))
        return await future

    def _take(self, key: str) -> list[tuple[I, asyncio.Future[R]]]:
        queue = self._queues[key]
        batch: list[tuple[I, asyncio.Future[R]]] = []
        later: list[tuple[I, asyncio.Future[R]]] = []
        tokens: set[Hashable] = set()
        while queue and len(batch) < self._limit:
            item, future = queue.popleft()
            if future.done():  # its caller went away before it was sent: nothing to do
                continue
            token = self._token(item)
            if token is not None and token in tokens:
                later.append((item, future))
                continue
            if token is not None:
                tokens.add(token)
            batch.append((item, future))
        queue.extendleft(reversed(later))
        return batch

    async def _drain(self, key: str) -> None:
        batch: list[tuple[I, asyncio.Future[R]]] = []
        try:
            while self._queues.get(key):
                batch = self._take(key)
                if batch:
                    async with self._lanes.hold([key]):
                        await self._commit(key, batch)
                batch = []
        except BaseException as exc:  # cancelled (shutdown): nobody is left waiting for ever
            for _, future in [*batch, *self._queues.get(key, ())]:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            self._queues.pop(key, None)
            raise
        finally:
            if not self._queues.get(key):
                self._queues.pop(key, None)
            self._drainers.pop(key, None)

    async def _commit(self, key: str, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self._run(key, [item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or isinstance(exc, Temporary):  # the store gave up: all alike
                outcomes = [exc] * len(batch)
            else:
                outcomes = []
                for item, _ in batch:
                    try:
                        outcomes += await self._run(key, [item])
                    except Exception as alone:
                        outcomes.append(alone)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
