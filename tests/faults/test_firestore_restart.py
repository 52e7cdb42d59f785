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
import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from faultkit import (
    STORM_PRICE,
    SYMBOL,
    Figure,
    Findings,
    Stopwatch,
    Storm,
    audit,
    fresh_dir,
    long_run,
    process_env,
    progress,
    record,
    seed,
    seed_storm,
    start,
    stop,
    tries,
)

from cogmora.errors import CogmoraError
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.firestore import FirestoreStore
from conditions import until
from emulators import free_port

USERS = 10
EMULATOR_JAR = Path(
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
)
MAIN = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"


class Emulator:
    """One Firestore emulator on a fixed port of its own, restartable with its data."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, import_from: str | None = None) -> None:
        # java itself, not gcloud's wrapper script: a signal then reaches the server.
        args = [
            "java",
            "-Duser.language=en",
            "-cp",
            str(EMULATOR_JAR),
            MAIN,
            "start",
            "--host=127.0.0.1",
            f"--port={self.port}",
        ]
        if import_from:
            args.append(f"--import-data={import_from}")
        with (self.workdir / "emulator.log").open("ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    async def up(self) -> None:
        def answers() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                return False

        await until(answers, 120, f"emulator on {self.port} answering")

    def export(self, project: str) -> str:
        """The emulator's data now, on disk; returns the metadata file to import."""
        target = self.workdir / f"export-{uuid.uuid4().hex[:6]}"
        target.mkdir()
        body = json.dumps(
            {
                "database": f"projects/{project}/databases/(default)",
                "export_directory": str(target),
            }
        ).encode()
        request = urllib.request.Request(
            f"http://{self.host}/emulator/v1/projects/{project}:export",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60):
            pass
        return glob.glob(str(target / "*" / "*.overall_export_metadata"))[0]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@contextmanager
def emulator(workdir: Path) -> Iterator[Emulator]:
    if not EMULATOR_JAR.exists() or shutil.which("java") is None:
        pytest.skip(f"needs Java and the Firestore emulator's jar at {EMULATOR_JAR}")
    emu = Emulator(free_port(), workdir)
    try:
        yield emu
    finally:
        emu.kill()


async def health(url: str) -> int | None:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(url)).status_code
    except httpx.HTTPError:
        return None


async def _settled(store: FirestoreStore, storm: Storm) -> bool:
    try:
        not_open, closed = await progress(store)  # type: ignore[arg-type]
    except CogmoraError:  # the emulator may still be coming back
        return False
    return closed >= len(storm.crossed) and not_open == closed


async def one_try(tmp: Path, rng: random.Random, positions: int) -> tuple[Findings, str]:
    fresh_dir(tmp)
    project = f"demo-restart-{uuid.uuid4().hex[:8]}"
    with emulator(tmp) as emu:
        emu.start()
        await emu.up()
        saved = os.environ.get("FIRESTORE_EMULATOR_HOST")
        os.environ["FIRESTORE_EMULATOR_HOST"] = emu.host
        store = FirestoreStore(project, feed_groups=frozenset())
        sim = KucoinSimulator(
            SimulatorConfig(tick_rate=0, mark_rate=0, seed=rng.randrange(1 << 30))
        )
        worker = None
        try:
            await store.start()
            storm = await seed_storm(store, positions, USERS, rng)
            await sim.start()
            probe = free_port()
            env = process_env(
                f"firestore://{project}",
                sim,
                FIRESTORE_EMULATOR_HOST=emu.host,
                PORT=str(probe),
            )
            healthz = f"http://127.0.0.1:{probe}/healthz"
            worker = await start(["worker"], env, tmp / "worker.log")
            await until(
                lambda: f"/market/ticker:{SYMBOL}" in sim.subscribed_topics(), 120, "subscribed"
            )
            await until(lambda: _is(healthz, 200), 120, "/healthz 200 before the storm")
            # Stops the storm's price does not reach, crossed only once the store is away:
            # the engine's commits for them fail, which /healthz must report.
            during = await seed_storm(
                store,
                10,
                USERS,
                rng,
                safe_share=0.0,
                create_users=False,
                crossed_stop=STORM_PRICE - 500,
            )
            storm.crossed |= during.crossed
            await sim.set_price(SYMBOL, STORM_PRICE)
            k = rng.randint(0, len(storm.crossed) // 2)
            if k:
                await until(lambda: _closed_at_least(store, k), 300, f"{k} closed")
            # The crash: worker frozen, the emulator's data saved, the emulator killed.
            worker.send_signal(signal.SIGSTOP)
            saved_at = await asyncio.to_thread(emu.export, project)
            emu.kill()
            worker.send_signal(signal.SIGCONT)
            watch = Stopwatch()
            await sim.set_price(SYMBOL, STORM_PRICE - 600)
            await until(lambda: _is(healthz, 503), 120, "/healthz 503 while the store is away")
            said_503 = watch.seconds
            await asyncio.sleep(rng.uniform(0, 3))  # the outage's seeded extra length
            outage = watch.seconds
            emu.start(import_from=saved_at)
            await emu.up()
            await until(lambda: _settled(store, storm), 300, "storm settled after the restart")
            # The book follows the store again: a stop set now closes on the next trade.
            late = await seed_storm(store, 20, USERS, rng, safe_share=0.0, create_users=False)
            storm.crossed |= late.crossed
            levels = len(storm.safe) + len(late.crossed)
            await until(lambda: _book_levels(healthz, levels), 120, f"{levels} levels in the book")
            await sim.set_price(SYMBOL, STORM_PRICE - 601)
            await until(lambda: _settled(store, storm), 300, "stops set after the restart closed")
            await until(lambda: _is(healthz, 200), 120, "/healthz 200 after the restart")
            where = f"killed after {k} closed; 503 after {said_503:.0f} s, outage {outage:.0f} s"
            return await audit(store, storm), where
        finally:
            if worker is not None:
                if worker.returncode is None:
                    worker.send_signal(signal.SIGCONT)
                await stop(worker)
            await sim.stop()
            await store.close()
            if saved is None:
                os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
            else:
                os.environ["FIRESTORE_EMULATOR_HOST"] = saved


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
    _, closed = await progress(store)  # type: ignore[arg-type]
    return closed >= k


async def run(tmp: Path, n: int, positions: int) -> Findings:
    rng = random.Random(seed())
    total = Findings()
    watch = Stopwatch()
    notes = []
    for i in range(n):
        found, where = await one_try(tmp / f"try{i}", rng, positions)
        notes.append(where)
        total.add(found)
    record(
        Figure(
            "Firestore emulator killed and restarted (same port, data carried over) mid-storm",
            n,
            total.lost,
            total.doubled,
            total.contradictory + total.closing_left,
            seed(),
            watch.seconds,
            f"{positions} positions; {'; '.join(notes[:3])}...",
        )
    )
    return total


@pytest.mark.slow
async def test_worker_survives_the_firestore_emulator_restarting_mid_storm(
    tmp_path: Path,
) -> None:
    """One seeded emulator restart in a 300-position storm: 503 during the outage, then
    every crossed stop closed once, nothing else, nothing `closing`, ledgers sum."""
    found = await run(tmp_path, 1, 300)
    assert found.clean, (seed(), found)


@pytest.mark.faults
async def test_the_firestore_emulator_restarted_in_many_storms(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Seeded emulator restarts in 2,000-position storms: nothing lost, doubled or
    contradictory."""
    long_run(request)
    found = await run(tmp_path, tries(5), 2000)
    assert found.clean, (seed(), found)
