"""Firestore's change feed: a log written in each transaction, followed by a bounded listener.

Firestore has no global commit log, so the store writes one: every transaction that writes
a fed collection group also creates one `feedlog/{id}` document, in the same commit, holding
the writes it made (path and document, None for a delete) and the commit's server time
`at`. Each store instance follows the log with one listener on `feedlog where at >= B`,
and buffers the writes it finds there under this process's own sequence numbers (so a
cursor is meaningful only to the instance that issued it, which is how every caller uses
it: head() then changes()). Order is commit order across all groups (the log is ordered
by commit time), a transaction's writes in the order it made them.

Why a log and not listeners on the followed documents themselves: a listener's cost per
change grows with its result set. The emulator answers every change with a RESET and the
whole result set again (measured: 40 writes beside 300 followed positions brought 13,120
document messages), so following 1,000 open positions put change-to-book at 15 s; the
official client also copies its document map per change and sorts it per snapshot. The
log listener's result set is what committed since its bound B, and the listener is
replaced by one with a later bound (B = the last consistent snapshot's read time) once
that set passes `ROTATE_DOCS` documents or `ROTATE_BYTES`: its cost does not grow with
open positions, nor with history (no group's closed documents or old agent decisions are
ever streamed). The replacement takes over at its first snapshot, whose documents the old
one had not delivered are news; log ids already delivered are skipped, so nothing comes
twice and nothing is missed between the two.

The first snapshot of the first listener is not news (it only arms the feed). A listener
that dies, or cannot confirm a commit it should have delivered, is restarted from its last
read time, and its first snapshot delivers what committed meanwhile. Log documents are
deleted once older than `LOG_KEEP` (each instance prunes, at most once a minute; they also
carry `expireAt` for a TTL policy); a listener restarted from further back than that would
have a gap, so its buffer is cut and every older cursor gets FeedResync.

A log document holds at most `INLINE_BYTES` of documents; the writes past that are logged
by path alone and read when delivered (the document as it is then, not as written).

The buffer keeps the latest `keep` changes; a reader whose cursor is older than that gets
`FeedResync` (it must rebuild its view), never a silent gap.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import structlog
from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.types import document as fs_document
from google.cloud.firestore_v1.watch import DocTreeEntry

from cogmora.errors import FeedResync, Temporary
from cogmora.store.firestore import ttl
from cogmora.store.firestore.tx import to_firestore
from cogmora.store.paths import split
from cogmora.store.port import Change, Doc
from cogmora.store.queries import feed_log_since

log = structlog.get_logger("cogmora.firestore.feed")

LOG_GROUP = ttl.LOG_GROUP
ROTATE_DOCS = 50
ROTATE_BYTES = 2_000_000
INLINE_BYTES = 900_000  # of a log document's 1 MiB
LOG_KEEP = timedelta(hours=1)
_PRUNE_EVERY = 60.0
_FIRST_BOUND = timedelta(seconds=5)  # the first listener's window; its contents are not news
# A replacement starts this much before the last read time: the emulator's commit times
# are not exactly its visibility order (a log entry stamped just before a snapshot's read
# time may appear after it), and the overlap costs only documents skipped as seen.
OVERLAP = timedelta(seconds=1)


def log_entry(writes: Iterable[tuple[str, Doc | None]]) -> Doc | None:
    """The `feedlog` document for one commit's writes to fed groups (None: there are none)."""
    values: list[Any] = []
    size = 0
    for path, doc in writes:
        value = _helpers.encode_value({"p": path, "d": doc})
        n = fs_document.Value.pb(value).ByteSize()
        if size + n > INLINE_BYTES:
            value = _helpers.encode_value({"p": path, "r": True})
            n = fs_document.Value.pb(value).ByteSize()
        size += n
        values.append(value)
    if not values:
        return None
    blob = fs_document.Value(array_value=fs_document.ArrayValue(values=values))
    return {
        "at": firestore.SERVER_TIMESTAMP,
        ttl.MARKER_TTL_FIELD: datetime.now(UTC) + 2 * LOG_KEEP,
        "n": len(values),
        "w": fs_document.Value.pb(blob).SerializeToString(),
    }


class _Listener:
    """The log's listener, as one object across its replacements (`watch` is the current)."""

    def __init__(self) -> None:
        self.watch: Any = None
        self.gen = 0  # of the current watch
        self.watches: dict[int, Any] = {}  # generation -> watch, until it takes over
        self.pending = False  # a replacement is arming
        self.armed = threading.Event()
        self.seen: dict[str, tuple[datetime, int]] = {}  # log id -> (at, bytes), since bound
        self.bound: datetime | None = None
        self.read_time: datetime | None = None  # of the latest consistent snapshot


