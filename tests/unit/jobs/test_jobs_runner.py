"""AgentRunner: a run always ends in a decision, whatever happens around the provider."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal

from cogmora.cli.compose import System
from cogmora.domain.agent import AgentConfig, ProviderKind
from cogmora.jobs.agent.builtin import BuiltinProvider
from cogmora.jobs.agent.context import AgentContext
from cogmora.jobs.agent.gather import ContextBuilder
from cogmora.jobs.agent.provider import ProviderResult
from cogmora.jobs.agent.runner import (
    LLM_NOT_CONFIGURED,
    AgentRunner,
    Providers,
    RunRequest,
    slot_decision_id,
)
from cogmora.jobs.market import candle_interval
from cogmora.testing import FixedCandles

D = Decimal


class Stuck:
    """A provider that never answers."""

    name = "llm"

    async def decide(self, ctx: AgentContext) -> ProviderResult:
        await asyncio.Event().wait()
        return ProviderResult()


def runner(system: System, providers: Providers, timeout: float = 5.0) -> AgentRunner:
    builder = ContextBuilder(system.store, system.positions, FixedCandles(), system.settings.fees)
    return AgentRunner(builder, providers, system.positions, system.triggers, system.clock, timeout)


def request(provider: ProviderKind = ProviderKind.BUILTIN) -> RunRequest:
    config = AgentConfig(enabled=True, symbols=("BTC-USDT",), provider=provider)
    return RunRequest("ann", config, "d1", "manual-d1")


async def test_a_run_without_candles_holds_and_says_why(system: System, make_user) -> None:
    """No data is a hold with the reason, not an error."""
    await make_user("ann")
    decision = await runner(system, Providers(BuiltinProvider())).run(request())
    assert decision.error is None
    assert "insufficient data" in decision.rationale
    assert decision.inputs["run"] == {"key": "manual-d1", "attempt": 1}
    assert decision.inputs["account"]["balance"] == "10000"


async def test_a_provider_that_hangs_is_cut_off_by_the_run_timeout(
    system: System, make_user
) -> None:
    """The run ends at its timeout with an error decision instead of holding its lease."""
    await make_user("ann")
    providers = Providers(BuiltinProvider(), Stuck())
    decision = await runner(system, providers, timeout=0.05).run(request(ProviderKind.LLM))
    assert decision.error == "the run timed out after 0.05s"
    assert decision.provider == "llm"


async def test_an_llm_config_without_an_llm_is_an_error_decision(system: System) -> None:
    """No provider to ask: the decision says how to configure one."""
    decision = await runner(system, Providers(BuiltinProvider())).run(request(ProviderKind.LLM))
    assert decision.error == LLM_NOT_CONFIGURED


async def test_a_missing_user_is_an_error_decision(system: System) -> None:
    """The context cannot be gathered; the decision carries the reason."""
    decision = await runner(system, Providers(BuiltinProvider())).run(request())
    assert decision.error is not None and "user ann not found" in decision.error


def test_decision_ids_and_candle_intervals_follow_the_schedule() -> None:
    """One decision id per slot; the candle matches the schedule's interval."""
    assert slot_decision_id(datetime.fromisoformat("2026-01-01T00:15:00+00:00")) == (
        "slot-20260101T001500Z"
    )
    assert [
        candle_interval(s)
        for s in (
            "every 1m",
            "every 7m",
            "every 15m",
            "every 2h",
            "every 1d",
            "every 3d",
            "0 * * * *",
        )
    ] == [
        "1min",
        "5min",
        "15min",
        "1hour",
        "1day",
        "1day",
        "1hour",
    ]
