"""`cogmora demo`: start everything on a scratch store against the simulator, seed the
demo users, show the live view, end with the summary."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel

from cogmora.cli.compose import System, build_system
from cogmora.cli.demo.script import USERS, DemoState, seed_positions, start_agent_and_watchlist
from cogmora.cli.demo.summary import summary
from cogmora.cli.demo.view import balances_of, narrate, render, snapshot
from cogmora.cli.processes import start_components
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.sqlite import SqliteStore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_demo(duration: float, seed: int, keep_db: Path | None, console: Console) -> int:
    state = DemoState()
    view = _View(console, state, duration)
    view.start()
    try:
        return await _run(duration, seed, keep_db, console, state, view)
    finally:
        view.stop()


class _View:
    """The live view from the first moment (a start-up takes seconds: show its stage), at
    4 frames a second on a terminal; piped, one status line every 5 s instead."""

    def __init__(self, console: Console, state: DemoState, duration: float) -> None:
        self._console = console
        self._state = state
        self._duration = duration
        self.system: System | None = None
        self.ready = False
        self._task: asyncio.Task[None] | None = None
        self._last_print = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def stage(self, text: str) -> None:
        self._state.stage = text
        if not self._console.is_terminal:
            self._console.print(f"[bold]demo[/]: {text}")

    async def frame(self) -> Group | None:
        if self.system is None:
            return None
        snap = await snapshot(self.system, self.ready)
        return render(self.system, self._state, snap, self._duration)

    async def _loop(self) -> None:
        if not self._console.is_terminal:
            while True:
                await asyncio.sleep(0.5)
                if self.ready and time.monotonic() - self._last_print >= 5:
                    frame = await self.frame()
                    if frame is not None:
                        self._console.print(frame.renderables[0])
                    self._last_print = time.monotonic()
        with Live(
            Panel(self._state.stage, title="Cogmora demo"),
            console=self._console,
            refresh_per_second=4,
        ) as live:
            while True:
                frame = await self.frame()
                live.update(frame or Panel(self._state.stage, title="Cogmora demo"))
                await asyncio.sleep(0.25)


async def _run(
    duration: float,
    seed: int,
    keep_db: Path | None,
    console: Console,
    state: DemoState,
    view: _View,
) -> int:
    rng = random.Random(seed)
    sim = KucoinSimulator(SimulatorConfig(seed=seed, tick_rate=8.0, volatility=Decimal("0.0006")))
    await sim.start()
    tmp = tempfile.TemporaryDirectory(prefix="cogmora-demo-")
    db = keep_db or Path(tmp.name) / "demo.db"
    if keep_db is not None:
        await asyncio.to_thread(keep_db.unlink, missing_ok=True)
    port = _free_port()
    settings = Settings(
        store_url=f"sqlite:///{db}",
        kucoin_spot_url=sim.spot_url,
        kucoin_futures_url=sim.futures_url,
        api_port=port,
        log_level="ERROR",
        log_json=False,
    )
    store = SqliteStore(db)
    await store.start()
    system = build_system(settings, store)
    view.system = system
    tasks: list[asyncio.Task[None]] = []
    try:
        view.stage("starting the worker, the close handler, the scheduler and the API")
        await start_components(system, ("worker", "close-handler", "scheduler", "api"))
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
        system.closers.append(http.aclose)
        for _ in range(250):
            with contextlib.suppress(httpx.TransportError):
                await http.get("/healthz")
                break
            await asyncio.sleep(0.02)
        view.stage("creating alice, bob and carol")
        for uid, balance in USERS.items():
            _, state.tokens[uid] = await system.accounts.create_user(uid, Decimal(balance))
        view.ready = True
        view.stage("opening their positions and placing triggers through the API")
        await seed_positions(http, sim, state, rng)
        tasks.append(asyncio.create_task(narrate(system, state)))
        view.stage("switching alice's agent on and bob's watchlist")
        await start_agent_and_watchlist(http, system, state)
        view.stage(
            f"trading: dashboard http://127.0.0.1:{port}/#token={state.tokens['alice']} "
            f"(signs you in as alice), API on http://127.0.0.1:{port}/docs, "
            f"simulator {sim.spot_url}, store {db}"
        )
        await asyncio.sleep(max(0.0, duration - (time.monotonic() - state.started)))
        view.stage("settling what is still closing")
        await system.settler.settle_all()
        view.stop()
        return summary(system, state, await balances_of(system), console)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await system.supervisor.stop()
        await system.aclose()
        await store.close()
        await sim.stop()
        tmp.cleanup()


def register(
    app: typer.Typer,
    settings_or_exit: Callable[..., Settings],
    run_async: Callable[[Callable[[], Awaitable[Any]]], Any],
) -> None:
    @app.command("demo")
    def demo(
        duration: Annotated[float, typer.Option(help="Seconds to run before the summary.")] = 45,
        seed: Annotated[
            int, typer.Option(help="Seed of the simulated market and the demo's choices.")
        ] = 7,
        keep_db: Annotated[
            Path | None, typer.Option(help="Keep the demo's SQLite store at this path.")
        ] = None,
    ) -> None:
        """The whole system offline, against the built-in KuCoin simulator.

        Starts the simulator, worker, close handler and API on a scratch store, opens demo
        users' positions and triggers through the API, shows a live view, and ends with a
        summary that checks every ledger against its balance.

        The same seed gives the same market path and the same orders; how many stops are
        hit before the end still varies a little from run to run, because the market runs
        in real time over real sockets and the machine's speed decides how far it gets."""
        settings_or_exit(log_level="ERROR", log_json=False)
        console = Console()
        if not console.is_terminal:  # piped: wide enough that no balance is cut short
            console = Console(width=max(console.width, 140))
        code = run_async(lambda: run_demo(duration, seed, keep_db, console))
        raise typer.Exit(code)
