"""The embedded default backend: one SQLite file in WAL mode.

All writes go through one connection on one dedicated thread, in `BEGIN IMMEDIATE`
transactions, so the process never fights itself for the write lock; reads use a second
connection on another thread and see WAL snapshots without blocking the writer. Several
processes may share the file (SQLite's own lock serializes them, `busy_timeout` waits).
`synchronous=NORMAL` in WAL mode loses nothing when the process is killed, which is the
crash the worker must survive; only a power cut can lose the last transactions.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from cogmora.errors import Conflict, Fatal, Temporary
from cogmora.store.paths import split
from cogmora.store.port import Change, Doc
from cogmora.store.queries import Query
from cogmora.store.sqlschema import KNOWN_GROUPS, Dialect, row_values

T = TypeVar("T")
DIALECT = Dialect(placeholder="?", doc_type="TEXT", any_type="")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

_CHANGES_DDL = (
    "CREATE TABLE IF NOT EXISTS _changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "grp TEXT NOT NULL, uid TEXT, path TEXT NOT NULL, doc TEXT)",
    "CREATE INDEX IF NOT EXISTS ix_changes_uid ON _changes (uid, seq)",
    "CREATE INDEX IF NOT EXISTS ix_changes_grp ON _changes (grp, seq)",
)


class ReadAfterWrite(Fatal):
    """A transaction body read after writing: Firestore forbids it, so we do too."""


class _Tx:
    def __init__(self, conn: sqlite3.Connection, tables: set[str], writable: bool) -> None:
        self._conn = conn
        self._tables = tables
        self._writable = writable
        self._wrote = False
        self.changed = 0

    # ---------------------------------------------------------------- reads
    def _check_read(self) -> None:
        if self._wrote:
            raise ReadAfterWrite("every read must come before the first write in a transaction")

    def get(self, path: str) -> Doc | None:
        self._check_read()
        dp = split(path)
        if dp.group not in self._tables:
            return None
        row = self._conn.execute(f'SELECT doc FROM "{dp.group}" WHERE path = ?', (path,)).fetchone()
        return None if row is None else _decode(row[0])

    def get_many(self, paths: Sequence[str]) -> list[Doc | None]:
        self._check_read()
        found: dict[str, Doc] = {}
        by_group: dict[str, list[str]] = {}
        for p in paths:
            by_group.setdefault(split(p).group, []).append(p)
        for group, group_paths in by_group.items():
            if group not in self._tables:
                continue
            for i in range(0, len(group_paths), 500):
                chunk = group_paths[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for path, doc in self._conn.execute(
                    f'SELECT path, doc FROM "{group}" WHERE path IN ({marks})', chunk
                ):
                    found[path] = _decode(doc)
        return [found.get(p) for p in paths]

    def query(self, query: Query) -> list[tuple[str, Doc]]:
        self._check_read()
        sql, params = DIALECT.select(query)
        if query.group not in self._tables:
            return []
        return [(path, _decode(doc)) for path, doc in self._conn.execute(sql, params)]

    # ---------------------------------------------------------------- writes
    def _write(self, path: str, doc: Doc | None, create: bool) -> None:
        if not self._writable:
            raise Fatal("write in a read-only transaction")
        self._wrote = True
        dp = split(path)
        if dp.group not in self._tables:
            _create_group(self._conn, dp.group)
            self._tables.add(dp.group)
        text = None if doc is None else _encode(doc).decode()
        if doc is None:
            self._conn.execute(f'DELETE FROM "{dp.group}" WHERE path = ?', (path,))
        else:
            values = row_values(path, dp.parent, dp.id, text, dp.group, doc)
            if create:
                try:
                    self._conn.execute(DIALECT.insert(dp.group), values)
                except sqlite3.IntegrityError:
                    raise Conflict(f"{path} already exists") from None
            else:
                self._conn.execute(DIALECT.upsert(dp.group), values)
        self._conn.execute(
            "INSERT INTO _changes (grp, uid, path, doc) VALUES (?, ?, ?, ?)",
            (dp.group, dp.uid, path, text),
        )
        self.changed += 1

    def create(self, path: str, doc: Doc) -> None:
        self._write(path, doc, create=True)

    def set(self, path: str, doc: Doc) -> None:
        self._write(path, doc, create=False)

    def delete(self, path: str) -> None:
        self._write(path, None, create=False)


def _create_group(conn: sqlite3.Connection, group: str) -> None:
    conn.execute(DIALECT.create_table(group))
    for ddl in DIALECT.create_indexes(group):
        conn.execute(ddl)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


class SqliteStore:
    """Store port on one SQLite file."""

    max_writes_per_tx = 100_000
    _RETRIES = 8

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="sqlite-reader")
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._tables: set[str] = set()
        self._lock = threading.Lock()
        self._waiters: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def name(self) -> str:
        return f"sqlite:///{self._path}"

    @property
    def path(self) -> str:
        return self._path

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(self._writer, self._open_writer)
        await self._loop.run_in_executor(self._reader, self._open_reader)

    def _open_writer(self) -> None:
        try:
            self._wconn = _connect(self._path)
            self._wconn.execute("BEGIN IMMEDIATE")
            for ddl in _CHANGES_DDL:
                self._wconn.execute(ddl)
            for group in KNOWN_GROUPS:
                _create_group(self._wconn, group)
            self._wconn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise Fatal(f"cannot open SQLite store {self._path}: {exc}") from exc
        self._refresh_tables(self._wconn)

    def _open_reader(self) -> None:
        self._rconn = _connect(self._path)

    def _refresh_tables(self, conn: sqlite3.Connection) -> None:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        with self._lock:
            self._tables.update(r[0] for r in rows)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        if self._wconn is not None:
            await loop.run_in_executor(self._writer, self._wconn.close)
        if self._rconn is not None:
            await loop.run_in_executor(self._reader, self._rconn.close)
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)

    # ---------------------------------------------------------------- transactions
    def _run_write(self, body: Callable[[_Tx], T]) -> T:
        conn = self._wconn
        assert conn is not None, "store not started"
        delay = 0.005
        for attempt in range(self._RETRIES):
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if attempt == self._RETRIES - 1:
                    raise Temporary(f"SQLite is busy: {exc}") from exc
                time.sleep(delay)
                delay *= 2
                continue
            tx = _Tx(conn, self._tables, writable=True)
            try:
                result = body(tx)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                self._refresh_tables(conn)
                raise
            if tx.changed:
                self._wake()
            return result
        raise Temporary("SQLite is busy")  # pragma: no cover - loop always returns or raises

    def _run_read(self, body: Callable[[_Tx], T]) -> T:
        conn = self._rconn
        assert conn is not None, "store not started"
        if len(self._tables) < len(KNOWN_GROUPS):
            self._refresh_tables(conn)
        conn.execute("BEGIN")
        try:
            return body(_Tx(conn, self._tables, writable=False))
        finally:
            conn.execute("COMMIT")

    async def transact(self, body: Callable[[Any], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._run_write, body)

    async def read(self, body: Callable[[Any], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reader, self._run_read, body)

    def transact_blocking(self, body: Callable[[Any], T]) -> T:
        """For the writer thread's own callers (benchmarks): no event-loop hop."""
        return self._writer.submit(self._run_write, body).result()

    # ---------------------------------------------------------------- change feed
    def _wake(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._release_waiters)

    def _release_waiters(self) -> None:
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def head(self) -> int:
        def body(tx: _Tx) -> int:
            row = tx._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM _changes").fetchone()
            return int(row[0])

        return await self.read(body)

    def _read_changes(
        self, after: int, groups: frozenset[str] | None, uid: str | None, limit: int
    ) -> list[Change]:
        conn = self._rconn
        assert conn is not None
        sql = "SELECT seq, grp, uid, path, doc FROM _changes WHERE seq > ?"
        params: list[Any] = [after]
        if uid is not None:
            sql += " AND uid = ?"
            params.append(uid)
        if groups is not None:
            sql += f" AND grp IN ({','.join('?' * len(groups))})"
            params.extend(sorted(groups))
        sql += f" ORDER BY seq LIMIT {int(limit)}"
        return [
            Change(seq, grp, u, path, None if doc is None else _decode(doc))
            for seq, grp, u, path, doc in conn.execute(sql, params)
        ]

    async def changes(
        self,
        after: int,
        *,
        groups: frozenset[str] | None = None,
        uid: str | None = None,
        limit: int = 1000,
        wait: float = 0.0,
    ) -> list[Change]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.add(fut)
            rows = await loop.run_in_executor(
                self._reader, self._read_changes, after, groups, uid, limit
            )
            remaining = deadline - loop.time()
            if rows or remaining <= 0:
                self._waiters.discard(fut)
                return rows
            # Woken at once by this process's commits; other processes' commits are seen
            # by the poll, so a change written elsewhere arrives within 100 ms.
            try:
                await asyncio.wait_for(fut, timeout=min(remaining, 0.1))
            except TimeoutError:
                pass
            finally:
                self._waiters.discard(fut)

    async def prune_changes(self, keep: int) -> int:
        """Drop all but the latest `keep` changes: the feed is for followers, not an archive."""

        def body(tx: _Tx) -> int:
            cur = tx._conn.execute(
                "DELETE FROM _changes WHERE seq <= (SELECT MAX(seq) FROM _changes) - ?", (keep,)
            )
            return cur.rowcount

        return await self.transact(body)
