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
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from cogmora.errors import Conflict, Fatal, Temporary
from cogmora.store.paths import split
from cogmora.store.port import UNFED_GROUPS, Change, Doc
from cogmora.store.queries import Query
from cogmora.store.rules import ReadAfterWrite
from cogmora.store.sqlschema import (
    KNOWN_GROUPS,
    Dialect,
    column,
    fields_for,
    json_path,
    row_values,
    sql_value,
)
from cogmora.store.wakeup import Wakeup

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


def _split(path: str) -> tuple[str, str, str]:
    """(parent, group, id) of a document path; cheaper than paths.split on the hot path."""
    head, _, doc_id = path.rpartition("/")
    parent, _, group = head.rpartition("/")
    if not group or not doc_id:
        split(path)  # raises the descriptive error
    return parent, group, doc_id


def _uid(parent: str, group: str, doc_id: str) -> str | None:
    if group == "users":
        return doc_id
    if parent.startswith("users/"):
        return parent.split("/", 2)[1]
    return None


# `_uid` in SQL, for rows copied to the change feed without leaving the database.
_UID_SQL = (
    "CASE WHEN ? = 'users' THEN id "
    "WHEN parent LIKE 'users/%' THEN substr(parent, 7, "
    "CASE WHEN instr(substr(parent, 7), '/') = 0 THEN length(parent) "
    "ELSE instr(substr(parent, 7), '/') - 1 END) END"
)

_SET, _CREATE, _DELETE = 0, 1, 2


class _Tx:
    """Writes are buffered and flushed with executemany at commit: reads never follow a
    write (the port's rule), so nothing can observe the buffer, and a storm's 100,000
    writes cost a handful of statements instead of 200,000."""

    def __init__(self, conn: sqlite3.Connection, tables: set[str], writable: bool) -> None:
        self._conn = conn
        self._tables = tables
        self._writable = writable
        self._wrote = False
        self._ops: list[tuple[int, str, str, str, str, Doc | None]] = []
        self.changed = 0

    # ---------------------------------------------------------------- reads
    def _has(self, group: str) -> bool:
        """Whether the group's table exists; one another process created is found in the
        schema on first use, and remembered."""
        if group in self._tables:
            return True
        row = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (group,)
        ).fetchone()
        if row is not None:
            self._tables.add(group)
        return row is not None

    def _check_read(self) -> None:
        if self._wrote:
            raise ReadAfterWrite("every read must come before the first write in a transaction")

    def get(self, path: str) -> Doc | None:
        self._check_read()
        _, group, _ = _split(path)
        if not self._has(group):
            return None
        row = self._conn.execute(f'SELECT doc FROM "{group}" WHERE path = ?', (path,)).fetchone()
        return None if row is None else _decode(row[0])

    def get_many(self, paths: Sequence[str]) -> list[Doc | None]:
        self._check_read()
        found: dict[str, Doc] = {}
        by_group: dict[str, list[str]] = {}
        for p in paths:
            by_group.setdefault(_split(p)[1], []).append(p)
        for group, group_paths in by_group.items():
            if not self._has(group):
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
        if not self._has(query.group):
            return []
        return [(path, _decode(doc)) for path, doc in self._conn.execute(sql, params)]

    # ---------------------------------------------------------------- writes
    def _write(self, op: int, path: str, doc: Doc | None) -> None:
        if not self._writable:
            raise Fatal("write in a read-only transaction")
        self._wrote = True
        parent, group, doc_id = _split(path)
        self._ops.append((op, group, parent, doc_id, path, doc))

    def create(self, path: str, doc: Doc) -> None:
        self._write(_CREATE, path, doc)

    def set(self, path: str, doc: Doc) -> None:
        self._write(_SET, path, doc)

    def delete(self, path: str) -> None:
        self._write(_DELETE, path, None)

    def compare_and_set(
        self, paths: Sequence[str], expect: dict[str, Any], updates: dict[str, Any]
    ) -> list[str]:
        if not self._writable:
            raise Fatal("write in a read-only transaction")
        if self._ops:  # a compare-and-set reads: no plain write may precede it
            raise ReadAfterWrite("compare_and_set must come before the first plain write")
        self._wrote = True  # ... but several may follow one another
        if not paths:
            return []
        groups = {_split(p)[1] for p in paths}
        if len(groups) != 1:
            raise ValueError("compare_and_set takes paths of one collection group")
        group = groups.pop()
        if not self._has(group):
            return []
        typed = set(fields_for(group))
        # A string parameter is stored as a JSON string; anything else goes through json()
        # so that true, 1 and null keep their JSON types.
        sets = [
            "doc = json_set(doc, "
            + ", ".join(
                f"'{json_path(f)}', {'?' if isinstance(v, str) else 'json(?)'}"
                for f, v in updates.items()
            )
            + ")"
        ]
        params: list[Any] = [
            v if isinstance(v, str) else _encode(v).decode() for v in updates.values()
        ]
        for f, v in updates.items():
            if f in typed:
                sets.append(f"{column(f)} = ?")
                params.append(sql_value(v))
        where: list[str] = []
        where_params: list[Any] = []
        for f, v in expect.items():
            # Unary + keeps the planner on the primary key: with a bare typed column it may
            # walk the whole status index instead of looking up 500 paths.
            target = f"+{column(f)}" if f in typed else f"json_extract(doc, '{json_path(f)}')"
            where.append(f"{target} = ?")
            where_params.append(sql_value(v))
        changed: list[str] = []
        for i in range(0, len(paths), 500):
            chunk = list(paths[i : i + 500])
            sql = (
                f'UPDATE "{group}" SET {", ".join(sets)} WHERE path IN '
                f"({','.join('?' * len(chunk))})"
                + "".join(f" AND {w}" for w in where)
                + " RETURNING path"
            )
            taken = [r[0] for r in self._conn.execute(sql, [*params, *chunk, *where_params])]
            if taken and group not in UNFED_GROUPS:
                # Copied inside SQLite: a storm's documents never travel through Python.
                self._conn.execute(
                    f"INSERT INTO _changes (grp, uid, path, doc) SELECT ?, {_UID_SQL}, path, doc "
                    f'FROM "{group}" WHERE path IN ({",".join("?" * len(taken))})',
                    [group, group, *taken],
                )
            self.changed += len(taken)
            changed += taken
        return changed

    def flush(self) -> None:
        """Write the buffer: the last write of each path wins (a create stays a create), and
        like operations on one collection group go out as one executemany."""
        ops, self._ops = self._ops, []
        final: dict[str, tuple[int, str, str, str, Doc | None]] = {}
        for op, group, parent, doc_id, path, doc in ops:
            before = final.get(path)
            if before is not None:
                if op == _CREATE and before[0] != _DELETE:
                    raise Conflict(f"{path} already exists")
                if before[0] == _CREATE and op == _SET:
                    op = _CREATE  # still new: must not have existed before the transaction
                elif before[0] == _DELETE and op == _CREATE:
                    op = _SET  # deleted earlier in this transaction: replacing it is fine
            final[path] = (op, group, parent, doc_id, doc)
        runs: dict[tuple[int, str], list[tuple[Any, ...]]] = {}
        changes: list[tuple[str, str | None, str, str | None]] = []
        for path, (op, group, parent, doc_id, doc) in final.items():
            if group not in self._tables:
                _create_group(self._conn, group)
                self._tables.add(group)
            text = None if doc is None else _encode(doc).decode()
            run = runs.setdefault((op, group), [])
            if doc is None:
                run.append((path,))
            else:
                run.append(row_values(path, parent, doc_id, text, group, doc))
            if group not in UNFED_GROUPS:
                changes.append((group, _uid(parent, group, doc_id), path, text))
        for key, rows in runs.items():
            self._flush_run(key, rows)
        if changes:
            self._conn.executemany(
                "INSERT INTO _changes (grp, uid, path, doc) VALUES (?, ?, ?, ?)", changes
            )
            self.changed += len(changes)

    def _flush_run(self, key: tuple[int, str] | None, rows: list[tuple[Any, ...]]) -> None:
        if key is None or not rows:
            return
        op, group = key
        if op == _DELETE:
            self._conn.executemany(f'DELETE FROM "{group}" WHERE path = ?', rows)
        elif op == _SET:
            self._conn.executemany(DIALECT.upsert(group), rows)
        else:
            try:
                self._conn.executemany(DIALECT.insert(group), rows)
            except sqlite3.IntegrityError:
                existing = self._conn.execute(
                    f'SELECT path FROM "{group}" WHERE path IN ({",".join("?" * len(rows))})',
                    [r[0] for r in rows],
                ).fetchone()
                where = existing[0] if existing else f"a document in {group}"
                raise Conflict(f"{where} already exists") from None


