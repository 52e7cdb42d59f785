"""Firestore's change feed: on_snapshot listeners on collection groups, buffered locally.

Firestore has no global commit log, so the sequence numbers are this process's own: each
document change a listener delivers gets the next number. Per collection group, the order
is Firestore's snapshot order (commit order, a document's changes never reordered);
between groups it is arrival order. A cursor is meaningful only to the store instance
that issued it, which is how every caller uses it (head() then changes()).

Listeners follow only what matters: a group with a registered query in
`queries.FOLLOWED` (positions `open`/`closing`, `active` triggers) is listened to through
that query, so the cost of following grows with open positions, not with all history. A
document that leaves the followed set (settled, fired, cancelled) comes as a REMOVED
change without its new contents; it is read once, so a follower sees the state it left in
(`closed`), as it would on the SQL backends' log.

A listener's first snapshot is the group's current contents, not news: it only arms the
listener. If a listener dies (the client recovers transient stream errors by itself,
with resume tokens), or cannot confirm a commit it should have delivered, it is
restarted and the documents that changed meanwhile are found by comparing update times
with what the old listener had seen.

The buffer keeps the latest `keep` changes; a reader whose cursor is older than that gets
`FeedResync` (it must rebuild its view), never a silent gap.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog
from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.watch import DocTreeEntry

from cogmora.errors import FeedResync, Temporary
from cogmora.store.firestore.tx import to_firestore
from cogmora.store.paths import split
from cogmora.store.port import Change
from cogmora.store.queries import FOLLOWED, Query

log = structlog.get_logger("cogmora.firestore.feed")


class _Listener:
    def __init__(self, group: str, query: Query | None) -> None:
        self.group = group
        self.query = query
        self.watch: Any = None
        self.armed = threading.Event()
        self.seen: dict[str, Any] = {}  # path -> update_time
        self.read_time: datetime | None = None  # of the latest consistent snapshot
        self.fresh = True


class SnapshotFeed:
    def __init__(
        self,
        client: firestore.Client,
        on_change: Callable[[], None],
        keep: int,
        follow: Mapping[str, Query] = FOLLOWED,
    ) -> None:
        self._client = client
        self._on_change = on_change
        self._keep = keep
        self._follow = follow
        self._lock = threading.Lock()
        self._seq = 0
        self._first = 1  # the oldest seq still kept
        self._changes: list[Change] = []
        self._seqs: list[int] = []
        self._listeners: dict[str, _Listener] = {}

    @property
    def groups(self) -> frozenset[str]:
        return frozenset(self._listeners)

    def head(self) -> int:
        with self._lock:
            return self._seq

    def read_time(self, group: str) -> datetime | None:
        listener = self._listeners.get(group)
        return None if listener is None else listener.read_time

    # ---------------------------------------------------------------- listeners
    def listen(self, groups: frozenset[str], timeout: float = 60.0, restart: bool = False) -> None:
        """Start (or restart, if dead or `restart`) the listeners for `groups`; returns once
        each has its first snapshot, so changes committed after this call are not missed."""
        started = []
        for group in sorted(groups):
            listener = self._listeners.get(group)
            alive = listener is not None and listener.watch is not None and listener.watch.is_active
            if alive and not restart:
                continue
            if listener is None:
                listener = self._listeners.setdefault(
                    group, _Listener(group, self._follow.get(group))
                )
            if listener.watch is not None:
                listener.watch.unsubscribe()
            listener.armed.clear()
            listener.fresh = True
            if listener.query is not None:
                query = to_firestore(self._client, listener.query)
            else:
                query = self._client.collection_group(group)
            listener.watch = query.on_snapshot(self._callback(listener))
            _note_every_snapshot(listener)
            started.append(listener)
        for listener in started:
            if not listener.armed.wait(timeout):
                raise Temporary(f"Firestore listener on {listener.group} did not start")

    def stop(self) -> None:
        for listener in self._listeners.values():
            if listener.watch is not None:
                listener.watch.unsubscribe()
                listener.watch = None

    def _callback(self, listener: _Listener) -> Callable[[list[Any], list[Any], Any], None]:
        group = listener.group

        def on_snapshot(docs: list[Any], changes: list[Any], read_time: Any) -> None:
            news: list[tuple[str, dict[str, Any] | None]] = []
            left: list[str] = []  # no longer in the listened set: read what they became
            if listener.fresh:
                current = {d.reference.path: d for d in docs}
                if listener.seen:  # a restart: what changed while nobody listened
                    for path, snap in current.items():
                        if listener.seen.get(path) != snap.update_time:
                            news.append((path, snap.to_dict()))
                    left += [p for p in listener.seen if p not in current]
                listener.seen = {p: s.update_time for p, s in current.items()}
                listener.fresh = False
            else:
                for change in changes:
                    snap = change.document
                    path = snap.reference.path
                    if change.type.name == "REMOVED":
                        listener.seen.pop(path, None)
                        left.append(path)
                    else:
                        listener.seen[path] = snap.update_time
                        news.append((path, snap.to_dict()))
            if left:
                if listener.query is None:
                    news += [(p, None) for p in left]  # a whole group: removed is deleted
                else:
                    news += self._read_left(left)
            with self._lock:
                for path, doc in news:
                    self._seq += 1
                    self._changes.append(Change(self._seq, group, split(path).uid, path, doc))
                    self._seqs.append(self._seq)
                if len(self._changes) > 2 * self._keep:
                    del self._changes[: -self._keep]
                    del self._seqs[: -self._keep]
                    self._first = self._seqs[0]
                if listener.read_time is None or read_time > listener.read_time:
                    listener.read_time = read_time
            listener.armed.set()
            self._on_change()

        return on_snapshot

    def _read_left(self, paths: list[str]) -> list[tuple[str, dict[str, Any] | None]]:
        """What documents that left a filtered listener's set are now (None: deleted).

        Read at once, in the listener's thread, so the change keeps its place in the
        group's order; a read that keeps failing is retried, then reported as a removal
        (which every follower treats as "no longer open/active", the truth either way)."""
        refs = [self._client.document(p) for p in paths]
        delay = 0.05
        for attempt in range(6):
            try:
                found = {
                    s.reference.path: (s.to_dict() if s.exists else None)
                    for s in self._client.get_all(refs)
                }
                return [(p, found.get(p)) for p in paths]
            except gexc.GoogleAPIError as exc:
                log.warning("cannot read documents that left a listener", error=str(exc))
                if attempt < 5:
                    time.sleep(delay)
                    delay *= 2
        log.error("reporting documents that left a listener as removed", count=len(paths))
        return [(p, None) for p in paths]

    def dead(self) -> frozenset[str]:
        return frozenset(
            g for g, lst in self._listeners.items() if lst.watch is None or not lst.watch.is_active
        )

    def prune(self, keep: int) -> int:
        """Forget all but the latest `keep` buffered changes; a cursor older than what is
        left then gets FeedResync. Returns how many were dropped."""
        with self._lock:
            drop = max(0, len(self._changes) - max(0, keep))
            if drop:
                del self._changes[:drop]
                del self._seqs[:drop]
                self._first = self._seqs[0] if self._seqs else self._seq + 1
            return drop

    # ---------------------------------------------------------------- reading
    def read(
        self, after: int, groups: frozenset[str] | None, uid: str | None, limit: int
    ) -> list[Change]:
        with self._lock:
            if after < self._first - 1:
                raise FeedResync(
                    f"cursor {after} is older than the oldest change kept ({self._first}): "
                    "rebuild from the store, then follow from head()"
                )
            start = bisect.bisect_right(self._seqs, after)
            out: list[Change] = []
            for change in self._changes[start:]:
                if groups is not None and change.group not in groups:
                    continue
                if uid is not None and change.uid != uid:
                    continue
                out.append(change)
                if len(out) >= limit:
                    break
            return out


class _InPlaceTree:
    """The client's WatchDocTree without its copy per insert and remove (a full dict copy
    for every changed document: quadratic in the followed set). The watch only ever keeps
    the tree it gets back, so updating in place is the same to it."""

    def __init__(self) -> None:
        self._dict: dict[Any, DocTreeEntry] = {}
        self._index = 0

    def keys(self) -> list[Any]:
        return list(self._dict)

    def insert(self, key: Any, value: Any) -> _InPlaceTree:
        self._dict[key] = DocTreeEntry(value, self._index)
        self._index += 1
        return self

    def find(self, key: Any) -> DocTreeEntry:
        return self._dict[key]

    def remove(self, key: Any) -> _InPlaceTree:
        del self._dict[key]
        return self

    def __iter__(self) -> Any:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __contains__(self, key: object) -> bool:
        return key in self._dict


def _note_every_snapshot(listener: _Listener) -> None:
    """Make the client's watch cheap per change, and record the read time of every
    consistent snapshot the server sends, not only of those with changes (the client calls
    back only on changes): that is how a commit that changed nothing this listener follows
    is still known to have been seen.

    The client's own `push` sorts every followed document on every snapshot (a Python
    comparator over 10,000 documents, twenty times a second), only to hand the callback a
    sorted list that this feed reads on a listener's first snapshot alone; this one hands
    the documents unsorted, and none after the first."""
    watch = listener.watch
    if not watch.has_pushed and not len(watch.doc_tree):
        watch.doc_tree = _InPlaceTree()

    def push(read_time: Any, next_resume_token: Any) -> None:
        deletes, adds, updates = watch._extract_changes(watch.doc_map, watch.change_map, read_time)
        tree, doc_map, applied = watch._compute_snapshot(
            watch.doc_tree, watch.doc_map, deletes, adds, updates
        )
        if not watch.has_pushed or len(applied):
            docs = list(doc_map.values()) if listener.fresh else []
            watch._snapshot_callback(docs, applied, read_time)
            watch.has_pushed = True
        watch.doc_tree = tree
        watch.doc_map = doc_map
        watch.change_map.clear()
        watch.resume_token = next_resume_token
        if read_time is not None and (listener.read_time is None or read_time > listener.read_time):
            listener.read_time = read_time

    watch.push = push
