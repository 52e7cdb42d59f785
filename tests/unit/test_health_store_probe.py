"""The store probe of /healthz: one cheap read at a time, at most one per `max_age`, and a
verdict that never waits for it (cogmora.health.StoreProbe)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from cogmora.health import PROBE_PATH, StoreProbe
from conditions import until


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Tx:
    def __init__(self, asked: list[str]) -> None:
        self._asked = asked

    def get(self, path: str) -> None:
        self._asked.append(path)


class Store:
    """Answers reads as told: `gate` holds them, `error` fails them."""

    name = "fake://store"

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.error: Exception | None = None

    async def read(self, body: Callable[[Any], Any]) -> Any:
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return body(Tx(self.asked))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_reachable_store_is_read_once_per_max_age_however_often_asked() -> None:
    store, clock = Store(), Clock()
    probe = StoreProbe(store, timeout=5, max_age=5, clock=clock)  # type: ignore[arg-type]
    first = probe.report()
    assert first.problems == () and first.body["reachable"] is None  # not answered yet
    await settle()
    for _ in range(50):
        assert probe.report().problems == ()
        await settle()
    assert probe.reads == 1 and store.asked == [PROBE_PATH]
    assert probe.report().body["reachable"] is True
    clock.now += 5
    probe.report()
    await settle()
    assert probe.reads == 2


async def test_a_failing_read_is_a_reason_naming_the_store_until_a_read_succeeds() -> None:
    store, clock = Store(), Clock()
    probe = StoreProbe(store, timeout=5, max_age=5, clock=clock)  # type: ignore[arg-type]
    store.error = ConnectionRefusedError("connection refused")
    probe.report()
    await settle()
    down = probe.report()
    assert [p.code for p in down.problems] == ["store_unreachable"]
    assert down.problems[0].subject == "store"
    assert "store fake://store unreachable" in down.problems[0].detail
    assert "connection refused" in down.problems[0].detail
    assert down.body["reachable"] is False

    store.error = None
    assert probe.report().problems  # the answer is cached: the next read is due later
    clock.now += 5
    probe.report()
    await settle()
    back = probe.report()
    assert back.problems == () and back.body["reachable"] is True and back.body["error"] is None


async def test_an_unanswered_read_is_a_reason_after_the_timeout_and_only_one_is_sent() -> None:
    store, clock = Store(), Clock()
    probe = StoreProbe(store, timeout=5, max_age=1, give_up=60, clock=clock)  # type: ignore[arg-type]
    store.gate.clear()  # the store hangs
    probe.report()
    await settle()
    clock.now += 4.9
    assert probe.report().problems == ()  # within the timeout
    clock.now += 0.2
    hung = probe.report()
    assert [p.code for p in hung.problems] == ["store_unreachable"]
    assert "has not answered a read for 5.1 s" in hung.problems[0].detail
    for _ in range(20):
        clock.now += 1
        probe.report()
        await settle()
    assert probe.reads == 1  # never a pile of reads on a hung store

    store.gate.set()
    await settle()
    assert probe.report().problems == ()


async def test_a_read_hung_past_give_up_is_abandoned_and_a_new_one_sent() -> None:
    store = Store()
    probe = StoreProbe(store, timeout=0.01, max_age=0.0, give_up=0.05)  # type: ignore[arg-type]
    store.gate.clear()
    probe.report()

    await until(lambda: probe.report().body["error"] is not None, what="the read abandoned")
    assert probe.report().body["error"].startswith("no answer")
    assert probe.reads >= 2  # the abandoned read made room for the next
    await probe.aclose()


def test_asked_outside_an_event_loop_it_judges_what_is_known() -> None:
    probe = StoreProbe(Store())  # type: ignore[arg-type]
    assert probe.report().problems == () and probe.reads == 0
