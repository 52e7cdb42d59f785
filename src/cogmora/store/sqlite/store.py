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
import contextlib
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from cogmora.errors import Fatal, Temporary
from cogmora.store.port import Change
from cogmora.store.retention import DEFAULT_RETENTION, FeedPruner, Retention, check_floor
from cogmora.store.sqlite.tx import SqliteTx, create_group, decode
from cogmora.store.sqlschema import (
    KNOWN_GROUPS,
)
from cogmora.store.wakeup import Wakeup

T = TypeVar("T")

_CHANGES_DDL = (
    "CREATE TABLE IF NOT EXISTS _changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "grp TEXT NOT NULL, uid TEXT, path TEXT NOT NULL, doc TEXT)",
    "CREATE INDEX IF NOT EXISTS ix_changes_uid ON _changes (uid, seq)",
    "CREATE INDEX IF NOT EXISTS ix_changes_grp ON _changes (grp, seq)",
    # The newest seq pruned away (one row, absent until the first prune): a reader whose
    # cursor is below it has missed changes and gets FeedResync.
    "CREATE TABLE IF NOT EXISTS _feed_floor (id INTEGER PRIMARY KEY CHECK (id = 0), "
    "seq INTEGER NOT NULL)",
)
_FLOOR = "SELECT COALESCE((SELECT seq FROM _feed_floor WHERE id = 0), 0)"


PAGE_SIZE = 8192


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Only a new file takes it (an existing one keeps the size it was made with). A row is
    # a whole JSON document (~0.5 kB a position): at 8 KiB a storm committed ~15% faster
    # than at the default 4 KiB (BENCHMARKS.md, issue 11, session 19), and a small
    # transaction's commit writes its few pages at twice the bytes, which the tick ->
    # committed latency did not show; 16 KiB gained no more and writes twice that again.
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


