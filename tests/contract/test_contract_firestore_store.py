"""Firestore on its emulator: the seed's queries, listeners that never stream closed
history, settlement without a query inside a transaction, commits whose answer is lost,
named databases, and concurrent opens through the API.

Faults are injected at the official client's gRPC boundary (`_firestore_api.commit`,
`run_query`): a fake of the outside service's failure, not of our code.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from cogmora.cli.compose import System
from cogmora.cli.stores import open_store
from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import LedgerKind, Market, Side, TriggerOp
from cogmora.domain.models import TriggerAction, TriggerCondition
from cogmora.domain.orders import OpenRequest
from cogmora.engine.book_sync import BookIndex, fill, load_symbols, replace_symbols
from cogmora.errors import FeedResync
from cogmora.store import queries as q
from cogmora.store.firestore import FirestoreStore
from cogmora.store.port import Store, Tx

ON_FIRESTORE = pytest.mark.parametrize("backend", ["firestore"], indirect=True)
Backend = Any
LiveServer = Any


def _api(store: Store) -> Any:
    assert isinstance(store, FirestoreStore)
    client, _ = store._require()
    return client._firestore_api


def long_x10(symbol: str = "XBTUSDTM", stop: str | None = "2800") -> OpenRequest:
    return OpenRequest(
        symbol,
        Market.FUTURES,
        Side.LONG,
        qty=D("1"),
        leverage=D(10),
        stop_loss=None if stop is None else D(stop),
    )


async def _until(check: Callable[[], Any], within: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@ON_FIRESTORE
async def test_the_book_is_filled_through_the_per_symbol_seed_queries(
    system: System, make_user: Any, quote: Any
) -> None:
    """Loading a symbol runs the seed's `symbol ==, details.status ==` queries and gets that
    symbol's open positions and active triggers only; a reload drops what is gone."""
    await make_user("alice", "100000")
    quote("XBTUSDTM", "3000")
    quote("ETHUSDTM", "2000")
    xbt = [(await system.positions.open("alice", long_x10()))["id"] for _ in range(3)]
    await system.positions.open("alice", long_x10("ETHUSDTM", "1900"))
    await system.positions.request_close("alice", xbt[2])
    trigger = await system.triggers.create(
        "alice",
        "XBTUSDTM",
        Market.FUTURES,
        TriggerCondition(TriggerOp.ABOVE, D("3500")),
        TriggerAction(Side.LONG, qty=D("1"), leverage=D(10)),
    )
    assert q.require(q.open_positions("XBTUSDTM")) is q.OPEN_POSITIONS_BY_SYMBOL
    assert q.require(q.active_triggers("XBTUSDTM")) is q.ACTIVE_TRIGGERS_BY_SYMBOL
    positions, triggers = await system.store.read(lambda tx: load_symbols(tx, ["XBTUSDTM"]))
    assert sorted(p.rsplit("/", 1)[1] for p, _ in positions) == sorted(xbt[:2])
    assert [t.rsplit("/", 1)[1] for t, _ in triggers] == [trigger["id"]]
    index = BookIndex(TriggerBook())
    fill(index, positions, triggers, lambda path, exc: pytest.fail(f"{path}: {exc}"))
    assert set(index.owners) == {*xbt[:2], trigger["id"]}
    await system.positions.request_close("alice", xbt[0])
    positions, triggers = await system.store.read(lambda tx: load_symbols(tx, ["XBTUSDTM"]))
    replace_symbols(index, ["XBTUSDTM"], positions, triggers, lambda p, e: pytest.fail(p))
    assert set(index.owners) == {xbt[1], trigger["id"]}


