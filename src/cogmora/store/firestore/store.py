"""The seed's engine: Firestore through the official client (google-cloud-firestore).

Bodies run on a thread pool with the synchronous client, in Firestore transactions that
this module begins, commits and retries itself (rather than through
`firestore.transactional`) so that every failure is translated at one place: ABORTED
(contention) re-runs the body with the transaction's retry id, which keeps its place in
Firestore's queue; ALREADY_EXISTS from a `create` is Conflict; the rest goes through
`errors.translate`. Reads-before-writes is Firestore's own rule, checked here too so the
error is the same as on the SQL backends. FIRESTORE_EMULATOR_HOST points the client at the
emulator.

The change feed (`feed`): every transaction that writes a fed group also creates one
`feedlog` entry holding those writes (it doubles as the commit's proof), and each instance
follows the log with one bounded listener from start(). A commit records its time per group
written; head() and changes() first wait until the listener has delivered a snapshot at
least that recent, so a process sees its own writes on its feed as it does on the SQL
backends (a listener that cannot confirm them is restarted; see `_caught_up`).

`firestore://PROJECT/DATABASE` names a database other than `(default)`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import structlog
from google.api_core import exceptions as gexc
from google.cloud import firestore

from cogmora.domain.ids import new_id
from cogmora.errors import CogmoraError, FeedResync, Temporary
from cogmora.store.firestore.errors import translate
from cogmora.store.firestore.feed import LOG_GROUP, SnapshotFeed, log_entry
from cogmora.store.firestore.ttl import MARKER_GROUP, MARKER_LIFETIME, MARKER_TTL_FIELD
from cogmora.store.firestore.tx import FsTx
from cogmora.store.paths import split
from cogmora.store.port import UNFED_GROUPS, Change, Doc
from cogmora.store.sqlschema import KNOWN_GROUPS
from cogmora.store.wakeup import Wakeup

T = TypeVar("T")
FED_GROUPS = frozenset(KNOWN_GROUPS) - UNFED_GROUPS
log = structlog.get_logger("cogmora.firestore")
# Errors after the commit was sent that do not say whether it happened.
_UNKNOWN_OUTCOME = (
    gexc.Cancelled,
    gexc.DeadlineExceeded,
    gexc.ServiceUnavailable,
    gexc.InternalServerError,
    gexc.Unknown,
    gexc.BadGateway,
    gexc.GatewayTimeout,
    gexc.RetryError,
)


SLOW_SECONDS = 2.0


class FirestoreStore:
    """Store port on Firestore: `FirestoreStore("my-project")`."""

    # Firestore's cap is 500 writes; one is kept for the commit marker (see _run_write).
    max_writes_per_tx = 499

    def __init__(
        self,
        project: str,
        *,
        database: str | None = None,
        feed_groups: frozenset[str] = FED_GROUPS,
        threads: int = 8,
        retry_seconds: float = 30.0,
        keep_changes: int = 100_000,
    ) -> None:
        self._project = project
        self._database = database
        self._feed_groups = feed_groups - UNFED_GROUPS
        self._retry_seconds = retry_seconds
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
        """Run `body` until it commits, within the retry budget.

        ABORTED (contention) and a temporary failure before the commit was sent re-run the
        body after a full-jitter exponential backoff. A failure AFTER the commit was sent
        (CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE...) leaves the outcome unknown: the
        transaction is rolled back (so it can no longer commit late), then its proof is
        read: a document it creates, or else a marker `txmarks/{id}` written with it. If
        the proof is there the commit happened and its result is returned, never a failure;
        if not, the body is re-run like any retry.
        """
        client, _ = self._require()
        began = time.monotonic()
        deadline = began + self._retry_seconds
        retry_id: bytes | None = None
        attempt = 0
        while True:
            attempt += 1
            t = client.transaction()
            sent = False
            proof: tuple[str, Doc] | None = None
            try:
                t._begin(retry_id=retry_id)
                tx = FsTx(client, t, writable=True)
                result = body(tx)
                groups = tx.apply()
                if tx.write_count:
                    logged = self._log(client, t, tx)
                    proof = tx.proof() or logged or self._marker(client, t)
                sent = True
                t._commit()
                took = time.monotonic() - began
                if took > SLOW_SECONDS:  # lock waits and aborts: what a storm's figures hide
                    log.info("slow transaction", seconds=round(took, 3), attempts=attempt)
                return result, groups, getattr(t, "commit_time", None)
            except gexc.Aborted as exc:
                retry_id = t._id or retry_id
                _rollback(t)
                if time.monotonic() >= deadline:
                    raise Temporary(f"Firestore contention: gave up after {attempt}") from exc
            except gexc.GoogleAPIError as exc:
                _rollback(t)
                if sent and isinstance(exc, _UNKNOWN_OUTCOME):
                    at = self._committed(client, proof, deadline)
                    if at is not None:
                        log.warning("commit outcome was unknown; it committed", error=str(exc))
                        return result, groups, at
                    log.warning("commit outcome was unknown; it did not commit", error=str(exc))
                _retry_or_raise(exc, deadline)
            except BaseException:
                _rollback(t)
                raise
            _backoff(attempt)

    def _log(self, client: firestore.Client, t: Any, tx: FsTx) -> tuple[str, Doc] | None:
        """The change feed's log entry for this commit's writes to fed groups, created in
        the same transaction (see `feed`); being created, it is also the commit's proof."""
        entry = log_entry((p, d) for p, d in tx.written() if split(p).group in FED_GROUPS)
        if entry is None:
            return None
        path = f"{LOG_GROUP}/{new_id()}"
        t.create(client.document(path), entry)
        return path, entry

    def _marker(self, client: firestore.Client, t: Any) -> tuple[str, Doc]:
        """A document written with a transaction that creates none, as its proof; it
        expires `MARKER_LIFETIME` after (its TTL policy deletes it, see `ttl`)."""
        now = datetime.now(UTC)
        path = f"{MARKER_GROUP}/{new_id()}"
        doc: Doc = {"at": now.isoformat(), MARKER_TTL_FIELD: now + MARKER_LIFETIME}
        t.create(client.document(path), doc)
        return path, doc

    def _committed(
        self, client: firestore.Client, proof: tuple[str, Doc] | None, deadline: float
    ) -> datetime | None:
        """The commit time if the proof is there as written (None: it did not commit)."""
        if proof is None:
            return datetime.now(UTC)  # nothing was written: nothing to lose or double
        path, doc = proof
        delay = 0.05
        while True:
            try:
                snap = client.document(path).get()
                break
            except gexc.GoogleAPIError as exc:
                if time.monotonic() >= deadline + 30:
                    raise Temporary(f"Firestore: commit outcome unknown: {exc}") from exc
                time.sleep(random.uniform(0, delay))
                delay = min(delay * 2, 1.0)
        if not snap.exists:
            return None
        if path.startswith((MARKER_GROUP + "/", LOG_GROUP + "/")) or _same(snap.to_dict(), doc):
            return cast(datetime, snap.update_time)
        return None

    def _run_read(self, body: Callable[[FsTx], T]) -> T:
        """A read-only transaction; a temporary failure is retried (a read has no
        outcome to lose), within the same budget as writes."""
        client, _ = self._require()
        deadline = time.monotonic() + self._retry_seconds
        attempt = 0
        while True:
            attempt += 1
            t = client.transaction(read_only=True)
            try:
                t._begin()
                result = body(FsTx(client, t, writable=False))
                t._commit()
                return result
            except gexc.GoogleAPIError as exc:
                _rollback(t)
                _retry_or_raise(exc, deadline)
            except BaseException:
                _rollback(t)
                raise
            _backoff(attempt)

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
    async def _caught_up(self, groups: frozenset[str] | None = None, limit: float = 5.0) -> None:
        """Wait until the listeners have delivered this process's own commits to `groups`
        (all by default). A listener that cannot confirm one within `limit` (it is stuck,
        or the server sends no snapshot for a commit that changed nothing it follows) is
        restarted, which reports whatever it had not delivered: never a silent drop."""
        _, feed = self._require()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit

        def waiting() -> dict[str, datetime]:
            out = {}
            for group, at in list(self._pending.items()):
                seen = feed.read_time(group)
                if seen is not None and seen >= at:
                    if self._pending.get(group) == at:
                        del self._pending[group]
                elif groups is None or group in groups:
                    out[group] = at
            return out

        while unconfirmed := waiting():
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning(
                    "listeners did not confirm our commits; restarting them",
                    groups=sorted(unconfirmed),
                )
                await loop.run_in_executor(
                    self._executor,
                    functools.partial(feed.listen, frozenset(unconfirmed), restart=True),
                )
                for group, at in unconfirmed.items():
                    seen = feed.read_time(group)
                    if seen is None or seen < at:
                        raise FeedResync(f"Firestore listener on {group} cannot confirm commits")
                    if self._pending.get(group) == at:
                        del self._pending[group]
                return
            await self._wakeup.sleep(min(remaining, 0.05))

    async def prune_changes(self, keep: int) -> int:
        """FeedPruning for this instance's buffer (Firestore keeps no shared log: each
        instance buffers what its listeners delivered, and its cursors are its own)."""
        _, feed = self._require()
        await self._caught_up()
        return feed.prune(keep)

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
        await self._caught_up(wanted)

        async def read() -> list[Change]:
            return feed.read(after, groups, uid, limit)

        return await self._wakeup.poll(read, wait, period=1.0)


def _same(read: Doc | None, written: Doc) -> bool:
    """Whether a document read back is the one written (tuples come back as lists)."""
    return read is not None and json.dumps(read, sort_keys=True, default=str) == json.dumps(
        written, sort_keys=True, default=str
    )


def _retry_or_raise(exc: gexc.GoogleAPIError, deadline: float) -> None:
    """A temporary failure within the budget is retried (the caller backs off); any other,
    or one past the deadline, is raised as ours."""
    error = translate(exc)
    if not isinstance(error, Temporary) or time.monotonic() >= deadline:
        raise error from exc


def _backoff(attempt: int) -> None:
    """Full jitter, exponential: up to 10 ms doubled per attempt, never more than 1 s."""
    time.sleep(random.uniform(0, min(1.0, 0.01 * 2 ** min(attempt, 10))))


def _rollback(t: Any) -> None:
    with suppress(Exception):
        if t.in_progress:
            t._rollback()
