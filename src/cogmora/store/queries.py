"""THE registry of queries: every query the system runs is declared here, once.

The seed lost days to Firestore's `FAILED_PRECONDITION`: a collection-group query ran in
production without the composite index it needed. Here every backend refuses a query
whose shape is not declared below (raising `FailedPrecondition` naming the index it would
need), the SQL indexes are created from these declarations, and
`deploy/firestore.indexes.json` is generated from them, so code, SQL and Firestore cannot
disagree without a test or `cogmora indexes check` failing first.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from cogmora.domain.paths import user_path
from cogmora.errors import FailedPrecondition

Direction = Literal["asc", "desc"]
Scope = Literal["collection", "collection_group"]
EQUALITY = "=="
IN = "in"  # equality to one of a few values: served by the same index as ==
RANGE_OPS = frozenset({"<", "<=", ">", ">="})
MAX_IN_VALUES = 30  # Firestore's cap on an `in` filter's list


@dataclass(frozen=True, slots=True)
class Filter:
    field: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class Query:
    """A query as code builds it, Firestore style: group, optional parent, filters, order, limit.

    `parent=None` is a collection-group query over all users (the worker's); a parent such
    as `users/u1` restricts it to one user's collection.
    """

    group: str
    parent: str | None = None
    filters: tuple[Filter, ...] = ()
    order: tuple[tuple[str, Direction], ...] = ()
    limit: int | None = None

    def where(self, field_path: str, op: str, value: Any) -> Query:
        if op == IN:
            value = tuple(value)
            if not 0 < len(value) <= MAX_IN_VALUES:
                raise ValueError(f"an `in` filter takes 1 to {MAX_IN_VALUES} values")
        elif op != EQUALITY and op not in RANGE_OPS:
            raise ValueError(f"unsupported operator {op!r}")
        return replace(self, filters=(*self.filters, Filter(field_path, op, value)))

    def order_by(self, field_path: str, direction: Direction = "asc") -> Query:
        return replace(self, order=(*self.order, (field_path, direction)))

    def limited(self, n: int) -> Query:
        return replace(self, limit=n)

    @property
    def scope(self) -> Scope:
        return "collection_group" if self.parent is None else "collection"

    @property
    def equals(self) -> frozenset[str]:
        return frozenset(f.field for f in self.filters if f.op in (EQUALITY, IN))

    @property
    def range_field(self) -> str | None:
        fields = {f.field for f in self.filters if f.op in RANGE_OPS}
        if len(fields) > 1:
            raise FailedPrecondition(f"range filters on more than one field: {sorted(fields)}")
        return next(iter(fields), None)


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """A declared query shape, and the index that serves it."""

    name: str
    group: str
    scope: Scope
    equals: tuple[str, ...] = ()
    range: str | None = None
    order: tuple[tuple[str, Direction], ...] = ()
    purpose: str = field(default="", compare=False)

    def matches(self, query: Query) -> bool:
        return (
            query.group == self.group
            and query.scope == self.scope
            and query.equals == frozenset(self.equals)
            and query.range_field == self.range
            and query.order == self.order
        )

    def index_fields(self) -> tuple[tuple[str, Direction], ...]:
        """Equality fields first, then the range field, then ordering: the order every
        index (SQL B-tree or Firestore composite) must have to serve the query."""
        fields: list[tuple[str, Direction]] = [(f, "asc") for f in self.equals]
        ordered = dict(self.order)
        if self.range is not None:
            fields.append((self.range, ordered.pop(self.range, "asc")))
        fields.extend((f, d) for f, d in self.order if f in ordered)
        return tuple(fields)

    def filtered_fields(self) -> tuple[str, ...]:
        return tuple(f for f, _ in self.index_fields())


def _cg(name: str, group: str, purpose: str, **kw: Any) -> QuerySpec:
    return QuerySpec(name, group, "collection_group", purpose=purpose, **kw)


def _col(name: str, group: str, purpose: str, **kw: Any) -> QuerySpec:
    return QuerySpec(name, group, "collection", purpose=purpose, **kw)


OPEN_POSITIONS_BY_SYMBOL = _cg(
    "open_positions_by_symbol",
    "openPositions",
    "the seed's worker query, one symbol",
    equals=("symbol", "details.status"),
)
POSITIONS_IN_STATUS = _cg(
    "positions_in_status",
    "openPositions",
    "the seed's worker query without the symbol: every open position at start; and the "
    "change feed's listener, which follows only `details.status in [open, closing]`",
    equals=("details.status",),
)
POSITIONS_BY_STATUS = _cg(
    "positions_by_status",
    "openPositions",
    "the closing ones to settle, owner by owner (a batch that touches few users touches "
    "few user documents and few pages of their ledgers)",
    equals=("details.status",),
    order=(("uid", "asc"),),
)
POSITIONS_BY_STATUS_FROM_OWNER = _cg(
    "positions_by_status_from_owner",
    "openPositions",
    "the closing ones from a random owner on, so that two close handlers read different "
    "windows (the same index as positions_by_status)",
    equals=("details.status",),
    range="uid",
    order=(("uid", "asc"),),
)
ACTIVE_TRIGGERS_BY_SYMBOL = _cg(
    "active_triggers_by_symbol",
    "tradeTriggers",
    "the seed's trigger query, one symbol",
    equals=("symbol", "details.status"),
)
TRIGGERS_BY_STATUS = _cg(
    "triggers_by_status",
    "tradeTriggers",
    "the seed's trigger query without the symbol: every active trigger at start; and the "
    "change feed's listener on triggers",
    equals=("details.status",),
)
EXPIRING_TRIGGERS = _cg(
    "expiring_triggers",
    "tradeTriggers",
    "active triggers whose expiresAt has passed",
    equals=("details.status",),
    range="expiresAt",
    order=(("expiresAt", "asc"),),
)
EXPIRING_POSITIONS = _cg(
    "expiring_positions",
    "openPositions",
    "open positions whose time limit (expiresAt) has passed, to close at market",
    equals=("details.status",),
    range="expiresAt",
    order=(("expiresAt", "asc"),),
)
DUE_AGENTS = _cg(
    "due_agents",
    "agent",
    "enabled agent configs whose nextRunAt has come",
    equals=("enabled",),
    range="nextRunAt",
    order=(("nextRunAt", "asc"),),
)
ALL_WATCHLISTS = _cg("all_watchlists", "watchlist", "every watched symbol of every user")
USER_POSITIONS = _col(
    "user_positions",
    "openPositions",
    "a user's positions, newest first",
    order=(("openedAt", "desc"),),
)
USER_POSITIONS_BY_STATUS = _col(
    "user_positions_by_status",
    "openPositions",
    "a user's positions in one status",
    equals=("details.status",),
    order=(("openedAt", "desc"),),
)
USER_TRIGGERS = _col(
    "user_triggers",
    "tradeTriggers",
    "a user's triggers, newest first",
    order=(("createdAt", "desc"),),
)
USER_TRIGGERS_BY_STATUS = _col(
    "user_triggers_by_status",
    "tradeTriggers",
    "a user's triggers in one status",
    equals=("details.status",),
    order=(("createdAt", "desc"),),
)
USER_HISTORY = _col(
    "user_history",
    "positionHistory",
    "closed positions, newest first",
    order=(("closedAt", "desc"),),
)
USER_HISTORY_SINCE = _col(
    "user_history_since",
    "positionHistory",
    "closed since a time (the agent's daily loss)",
    range="closedAt",
    order=(("closedAt", "asc"),),
)
USER_LEDGER = _col(
    "user_ledger",
    "ledger",
    "a user's ledger in booking order, after a sequence number (0 for all of it)",
    range="seq",
    order=(("seq", "asc"),),
)
USER_LEDGER_BY_KIND = _col(
    "user_ledger_by_kind",
    "ledger",
    "GET /v1/ledger?kind=: a user's entries of one kind in booking order, after a seq",
    equals=("kind",),
    range="seq",
    order=(("seq", "asc"),),
)
USER_LEDGER_BETWEEN = _col(
    "user_ledger_between",
    "ledger",
    "GET /v1/ledger?since=&until=: a user's entries booked in a time range, by time then seq",
    range="at",
    order=(("at", "asc"), ("seq", "asc")),
)
USER_LEDGER_BY_KIND_BETWEEN = _col(
    "user_ledger_by_kind_between",
    "ledger",
    "GET /v1/ledger?kind=&since=&until=: one kind in a time range, by time then seq",
    equals=("kind",),
    range="at",
    order=(("at", "asc"), ("seq", "asc")),
)
USER_WATCHLIST = _col("user_watchlist", "watchlist", "a user's watchlist")
USER_DECISIONS = _col(
    "user_decisions",
    "agentDecisions",
    "the agent's decisions, newest first",
    order=(("createdAt", "desc"),),
)

REGISTRY: tuple[QuerySpec, ...] = (
    OPEN_POSITIONS_BY_SYMBOL,
    POSITIONS_IN_STATUS,
    POSITIONS_BY_STATUS,
    POSITIONS_BY_STATUS_FROM_OWNER,
    ACTIVE_TRIGGERS_BY_SYMBOL,
    TRIGGERS_BY_STATUS,
    EXPIRING_TRIGGERS,
    EXPIRING_POSITIONS,
    DUE_AGENTS,
    ALL_WATCHLISTS,
    USER_POSITIONS,
    USER_POSITIONS_BY_STATUS,
    USER_TRIGGERS,
    USER_TRIGGERS_BY_STATUS,
    USER_HISTORY,
    USER_HISTORY_SINCE,
    USER_LEDGER,
    USER_LEDGER_BY_KIND,
    USER_LEDGER_BETWEEN,
    USER_LEDGER_BY_KIND_BETWEEN,
    USER_WATCHLIST,
    USER_DECISIONS,
)

# Store-internal queries of one backend, declared like the rest (require() and the index
# file know them) but not part of the port every backend serves: Firestore's feed log
# (`store/firestore/feed.py`), a top-level collection followed by commit time.
FEED_LOG_SINCE = QuerySpec(
    "feed_log_since",
    "feedlog",
    "collection",
    range="at",
    order=(("at", "asc"),),
    purpose="Firestore's change feed: the log entries committed since a time (its listener), "
    "or before one (pruning); one field, so no composite index",
)
FIRESTORE_INTERNAL: tuple[QuerySpec, ...] = (FEED_LOG_SINCE,)
DECLARED: tuple[QuerySpec, ...] = REGISTRY + FIRESTORE_INTERNAL


def feed_log_since(at: Any, *, until: bool = False) -> Query:
    """Firestore's feed log from `at` on (or before it, `until`), in commit order."""
    return Query("feedlog", parent="").where("at", "<" if until else ">=", at).order_by("at")


def open_positions(symbol: str | None = None, status: str = "open") -> Query:
    """The seed's worker query: every user's positions in `status`, of one symbol
    (OPEN_POSITIONS_BY_SYMBOL) or of all (POSITIONS_IN_STATUS)."""
    query = Query("openPositions")
    if symbol is not None:
        query = query.where("symbol", "==", symbol)
    return query.where("details.status", "==", status)


def active_triggers(symbol: str | None = None) -> Query:
    """The seed's trigger query, of one symbol (ACTIVE_TRIGGERS_BY_SYMBOL) or of all
    (TRIGGERS_BY_STATUS)."""
    query = Query("tradeTriggers")
    if symbol is not None:
        query = query.where("symbol", "==", symbol)
    return query.where("details.status", "==", "active")


# The documents followers act on, never the closed history: what a listener on the
# documents themselves would follow (Firestore's feed follows its log instead, see
# store/firestore/feed.py; bench/firestore_book_latency.py measures this as the naive way).
FOLLOWED: dict[str, Query] = {
    "openPositions": Query("openPositions").where("details.status", IN, ("open", "closing")),
    "tradeTriggers": active_triggers(),
}


def positions_with_status(status: str, from_owner: str | None = None) -> Query:
    """Every user's positions in one status, owner by owner (POSITIONS_BY_STATUS), or
    those of owners from `from_owner` on (POSITIONS_BY_STATUS_FROM_OWNER)."""
    query = Query("openPositions").where("details.status", "==", status)
    if from_owner is not None:
        query = query.where("uid", ">=", from_owner)
    return query.order_by("uid")


def user_newest_first(group: str, uid: str, newest: str, status: str | None = None) -> Query:
    """A user's positions or triggers, optionally in one status, newest first
    (USER_POSITIONS[_BY_STATUS], USER_TRIGGERS[_BY_STATUS])."""
    query = Query(group, parent=user_path(uid))
    if status is not None:
        query = query.where("details.status", "==", status)
    return query.order_by(newest, "desc")


def expired(group: str, status: str, at: str, limit: int) -> Query:
    """Positions or triggers in `status` whose `expiresAt` is at or before `at`, soonest
    first (EXPIRING_POSITIONS, EXPIRING_TRIGGERS)."""
    query = Query(group).where("details.status", "==", status).where("expiresAt", "<=", at)
    return query.order_by("expiresAt", "asc").limited(limit)


def _describe(group: str, scope: Scope, fields: tuple[tuple[str, Direction], ...]) -> str:
    cols = ", ".join(f"{f} {d.upper()}ENDING" for f, d in fields) or "(none)"
    return f"{group} [{scope.upper()}]: {cols}"


def require(query: Query, registry: tuple[QuerySpec, ...] = DECLARED) -> QuerySpec:
    """The declared spec serving `query`, or the seed's production error, caught early."""
    for spec in registry:
        if spec.matches(query):
            return spec
    wanted = QuerySpec(
        "undeclared",
        query.group,
        query.scope,
        equals=tuple(sorted(query.equals)),
        range=query.range_field,
        order=query.order,
    )
    raise FailedPrecondition(
        "FAILED_PRECONDITION: the query requires an index that is not declared in "
        f"cogmora.store.queries: {_describe(query.group, query.scope, wanted.index_fields())}"
    )


def filtered_fields_by_group(
    registry: tuple[QuerySpec, ...] = REGISTRY,
) -> dict[str, tuple[str, ...]]:
    """Fields each collection group's queries filter or order on: SQL's typed columns."""
    out: dict[str, list[str]] = {}
    for spec in registry:
        cols = out.setdefault(spec.group, [])
        cols.extend(f for f in spec.filtered_fields() if f not in cols)
    return {g: tuple(c) for g, c in out.items()}