class SnapshotFeed:
    def __init__(
        self, client: firestore.Client, on_change: Callable[[], None], keep: int
    ) -> None:
        self._client = client
        self._on_change = on_change
        self._keep = keep
        self._lock = threading.Lock()  # the buffer
        self._proc = threading.RLock()  # the listener's state; one snapshot at a time
        self._seq = 0
        self._first = 1  # the oldest seq still kept
        self._changes: list[Change] = []
        self._seqs: list[int] = []
        self._groups: set[str] = set()
        self._log = _Listener()
        self._listeners: dict[str, _Listener] = {}  # group -> the log's listener
        self._pruned_at = 0.0

    @property
    def groups(self) -> frozenset[str]:
        return frozenset(self._groups)

    def head(self) -> int:
        with self._lock:
            return self._seq

    def read_time(self, group: str) -> datetime | None:
        return self._log.read_time if group in self._groups else None

    # ---------------------------------------------------------------- listening
    def listen(self, groups: frozenset[str], timeout: float = 60.0, restart: bool = False) -> None:
        """Follow `groups` too, starting (or restarting, if dead or `restart`) the log's
        listener; returns once it has its first snapshot, so changes committed after
        this call are not missed."""
        lst = self._log
        with self._proc:
            self._groups |= groups
            for group in groups:
                self._listeners[group] = lst
            alive = lst.watch is not None and lst.watch.is_active
            if (alive and not restart) or not self._groups:
                return
            for watch in [lst.watch, *lst.watches.values()]:
                if watch is not None:
                    _unsubscribe_later(watch)
            lst.watch = None
            lst.watches.clear()
            lst.pending = False
            lst.armed.clear()
            if lst.read_time is None:
                self._start(datetime.now(UTC) - _FIRST_BOUND, news=False)
            else:
                if datetime.now(UTC) - lst.read_time > LOG_KEEP:
                    log.error("feed log listener was down longer than the log is kept")
                    self.prune(0)
                self._start(lst.read_time - OVERLAP, news=True)
        if not lst.armed.wait(timeout):
            raise Temporary("Firestore listener on the feed log did not start")

    def _start(self, bound: datetime, news: bool) -> None:
        """A new watch from `bound` (call with `_proc` held, so its first snapshot waits
        until it is registered)."""
        lst = self._log
        gen = max([lst.gen, *lst.watches]) + 1
        query = to_firestore(self._client, feed_log_since(bound))
        watch = query.on_snapshot(self._callback(gen, bound, news))
        lst.watches[gen] = watch
        _note_every_snapshot(self, watch, gen)

    def stop(self) -> None:
        lst = self._log
        with self._proc:
            watches = [w for w in [lst.watch, *lst.watches.values()] if w is not None]
            lst.watch = None
            lst.watches.clear()
        for watch in watches:
            watch.unsubscribe()

    def dead(self) -> frozenset[str]:
        watch = self._log.watch
        return frozenset(self._groups) if watch is None or not watch.is_active else frozenset()

    def _callback(
        self, gen: int, bound: datetime, news: bool
    ) -> Callable[[list[Any], list[Any], Any], None]:
        def on_snapshot(docs: list[Any], changes: list[Any], read_time: Any) -> None:
            lst = self._log
            rotate = False
            with self._proc:
                if gen < lst.gen or (gen > lst.gen and gen not in lst.watches):
                    return  # replaced, or stopped
                deliver = True
                if gen > lst.gen:  # a new watch's first snapshot: it takes over
                    deliver = news
                    old, lst.watch = lst.watch, lst.watches.pop(gen)
                    for g in [g for g in lst.watches if g < gen]:
                        _unsubscribe_later(lst.watches.pop(g))
                    if old is not None:
                        _unsubscribe_later(old)
                    lst.gen, lst.bound, lst.pending = gen, bound, False
                    lst.seen = {i: s for i, s in lst.seen.items() if s[0] >= bound}
                    snaps = docs
                else:
                    snaps = [c.document for c in changes if c.type.name != "REMOVED"]
                fresh = sorted(
                    (s for s in snaps if s.id not in lst.seen),
                    key=lambda s: (s.get("at"), s.id),
                )
                writes: list[tuple[str, Doc | None]] = []
                for snap in fresh:
                    blob = snap.get("w")
                    lst.seen[snap.id] = (snap.get("at"), len(blob))
                    if deliver:
                        writes += self._decode(blob)
                self._buffer(writes)
                if lst.read_time is None or read_time > lst.read_time:
                    lst.read_time = read_time
                lst.armed.set()
                size = sum(b for _, b in lst.seen.values())
                if not lst.pending and (len(lst.seen) > ROTATE_DOCS or size > ROTATE_BYTES):
                    lst.pending = rotate = True
            if writes:
                self._on_change()
            if rotate:
                threading.Thread(target=self._rotate, daemon=True, name="feedlog-rotate").start()

        return on_snapshot

    def _rotate(self) -> None:
        """Replace the log's watch by one bounded at its last read time (see the module)."""
        lst = self._log
        try:
            with self._proc:
                if lst.read_time is None or lst.watch is None:
                    lst.pending = False
                    return
                self._start(lst.read_time - OVERLAP, news=True)
        except Exception as exc:  # the current watch goes on; the next snapshot retries
            log.warning("cannot replace the feed log's listener", error=str(exc))
            lst.pending = False
            return
        if time.monotonic() - self._pruned_at > _PRUNE_EVERY:
            self._pruned_at = time.monotonic()
            try:
                prune_log(self._client, datetime.now(UTC) - LOG_KEEP)
            except gexc.GoogleAPIError as exc:
                log.warning("cannot prune the feed log", error=str(exc))

    def _decode(self, blob: bytes) -> list[tuple[str, Doc | None]]:
        value = fs_document.Value.deserialize(blob)
        entries = cast(list[dict[str, Any]], _helpers.decode_value(value, self._client))
        out: list[tuple[str, Doc | None]] = []
        unread = [e["p"] for e in entries if e.get("r")]
        found = self._read(unread) if unread else {}
        for e in entries:
            path = e["p"]
            if split(path).group in self._groups:
                out.append((path, found.get(path) if e.get("r") else e.get("d")))
        return out

    def _read(self, paths: list[str]) -> dict[str, Doc | None]:
        """The documents a log entry names without their contents (it was too large)."""
        refs = [self._client.document(p) for p in paths]
        delay = 0.05
        for attempt in range(6):
            try:
                return {
                    s.reference.path: (s.to_dict() if s.exists else None)
                    for s in self._client.get_all(refs)
                }
            except gexc.GoogleAPIError as exc:
                log.warning("cannot read documents a feed log entry names", error=str(exc))
                if attempt < 5:
                    time.sleep(delay)
                    delay *= 2
        log.error("reporting documents a feed log entry names as removed", count=len(paths))
        return {}

    def _buffer(self, writes: list[tuple[str, Doc | None]]) -> None:
        with self._lock:
            for path, doc in writes:
                self._seq += 1
                dp = split(path)
                self._changes.append(Change(self._seq, dp.group, dp.uid, path, doc))
                self._seqs.append(self._seq)
            if len(self._changes) > 2 * self._keep:
                del self._changes[: -self._keep]
                del self._seqs[: -self._keep]
                self._first = self._seqs[0]

    def prune(self, keep: int) -> int:
        """Forget all but the latest `keep` buffered changes; a cursor older than what is
        left then gets FeedResync. Returns how many were dropped."""
        with self._lock:
            drop = max(0, len(self._changes) - max(0, keep))
            if drop:
                del self._changes[:drop]
                del self._seqs[:drop]
            if drop or keep <= 0:
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