class SqliteStore:
    """Store port on one SQLite file.

    `retention` bounds the change feed (see `cogmora.store.retention`); None keeps every
    change forever, which only a benchmark of the unbounded way should want.
    """

    max_writes_per_tx = 100_000
    WAL_LIMIT = 16 * 1024 * 1024  # bytes of WAL before a truncating checkpoint...
    WAL_HARD_LIMIT = 4 * WAL_LIMIT  # ...once the writer is idle, or past this at once
    WRITER_IDLE = 0.05  # seconds without a transaction that make the writer idle
    _RETRIES = 8

    def __init__(
        self, path: str | Path, *, retention: Retention | None = DEFAULT_RETENTION
    ) -> None:
        self._path = str(path)
        self._pruner = None if retention is None else FeedPruner(self, retention)
        self._pruning: asyncio.Task[None] | None = None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="sqlite-reader")
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._tables: set[str] = set()
        self._lock = threading.Lock()
        self._wakeup = Wakeup()
        self._stop_checkpoints = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._truncating = False
        self._writes = 0  # transactions submitted and not finished (event loop's thread)
        self._write_done = 0.0  # time.monotonic() when the last one finished

    @property
    def name(self) -> str:
        return f"sqlite:///{self._path}"

    @property
    def path(self) -> str:
        return self._path

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._wakeup.bind(loop)
        await loop.run_in_executor(self._writer, self._open_writer)
        await loop.run_in_executor(self._reader, self._open_reader)
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()
        if self._pruner is not None:
            self._pruning = asyncio.create_task(self._pruner.run(), name="sqlite-feed-pruner")

    def _checkpoint_loop(self, period: float = 0.25) -> None:
        """Copy the WAL into the database off the commit path.

        With SQLite's automatic checkpoint, the commit that pushes the WAL past 1,000
        pages does the copying itself: after a storm or a bulk load that is hundreds of
        milliseconds inside some unlucky tick's transaction. A passive checkpoint on its
        own connection never blocks the writer, so the worker's commits stay short.
        """
        conn = _connect(self._path)
        wal = Path(self._path + "-wal")
        try:
            while not self._stop_checkpoints.wait(period):
                with contextlib.suppress(sqlite3.Error):  # busy: the next pass catches up
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    # Under writes that never pause, a passive checkpoint never catches the
                    # WAL's end, so the WAL never restarts and grows by every commit (a
                    # soak of 30,000 changes: 35 MB). Past a bound, one TRUNCATE
                    # checkpoint empties it. It runs on the writer's own thread, between
                    # two transactions: from here it would have to win the write lock
                    # from a writer that retakes it at once, and it loses (the WAL then
                    # reached 370 MB in the 1,000,000-change soak). It waits for the writer
                    # to be idle, up to a hard bound: a storm's parts write ~15 MB each, and
                    # a truncation queued between two of them (0.1-0.15 s, three times in
                    # a 100,000-position storm) was on the storm's critical path.
                    size = wal.stat().st_size if wal.exists() else 0
                    if (
                        size > self.WAL_LIMIT
                        and not self._truncating
                        and (size > self.WAL_HARD_LIMIT or self._writer_idle())
                    ):
                        self._truncating = True
                        self._writer.submit(self._truncate_wal)
        finally:
            conn.close()

    def _writer_idle(self) -> bool:
        """No transaction in hand or queued, and none for `WRITER_IDLE` seconds (read from
        the checkpoint thread: two plain attributes the event loop's thread sets)."""
        return self._writes == 0 and time.monotonic() - self._write_done > self.WRITER_IDLE

    def _truncate_wal(self) -> None:
        try:
            if self._wconn is not None:
                with contextlib.suppress(sqlite3.Error):  # a reader in the way: next time
                    self._wconn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._truncating = False

    def _open_writer(self) -> None:
        try:
            self._wconn = _connect(self._path)
            self._wconn.execute("PRAGMA wal_autocheckpoint = 0")
            self._wconn.execute("BEGIN IMMEDIATE")
            for ddl in _CHANGES_DDL:
                self._wconn.execute(ddl)
            for group in KNOWN_GROUPS:
                create_group(self._wconn, group)
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

    @property
    def pruner(self) -> FeedPruner | None:
        return self._pruner

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        if self._pruning is not None:
            self._pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruning
        self._stop_checkpoints.set()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
        if self._wconn is not None:
            await loop.run_in_executor(self._writer, self._wconn.close)
        if self._rconn is not None:
            await loop.run_in_executor(self._reader, self._rconn.close)
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)

    # ---------------------------------------------------------------- transactions
    def _run_write(self, body: Callable[[SqliteTx], T]) -> T:
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
            tx = SqliteTx(conn, self._tables, writable=True)
            try:
                result = body(tx)
                tx.flush()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                self._refresh_tables(conn)
                raise
            if tx.changed:
                self._wakeup.wake()
            return result
        raise Temporary("SQLite is busy")  # pragma: no cover - loop always returns or raises

    def _run_read(self, body: Callable[[SqliteTx], T]) -> T:
        conn = self._rconn
        assert conn is not None, "store not started"
        if len(self._tables) < len(KNOWN_GROUPS):
            self._refresh_tables(conn)
        conn.execute("BEGIN")
        try:
            return body(SqliteTx(conn, self._tables, writable=False))
        finally:
            conn.execute("COMMIT")

    async def transact(self, body: Callable[[Any], T]) -> T:
        self._writes += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._writer, self._run_write, body
            )
        finally:
            self._writes -= 1
            self._write_done = time.monotonic()

    async def read(self, body: Callable[[Any], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reader, self._run_read, body)

    def transact_blocking(self, body: Callable[[Any], T]) -> T:
        """For the writer thread's own callers (benchmarks): no event-loop hop."""
        return self._writer.submit(self._run_write, body).result()

    # ---------------------------------------------------------------- change feed
    async def head(self) -> int:
        def body(tx: SqliteTx) -> int:
            # The floor too: a feed pruned to nothing still has the head it had.
            row = tx._conn.execute(
                f"SELECT MAX(COALESCE(MAX(seq), 0), ({_FLOOR})) FROM _changes"
            ).fetchone()
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
        rows = conn.execute(sql, params).fetchall()
        # The floor is read after the rows: a prune commits its deletes and its floor
        # together, so if the floor is still at or below `after` now, nothing after it
        # had been deleted when the rows were read.
        check_floor(after, int(conn.execute(_FLOOR).fetchone()[0]))
        return [
            Change(seq, grp, u, path, None if doc is None else decode(doc))
            for seq, grp, u, path, doc in rows
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

        def read() -> Awaitable[list[Change]]:
            return loop.run_in_executor(self._reader, self._read_changes, after, groups, uid, limit)

        # Woken at once by this process's commits; other processes' commits are seen
        # by the poll, so a change written elsewhere arrives within 100 ms.
        return await self._wakeup.poll(read, wait, period=0.1)

    async def prune_changes(self, keep: int) -> int:
        """Drop all but the latest `keep` changes at once (the retention task does it by its
        rule; this is for tests, benchmarks and an operator)."""
        return await self.prune_through(await self.head() - keep)

    async def prune_through(self, seq: int, *, batch: int = 20_000) -> int:
        """Delete every change with seq <= `seq` and raise the floor to it, `batch` rows
        per transaction so the writer is never held for long."""
        removed = 0
        while True:
            done, count = await self.transact(lambda tx: _prune_step(tx._conn, seq, batch))
            removed += count
            if done:
                return removed


def _prune_step(conn: sqlite3.Connection, seq: int, batch: int) -> tuple[bool, int]:
    floor = int(conn.execute(_FLOOR).fetchone()[0])
    if seq <= floor:
        return True, 0
    row = conn.execute(
        "SELECT seq FROM _changes WHERE seq > ? ORDER BY seq LIMIT 1 OFFSET ?", (floor, batch - 1)
    ).fetchone()
    upto = seq if row is None else min(seq, int(row[0]))
    count = conn.execute("DELETE FROM _changes WHERE seq <= ?", (upto,)).rowcount
    conn.execute(
        "INSERT INTO _feed_floor (id, seq) VALUES (0, ?) "
        "ON CONFLICT (id) DO UPDATE SET seq = MAX(seq, excluded.seq)",
        (upto,),
    )
    return upto >= seq, count