@ON_FIRESTORE
async def test_the_listener_never_streams_closed_positions(
    backend: Backend, system: System, make_user: Any, quote: Any
) -> None:
    """A new follower streams no position at start (its listener follows the feed log from
    now on, not the positions), and a position that settles comes once, closed."""
    await make_user("bob", "100000")
    quote("XBTUSDTM", "3000")
    old = [(await system.positions.open("bob", long_x10()))["id"] for _ in range(3)]
    for pid in old:
        await system.positions.request_close("bob", pid)
    assert await system.settler.settle_all() == 3
    await system.positions.open("bob", long_x10())  # stays open
    closing = (await system.positions.open("bob", long_x10()))["id"]
    await system.positions.request_close("bob", closing)

    follower = await backend.open()
    assert isinstance(follower, FirestoreStore)
    _, feed = follower._require()
    assert feed.head() == 0  # nothing of the history or the open set streamed
    start = await follower.head()
    assert await system.settler.settle_all() == 1
    got: list[Any] = []

    async def settled() -> bool:
        got.extend(await follower.changes(start, groups=frozenset({"openPositions"}), wait=1.0))
        return bool(got)

    await _until(settled)
    assert [(c.path.rsplit("/", 1)[1], c.doc["details"]["status"]) for c in got] == [
        (closing, "closed")
    ]


@ON_FIRESTORE
async def test_settlement_runs_no_query_inside_a_transaction(
    system: System, make_user: Any, quote: Any
) -> None:
    """The close handler's query runs on a snapshot; its transaction reads only the
    documents it writes."""
    await make_user("carol", "100000")
    quote("XBTUSDTM", "3000")
    pids = [(await system.positions.open("carol", long_x10()))["id"] for _ in range(4)]
    for pid in pids:
        await system.positions.request_close("carol", pid)
    api = _api(system.store)
    real_begin, real_query = api.begin_transaction, api.run_query
    read_write: set[bytes] = set()
    in_transaction: list[Any] = []

    def begin_transaction(*args: Any, **kw: Any) -> Any:
        response = real_begin(*args, **kw)
        options = kw["request"].get("options")
        if options is None or "read_only" not in options:
            read_write.add(response.transaction)
        return response

    def run_query(*args: Any, **kw: Any) -> Any:
        if kw["request"].get("transaction") in read_write:
            in_transaction.append(kw["request"])
        return real_query(*args, **kw)

    api.begin_transaction, api.run_query = begin_transaction, run_query
    try:
        assert await system.settler.settle_all() == 4
    finally:
        api.begin_transaction, api.run_query = real_begin, real_query
    assert read_write, "the settlement ran no read-write transaction"
    assert in_transaction == []


class LostAnswer:
    """The commit RPC that commits and then loses its answer (or fails before sending),
    `times` times."""

    def __init__(self, api: Any, times: int = 1, commit_first: bool = True) -> None:
        self._api = api
        self._real = api.commit
        self.left = times
        self._commit_first = commit_first

    def __enter__(self) -> LostAnswer:
        def commit(*args: Any, **kw: Any) -> Any:
            if self.left <= 0:
                return self._real(*args, **kw)
            self.left -= 1
            if self._commit_first:
                self._real(*args, **kw)
            raise gexc.Cancelled("the client cancelled the call")

        self._api.commit = commit
        return self

    def __exit__(self, *exc: object) -> None:
        self._api.commit = self._real


@ON_FIRESTORE
async def test_a_create_whose_answer_was_lost_is_reported_as_made(system: System) -> None:
    """When the commit of `users create` went through but its answer was lost, the user
    and the token are returned, not an error, and nothing is booked twice."""
    with LostAnswer(_api(system.store)) as fault:
        user, token = await system.accounts.create_user("dora", D("500"))
    assert fault.left == 0
    assert user.balance == D("500")
    assert await system.accounts.uid_for_token(token) == "dora"
    assert [e.kind for e in await system.accounts.ledger("dora")] == [LedgerKind.DEPOSIT]


@ON_FIRESTORE
async def test_a_deposit_whose_answer_was_lost_is_credited_once(system: System) -> None:
    """A transaction that creates nothing carries a marker: its lost answer is resolved by
    reading it, so the deposit is credited once and reported as done."""
    await system.accounts.create_user("erin", D("0"))
    with LostAnswer(_api(system.store)) as fault:
        user = await system.accounts.deposit("erin", D("25"))
    assert fault.left == 0
    assert user.balance == D("25")
    assert (await system.accounts.get_user("erin")).balance == D("25")
    assert len(await system.accounts.ledger("erin")) == 1


