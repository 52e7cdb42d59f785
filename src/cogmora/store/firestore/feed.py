"""Firestore's change feed: on_snapshot listeners on collection groups, buffered locally.

Firestore has no global commit log, so the sequence numbers are this process's own: each
document change a listener delivers gets the next number. Per collection group, the order
is Firestore's snapshot order (commit order, a document's changes never reordered);
between groups it is arrival order. A cursor is meaningful only to the store instance
that issued it, which is how every caller uses it (head() then changes()).

A listener's first snapshot is the group's current contents, not news: it only arms the
listener. If a listener dies (the client recovers transient stream errors by itself,
with resume tokens), it is restarted and the documents that changed meanwhile are found
by comparing update times with what the dead listener had seen.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from google.cloud import firestore

from cogmora.errors import Temporary
from cogmora.store.paths import split
from cogmora.store.port import Change


class _Listener:
    def __init__(self, group: str) -> None:
        self.group = group
        self.watch: Any = None
        self.armed = threading.Event()
        self.seen: dict[str, Any] = {}  # path -> update_time
        self.read_time: datetime | None = None
        self.fresh = True


class SnapshotFeed:
    def __init__(self, client: firestore.Client, on_change: Callable[[], None], keep: int) -> None:
        self._client = client
        self._on_change = on_change
        self._keep = keep
        self._lock = threading.Lock()
        self._seq = 0
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
    def listen(self, groups: frozenset[str], timeout: float = 30.0) -> None:
        """Start (or restart, if dead) the listeners for `groups`; returns once each has
        its first snapshot, so changes committed after this call are not missed."""
        started = []
        for group in sorted(groups):
            listener = self._listeners.get(group)
            if listener is not None and listener.watch is not None and listener.watch.is_active:
                continue
            if listener is None:
                listener = self._listeners.setdefault(group, _Listener(group))
            listener.armed.clear()
            listener.fresh = True
            query = self._client.collection_group(group)
            listener.watch = query.on_snapshot(self._callback(listener))
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
            if listener.fresh:
                current = {d.reference.path: d for d in docs}
                if listener.seen:  # a restart: what changed while nobody listened
                    for path, snap in current.items():
                        if listener.seen.get(path) != snap.update_time:
                            news.append((path, snap.to_dict()))
                    news += [(p, None) for p in listener.seen if p not in current]
                listener.seen = {p: s.update_time for p, s in current.items()}
                listener.fresh = False
            else:
                for change in changes:
                    snap = change.document
                    path = snap.reference.path
                    if change.type.name == "REMOVED":
                        listener.seen.pop(path, None)
                        news.append((path, None))
                    else:
                        listener.seen[path] = snap.update_time
                        news.append((path, snap.to_dict()))
            with self._lock:
                for path, doc in news:
                    self._seq += 1
                    self._changes.append(Change(self._seq, group, split(path).uid, path, doc))
                    self._seqs.append(self._seq)
                if len(self._changes) > 2 * self._keep:
                    del self._changes[: -self._keep]
                    del self._seqs[: -self._keep]
                listener.read_time = read_time
            listener.armed.set()
            self._on_change()

        return on_snapshot

    def dead(self) -> frozenset[str]:
        return frozenset(
            g for g, lst in self._listeners.items() if lst.watch is None or not lst.watch.is_active
        )

    # ---------------------------------------------------------------- reading
    def read(
        self, after: int, groups: frozenset[str] | None, uid: str | None, limit: int
    ) -> list[Change]:
        with self._lock:
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
