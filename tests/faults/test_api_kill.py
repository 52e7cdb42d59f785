"""SIGKILL of `cogmora api` while opens with Idempotency-Keys are in flight, then a restart
and a retry of every key: each key opened exactly one position, a key answered before the
kill answers the same position after it, and the money is exact to the last unit."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from faultkit import (
    SYMBOL,
    Figure,
    Findings,
    Stopwatch,
    fresh_dir,
    kill,
    long_run,
    process_env,
    read_books,
    record,
    seed,
    start,
    stop,
    tries,
)

from cogmora.domain.models import PriceQuote
from cogmora.services.accounts import Accounts
from cogmora.services.clock import SystemClock
from cogmora.services.prices import StorePrices
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.sqlite import SqliteStore
from conditions import until

USERS = 4
BALANCE = Decimal("1000000")
CONCURRENCY = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def keep_price_fresh(store: SqliteStore) -> None:
    """The API process has no feed: a worker's fresh price in the store is what it fills at."""
    prices = StorePrices(store)
    while True:
        await prices.put([PriceQuote(SYMBOL, Decimal("60000"), SystemClock().now())])
        await asyncio.sleep(0.5)


async def serving(url: str, token: str) -> bool:
    """Up, and knows the symbol (a 422 means its symbol catalog is not loaded yet)."""
    try:
        async with httpx.AsyncClient(timeout=5) as c:
            auth = {"Authorization": f"Bearer {token}"}
            r = await c.get(f"{url}/v1/prices/{SYMBOL}", headers=auth)
            return r.status_code in (200, 404)
    except httpx.TransportError:
        return False


def body(i: int) -> dict[str, str]:
    return {"symbol": SYMBOL, "market": "spot", "side": "long", "qty": f"0.00{1 + i % 9}"}


async def open_all(
    url: str, tokens: list[str], keys: list[str], answers: dict[str, str], stop_after: int | None
) -> None:
    """Open one position per key, CONCURRENCY at a time; record the id each key was given.
    Transport errors (the server was killed) are left for the retry."""
    gate = asyncio.Semaphore(CONCURRENCY)
    enough = asyncio.Event()

    async def one(i: int, key: str, client: httpx.AsyncClient) -> None:
        async with gate:
            if enough.is_set():
                return
            try:
                r = await client.post(
                    "/v1/positions",
                    json=body(i),
                    headers={
                        "Authorization": f"Bearer {tokens[i % len(tokens)]}",
                        "Idempotency-Key": key,
                    },
                )
            except httpx.TransportError:
                return
            assert r.status_code == 201, r.text
            pid = r.json()["id"]
            assert answers.setdefault(key, pid) == pid, (key, answers[key], pid)
            if stop_after is not None and len(answers) >= stop_after:
                enough.set()

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        tasks = [asyncio.create_task(one(i, k, client)) for i, k in enumerate(keys)]
        if stop_after is None:
            await asyncio.gather(*tasks)
            return
        waiter = asyncio.create_task(enough.wait())
        await asyncio.wait([waiter, asyncio.gather(*tasks)], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        # the kill happens now, with the remaining requests in flight; they fail or finish
        raise _KillNow(tasks)


class _KillNow(Exception):
    def __init__(self, tasks: list[asyncio.Task[None]]) -> None:
        self.tasks = tasks


async def one_try(tmp: Path, rng: random.Random, opens: int, command: str) -> tuple[Findings, str]:
    fresh_dir(tmp)
    db = tmp / "api.db"
    store = SqliteStore(db)
    await store.start()
    accounts = Accounts(store, SystemClock())
    uids = [f"a{i}" for i in range(USERS)]
    tokens = [(await accounts.create_user(uid, BALANCE))[1] for uid in uids]
    fresh = asyncio.create_task(keep_price_fresh(store))
    sim = KucoinSimulator(SimulatorConfig(tick_rate=0, mark_rate=0))
    await sim.start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = process_env(f"sqlite:///{db}", sim, COGMORA_API_PORT=str(port))
    keys = [f"key-{rng.randrange(1 << 60):x}-{i}" for i in range(opens)]
    answers: dict[str, str] = {}
    kill_after = rng.randint(1, opens - 1)
    log = tmp / "api.log"
    try:
        first = await start([command], env, log)
        try:
            await until(lambda: serving(url, tokens[0]), what="api serving")
            try:
                await open_all(url, tokens, keys, answers, kill_after)
            except _KillNow as now:
                await kill(first)
                await asyncio.gather(*now.tasks, return_exceptions=True)
        finally:
            await kill(first)
        before = dict(answers)
        second = await start([command], env, log)
        try:
            await until(lambda: serving(url, tokens[0]), what="restarted api serving")
            await open_all(url, tokens, keys, answers, None)  # every key, again
            retried: dict[str, str] = {}
            await open_all(url, tokens, keys, retried, None)  # and once more
        finally:
            await stop(second)
    finally:
        fresh.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fresh
        await sim.stop()
    found = Findings()
    books = await read_books(store, uids)
    await store.close()
    ids = set(books.positions)
    # doubled: a key that opened twice shows as more positions than keys
    found.doubled = max(0, len(ids) - len(keys))
    found.lost = len(keys) - len(set(answers.values()) & ids)
    for key, pid in before.items():
        if answers[key] != pid or retried[key] != pid:
            found.contradictory += 1
            found.detail.append(f"{key}: answered {pid}, later {answers[key]}/{retried[key]}")
    found.contradictory += sum(1 for ok in books.ledger_ok.values() if not ok)
    spent = {uid: Decimal(0) for uid in uids}
    for doc in books.positions.values():
        spent[doc["uid"]] += Decimal(doc["margin"]) + Decimal(doc["feeOpen"])
    for uid in uids:
        if books.balances[uid] != BALANCE - spent[uid]:
            found.contradictory += 1
            found.detail.append(f"{uid}: balance {books.balances[uid]} != {BALANCE - spent[uid]}")
    return found, f"killed after {len(before)} answers"


async def run(tmp: Path, name: str, n: int, opens: int, command: str) -> Findings:
    rng = random.Random(seed())
    total = Findings()
    watch = Stopwatch()
    notes = []
    for i in range(n):
        found, where = await one_try(tmp / f"try{i}", rng, opens, command)
        notes.append(where)
        total.add(found)
    record(
        Figure(
            name,
            n,
            total.lost,
            total.doubled,
            total.contradictory,
            seed(),
            watch.seconds,
            f"{opens} opens each, {CONCURRENCY} in flight; {', '.join(notes[:3])}...",
        )
    )
    return total


# the API alone, and inside `cogmora run` (worker, close handler, scheduler and API)
COMMANDS = ["api", "run"]


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
async def test_api_killed_mid_open_then_retried_opens_each_key_once(
    tmp_path: Path, command: str
) -> None:
    """One seeded SIGKILL among 60 concurrent keyed opens: after a restart and retries of
    every key, each key holds exactly one position and the money is exact."""
    found = await run(tmp_path, f"`cogmora {command}` SIGKILL mid-open", 1, 60, command)
    assert found.clean, (seed(), found)


@pytest.mark.faults
@pytest.mark.parametrize("command", COMMANDS)
async def test_api_killed_20_times_mid_open(
    request: pytest.FixtureRequest, tmp_path: Path, command: str
) -> None:
    """Twenty seeded SIGKILLs among 300 concurrent keyed opens each: nothing lost, doubled
    or contradictory."""
    long_run(request)
    found = await run(
        tmp_path, f"`cogmora {command}` SIGKILL mid-open, keys retried", tries(20), 300, command
    )
    assert found.clean, (seed(), found)
