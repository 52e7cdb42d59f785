"""The Firestore emulator killed and restarted on the same port in the middle of a
stop-loss storm, under a running `cogmora worker` (engine and close handler): both survive
the outage, their listeners come back, /healthz answers 503 while the store is away and
200 after, and in the end every crossed stop is closed exactly once, nothing else closed,
nothing left `closing`, every ledger sums. Ten stops below the storm's price are crossed
only once the store is away (their commits fail: /healthz says so within seconds) and
close after the restart; a stop set after the restart still closes too (the
book follows the store again: the worker's /healthz counts the new levels in its book
before the trade that crosses them is sent).

The emulator keeps its data in memory, so the restart carries it over the way a real
Firestore's durability does: the emulator's own export (`POST
/emulator/v1/projects/P:export`) just before the SIGKILL, imported by the new emulator
(`--import-data`). So that the export holds every commit that was acknowledged, the
worker is frozen (SIGSTOP) for the instant of export and kill, and thawed into the
outage; its RPCs then fail with UNAVAILABLE until the new emulator answers.

Each try runs its own emulator on a free port (never the shared one); the outage lasts
until /healthz has said 503, plus a seeded 0-3 s.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import faultkit as kit
import httpx
import pytest

from cogmora.emulators import EmulatorUnavailable, FirestoreOnPort, free_port
from cogmora.errors import CogmoraError
from cogmora.simulator import KucoinSimulator
from cogmora.store.firestore import FirestoreStore
from conditions import until

USERS = 10


@contextmanager
def emulator(workdir: Path) -> Iterator[FirestoreOnPort]:
    try:
        emu = FirestoreOnPort(workdir)
    except EmulatorUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield emu
    finally:
        emu.kill()


@contextmanager
def emulator_host(host: str) -> Iterator[None]:
    """FIRESTORE_EMULATOR_HOST pointed at `host` for the block (the store's client reads
    it), the shared emulator's restored after."""
    saved = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = saved


async def health(url: str) -> int | None:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(url)).status_code
    except httpx.HTTPError:
        return None


async def _settled(store: FirestoreStore, storm: kit.Storm) -> bool:
    try:
        return await kit.settled(store, storm)  # type: ignore[arg-type]
    except CogmoraError:  # the emulator may still be coming back
        return False


async def one_try(positions: int, tmp: Path, rng: random.Random) -> tuple[kit.Findings, str]:
    project = f"demo-restart-{uuid.uuid4().hex[:8]}"
    with emulator(tmp) as emu, emulator_host(emu.host):
        await asyncio.to_thread(emu.start)
        store = FirestoreStore(project, feed_groups=frozenset())
        try:
            await store.start()
            storm = await kit.seed_storm(store, positions, USERS, rng)
            async with KucoinSimulator(kit.quiet_market(rng)) as sim:
                probe = free_port()
                env = kit.process_env(
                    f"firestore://{project}",
                    sim,
                    FIRESTORE_EMULATOR_HOST=emu.host,
                    PORT=str(probe),
                )
                healthz = f"http://127.0.0.1:{probe}/healthz"
                async with kit.running(["worker"], env, tmp / "worker.log") as worker:
                    await until(lambda: kit.subscribed(sim), 120, "subscribed")
                    await until(lambda: _is(healthz, 200), 120, "/healthz 200 before the storm")
                    # Stops the storm's price does not reach, crossed only once the store
                    # is away: the engine's commits for them fail, which /healthz reports.
                    during = await kit.seed_storm(
                        store,
                        10,
                        USERS,
                        rng,
                        safe_share=0.0,
                        create_users=False,
                        crossed_stop=kit.STORM_PRICE - 500,
                    )
                    storm.crossed |= during.crossed
                    await sim.set_price(kit.SYMBOL, kit.STORM_PRICE)
                    k = rng.randint(0, len(storm.crossed) // 2)
                    if k:
                        await until(lambda: _closed_at_least(store, k), 300, f"{k} closed")
                    # The crash: worker frozen, the emulator's data saved, the emulator killed.
                    worker.send_signal(signal.SIGSTOP)
                    saved_at = await asyncio.to_thread(emu.export, project)
                    emu.kill()
                    worker.send_signal(signal.SIGCONT)
                    watch = kit.Stopwatch()
                    await sim.set_price(kit.SYMBOL, kit.STORM_PRICE - 600)
                    await until(lambda: _is(healthz, 503), 120, "/healthz 503 while away")
                    said_503 = watch.seconds
                    await asyncio.sleep(rng.uniform(0, 3))  # the outage's seeded extra length
                    outage = watch.seconds
                    await asyncio.to_thread(emu.start, saved_at)
                    await until(lambda: _settled(store, storm), 300, "settled after the restart")
                    # The book follows the store again: a stop set now closes on the next
                    # trade.
                    late = await kit.seed_storm(
                        store, 20, USERS, rng, safe_share=0.0, create_users=False
                    )
                    storm.crossed |= late.crossed
                    levels = len(storm.safe) + len(late.crossed)
                    await until(
                        lambda: _book_levels(healthz, levels), 120, f"{levels} levels in the book"
                    )
                    await sim.set_price(kit.SYMBOL, kit.STORM_PRICE - 601)
                    await until(lambda: _settled(store, storm), 300, "late stops closed")
                    await until(lambda: _is(healthz, 200), 120, "/healthz 200 after the restart")
                    where = f"killed after {k} closed; 503 after {said_503:.0f} s, outage "
                    return await kit.audit(store, storm), where + f"{outage:.0f} s"
        finally:
            await store.close()


async def _book_levels(url: str, levels: int) -> bool:
    """The worker's book holds `levels` levels (its listeners deliver again)."""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            body = (await client.get(url)).json()
    except (httpx.HTTPError, ValueError):
        return False
    return bool(body.get("worker", {}).get("book", {}).get("levels") == levels)


async def _is(url: str, status: int) -> bool:
    return await health(url) == status


async def _closed_at_least(store: FirestoreStore, k: int) -> bool:
    _, closed = await kit.progress(store)  # type: ignore[arg-type]
    return closed >= k


FAULT = "Firestore emulator killed and restarted (same port, data carried over) mid-storm"


@pytest.mark.slow
async def test_worker_survives_the_firestore_emulator_restarting_mid_storm(
    tmp_path: Path,
) -> None:
    """One seeded emulator restart in a 300-position storm: 503 during the outage, then
    every crossed stop closed once, nothing else, nothing `closing`, ledgers sum."""
    found = await kit.run_tries(FAULT, 1, tmp_path, partial(one_try, 300), "300 positions")
    assert found.clean, (kit.seed(), found)


@pytest.mark.faults
async def test_the_firestore_emulator_restarted_in_many_storms(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Seeded emulator restarts in 2,000-position storms: nothing lost, doubled or
    contradictory."""
    kit.long_run(request)
    found = await kit.run_tries(
        FAULT, kit.tries(5), tmp_path, partial(one_try, 2000), "2000 positions"
    )
    assert found.clean, (kit.seed(), found)
