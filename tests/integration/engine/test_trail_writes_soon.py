"""A round asked for (`TrailingWriter.soon`, after a gap's replay) runs before the writer's
pause is over, yet never sooner than an interval after its last write (SPEC 5.2: at most
once a second per position)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D

import pytest

from cogmora.domain.book import TriggerBook
from cogmora.domain.enums import PositionStatus, Side
from cogmora.domain.paths import position_path
from cogmora.domain.trailing import TrailingStop
from cogmora.engine.trail_writes import TrailingWriter
from cogmora.store.port import Tx
from cogmora.store.sqlite import SqliteStore
from conditions import until

SPEC = TrailingStop(D("0.1"))
HOUR = 3600.0


async def _open(store: SqliteStore, key: str) -> None:
    def body(tx: Tx) -> None:
        details = {"status": PositionStatus.OPEN.value, "trailing": SPEC.to_doc(),
                   "trailingPeak": "100", "trailingStop": "90"}
        tx.set(position_path("u", key), {"details": details})

    await store.transact(body)


async def _peak(store: SqliteStore, key: str) -> str:
    doc = await store.read(lambda tx: tx.get(position_path("u", key)))
    assert doc is not None
    return str(doc["details"]["trailingPeak"])


@pytest.fixture
async def book(store: SqliteStore) -> TriggerBook:
    book = TriggerBook()
    book.set_position("p", "S", Side.LONG, None, None, None, SPEC, D("100"))
    await _open(store, "p")
    return book


@pytest.fixture
async def running() -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_round_asked_for_runs_long_before_the_interval(
    store: SqliteStore, book: TriggerBook, running: list[asyncio.Task[None]]
) -> None:
    """Rounds an hour apart; nothing written yet: the round asked for writes at once."""
    writer = TrailingWriter(store, book, {"p": "u"}, interval=HOUR)
    running.append(asyncio.create_task(writer.run()))
    book.cross("S", D("110"))
    writer.soon()
    await until(lambda: writer.written == 1, within=30, what="the asked-for round")
    assert await _peak(store, "p") == "110.00000000"


async def test_a_round_asked_for_right_after_a_write_waits_for_the_interval(
    store: SqliteStore, book: TriggerBook, running: list[asyncio.Task[None]]
) -> None:
    """With the clock standing still after a write, a second ask does not start a round:
    the moved key stays owed to the store (a started round would have taken it)."""
    writer = TrailingWriter(store, book, {"p": "u"}, interval=HOUR, monotonic=lambda: 0.0)
    running.append(asyncio.create_task(writer.run()))
    book.cross("S", D("110"))
    writer.soon()
    await until(lambda: writer.written == 1, within=30, what="the first asked-for round")
    book.cross("S", D("120"))
    writer.soon()
    for _ in range(50):  # turns of the loop, not time: a round would start in the first few
        await asyncio.sleep(0)
    state = book.trailing_state("p")
    assert state is not None and state.owed and state.peak_price() == D("120")
    assert writer.written == 1 and await _peak(store, "p") == "110.00000000"


async def test_a_drain_flush_and_the_loop_take_turns_so_a_round_writes_a_key_once(
    store: SqliteStore, book: TriggerBook
) -> None:
    """Two flushes at once (the loop's and a drain's) run one round after the other: the
    second does not restart the first's round midway and write its keys again."""
    keys = ["p", "q", "r"]
    for key in keys[1:]:
        book.set_position(key, "S", Side.LONG, None, None, None, SPEC, D("100"))
        await _open(store, key)
    writer = TrailingWriter(store, book, dict.fromkeys(keys, "u"), slice_size=1)
    book.cross("S", D("110"))
    book.mark_trailing_moved(["p"])  # queued twice in the round: handed out once
    counts = await asyncio.gather(writer.flush(), writer.flush())
    assert sorted(counts) == [0, 3]
    assert [await _peak(store, key) for key in keys] == ["110.00000000"] * 3
