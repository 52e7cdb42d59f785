"""The server backend: several replicas (worker, close handler, API) on one PostgreSQL.

Isolation: every writing body runs in a SERIALIZABLE transaction and is re-run on a
serialization failure or deadlock, so a compare-and-set is correct across replicas with
no locking protocol in the services (bodies are written to be re-runnable); retries that
run out raise Temporary. Reads run in REPEATABLE READ READ ONLY: one snapshot, no
serialization failures.

Change feed order: a BIGSERIAL is not commit order (a transaction may draw seq 7, commit
after the one that drew 8, and a tailer that has read 8 skips 7 forever). Here a
transaction appends its change rows as its very last statement, after taking
`pg_advisory_xact_lock(feed)`, and draws their seq while holding it. The lock is released
only once the commit is visible, so change-appending transactions commit one at a time in
seq order and every snapshot sees a prefix of the feed. Only that last step is
serialized; the body's reads and writes run concurrently. A `pg_notify` in the same
statement wakes `changes(wait=...)` in every process within milliseconds of the commit.

Transaction bodies are synchronous (the port's rule), so they run on a thread pool sized
to a psycopg_pool.ConnectionPool: one connection per thread, never a wait for one.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import psycopg
import structlog
from psycopg import errors as pgerr
from psycopg import sql
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from cogmora.errors import Conflict, Fatal, Temporary, ValidationError
from cogmora.store.port import Change
from cogmora.store.postgres import sql as pg_sql
from cogmora.store.postgres.tx import Conn, PgTx, Tables
from cogmora.store.retention import DEFAULT_RETENTION, FeedPruner, Retention, check_floor
from cogmora.store.sqlschema import KNOWN_GROUPS, column, fields_for
from cogmora.store.wakeup import Wakeup

T = TypeVar("T")
log = structlog.get_logger("cogmora.store.postgres")


@dataclass(frozen=True, slots=True)
class FeedVacuum:
    """When the pruner VACUUMs the change feed (PostgresStore._vacuum_if_due): once at
    least `after_rows` pruned rows await it, and at most once per `every` seconds. Between
    two, the table holds at most what is kept plus what was pruned meanwhile."""

    after_rows: int = 10_000
    every: float = 60.0

    def __post_init__(self) -> None:
        if self.after_rows < 1 or self.every < 0:
            raise ValueError(f"invalid feed vacuum rule {self}")


DEFAULT_VACUUM = FeedVacuum()
_DDL_CLASS = 0x636F6701  # advisory lock classes: "cog" + 1 (DDL), + 2 (feed)
_FEED_CLASS = 0x636F6702
_RETRYABLE = (pgerr.SerializationFailure, pgerr.DeadlockDetected)
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def parse_url(url: str) -> tuple[str, str | None]:
    """(libpq conninfo, schema). `?schema=NAME` is ours: it becomes the search_path and is
    created at start. libpq's own `options=-csearch_path%3DNAME` also works, unmanaged."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = [(k, v) for k, v in query if k != "schema"]
    if schema is not None:
        if not schema.isidentifier():
            raise ValidationError("schema", f"schema {schema!r} is not a plain identifier")
        opts = next((v for k, v in rest if k == "options"), "")
        rest = [(k, v) for k, v in rest if k != "options"]
        rest.append(("options", f"{opts} -csearch_path={schema}".strip()))
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql") else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest), "")), schema


def _configure(conn: Conn) -> None:
    set_json_loads(_decode, conn)
    set_json_dumps(_encode, conn)


