"""SQLite transactions: the Tx of the port, on one connection inside BEGIN IMMEDIATE.

Writes are buffered and flushed with executemany at commit: reads never follow a write
(the port's rule), so nothing can observe the buffer, and a storm's 100,000 writes cost
a handful of statements instead of 200,000.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from cogmora.errors import Conflict
from cogmora.gcpause import gc_paused
from cogmora.store.paths import split
from cogmora.store.port import UNFED_GROUPS, Doc
from cogmora.store.queries import Query
from cogmora.store.rules import TxRules
from cogmora.store.sqlschema import (
    Dialect,
    column,
    fields_for,
    json_path,
    sql_value,
)

DIALECT = Dialect(placeholder="?", doc_type="TEXT", any_type="", partial_ranges=True)
_encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder().decode


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
_Op = tuple[int, str, str, str, str, Doc | None]  # (op, group, parent, id, path, doc)
_PLAIN = frozenset({str, int, float, type(None)})  # typed values stored as they are


def _norm(value: Any) -> Any:
    """`sqlschema.extract`'s rule for a value that is not plain: a bool is stored as 0/1,
    an object or an array as no value."""
    if value.__class__ is bool:
        return int(value)
    if isinstance(value, dict | list):
        return None
    return value


def _sub(value: Any, key: str) -> Any:
    return value.get(key) if value.__class__ is dict else None


def _extractor(fields: Sequence[str]) -> Callable[[Doc], tuple[Any, ...]]:
    """A function giving `sqlschema.extract` of each of `fields`, compiled once per group as
    one expression (namedtuple's way): a settlement batch writes ~4,000 rows, and a loop over
    the split paths cost more than the rest of the row."""
    items = []
    for i, field in enumerate(fields):
        first, *rest = field.split(".")
        expr = f"d.get({first!r})"
        for part in rest:
            expr = f"_sub({expr}, {part!r})"
        items.append(f"(v{i} if (v{i} := {expr}).__class__ in _PLAIN else _norm(v{i}))")
    source = f"lambda d: ({', '.join(items)}{',' if len(items) == 1 else ''})"
    # The source holds nothing but repr()s of the registry's field names.
    made: Callable[[Doc], tuple[Any, ...]] = eval(
        source, {"_sub": _sub, "_norm": _norm, "_PLAIN": _PLAIN}
    )
    return made


_EXTRACTORS: dict[str, Callable[[Doc], tuple[Any, ...]]] = {}


def _typed_values(group: str, doc: Doc) -> tuple[Any, ...]:
    """`sqlschema.extract` of each typed field of `group`, in `fields_for` order."""
    extract = _EXTRACTORS.get(group)
    if extract is None:
        extract = _EXTRACTORS[group] = _extractor(fields_for(group))
    return extract(doc)


def _first(row: tuple[Any, ...]) -> Any:
    return row[0]


def _last(row: tuple[Any, ...]) -> Any:
    return row[-1]


def _columns(group: str) -> str:
    """The typed columns of `group` after `path, doc` in a SELECT ("" when it has none)."""
    return "".join(f", {column(f)}" for f in fields_for(group))


class SqliteTx:
    """Writes are buffered and flushed with executemany at commit: reads never follow a
    write (the port's rule), so nothing can observe the buffer, and a storm's 100,000
    writes cost a handful of statements instead of 200,000."""

    def __init__(self, conn: sqlite3.Connection, tables: set[str], writable: bool) -> None:
        self._conn = conn
        self._tables = tables
        self._rules = TxRules(writable)
        self._writable = writable
        self._ops: list[_Op] = []
        # path -> its typed columns as stored, for each document this (writable) body
        # read: a later set() of it is an UPDATE of the doc and of the columns that changed
        # only, where an upsert rewrites every column and so every index of the table (a
        # settlement changes only `details.status`).
        self._stored: dict[str, tuple[Any, ...]] = {}
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

    def get(self, path: str) -> Doc | None:
        self._rules.check_read()
        _, group, _ = _split(path)
        if not self._has(group):
            return None
        cols = _columns(group) if self._writable else ""
        row = self._conn.execute(
            f'SELECT path, doc{cols} FROM "{group}" WHERE path = ?', (path,)
        ).fetchone()
        if row is None:
            return None
        if self._writable:
            self._stored[path] = row[2:]
        doc: Doc = decode(row[1])
        return doc

    def get_many(self, paths: Sequence[str]) -> list[Doc | None]:
        self._rules.check_read()
        with gc_paused():
            return self._get_many(paths)

    def _get_many(self, paths: Sequence[str]) -> list[Doc | None]:
        found: dict[str, Doc] = {}
        by_group: dict[str, list[str]] = {}
        for p in paths:
            by_group.setdefault(_split(p)[1], []).append(p)
        stored = self._stored
        for group, group_paths in by_group.items():
            if not self._has(group):
                continue
            cols = _columns(group) if self._writable else ""
            for i in range(0, len(group_paths), 500):
                chunk = group_paths[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f'SELECT path, doc{cols} FROM "{group}" WHERE path IN ({marks})', chunk
                )
                if self._writable:
                    for row in rows:
                        found[row[0]] = decode(row[1])
                        stored[row[0]] = row[2:]
                else:
                    for path, doc in rows:
                        found[path] = decode(doc)
        return [found.get(p) for p in paths]

    def query(self, query: Query) -> list[tuple[str, Doc]]:
        self._rules.check_read()
        sql, params = DIALECT.select(query)
        if not self._has(query.group):
            return []
        return [(path, decode(doc)) for path, doc in self._conn.execute(sql, params)]

    # ---------------------------------------------------------------- writes
    def _write(self, op: int, path: str, doc: Doc | None) -> None:
        if not self._ops:  # the rules' state only changes on the first write
            self._rules.note_write()
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
        self._rules.check_cas()
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
            if v is None:  # null or absent: json_extract gives SQL NULL for both
                where.append(f"{target} IS NULL")
                continue
            where.append(f"{target} = ?")
            where_params.append(sql_value(v))
        changed: list[str] = []
        # In path order: each statement's 500 rows are then neighbours in the primary key
        # and in the tables' pages; a storm's hits arrive in level order, scattered, and
        # were measured 2x slower so on 30,000 rows (BENCHMARKS.md, issue 11).
        paths = sorted(paths)
        for i in range(0, len(paths), 500):
            chunk = paths[i : i + 500]
            sql = (
                f'UPDATE "{group}" SET {", ".join(sets)} WHERE path IN '
                f"({','.join('?' * len(chunk))})"
                + "".join(f" AND {w}" for w in where)
                + " RETURNING rowid, path"
            )
            rows = self._conn.execute(sql, [*params, *chunk, *where_params]).fetchall()
            taken = [r[1] for r in rows]
            if rows and group not in UNFED_GROUPS:
                # Copied inside SQLite: a storm's documents never travel through Python. By
                # rowid, one B-tree descent a row where the path is two (its index, then
                # the table).
                self._conn.execute(
                    f"INSERT INTO _changes (grp, uid, path, doc) SELECT ?, {_UID_SQL}, path, doc "
                    f'FROM "{group}" WHERE rowid IN ({",".join("?" * len(rows))})',
                    [group, group, *(r[0] for r in rows)],
                )
            if self._stored:  # its stored columns changed: a later set() upserts it
                for path in taken:
                    self._stored.pop(path, None)
            self.changed += len(taken)
            changed += taken
        return changed

    def flush(self) -> None:
        """Write the buffer: the last write of each path wins (a create stays a create), and
        like operations on one collection group go out as one executemany."""
        with gc_paused():
            self._flush()

    def _flush(self) -> None:
        ops, self._ops = self._ops, []
        final = {w[4]: w for w in ops}
        if len(final) != len(ops):  # a path written twice: the rules of the last write
            final = _last_writes(ops)
        runs: dict[tuple[int, str], list[tuple[Any, ...]]] = {}
        updates: dict[tuple[str, tuple[int, ...]], list[tuple[Any, ...]]] = {}
        changes: list[tuple[str, str | None, str, str | None]] = []
        stored = self._stored
        tables = self._tables
        texts: dict[int, str] = {}  # id(doc) -> its JSON: a position and its history share one
        for op, group, parent, doc_id, path, doc in final.values():
            if group not in tables:
                create_group(self._conn, group)
                tables.add(group)
            text: str | None = None
            if doc is None:
                runs.setdefault((op, group), []).append((path,))
            else:
                text = texts.get(id(doc))
                if text is None:
                    text = texts[id(doc)] = _encode(doc).decode()
                extract = _EXTRACTORS.get(group)
                if extract is None:
                    extract = _EXTRACTORS[group] = _extractor(fields_for(group))
                typed = extract(doc)
                before = stored.get(path) if op == _SET else None
                if before is None:
                    runs.setdefault((op, group), []).append((path, parent, doc_id, text, *typed))
                else:
                    moved = tuple(
                        i
                        for i, v in enumerate(typed)
                        if v != before[i] or v.__class__ is not before[i].__class__
                    )
                    updates.setdefault((group, moved), []).append(
                        (text, *(typed[i] for i in moved), path)
                    )
            if group not in UNFED_GROUPS:
                changes.append((group, _uid(parent, group, doc_id), path, text))
        # Each run in path order: neighbours in the primary key and in each user's index
        # ranges (the feed keeps the order of the writes).
        for key, rows in runs.items():
            rows.sort(key=_first)
            self._flush_run(key, rows)
        for (group, moved), rows in updates.items():
            rows.sort(key=_last)
            self._flush_updates(group, moved, rows)
        if changes:
            self._conn.executemany(
                "INSERT INTO _changes (grp, uid, path, doc) VALUES (?, ?, ?, ?)", changes
            )
            self.changed += len(changes)

    def _flush_updates(
        self, group: str, moved: tuple[int, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        """Documents read in this transaction and set again: the doc and the typed columns
        whose values changed, by path. Each row exists (it was read, and only this
        connection writes inside BEGIN IMMEDIATE); should one not, the run is upserted."""
        fields = fields_for(group)
        sets = "".join(f", {column(fields[i])} = ?" for i in moved)
        cur = self._conn.executemany(f'UPDATE "{group}" SET doc = ?{sets} WHERE path = ?', rows)
        if cur.rowcount != len(rows):  # pragma: no cover - defensive: an upsert is always right
            full = [self._row(group, r[-1], r[0]) for r in rows]
            self._conn.executemany(DIALECT.upsert(group), full)

    def _row(self, group: str, path: str, text: str) -> tuple[Any, ...]:
        parent, _, doc_id = _split(path)
        return (path, parent, doc_id, text, *_typed_values(group, decode(text)))

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


def _last_writes(ops: list[_Op]) -> dict[str, _Op]:
    """The last write of each path, by the port's rules: a create of a path written before
    in the transaction conflicts unless it was deleted; a set of a path created in it stays a
    create (it must not have existed before); a create after a delete replaces."""
    final: dict[str, _Op] = {}
    for w in ops:
        op, path = w[0], w[4]
        before = final.get(path)
        if before is not None:
            if op == _CREATE and before[0] != _DELETE:
                raise Conflict(f"{path} already exists")
            if before[0] == _CREATE and op == _SET:
                w = (_CREATE, *w[1:])
            elif before[0] == _DELETE and op == _CREATE:
                w = (_SET, *w[1:])
        final[path] = w
    return final


def create_group(conn: sqlite3.Connection, group: str) -> None:
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
    indexes = DIALECT.create_indexes(group)
    declared = {ddl.split('"')[1] for ddl in indexes}
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
        " AND name LIKE 'ix!_%' ESCAPE '!'",
        (group,),
    ).fetchall():
        if name not in declared:  # no longer declared, or now served by a longer index
            conn.execute(f'DROP INDEX "{name}"')
    for ddl in indexes:
        name = ddl.split('"')[1]
        row = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
        ).fetchone()
        wanted = ddl.replace("CREATE INDEX IF NOT EXISTS", "CREATE INDEX")
        if row is not None and row[0] != wanted:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute(ddl)
