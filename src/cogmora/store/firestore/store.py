"""The seed's engine: Firestore through the official client (google-cloud-firestore).

Bodies run on a thread pool with the synchronous client, in Firestore transactions that
this module begins, commits and retries itself (rather than through
`firestore.transactional`) so that every failure is translated at one place: ABORTED
(contention) re-runs the body with the transaction's retry id, which keeps its place in
Firestore's queue; ALREADY_EXISTS from a `create` is Conflict; the rest goes through
`errors.translate`. Reads-before-writes is Firestore's own rule, checked here too so the
error is the same as on the SQL backends. FIRESTORE_EMULATOR_HOST points the client at the
emulator.

The change feed (`feed`) listens to the fed collection groups from start(). A commit
records its time per group written; head() and changes() first wait (briefly) until
those groups' listeners have delivered a snapshot at least that recent, so a process
sees its own writes on its feed as it does on the SQL backends.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import datetime
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore

from cogmora.errors import CogmoraError, Temporary
from cogmora.store.firestore.errors import translate
from cogmora.store.firestore.feed import SnapshotFeed
from cogmora.store.firestore.tx import FsTx
from cogmora.store.port import UNFED_GROUPS, Change
from cogmora.store.sqlschema import KNOWN_GROUPS
from cogmora.store.wakeup import Wakeup

T = TypeVar("T")
FED_GROUPS = frozenset(KNOWN_GROUPS) - UNFED_GROUPS


class FirestoreStore:
    """Store port on Firestore: `FirestoreStore("my-project")`."""

    max_writes_per_tx = 500

    def __init__(
        self,
        project: str,
        *,
        database: str | None = None,
        feed_groups: frozenset[str] = FED_GROUPS,
        threads: int = 8,
        retries: int = 12,
        keep_changes: int = 100_000,
    ) -> None:
        self._project = project
        self._database = database
        self._feed_groups = feed_groups - UNFED_GROUPS
        self._retries = retries
        self._keep = keep_changes
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="firestore")
        self._client: firestore.Client | None = None
        self._feed: SnapshotFeed | None = None
        self._pending: dict[str, datetime] = {}  # group -> latest local commit time
        self._wakeup = Wakeup()

    @property
    def name(self) -> str:
        return f"firestore://{self._project}" + (f"/{self._database}" if self._database else "")

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._wakeup.bind(loop)
        await loop.run_in_executor(self._executor, self._open)

    def _open(self) -> None:
        try:
            kwargs: dict[str, Any] = {"project": self._project}
            if self._database:
                kwargs["database"] = self._database
            self._client = firestore.Client(**kwargs)
            self._feed = SnapshotFeed(self._client, self._wakeup.wake, self._keep)
            self._feed.listen(self._feed_groups)
        except CogmoraError:
            raise
        except Exception as exc:
            raise translate(exc) from exc

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        if self._feed is not None:
            await loop.run_in_executor(self._executor, self._feed.stop)
        if self._client is not None:
            await loop.run_in_executor(self._executor, self._client.close)
        self._executor.shutdown(wait=True)

    def _require(self) -> tuple[firestore.Client, SnapshotFeed]:
        assert self._client is not None and self._feed is not None, "store not started"
        return self._client, self._feed

    # ---------------------------------------------------------------- transactions
    def _run_write(self, body: Callable[[FsTx], T]) -> tuple[T, frozenset[str], datetime | None]:
        client, _ = self._require()
        t = client.transaction()
        retry_id: bytes | None = None
        delay = 0.005
        for attempt in range(self._retries):
            try:
                t._begin(retry_id=retry_id)
                retry_id = retry_id or t._id
                tx = FsTx(client, t, writable=True)
                result = body(tx)
                groups = tx.apply()
                t._commit()
                return result, groups, getattr(t, "commit_time", None)
            except gexc.Aborted as exc:
                _rollback(t)
                if attempt == self._retries - 1:
                    raise Temporary(f"Firestore contention: gave up after {attempt + 1}") from exc
                time.sleep(random.uniform(0, delay))
                delay = min(delay * 2, 0.5)
            except gexc.GoogleAPIError as exc:
                _rollback(t)
                raise translate(exc) from exc
            except BaseException:
                _rollback(t)
                raise
        raise Temporary("unreachable")  # pragma: no cover

    def _run_read(self, body: Callable[[FsTx], T]) -> T:
        client, _ = self._require()
        t = client.transaction(read_only=True)
        try:
            t._begin()
            result = body(FsTx(client, t, writable=False))
            t._commit()
            return result
        except gexc.GoogleAPIError as exc:
            _rollback(t)
            raise translate(exc) from exc
        except BaseException:
            _rollback(t)
            raise

    async def transact(self, body: Callable[[Any], T]) -> T:
        loop = asyncio.get_running_loop()
        result, groups, at = await loop.run_in_executor(self._executor, self._run_write, body)
        if at is not None:
            for group in groups & self._feed_groups:
                if group not in self._pending or self._pending[group] < at:
                    self._pending[group] = at
        return result

    async def read(self, body: Callable[[Any], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run_read, body)

    # ---------------------------------------------------------------- change feed
    async def _caught_up(self, limit: float = 2.0) -> None:
        """Wait until the listeners have delivered this process's own commits (bounded:
        a commit that changed nothing, such as deleting a missing document, never shows)."""
        _, feed = self._require()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while self._pending:
            for group, at in list(self._pending.items()):
                seen = feed.read_time(group)
                if seen is not None and seen >= at:
                    del self._pending[group]
            remaining = deadline - loop.time()
            if not self._pending or remaining <= 0:
                self._pending.clear()
                return
            await self._wakeup.sleep(min(remaining, 0.05))

    async def head(self) -> int:
        _, feed = self._require()
        await self._caught_up()
        return feed.head()

    async def changes(
        self,
        after: int,
        *,
        groups: frozenset[str] | None = None,
        uid: str | None = None,
        limit: int = 1000,
        wait: float = 0.0,
    ) -> list[Change]:
        _, feed = self._require()
        loop = asyncio.get_running_loop()
        wanted = (groups or self._feed_groups) - UNFED_GROUPS
        if (wanted - feed.groups) or (feed.dead() & wanted):
            await loop.run_in_executor(self._executor, feed.listen, wanted)
        await self._caught_up()

        async def read() -> list[Change]:
            return feed.read(after, groups, uid, limit)

        return await self._wakeup.poll(read, wait, period=1.0)


def _rollback(t: Any) -> None:
    with suppress(Exception):
        if t.in_progress:
            t._rollback()
