"""PostgreSQL's SQL: the shared schema and query translation, with JSONB typed columns.

Typed columns are JSONB rather than TEXT or BIGINT: a registered field may hold a string
(`details.status`, ISO times) or a number (`seq`), and JSONB keeps each value's type, so
numbers order as numbers and strings as strings, like Firestore, without a second
declaration of each field's type that could drift from the registry. Strings compare in
the database's collation; ISO times and ids sort the same in C and en_US alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import msgspec
from psycopg.types.json import Jsonb

from cogmora.store.paths import DocPath
from cogmora.store.queries import Query
from cogmora.store.sqlschema import Dialect, column, extract, fields_for, sql_value

DIALECT = Dialect(placeholder="%s", doc_type="JSONB", any_type="JSONB")
_encode = msgspec.json.Encoder().encode

CHANGES_DDL = (
    "CREATE SEQUENCE IF NOT EXISTS _changes_seq",
    "CREATE TABLE IF NOT EXISTS _changes (seq BIGINT PRIMARY KEY, grp TEXT NOT NULL, "
    "uid TEXT, path TEXT NOT NULL, doc TEXT, at TIMESTAMPTZ NOT NULL DEFAULT now())",
    "CREATE INDEX IF NOT EXISTS ix_changes_uid ON _changes (uid, seq)",
    "CREATE INDEX IF NOT EXISTS ix_changes_grp ON _changes (grp, seq)",
    # The newest seq pruned away (one row, absent until the first prune): a reader whose
    # cursor is below it has missed changes and gets FeedResync.
    "CREATE TABLE IF NOT EXISTS _feed_floor (id INT PRIMARY KEY CHECK (id = 0), "
    "seq BIGINT NOT NULL)",
)
FLOOR = "SELECT COALESCE((SELECT seq FROM _feed_floor WHERE id = 0), 0)"

# Appends the transaction's changes under the feed lock: one block of sequence numbers
# (nobody else draws from the sequence while the lock is held), numbered in write order,
# and a notification that is delivered when (and only if) the transaction commits. The
# document is kept as JSON text: this statement runs under the lock, and parsing it into
# JSONB there would serialize that work too (the feed's readers decode it anyway).
INSERT_CHANGES = (
    "WITH r AS (SELECT setval('_changes_seq', nextval('_changes_seq') + %(n)s - 1) AS last), "
    "ins AS (INSERT INTO _changes (seq, grp, uid, path, doc) "
    "SELECT r.last - %(n)s + t.o, t.g, t.u, t.p, t.d FROM r, "
    "unnest(%(g)b::text[], %(u)b::text[], %(p)b::text[], %(d)b::text[]) "
    "WITH ORDINALITY AS t(g, u, p, d, o) RETURNING seq) "
    "SELECT m, pg_notify(%(ch)s, m::text) FROM (SELECT max(seq) AS m FROM ins) AS s"
)


def table_ddl(group: str) -> list[str]:
    return [DIALECT.create_table(group), *DIALECT.create_indexes(group)]


def add_column(group: str, field_path: str) -> list[str]:
    """A typed column for a query declared after the table was made, filled from the
    documents already there (booleans as 0/1, as `sql_value` writes them), so an index on
    it can be created and the query sees old documents too."""
    col = column(field_path)
    value = "doc #> '{" + field_path.replace(".", ",") + "}'"
    return [
        f'ALTER TABLE "{group}" ADD COLUMN IF NOT EXISTS {col} JSONB',
        f'UPDATE "{group}" SET {col} = CASE jsonb_typeof({value}) '
        f"WHEN 'boolean' THEN to_jsonb(({value})::boolean::int) ELSE {value} END",
    ]


def select(query: Query) -> tuple[str, list[Any]]:
    """The shared translation; filter values become JSONB to meet the typed columns."""
    sql, params = DIALECT.select(query)
    skip = 1 if query.parent is not None else 0
    return sql, [*params[:skip], *(Jsonb(v) for v in params[skip:])]


@lru_cache(maxsize=256)
def bulk_insert(group: str, upsert: bool) -> str:
    """One INSERT for a whole run of writes: columns arrive as arrays and are unnested
    server-side, so 5,000 rows cost one statement instead of 5,000. Arrays go in binary
    (`%b`): a text array literal of JSON documents is all quotes to escape and unescape,
    ten times slower to send and parse."""
    fields = fields_for(group)
    names = ["path", "parent", "id", "doc", *(column(f) for f in fields)]
    arrays = ["%b::text[]"] * 3 + ["%b::text[]::jsonb[]"] * (1 + len(fields))
    sql = f'INSERT INTO "{group}" ({", ".join(names)}) SELECT * FROM unnest({", ".join(arrays)})'
    if upsert:
        sql += " ON CONFLICT (path) DO UPDATE SET " + ", ".join(
            f"{n} = excluded.{n}" for n in names[1:]
        )
    return sql


def bulk_columns(group: str, rows: Sequence[tuple[DocPath, dict[str, Any], str]]) -> list[Any]:
    """The arrays for `bulk_insert`; `rows` are (path, doc, doc already encoded as JSON)."""
    cols: list[list[Any]] = [[], [], [], []]
    fields = fields_for(group)
    typed: list[list[str | None]] = [[] for _ in fields]
    for dp, doc, text in rows:
        cols[0].append(dp.path)
        cols[1].append(dp.parent)
        cols[2].append(dp.id)
        cols[3].append(text)
        for values, f in zip(typed, fields, strict=True):
            v = extract(doc, f)
            values.append(None if v is None else _encode(v).decode())
    return [*cols, *typed]


def compare_and_set(
    group: str, paths: Sequence[str], expect: dict[str, Any], updates: dict[str, Any]
) -> tuple[str, list[Any]]:
    """One UPDATE: the dotted `updates` merged into each document whose `expect` fields
    hold (exact JSON equality), typed columns kept in step; RETURNING the new rows."""
    doc_expr, params = _merge([], _tree(updates))
    sets = [f"doc = {doc_expr}"]
    for f in fields_for(group):
        hit = next((u for u in updates if f == u or f.startswith(u + ".")), None)
        if hit is not None:
            value = extract({"v": updates[hit]}, "v" + f[len(hit) :])
            sets.append(f"{column(f)} = %s")
            params.append(None if value is None else Jsonb(sql_value(value)))
    where = ["path = ANY(%b)"]
    params.append(list(paths))
    for dotted, want in expect.items():
        if want is None:  # null or absent (`#>` gives SQL NULL for a missing path)
            where.append("coalesce(doc #> %s::text[], 'null'::jsonb) = 'null'::jsonb")
            params.append(dotted.split("."))
            continue
        where.append("(doc #> %s::text[]) = %s")
        params += [dotted.split("."), Jsonb(want)]
    sql = (
        f'UPDATE "{group}" SET {", ".join(sets)} WHERE {" AND ".join(where)} '
        "RETURNING path, parent, id, doc"
    )
    return sql, params


def _tree(updates: dict[str, Any]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for dotted, value in updates.items():
        node = root
        *parents, last = dotted.split(".")
        for part in parents:
            nxt = node.setdefault(part, {})
            if isinstance(nxt, _Leaf):
                raise ValueError(f"overlapping update fields at {dotted!r}")
            node = nxt
        if last in node:
            raise ValueError(f"overlapping update fields at {dotted!r}")
        node[last] = _Leaf(value)
    return root


class _Leaf:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _merge(path: list[str], tree: dict[str, Any]) -> tuple[str, list[Any]]:
    """The document at `path` (or {} where that is missing or not an object) with the
    tree's keys set, as a JSONB expression and its parameters, in placeholder order."""
    if path:
        base = (
            "(CASE WHEN jsonb_typeof(doc #> %s::text[]) = 'object' "
            "THEN doc #> %s::text[] ELSE '{}'::jsonb END)"
        )
        params: list[Any] = [path, path]
    else:
        base, params = "doc", []
    pieces = [base]
    for key, node in tree.items():
        if isinstance(node, _Leaf):
            pieces.append("jsonb_build_object(%s::text, %s::jsonb)")
            params += [key, Jsonb(node.value)]
        else:
            inner, inner_params = _merge([*path, key], node)
            pieces.append("jsonb_build_object(%s::text, " + inner + ")")
            params += [key, *inner_params]
    return "(" + " || ".join(pieces) + ")", params