def _create_group(conn: sqlite3.Connection, group: str) -> None:
    """Create the group's table and the registry's indexes; an index whose declaration
    changed since the file was made is rebuilt, so the registry stays the truth."""
    conn.execute(DIALECT.create_table(group))
    have = {row[1] for row in conn.execute(f'PRAGMA table_info("{group}")')}
    for field in fields_for(group):
        if column(field) not in have:  # a query declared since the file was made
            conn.execute(f'ALTER TABLE "{group}" ADD COLUMN {column(field)}')
            conn.execute(
                f'UPDATE "{group}" SET {column(field)} = json_extract(doc, ?)', (json_path(field),)
            )
    for ddl in DIALECT.create_indexes(group):
        name = ddl.split('"')[1]
        row = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
        ).fetchone()
        wanted = ddl.replace("CREATE INDEX IF NOT EXISTS", "CREATE INDEX")
        if row is not None and row[0] != wanted:
            conn.execute(f'DROP INDEX "{name}"')
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
        self._wakeup = Wakeup()
        self._stop_checkpoints = threading.Event()
        self._checkpointer: threading.Thread | None = None

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

    def _checkpoint_loop(self, period: float = 0.25) -> None:
        """Copy the WAL into the database off the commit path.

        With SQLite's automatic checkpoint, the commit that pushes the WAL past 1,000
        pages does the copying itself: after a storm or a bulk load that is hundreds of
        milliseconds inside some unlucky tick's transaction. A passive checkpoint on its
        own connection never blocks the writer, so the worker's commits stay short.
        """
        conn = _connect(self._path)
        try:
            while not self._stop_checkpoints.wait(period):
                with contextlib.suppress(sqlite3.Error):  # busy: the next pass catches up
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    def _open_writer(self) -> None:
        try:
            self._wconn = _connect(self._path)
            self._wconn.execute("PRAGMA wal_autocheckpoint = 0")
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

        def read() -> Awaitable[list[Change]]:
            return loop.run_in_executor(self._reader, self._read_changes, after, groups, uid, limit)

        # Woken at once by this process's commits; other processes' commits are seen
        # by the poll, so a change written elsewhere arrives within 100 ms.
        return await self._wakeup.poll(read, wait, period=0.1)

    async def prune_changes(self, keep: int) -> int:
        """Drop all but the latest `keep` changes: the feed is for followers, not an archive."""

        def body(tx: _Tx) -> int:
            cur = tx._conn.execute(
                "DELETE FROM _changes WHERE seq <= (SELECT MAX(seq) FROM _changes) - ?", (keep,)
            )
            return cur.rowcount

        return await self.transact(body)
