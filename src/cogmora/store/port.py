"""The Store port: a small document-transaction interface with Firestore's semantics.

Why documents and transactions rather than one method per use case: the operations the
system needs (open a position, settle it, compare-and-set a status, claim a due job) are
written ONCE in `cogmora.services` against this port, so SQLite, PostgreSQL and Firestore
cannot drift apart in business logic; a backend only has to be a faithful transactional
document store with a change feed. The rules are Firestore's, so code that passes on
SQLite also runs on Firestore:

- a transaction body is a plain synchronous function run inside the backend's own thread
  (so a body may not await: it cannot hold a lock across the event loop);
- every read comes before the first write;
- queries must be declared in `cogmora.store.queries` (anything else is FailedPrecondition);
- a body may be run more than once on contention, so it must not have side effects
  outside the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from cogmora.store.queries import Query

Doc = dict[str, Any]
T = TypeVar("T")

# Groups whose writes are not published on the change feed: nobody follows them, and
# leaving them out keeps a storm's settlement from writing twice the rows. A user's
# balance changes still show (the `users` document), and so does every position's close.
UNFED_GROUPS = frozenset({"prices", "tokens", "idempotency", "ledger", "positionHistory"})


class Tx(Protocol):
    def get(self, path: str) -> Doc | None: ...

    def get_many(self, paths: Sequence[str]) -> list[Doc | None]: ...

    def query(self, query: Query) -> list[tuple[str, Doc]]:
        """Matching documents as (path, doc); the query must be declared in the registry."""
        ...

    def create(self, path: str, doc: Doc) -> None:
        """Write a new document; the transaction fails with Conflict if it already exists."""
        ...

    def set(self, path: str, doc: Doc) -> None: ...

    def delete(self, path: str) -> None: ...

    def compare_and_set(
        self, paths: Sequence[str], expect: dict[str, Any], updates: dict[str, Any]
    ) -> list[str]:
        """Set the dotted `updates` fields on each document whose `expect` fields all hold;
        returns the paths it changed (missing documents and mismatches are left alone).
        An expected value matches by exact JSON equality (a decimal string only the same
        string); an expected None matches a field that is null or absent.

        The worker's storm path: 100,000 `open -> closing` in one call. It counts as the
        transaction's reads and first writes, so call it after every other read.
        """
        ...


@dataclass(frozen=True, slots=True)
class Change:
    """One committed document write, in commit order. `doc` is None for a delete."""

    seq: int
    group: str
    uid: str | None
    path: str
    doc: Doc | None


class Store(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def max_writes_per_tx(self) -> int:
        """How many writes one transaction may hold (Firestore: 500); callers chunk by it."""
        ...

    async def start(self) -> None:
        """Connect, and create tables and indexes from the query registry where it can."""
        ...

    async def close(self) -> None: ...

    async def transact(self, body: Callable[[Tx], T]) -> T:
        """Run `body` in one serializable transaction, retrying on contention."""
        ...

    async def read(self, body: Callable[[Tx], T]) -> T:
        """Run a read-only body against a consistent snapshot."""
        ...

    async def head(self) -> int:
        """The sequence number of the latest committed change."""
        ...

    async def changes(
        self,
        after: int,
        *,
        groups: frozenset[str] | None = None,
        uid: str | None = None,
        limit: int = 1000,
        wait: float = 0.0,
    ) -> list[Change]:
        """Changes with seq > after, oldest first; waits up to `wait` seconds for the first.

        Raises `FeedResync` when `after` is older than what the store still keeps (the
        feed was pruned past it): the caller rebuilds its view from the registered
        queries and follows from `head()` again. Never returns a list with a hole in it.
        """
        ...


class FeedPruning(Protocol):
    """A store whose change feed can be cut short on demand (its own retention task does
    it on a schedule; this is for tests, benchmarks and an operator)."""

    async def prune_changes(self, keep: int) -> int:
        """Forget all but the latest `keep` changes; returns how many were dropped. A
        reader whose cursor is older than what is left then gets FeedResync."""
        ...