class PostgresStore:
    """Store port on PostgreSQL: `PostgresStore("postgresql://127.0.0.1/test?schema=app")`.

    `retention` bounds the change feed (see `cogmora.store.retention`); None keeps every
    change forever, which only a benchmark of the unbounded way should want. `vacuum`
    bounds its bytes too, on a server without autovacuum (`FeedVacuum`); None leaves
    that to autovacuum.
    """

    max_writes_per_tx = 10_000

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 8,
        retries: int = 40,
        retention: Retention | None = DEFAULT_RETENTION,
        vacuum: FeedVacuum | None = DEFAULT_VACUUM,
    ) -> None:
        self._url = url
        self._vacuum = vacuum
        self._dead = 0  # changes pruned since the feed's last VACUUM
        self._vacuumed_at = -math.inf  # time.monotonic() of it
        self._vacuuming = threading.Lock()  # one VACUUM at a time from this store
        self._counting = threading.Lock()  # `_dead`, from the executor's threads
        self.vacuums = 0  # VACUUMs of the feed run, for tests and benchmarks
        self._pruner = None if retention is None else FeedPruner(self, retention)
        self._pruning: asyncio.Task[None] | None = None
        self._conninfo, self._schema = parse_url(url)
        self._pool_size = pool_size
        self._retries = retries
        self._pool: ConnectionPool[Conn] | None = None
        self._executor = ThreadPoolExecutor(pool_size, thread_name_prefix="pg")
        self._tables = Tables()
        self._ddl_key = (_DDL_CLASS, 0)
        self._feed_key = (_FEED_CLASS, 0)
        self._channel = "cogmora_changes"
        self._wakeup = Wakeup()
        self._listener: asyncio.Task[None] | None = None
        self.retried = 0  # serialization failures absorbed, for tests and benchmarks

    @property
    def name(self) -> str:
        parts = urlsplit(self._url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit((parts.scheme, host + port, parts.path, parts.query, ""))

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._wakeup.bind(loop)
        await loop.run_in_executor(self._executor, self._open)
        self._listener = asyncio.create_task(self._listen(), name="pg-change-listener")
        if self._pruner is not None:
            self._pruning = asyncio.create_task(self._pruner.run(), name="pg-feed-pruner")

    @property
    def pruner(self) -> FeedPruner | None:
        return self._pruner

    def _open(self) -> None:
        pool: ConnectionPool[Conn] = ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._pool_size,
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
            name="cogmora-store",
        )
        try:
            pool.open(wait=True, timeout=10.0)
        except PoolTimeout as exc:
            pool.close()
            raise Temporary(f"cannot connect to PostgreSQL at {self.name}") from exc
        self._pool = pool
        with self._connection() as conn:
            self._create_schema(conn)
            row = conn.execute("SELECT current_schema(), hashtext(current_schema())").fetchone()
            assert row is not None
            schema, key = str(row[0]), int(row[1])
            self._ddl_key = (_DDL_CLASS, key)
            self._feed_key = (_FEED_CLASS, key)
            self._channel = f"cogmora_changes_{key & 0xFFFFFFFF:08x}"
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            ).fetchall()
            self._tables.add([r[0] for r in tables])

    def _create_schema(self, conn: Conn) -> None:
        """Create what is missing, and touch nothing that exists.

        Even `CREATE INDEX IF NOT EXISTS` takes a SHARE lock on its table before it looks,
        so a replica starting while others write would queue behind them, or deadlock
        with a writer that holds one table and wants the next. So only the missing objects
        are created, one statement per transaction, under a session advisory lock that
        keeps two replicas starting at once from creating the same object.
        """
        name = self._schema or _first_schema(conn)
        if self._schema is not None and not _schema_exists(conn, name):
            with _advisory(conn, _DDL_CLASS, name):
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name)))
        statements = [*pg_sql.CHANGES_DDL, *(d for g in KNOWN_GROUPS for d in pg_sql.table_ddl(g))]
        if not _missing(conn, statements) and not _missing_columns(conn):
            return
        with _advisory(conn, _DDL_CLASS, name):
            for ddl in _missing_columns(conn):  # before the indexes that may need them
                conn.execute(ddl)
            for ddl in _missing(conn, statements):  # again: another replica may have done it
                conn.execute(ddl)

    async def close(self) -> None:
        for task in (self._pruning, self._listener):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        pool = self._pool
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, pool.close)
        self._executor.shutdown(wait=True)

    @contextmanager
    def _connection(self) -> Iterator[Conn]:
        pool = self._pool
        assert pool is not None, "store not started"
        try:
            with pool.connection(timeout=30.0) as conn:
                yield conn
        except PoolTimeout as exc:
            raise Temporary(f"no PostgreSQL connection available: {exc}") from exc
        except psycopg.OperationalError as exc:
            raise Temporary(f"PostgreSQL connection failed: {exc}") from exc

    # ---------------------------------------------------------------- transactions
    def _run_write(self, body: Callable[[PgTx], T]) -> T:
        with self._connection() as conn:
            delay = 0.001
            clashed = False
            for attempt in range(self._retries):
                conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
                tx = PgTx(conn, self._tables, writable=True)
                try:
                    result = body(tx)
                    try:
                        last = tx.flush(self._ddl_key, self._feed_key, self._channel)
                    except Conflict:
                        # A create that a concurrent transaction beat to the same path
                        # is reported as a unique violation, not a serialization failure
                        # (the body never read the path). Judge it once more on a fresh
                        # snapshot, where the body sees that document; a path that
                        # existed already fails again, and that is the answer.
                        if clashed or attempt == self._retries - 1:
                            raise
                        clashed = True
                        raise pgerr.SerializationFailure("a create raced another") from None
                    conn.execute("COMMIT")
                except _RETRYABLE as exc:
                    _rollback(conn)
                    self.retried += 1
                    if attempt == self._retries - 1:
                        raise Temporary(f"gave up after {self._retries} attempts: {exc}") from exc
                    time.sleep(random.uniform(0, delay))
                    delay = min(delay * 2, 0.1)
                    continue
                except BaseException as exc:
                    _rollback(conn)
                    if isinstance(exc, psycopg.Error):
                        raise _translate(exc) from exc
                    raise
                self._tables.add(tx.new_tables)
                if last:
                    self._wakeup.wake()
                return result
        raise Temporary("unreachable")  # pragma: no cover

    def _run_read(self, body: Callable[[PgTx], T]) -> T:
        with self._connection() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                result = body(PgTx(conn, self._tables, writable=False))
                conn.execute("COMMIT")
            except BaseException as exc:
                _rollback(conn)
                if isinstance(exc, psycopg.Error):
                    raise _translate(exc) from exc
                raise
            return result

    async def transact(self, body: Callable[[Any], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run_write, body)

    async def read(self, body: Callable[[Any], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._run_read, body
        )

    # ---------------------------------------------------------------- change feed
    async def head(self) -> int:
        def body(tx: PgTx) -> int:
            # The floor too: a feed pruned to nothing still has the head it had.
            row = tx._conn.execute(
                f"SELECT GREATEST(COALESCE(MAX(seq), 0), ({pg_sql.FLOOR})) FROM _changes"
            ).fetchone()
            return int(row[0]) if row is not None else 0

        return await self.read(body)

    def _read_changes(
        self, after: int, groups: frozenset[str] | None, uid: str | None, limit: int
    ) -> list[Change]:
        query = "SELECT seq, grp, uid, path, doc FROM _changes WHERE seq > %s"
        params: list[Any] = [after]
        if uid is not None:
            query += " AND uid = %s"
            params.append(uid)
        if groups is not None:
            query += " AND grp = ANY(%s)"
            params.append(sorted(groups))
        query += " ORDER BY seq LIMIT %s"
        params.append(limit)
        with self._connection() as conn:
            rows = conn.execute(query, params).fetchall()
            # The floor is read after the rows (autocommit: a newer snapshot). A prune
            # commits its deletes and its floor together, so a floor still at or below
            # `after` now means nothing after it had been deleted when the rows were read.
            floor = conn.execute(pg_sql.FLOOR).fetchone()
        check_floor(after, int(floor[0]) if floor is not None else 0)
        return [
            Change(int(s), g, u, p, None if d is None else _decode(d) if isinstance(d, str) else d)
            for s, g, u, p, d in rows
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
            return loop.run_in_executor(
                self._executor, self._read_changes, after, groups, uid, limit
            )

        # Woken by LISTEN/NOTIFY (any process's commit) or this process's own commits;
        # the one-second poll covers a listener that is reconnecting.
        return await self._wakeup.poll(read, wait, period=1.0)

    async def _listen(self) -> None:
        """LISTEN on this schema's channel; reconnects with backoff until cancelled."""
        backoff = 0.1
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                async with conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    backoff = 0.1
                    self._wakeup.release()  # anything committed while we were away
                    async for _ in conn.notifies():
                        self._wakeup.release()
            except psycopg.Error:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def prune_changes(self, keep: int) -> int:
        """Drop all but the latest `keep` changes at once (the retention task does it by its
        rule; this is for tests, benchmarks and an operator)."""
        return await self.prune_through(await self.head() - keep)

    async def prune_through(self, seq: int, *, batch: int = 20_000) -> int:
        """Delete every change with seq <= `seq` and raise the floor to it, `batch` rows per
        transaction. READ COMMITTED: the deletes touch only rows no writer touches (appends
        are above the head), and two pruners at once merely wait on each other's rows."""

        def run() -> int:
            removed = 0
            with self._connection() as conn:
                while True:
                    try:
                        with conn.transaction():
                            done, count = _prune_step(conn, seq, batch)
                    except psycopg.Error as exc:
                        raise _translate(exc) from exc
                    removed += count
                    if done:
                        break
                with self._counting:
                    self._dead += removed
                self._vacuum_if_due(conn)
            return removed

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    def _vacuum_if_due(self, conn: Conn) -> None:
        """VACUUM the feed's tables once enough pruned rows await it, at most once per
        `FeedVacuum.every` seconds.

        A DELETE only marks rows dead; their space is reused only after a VACUUM. On a
        server with autovacuum that comes by itself; with autovacuum off (a setting some
        managed or test servers have) the table grew by every change ever pruned, in
        bytes if not in rows (BENCHMARKS.md, PostgreSQL soak). A plain VACUUM takes no
        lock that blocks the feed's appends or reads, and must run outside a transaction
        block: the pool's connections are in autocommit. SKIP_LOCKED: another replica's
        pruner vacuuming the same table already does the work; ours waits for nothing.
        If autovacuum got there first, this one finds little to do. A failure is logged
        and retried at the next due pass (the dead rows are still counted)."""
        rule = self._vacuum
        if rule is None or not self._vacuuming.acquire(blocking=False):
            return
        try:
            now = time.monotonic()
            with self._counting:
                if self._dead < rule.after_rows or now - self._vacuumed_at < rule.every:
                    return
                dead, self._dead = self._dead, 0
            self._vacuumed_at = now
            try:
                conn.execute("VACUUM (SKIP_LOCKED) _changes, _feed_floor")
            except psycopg.Error as exc:
                with self._counting:
                    self._dead += dead
                log.warning("VACUUM of the change feed failed; retrying later", error=str(exc))
                return
            self.vacuums += 1
        finally:
            self._vacuuming.release()


def _prune_step(conn: Conn, seq: int, batch: int) -> tuple[bool, int]:
    row = conn.execute(pg_sql.FLOOR).fetchone()
    floor = int(row[0]) if row is not None else 0
    if seq <= floor:
        return True, 0
    nth = conn.execute(
        "SELECT seq FROM _changes WHERE seq > %s ORDER BY seq LIMIT 1 OFFSET %s",
        (floor, batch - 1),
    ).fetchone()
    upto = seq if nth is None else min(seq, int(nth[0]))
    count = conn.execute("DELETE FROM _changes WHERE seq <= %s", (upto,)).rowcount
    conn.execute(
        "INSERT INTO _feed_floor (id, seq) VALUES (0, %s) "
        "ON CONFLICT (id) DO UPDATE SET seq = GREATEST(_feed_floor.seq, excluded.seq)",
        (upto,),
    )
    return upto >= seq, count


def _first_schema(conn: Conn) -> str:
    row = conn.execute("SELECT current_schema()").fetchone()
    if row is None or row[0] is None:
        raise Fatal("the search_path names no existing schema; add ?schema=NAME to the URL")
    return str(row[0])


_OBJECT = re.compile(r'IF NOT EXISTS "?([A-Za-z_][A-Za-z0-9_]*)"?')


def _missing(conn: Conn, statements: list[str]) -> list[str]:
    """The statements whose table, index or sequence does not exist yet, in order."""
    names = [m.group(1) for m in (_OBJECT.search(s) for s in statements) if m]
    assert len(names) == len(statements), "every DDL statement names its object"
    rows = conn.execute(
        "SELECT n FROM unnest(%s::text[]) AS n WHERE to_regclass(quote_ident(n)) IS NULL",
        (names,),
    ).fetchall()
    absent = {r[0] for r in rows}
    return [s for s, n in zip(statements, names, strict=True) if n in absent]


def _missing_columns(conn: Conn) -> list[str]:
    """DDL adding the typed columns that queries declared since a table was made need."""
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    ).fetchall()
    have = {(r[0], r[1]) for r in rows}
    tables = {t for t, _ in have}
    return [
        ddl
        for group in KNOWN_GROUPS
        if group in tables
        for field in fields_for(group)
        if (group, column(field).lower()) not in have  # unquoted names fold to lower case
        for ddl in pg_sql.add_column(group, field)
    ]


def _schema_exists(conn: Conn, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)).fetchone()
    return row is not None


@contextmanager
def _advisory(conn: Conn, cls: int, name: str) -> Iterator[None]:
    conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (cls, name))
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (cls, name))


def _rollback(conn: Conn) -> None:
    with suppress(psycopg.Error):
        if not conn.closed:
            conn.execute("ROLLBACK")


def _translate(exc: psycopg.Error) -> Exception:
    """Library errors become ours at the boundary (the body's own errors pass through)."""
    if isinstance(exc, psycopg.OperationalError):
        return Temporary(f"PostgreSQL: {exc}")
    if isinstance(exc, psycopg.DataError):
        return ValidationError("doc", f"PostgreSQL refused a value: {exc}")
    return Fatal(f"PostgreSQL: {exc}")