def prune_log(client: firestore.Client, before: datetime, batch: int = 450) -> int:
    """Delete log documents committed before `before`; returns how many."""
    removed = 0
    while True:
        query = to_firestore(client, feed_log_since(before, until=True).limited(batch))
        refs = [snap.reference for snap in query.stream()]
        if not refs:
            return removed
        wb = client.batch()
        for ref in refs:
            wb.delete(ref)
        wb.commit()
        removed += len(refs)


def _unsubscribe_later(watch: Any) -> None:
    """Stop a replaced watch off the listener threads (closing joins its own thread)."""
    threading.Thread(target=watch.unsubscribe, daemon=True, name="feedlog-stop").start()


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


def _note_every_snapshot(feed: SnapshotFeed, watch: Any, gen: int) -> None:
    """Make the client's watch cheap per change, and record the read time of every
    consistent snapshot the server sends to the current watch, not only of those with
    changes (the client calls back only on changes).

    The client's own `push` sorts every document on every snapshot only to hand the
    callback a sorted list; this one hands the documents unsorted, on a watch's first
    snapshot only (the feed sorts what it delivers by commit time itself)."""
    if not watch.has_pushed and not len(watch.doc_tree):
        watch.doc_tree = _InPlaceTree()

    def push(read_time: Any, next_resume_token: Any) -> None:
        deletes, adds, updates = watch._extract_changes(watch.doc_map, watch.change_map, read_time)
        tree, doc_map, applied = watch._compute_snapshot(
            watch.doc_tree, watch.doc_map, deletes, adds, updates
        )
        first = not watch.has_pushed
        if first or len(applied):
            watch._snapshot_callback(list(doc_map.values()) if first else [], applied, read_time)
            watch.has_pushed = True
        watch.doc_tree = tree
        watch.doc_map = doc_map
        watch.change_map.clear()
        watch.resume_token = next_resume_token
        lst = feed._log
        if read_time is not None and gen == lst.gen:
            with feed._proc:
                if gen == lst.gen and (lst.read_time is None or read_time > lst.read_time):
                    lst.read_time = read_time

    watch.push = push
