"""One PostgreSQL transaction as the port's Tx: reads at once, writes buffered until commit.

Buffering is Firestore's own behaviour (writes are sent with the commit) and costs
nothing here, because the port forbids reads after writes: nothing can observe the
buffer. At commit the writes go out as one pipelined executemany per run of like writes,
then the change rows are appended under the feed lock (see `postgres.py`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import msgspec
import psycopg
from psycopg import errors as pgerr

from cogmora.errors import Conflict
from cogmora.store.paths import split
from cogmora.store.port import UNFED_GROUPS, Doc
from cogmora.store.postgres import sql as pg_sql
from cogmora.store.queries import Query
from cogmora.store.rules import TxRules, Write, check_group, doc_path

Conn = psycopg.Connection[Any]
_encode = msgspec.json.Encoder().encode


class Tables:
    """Which collection tables exist, shared by a store's threads; a table another
    replica created is found in the catalogue on first use."""

    def __init__(self) -> None:
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def add(self, names: set[str] | list[str]) -> None:
        with self._lock:
            self._known.update(names)

    def __contains__(self, name: str) -> bool:
        return name in self._known

    def exists(self, conn: Conn, group: str) -> bool:
        if group in self._known:
            return True
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{group}"',)).fetchone()
        if row is not None and row[0]:
            self.add([group])
            return True
        return False


class PgTx(TxRules):
    def __init__(self, conn: Conn, tables: Tables, writable: bool) -> None:
        super().__init__(writable)
        self._conn = conn
        self._tables = tables
        self._changes: list[tuple[str, str | None, str, str | None]] = []
        self.new_tables: set[str] = set()

    # ---------------------------------------------------------------- reads
    def get(self, path: str) -> Doc | None:
        self.check_read()
        group = doc_path(path).group
        if not self._tables.exists(self._conn, group):
            return None
        row = self._conn.execute(f'SELECT doc FROM "{group}" WHERE path = %s', (path,)).fetchone()
        return None if row is None else row[0]

    def get_many(self, paths: Sequence[str]) -> list[Doc | None]:
        self.check_read()
        by_group: dict[str, list[str]] = {}
        for p in paths:
            by_group.setdefault(doc_path(p).group, []).append(p)
        found: dict[str, Doc] = {}
        for group, group_paths in by_group.items():
            if not self._tables.exists(self._conn, group):
                continue
            cur = self._conn.execute(
                f'SELECT path, doc FROM "{group}" WHERE path = ANY(%b)', (group_paths,)
            )
            found.update(cur.fetchall())
        return [found.get(p) for p in paths]

    def query(self, query: Query) -> list[tuple[str, Doc]]:
        self.check_read()
        sql, params = pg_sql.select(query)  # refuses an undeclared query first
        if not self._tables.exists(self._conn, check_group(query.group)):
            return []
        return self._conn.execute(sql, params).fetchall()

    # ---------------------------------------------------------------- writes
    # create, set and delete are the rules' own (buffered `Write`s, sent by flush()).
    def compare_and_set(
        self, paths: Sequence[str], expect: dict[str, Any], updates: dict[str, Any]
    ) -> list[str]:
        group = self.cas_group(paths)
        if group is None or not self._tables.exists(self._conn, group):
            return []
        sql, params = pg_sql.compare_and_set(group, paths, expect, updates)
        rows = self._conn.execute(sql, params).fetchall()
        if group not in UNFED_GROUPS:
            for path, _parent, _id, doc in rows:
                self._changes.append((group, split(path).uid, path, _encode(doc).decode()))
        return [r[0] for r in rows]

    # ---------------------------------------------------------------- commit
    def flush(self, ddl_key: tuple[int, int], feed_key: tuple[int, int], channel: str) -> int:
        """Send the buffered writes and append their changes; returns the last change's
        seq (0 when nothing was fed)."""
        writes, self.writes = self.writes, []
        missing = sorted({w.path.group for w in writes} - self._known_groups(writes))
        if missing:
            self._conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", ddl_key)
            for group in missing:
                for ddl in pg_sql.table_ddl(group):
                    self._conn.execute(ddl)
            self.new_tables.update(missing)
        final = _coalesce(writes)
        texts = {
            path: None if w.doc is None else _encode(w.doc).decode() for path, w in final.items()
        }
        runs: dict[tuple[str, str], list[Write]] = {}
        for w in final.values():
            runs.setdefault((w.kind, w.path.group), []).append(w)
        # every path appears once, so the runs commute: deletes first, then one statement each
        for (kind, _group), run in sorted(runs.items(), key=lambda kv: kv[0][0] != "delete"):
            del kind
            self._send(run, [texts[w.path.path] for w in run])
        changes = self._changes
        for path, w in final.items():
            if w.path.group not in UNFED_GROUPS:
                changes.append((w.path.group, w.path.uid, path, texts[path]))
        if not changes:
            return 0
        self._conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", feed_key)
        g, u, p, d = (list(col) for col in zip(*changes, strict=True))
        row = self._conn.execute(
            pg_sql.INSERT_CHANGES,
            {"n": len(changes), "g": g, "u": u, "p": p, "d": d, "ch": channel},
        ).fetchone()
        return int(row[0]) if row is not None else 0

    def _known_groups(self, writes: list[Write]) -> frozenset[str]:
        return frozenset(
            w.path.group for w in writes if self._tables.exists(self._conn, w.path.group)
        )

    def _send(self, run: list[Write], texts: list[str | None]) -> None:
        kind, group = run[0].kind, run[0].path.group
        with self._conn.cursor() as cur:
            if kind == "delete":
                cur.execute(
                    f'DELETE FROM "{group}" WHERE path = ANY(%b)', ([w.path.path for w in run],)
                )
                return
            rows = [(w.path, w.doc or {}, t or "{}") for w, t in zip(run, texts, strict=True)]
            params = pg_sql.bulk_columns(group, rows)
            try:
                cur.execute(pg_sql.bulk_insert(group, upsert=kind == "set"), params)
            except pgerr.UniqueViolation as exc:
                detail = exc.diag.message_detail or f"a document in {group} already exists"
                path = detail.removeprefix("Key (path)=(").split(")", 1)[0]
                raise Conflict(f"{path} already exists") from None


def _coalesce(writes: list[Write]) -> dict[str, Write]:
    """One write per path, its final state, in first-write order (as on SQLite): a create
    followed by a set is still a create (the document must not have existed before the
    transaction); a create after a delete in the same transaction is a replacement."""
    final: dict[str, Write] = {}
    for w in writes:
        path = w.path.path
        before = final.get(path)
        kind = w.kind
        if before is not None:
            if before.kind == "create" and kind == "set":
                kind = "create"
            elif before.kind == "delete" and kind == "create":
                kind = "set"
        final[path] = Write(kind, w.path, w.doc) if kind != w.kind else w
    return final
