"""What the SQL backends share: typed columns and indexes derived from the query registry,
and the translation of a registered Query into SQL.

Documents live whole in a JSON column; every field a registered query filters or orders
on is also copied into a typed column at write time, so the database can index it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cogmora.store.queries import (
    IN,
    REGISTRY,
    Query,
    QuerySpec,
    filtered_fields_by_group,
    require,
)

_FIELDS_BY_GROUP = filtered_fields_by_group(REGISTRY)


def column(field_path: str) -> str:
    return "f_" + field_path.replace(".", "_")


def fields_for(group: str) -> tuple[str, ...]:
    return _FIELDS_BY_GROUP.get(group, ())


def extract(doc: dict[str, Any], field_path: str) -> Any:
    value: Any = doc
    for part in field_path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return None
    return value


def sql_value(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


@dataclass(frozen=True, slots=True)
class Index:
    """One SQL index made from the registry: its columns, and for a partial index the
    condition a row must meet to be in it ("" for every row)."""

    name: str
    columns: tuple[str, ...]
    where: str = ""


@dataclass(frozen=True, slots=True)
class Dialect:
    placeholder: str  # "?" for sqlite, "%s" for psycopg
    doc_type: str  # column type of the JSON document
    any_type: str  # column type of a typed field column
    # A range shape's own index holds only the rows that have the range field (SQLite): a
    # position without `expiresAt` is then never in `expiring_positions`, so a storm or a
    # settlement does not rewrite that index. Off for PostgreSQL, whose existing indexes
    # are never rebuilt (a changed declaration would not reach a running database).
    partial_ranges: bool = False

    def create_table(self, group: str) -> str:
        cols = "".join(f", {column(f)} {self.any_type}" for f in fields_for(group))
        return (
            f'CREATE TABLE IF NOT EXISTS "{group}" (path TEXT PRIMARY KEY, parent TEXT NOT NULL, '
            f"id TEXT NOT NULL, doc {self.doc_type} NOT NULL{cols})"
        )

    def create_indexes(self, group: str, registry: Iterable[QuerySpec] = REGISTRY) -> list[str]:
        """One B-tree per declared shape, except a shape another index serves: one whose
        columns it leads (`status` by `status, uid`), or the same columns read backwards
        (`closedAt desc` by `closedAt`). Every index holding a column is rewritten when the
        column changes (a storm changes `details.status`), so each one left out is a write
        less per row."""
        return [
            f'CREATE INDEX IF NOT EXISTS "{ix.name}" ON "{group}" ({", ".join(ix.columns)})'
            + (f" WHERE {ix.where}" if ix.where else "")
            for ix in _plan(group, tuple(registry), self.partial_ranges)[1]
        ]

    def index_serving(self, spec: QuerySpec, registry: Iterable[QuerySpec] = REGISTRY) -> str:
        """The name of the index `create_indexes` makes for `spec`: its own, or the one
        that serves it."""
        return _plan(spec.group, tuple(registry), self.partial_ranges)[0][spec.name]

    @lru_cache(maxsize=256)  # noqa: B019 - dialects are two frozen module constants
    def upsert(self, group: str) -> str:
        fields = fields_for(group)
        names = ["path", "parent", "id", "doc", *(column(f) for f in fields)]
        marks = ", ".join([self.placeholder] * len(names))
        updates = ", ".join(f"{n} = excluded.{n}" for n in names[1:])
        return (
            f'INSERT INTO "{group}" ({", ".join(names)}) VALUES ({marks}) '
            f"ON CONFLICT (path) DO UPDATE SET {updates}"
        )

    @lru_cache(maxsize=256)  # noqa: B019
    def insert(self, group: str) -> str:
        fields = fields_for(group)
        names = ["path", "parent", "id", "doc", *(column(f) for f in fields)]
        marks = ", ".join([self.placeholder] * len(names))
        return f'INSERT INTO "{group}" ({", ".join(names)}) VALUES ({marks})'

    def select(self, query: Query) -> tuple[str, list[Any]]:
        require(query)
        where: list[str] = []
        params: list[Any] = []
        if query.parent is not None:
            where.append(f"parent = {self.placeholder}")
            params.append(query.parent)
        for flt in query.filters:
            if flt.op == IN:
                marks = ", ".join([self.placeholder] * len(flt.value))
                where.append(f"{column(flt.field)} IN ({marks})")
                params.extend(sql_value(v) for v in flt.value)
                continue
            where.append(
                f"{column(flt.field)} {'=' if flt.op == '==' else flt.op} {self.placeholder}"
            )
            params.append(sql_value(flt.value))
        sql = f'SELECT path, doc FROM "{query.group}"'
        if where:
            sql += " WHERE " + " AND ".join(where)
        if query.order:
            sql += " ORDER BY " + ", ".join(
                f"{column(f)} {'DESC' if d == 'desc' else 'ASC'}" for f, d in query.order
            )
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        return sql, params


@dataclass(frozen=True, slots=True)
class _Shape:
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, "" or " DESC"), equality ones first
    fixed: int  # how many leading columns are equality (or parent) columns
    range: str | None  # the range field's column


def _shapes(group: str, registry: Iterable[QuerySpec]) -> list[_Shape]:
    """Each declared shape of `group` with its index columns, in declaration order."""
    shapes: list[_Shape] = []
    for spec in registry:
        if spec.group != group:
            continue
        cols = [(column(f), " DESC" if d == "desc" else "") for f, d in spec.index_fields()]
        fixed = len(spec.equals)
        if spec.scope == "collection":
            cols.insert(0, ("parent", ""))
            fixed += 1
        if cols:
            rng = None if spec.range is None else column(spec.range)
            shapes.append(_Shape(spec.name, tuple(cols), fixed, rng))
    return shapes


def _serves(index: _Shape, shape: _Shape) -> bool:
    """Whether `index`'s B-tree answers `shape`'s query without a sort: its columns begin
    with the shape's, equality columns in any direction, the rest all the same way or all
    reversed (a B-tree reads backwards as well as forwards)."""
    theirs = index.columns[: len(shape.columns)]
    if [c for c, _ in theirs] != [c for c, _ in shape.columns]:
        return False
    ordered = zip(theirs[shape.fixed :], shape.columns[shape.fixed :], strict=True)
    return len({a != b for (_, a), (_, b) in ordered}) <= 1


@lru_cache(maxsize=64)
def _plan(
    group: str, registry: tuple[QuerySpec, ...], partial_ranges: bool
) -> tuple[dict[str, str], list[Index]]:
    """Which index serves each shape of `group`, and the indexes to build.

    A shape is served by the longest declared index that serves it (the first declared
    among equals), so no B-tree is built that another one already provides. An index
    that serves only its own range shape may be partial (`partial_ranges`): every query
    of the shape compares the range field, so a row without it is never an answer.
    """
    shapes = _shapes(group, registry)
    serving: dict[str, str] = {}
    for shape in shapes:
        best = shape
        for other in shapes:
            if _serves(other, shape) and len(other.columns) > len(best.columns):
                best = other
        if best is shape:  # an equal shape declared earlier serves it
            best = next(other for other in shapes if _serves(other, shape))
        serving[shape.name] = best.name
    indexes: list[Index] = []
    for shape in shapes:
        if serving[shape.name] != shape.name:
            continue
        users = [n for n, s in serving.items() if s == shape.name]
        partial = partial_ranges and shape.range is not None and users == [shape.name]
        indexes.append(
            Index(
                f"ix_{shape.name}",
                tuple(c + d for c, d in shape.columns),
                f"{shape.range} IS NOT NULL" if partial else "",
            )
        )
    return {n: f"ix_{s}" for n, s in serving.items()}, indexes


def json_path(field_path: str) -> str:
    return "$." + field_path


def row_values(
    path: str, parent: str, doc_id: str, doc_text: Any, group: str, doc: dict[str, Any]
) -> tuple[Any, ...]:
    return (path, parent, doc_id, doc_text, *(extract(doc, f) for f in fields_for(group)))


# Groups whose tables exist from the start; others are created on their first write.
KNOWN_GROUPS: tuple[str, ...] = (
    "users",
    "openPositions",
    "tradeTriggers",
    "positionHistory",
    "ledger",
    "watchlist",
    "agent",
    "agentDecisions",
    "prices",
    "tokens",
    "idempotency",
    "schedules",
    "llmBudget",
)
