"""`cogmora record` and `cogmora replay`: live ticks to a file, and a file through the engine.

A replay is a backtest of what is resting in the store now: the users' open positions and
active triggers are copied into a scratch SQLite store (the real one is never written),
the recording is fed through the real engine on the recording's own clock, and the end
state is compared with the start, user by user.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cogmora.cli.stores import open_store
from cogmora.domain.models import User
from cogmora.domain.paths import user_path
from cogmora.domain.ticks import Tick
from cogmora.engine.book_sync import ACTIVE_TRIGGERS, OPEN_POSITIONS
from cogmora.engine.engine import Engine
from cogmora.engine.metrics import EngineMetrics
from cogmora.feeds.record import record
from cogmora.feeds.recording import count_ticks
from cogmora.feeds.replay import ReplayFeed
from cogmora.services.clock import ManualClock
from cogmora.services.prices import LivePrices
from cogmora.services.settlement import Settler
from cogmora.settings import Settings
from cogmora.store.port import Store, Tx
from cogmora.store.sqlite import SqliteStore

Doc = dict[str, Any]


async def _snapshot(store: Store, uid: str | None) -> tuple[list[tuple[str, Doc]], ...]:
    """Users, open positions and active triggers (of one user, or of everyone)."""

    def body(tx: Tx) -> tuple[list[tuple[str, Doc]], ...]:
        positions = tx.query(OPEN_POSITIONS)
        triggers = tx.query(ACTIVE_TRIGGERS)
        if uid is not None:
            positions = [(p, d) for p, d in positions if d["uid"] == uid]
            triggers = [(p, d) for p, d in triggers if d["uid"] == uid]
        owners = sorted({d["uid"] for _, d in positions + triggers} | ({uid} if uid else set()))
        users = [
            (user_path(u), d)
            for u, d in zip(owners, tx.get_many([user_path(u) for u in owners]), strict=True)
            if d
        ]
        return users, positions, triggers

    return await store.read(body)


async def run_replay(
    settings: Settings, file: Path, uid: str | None, console: Console
) -> dict[str, Any]:
    source = open_store(settings.store_url)
    await source.start()
    try:
        users, positions, triggers = await _snapshot(source, uid)
    finally:
        await source.close()
    with tempfile.TemporaryDirectory(prefix="cogmora-replay-") as tmp:
        scratch = SqliteStore(Path(tmp) / "backtest.db")
        await scratch.start()

        def copy(tx: Tx) -> None:
            for path, doc in users + positions + triggers:
                tx.set(path, doc)

        await scratch.transact(copy)
        clock = ManualClock(datetime.now(UTC))
        engine = Engine(
            scratch, settings.fees, clock, LivePrices(), EngineMetrics(CollectorRegistry())
        )
        await engine.load()
        commits = asyncio.create_task(engine.run_commits())

        def on_ticks(ticks: list[Tick]) -> None:
            if ticks[-1].exchange_ns:
                clock.set(datetime.fromtimestamp(ticks[-1].exchange_ns / 1e9, tz=UTC))
            engine.on_ticks(ticks)

        with Progress(
            TextColumn("[bold]replaying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("ticks"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("replay", total=await count_ticks(file))
            feed = ReplayFeed(
                file, on_ticks, on_progress=lambda n: progress.update(task, completed=n)
            )
            delivered = await feed.run()
        await asyncio.sleep(0)
        await engine.drained()
        commits.cancel()
        await asyncio.gather(commits, return_exceptions=True)
        await Settler(scratch, settings.fees, clock).settle_all()
        report = await _report(scratch, users)
        await scratch.close()
    report["ticks"] = delivered
    report["positions"] = len(positions)
    report["triggers"] = len(triggers)
    return report


async def _report(store: Store, users: list[tuple[str, Doc]]) -> dict[str, Any]:
    before = {d["uid"]: Decimal(d["balance"]) for _, d in users}

    def body(tx: Tx) -> dict[str, Any]:
        from cogmora.store import queries as q

        out: dict[str, Any] = {}
        for uid, start in before.items():
            after_doc = tx.get(user_path(uid))
            after = User.from_doc(after_doc).balance if after_doc else start
            history = tx.query(
                q.Query("positionHistory", parent=user_path(uid)).order_by("closedAt", "desc")
            )
            reasons = Counter(d["closeReason"] for _, d in history)
            fired = tx.query(
                q.Query("tradeTriggers", parent=user_path(uid))
                .where("details.status", "==", "triggered")
                .order_by("createdAt", "desc")
            )
            out[uid] = {
                "startBalance": str(start),
                "endBalance": str(after),
                "realizedPnl": str(
                    sum((Decimal(d["realizedPnl"]) for _, d in history), Decimal(0))
                ),
                "closes": dict(reasons),
                "partialCloses": sum(1 for _, d in history if d.get("partOf")),
                "triggersFired": len(fired),
            }
        return out

    return {"users": await store.read(body)}


def register(app: typer.Typer, settings_or_exit: Any, run_async: Any) -> None:
    @app.command("record")
    def record_cmd(
        symbols: Annotated[
            str, typer.Option(help="Comma-separated symbols, e.g. BTC-USDT,XBTUSDTM.")
        ],
        out: Annotated[Path, typer.Option(help="File to append ticks to (JSON lines).")],
        duration: Annotated[
            float | None, typer.Option(help="Seconds to record (default: until Ctrl-C).")
        ] = None,
    ) -> None:
        """Record live KuCoin ticks (COGMORA_KUCOIN_*_URL) to a file for `cogmora replay`."""
        settings = settings_or_exit()
        names = [s.strip() for s in symbols.split(",") if s.strip()]
        if not names:
            raise typer.BadParameter("--symbols lists no symbol")
        console = Console(stderr=True)

        async def main() -> int:
            with Progress(
                TextColumn("[bold]recording"), TextColumn("{task.completed} ticks"), console=console
            ) as progress:
                task = progress.add_task("record", total=None)
                return await record(
                    settings.kucoin_spot_url,
                    settings.kucoin_futures_url,
                    names,
                    out,
                    duration,
                    on_progress=lambda n: progress.update(task, completed=n),
                )

        written = run_async(main)
        typer.echo(f"recorded {written} ticks to {out}")

    @app.command("replay")
    def replay_cmd(
        file: Annotated[
            Path,
            typer.Argument(exists=True, dir_okay=False, help="A recording from `cogmora record`."),
        ],
        uid: Annotated[
            str | None, typer.Option(help="Backtest only this user's positions and triggers.")
        ] = None,
        store: Annotated[
            str | None, typer.Option("--store", help="Store URL (COGMORA_STORE).")
        ] = None,
    ) -> None:
        """Backtest: replay a recording through the engine, with a progress bar.

        What rests in the store now (open positions, active triggers) is copied to a scratch
        store, so the real one is never changed; prints a JSON report per user."""
        settings = settings_or_exit(store_url=store)
        console = Console(stderr=True)
        report = run_async(lambda: run_replay(settings, file, uid, console))
        import json

        typer.echo(json.dumps(report, indent=2))
        table = Table(title="Backtest")
        for col in ("user", "start", "end", "realized P&L", "closes", "fires"):
            table.add_column(col)
        for u, r in report["users"].items():
            table.add_row(
                u,
                r["startBalance"],
                r["endBalance"],
                r["realizedPnl"],
                str(r["closes"]),
                str(r["triggersFired"]),
            )
        console.print(table)
