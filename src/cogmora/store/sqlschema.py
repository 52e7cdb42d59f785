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
class Dialect:
    placeholder: str  # "?" for sqlite, "%s" for psycopg
    doc_type: str  # column type of the JSON document
    any_type: str  # column type of a typed field column

    def create_table(self, group: str) -> str:
        cols = "".join(f", {column(f)} {self.any_type}" for f in fields_for(group))
        return (
            f'CREATE TABLE IF NOT EXISTS "{group}" (path TEXT PRIMARY KEY, parent TEXT NOT NULL, '
            f"id TEXT NOT NULL, doc {self.doc_type} NOT NULL{cols})"
        )

    def create_indexes(self, group: str, registry: Iterable[QuerySpec] = REGISTRY) -> list[str]:
        """One B-tree per declared shape, except a shape whose columns lead another's: that
        longer index serves it as well (`status` by `status, uid`), and every index holding
        a column is rewritten when the column changes (a storm changes `details.status`)."""
        shapes = _shapes(group, registry)
        return [
            f'CREATE INDEX IF NOT EXISTS "ix_{name}" ON "{group}" ({", ".join(cols)})'
            for name, cols in shapes
            if _covering(name, shapes) == name
        ]

    def index_serving(self, spec: QuerySpec, registry: Iterable[QuerySpec] = REGISTRY) -> str:
        """The name of the index `create_indexes` makes for `spec`: its own, or the one
        whose leading columns are its columns."""
        return f"ix_{_covering(spec.name, _shapes(spec.group, registry))}"

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


def _shapes(group: str, registry: Iterable[QuerySpec]) -> list[tuple[str, tuple[str, ...]]]:
    """Each declared shape of `group` with its index columns, in declaration order."""
    shapes: list[tuple[str, tuple[str, ...]]] = []
    for spec in registry:
        if spec.group != group:
            continue
        cols = [f"{column(f)}{' DESC' if d == 'desc' else ''}" for f, d in spec.index_fields()]
        if spec.scope == "collection":
            cols.insert(0, "parent")
        if cols:
            shapes.append((spec.name, tuple(cols)))
    return shapes


def _covering(name: str, shapes: list[tuple[str, tuple[str, ...]]]) -> str:
    """The shape whose index serves `name`'s: the longest one its columns lead (the first
    declared among equals); `name` itself when none is longer."""
    cols = dict(shapes)[name]
    best = name
    for other, theirs in shapes:
        if theirs[: len(cols)] == cols and len(theirs) > len(dict(shapes)[best]):
            best = other
    if best == name:  # an identical shape declared earlier serves it
        best = next(other for other, theirs in shapes if theirs == cols)
    return best


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
