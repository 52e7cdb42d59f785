"""`cogmora agent run UID`: run one user's agent now and print its decision as JSON."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import structlog
import typer

from cogmora.cli.catalog import refresh_catalog
from cogmora.cli.compose import build_system
from cogmora.cli.stores import open_store
from cogmora.domain.agent import AgentDecision
from cogmora.domain.enums import Market
from cogmora.errors import CogmoraError
from cogmora.settings import Settings

log = structlog.get_logger("cogmora.agent")

StoreOpt = Annotated[
    str | None, typer.Option("--store", help="Store URL (overrides COGMORA_STORE).")
]


async def run_once(settings: Settings, uid: str) -> AgentDecision:
    from cogmora.cli.jobs import build_jobs, run_agent_now

    store = open_store(settings.store_url)
    await store.start()
    system = build_system(settings, store)
    try:
        jobs = build_jobs(system)
        try:
            await refresh_catalog(system.catalog, {m: jobs.market.rest(m) for m in Market})
        except CogmoraError as exc:  # opens will be refused as unknown symbols, and logged
            log.warning("symbol catalog not loaded", error=str(exc))
        return await run_agent_now(jobs, uid)
    finally:
        await system.aclose()
        await store.close()


def register(
    app: typer.Typer,
    settings_or_exit: Callable[..., Settings],
    run_async: Callable[[Callable[[], Awaitable[Any]]], Any],
) -> None:
    agent_app = typer.Typer(help="The per-user trading agent.", no_args_is_help=True)
    app.add_typer(agent_app, name="agent")

    @agent_app.command("run")
    def run(
        uid: Annotated[str, typer.Argument(help="The user whose agent runs.")],
        store: StoreOpt = None,
    ) -> None:
        """Run UID's agent once now, as the scheduler would, and print the decision as JSON.

        The decision is also logged in the user's agentDecisions; the schedule is not
        changed. Uses the KuCoin REST API (COGMORA_KUCOIN_*_URL) for candles and prices,
        and the LLM endpoint (COGMORA_LLM_*) when the agent's provider is llm."""
        settings = settings_or_exit(store_url=store)
        decision = run_async(lambda: run_once(settings, uid))
        typer.echo(json.dumps({"id": decision.id, **decision.to_doc()}, indent=2))
