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
from rich.console import Console
from rich.live import Live

from cogmora.cli.compose import build_system
from cogmora.cli.demo.script import USERS, DemoState, seed_positions, start_agent_and_watchlist
from cogmora.cli.demo.summary import summary
from cogmora.cli.demo.view import balances_of, narrate, render
from cogmora.cli.processes import start_components
from cogmora.settings import Settings
from cogmora.simulator import KucoinSimulator, SimulatorConfig
from cogmora.store.sqlite import SqliteStore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_demo(duration: float, seed: int, keep_db: Path | None, console: Console) -> int:
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
    state = DemoState()
    tasks: list[asyncio.Task[None]] = []
    try:
        await start_components(system, ("worker", "close-handler", "scheduler", "api"))
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
        system.closers.append(http.aclose)
        for _ in range(250):
            with contextlib.suppress(httpx.TransportError):
                await http.get("/healthz")
                break
            await asyncio.sleep(0.02)
        for uid, balance in USERS.items():
            _, state.tokens[uid] = await system.accounts.create_user(uid, Decimal(balance))
        await seed_positions(http, sim, state, rng)
        tasks.append(asyncio.create_task(narrate(system, state)))
        await start_agent_and_watchlist(http, system, state)
        console.print(
            f"[bold]Cogmora demo[/] API on http://127.0.0.1:{port}/docs "
            f"(simulator {sim.spot_url}); store {db}"
        )
        deadline = time.monotonic() + duration
        balances = await balances_of(system)
        if console.is_terminal:
            with Live(
                render(system, state, balances, duration), console=console, refresh_per_second=4
            ) as live:
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    balances = await balances_of(system)
                    live.update(render(system, state, balances, duration))
        else:
            next_print = 0.0
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                if time.monotonic() >= next_print:
                    balances = await balances_of(system)
                    console.print(render(system, state, balances, duration).renderables[0])
                    next_print = time.monotonic() + 5
        await system.settler.settle_all()
        balances = await balances_of(system)
        return summary(system, state, balances, console)
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
        seed: Annotated[int, typer.Option(help="Random seed of the simulated market.")] = 7,
        keep_db: Annotated[
            Path | None, typer.Option(help="Keep the demo's SQLite store at this path.")
        ] = None,
    ) -> None:
        """The whole system offline, against the built-in KuCoin simulator.

        Starts the simulator, worker, close handler and API on a scratch store, opens demo
        users' positions and triggers through the API, shows a live view, and ends with a
        summary that checks every ledger against its balance."""
        settings_or_exit(log_level="ERROR", log_json=False)
        code = run_async(lambda: run_demo(duration, seed, keep_db, Console()))
        raise typer.Exit(code)
