"""SIGKILL of `cogmora api` while opens with Idempotency-Keys are in flight, then a restart
and a retry of every key: each key opened exactly one position, a key answered before the
kill answers the same position after it, and the money is exact to the last unit."""

from __future__ import annotations

import asyncio
import contextlib
import random
from decimal import Decimal
from functools import partial
from pathlib import Path

import faultkit as kit
import httpx
import pytest

from cogmora.domain.models import PriceQuote
from cogmora.emulators import free_port
from cogmora.services.accounts import Accounts
from cogmora.services.clock import SystemClock
from cogmora.services.prices import StorePrices
from cogmora.simulator import KucoinSimulator
from cogmora.store.sqlite import SqliteStore
from conditions import until

USERS = 4
BALANCE = Decimal("1000000")
CONCURRENCY = 16


async def keep_price_fresh(store: SqliteStore) -> None:
    """The API process has no feed: a worker's fresh price in the store is what it fills at."""
    prices = StorePrices(store)
    while True:
        await prices.put([PriceQuote(kit.SYMBOL, Decimal("60000"), SystemClock().now())])
        await asyncio.sleep(0.5)


async def serving(url: str, token: str) -> bool:
    """Up, and knows the symbol (a 422 means its symbol catalog is not loaded yet)."""
    try:
        async with httpx.AsyncClient(timeout=5) as c:
            auth = {"Authorization": f"Bearer {token}"}
            r = await c.get(f"{url}/v1/prices/{kit.SYMBOL}", headers=auth)
            return r.status_code in (200, 404)
    except httpx.TransportError:
        return False


def body(i: int) -> dict[str, str]:
    return {"symbol": kit.SYMBOL, "market": "spot", "side": "long", "qty": f"0.00{1 + i % 9}"}


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


async def one_try(
    opens: int, command: str, tmp: Path, rng: random.Random
) -> tuple[kit.Findings, str]:
    db = tmp / "api.db"
    store = SqliteStore(db)
    await store.start()
    accounts = Accounts(store, SystemClock())
    uids = [f"a{i}" for i in range(USERS)]
    tokens = [(await accounts.create_user(uid, BALANCE))[1] for uid in uids]
    fresh = asyncio.create_task(keep_price_fresh(store))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    keys = [f"key-{rng.randrange(1 << 60):x}-{i}" for i in range(opens)]
    answers: dict[str, str] = {}
    kill_after = rng.randint(1, opens - 1)
    log = tmp / "api.log"
    try:
        async with KucoinSimulator(kit.quiet_market()) as sim:
            env = kit.process_env(f"sqlite:///{db}", sim, COGMORA_API_PORT=str(port))
            async with kit.running([command], env, log) as first:
                await until(lambda: serving(url, tokens[0]), what="api serving")
                try:
                    await open_all(url, tokens, keys, answers, kill_after)
                except _KillNow as now:
                    await kit.kill(first)
                    await asyncio.gather(*now.tasks, return_exceptions=True)
                await kit.kill(first)
            before = dict(answers)
            async with kit.running([command], env, log):
                await until(lambda: serving(url, tokens[0]), what="restarted api serving")
                await open_all(url, tokens, keys, answers, None)  # every key, again
                retried: dict[str, str] = {}
                await open_all(url, tokens, keys, retried, None)  # and once more
    finally:
        fresh.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fresh
    found = kit.Findings()
    books = await kit.read_books(store, uids)
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


def about(opens: int) -> str:
    return f"{opens} opens each, {CONCURRENCY} in flight"


# the API alone, and inside `cogmora run` (worker, close handler, scheduler and API)
COMMANDS = ["api", "run"]


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
async def test_api_killed_mid_open_then_retried_opens_each_key_once(
    tmp_path: Path, command: str
) -> None:
    """One seeded SIGKILL among 60 concurrent keyed opens: after a restart and retries of
    every key, each key holds exactly one position and the money is exact."""
    one = partial(one_try, 60, command)
    found = await kit.run_tries(
        f"`cogmora {command}` SIGKILL mid-open", 1, tmp_path, one, about(60)
    )
    assert found.clean, (kit.seed(), found)


@pytest.mark.faults
@pytest.mark.parametrize("command", COMMANDS)
async def test_api_killed_20_times_mid_open(
    request: pytest.FixtureRequest, tmp_path: Path, command: str
) -> None:
    """Twenty seeded SIGKILLs among 300 concurrent keyed opens each: nothing lost, doubled
    or contradictory."""
    kit.long_run(request)
    fault = f"`cogmora {command}` SIGKILL mid-open, keys retried"
    found = await kit.run_tries(
        fault, kit.tries(20), tmp_path, partial(one_try, 300, command), about(300)
    )
    assert found.clean, (kit.seed(), found)