@ON_FIRESTORE
async def test_a_commit_that_failed_before_reaching_the_server_is_retried_once(
    system: System,
) -> None:
    """A commit that never happened (its marker is absent) is re-run: credited exactly once."""
    await system.accounts.create_user("fay", D("0"))
    with LostAnswer(_api(system.store), times=2, commit_first=False) as fault:
        user = await system.accounts.deposit("fay", D("7"))
    assert fault.left == 0
    assert user.balance == D("7")
    assert len(await system.accounts.ledger("fay")) == 1


@ON_FIRESTORE
async def test_retrying_users_create_with_its_token_finds_the_user_it_made(
    system: System,
) -> None:
    """A second create with the same token (a retry) answers with the user it made; with
    another token it is a conflict."""
    _, token = await system.accounts.create_user("gus", D("10"), "tok-gus-1")
    again, same = await system.accounts.create_user("gus", D("10"), "tok-gus-1")
    assert (again.uid, same) == ("gus", token)
    assert len(await system.accounts.ledger("gus")) == 1
    with pytest.raises(Exception, match="already exists"):
        await system.accounts.create_user("gus", D("10"), "someone-else")


async def test_a_named_database_is_used_not_the_default(firestore_emulator: str) -> None:
    """`firestore://PROJECT/DATABASE` reads and writes that database, not `(default)`."""
    project = f"demo-named-{uuid.uuid4().hex[:10]}"
    named = open_store(f"firestore://{project}/mydb")
    default = open_store(f"firestore://{project}")
    assert named.name == f"firestore://{project}/mydb"
    await named.start()
    await default.start()
    try:

        def write(tx: Tx) -> None:
            tx.set("prices/XBTUSDTM", {"price": "1"})

        await named.transact(write)
        assert await named.read(lambda tx: tx.get("prices/XBTUSDTM")) == {"price": "1"}
        assert await default.read(lambda tx: tx.get("prices/XBTUSDTM")) is None
    finally:
        await named.close()
        await default.close()


async def test_a_cursor_older_than_the_buffer_gets_feed_resync(firestore_emulator: str) -> None:
    """changes(after) with a cursor older than the changes kept raises FeedResync."""
    store = FirestoreStore(f"demo-resync-{uuid.uuid4().hex[:10]}", keep_changes=3)
    await store.start()
    try:
        start = await store.head()
        for i in range(8):
            await store.transact(lambda tx, i=i: tx.set(f"users/u{i}", {"i": i}))
        await _until(lambda: _head_at_least(store, start + 8))
        with pytest.raises(FeedResync):
            await store.changes(start)
        assert await store.changes(await store.head()) == []
    finally:
        await store.close()


async def _head_at_least(store: Store, seq: int) -> bool:
    return await store.head() >= seq


@ON_FIRESTORE
async def test_sixteen_concurrent_clients_over_five_users_open_without_a_5xx(
    live_server: LiveServer, make_user: Any, quote: Any
) -> None:
    """100 opens from 16 concurrent clients over 5 users through the API all answer 201."""
    tokens = [(await make_user(f"u{i}", "1000000"))[1] for i in range(5)]
    quote("XBTUSDTM", "3000")
    body = {"symbol": "XBTUSDTM", "market": "futures", "side": "long", "qty": "1", "leverage": 10}
    statuses: list[int] = []
    todo = iter(range(100))

    async def client(n: int) -> None:
        async with live_server.client(tokens[n % 5]) as c:
            c.timeout = 60.0
            for _ in todo:
                statuses.append((await c.post("/v1/positions", json=body)).status_code)

    await asyncio.gather(*(client(n) for n in range(16)))
    assert sorted(set(statuses)) == [201]
    assert len(statuses) == 100
