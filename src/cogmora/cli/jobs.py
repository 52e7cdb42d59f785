"""Starting the scheduler: agent runs and the watchlist scraper, owned by the supervisor.

Every replica runs the same loops; the slot claims in the store decide who runs what.
A process without the real-time worker (`cogmora jobs`, `cogmora agent run`) has no feed,
so the jobs bring their own KuCoin REST price source (for the agent's opens); with the
worker in the process, its feed serves. The symbol catalog is the process's own
(cli/catalog.py), whichever components run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import structlog

from cogmora.cli.catalog import start_catalog
from cogmora.cli.compose import System
from cogmora.cli.orders import build_order_jobs
from cogmora.domain.agent import AgentDecision
from cogmora.domain.ids import new_id
from cogmora.domain.schedule import parse_schedule
from cogmora.errors import ConfigError, ValidationError
from cogmora.health import Report
from cogmora.jobs.agent.builtin import BuiltinProvider
from cogmora.jobs.agent.gather import DEFAULT_CANDLES, ContextBuilder
from cogmora.jobs.agent.llm import LlmMetrics, LlmProvider, LlmSettings
from cogmora.jobs.agent.provider import AgentProvider
from cogmora.jobs.agent.runner import AgentRunner, Providers, RunRequest
from cogmora.jobs.agent.store_budget import StoreCallBudget
from cogmora.jobs.agent_jobs import AgentJobs
from cogmora.jobs.market import CandleSource, MarketData
from cogmora.jobs.metrics import JobsMetrics
from cogmora.jobs.scheduler import SlotScheduler
from cogmora.jobs.watchlist import DEFAULT_SCHEDULE, WatchlistJob, WatchlistScraper
from cogmora.services.agent import AgentConfigs
from cogmora.settings import Settings

log = structlog.get_logger("cogmora.jobs")


@dataclass(frozen=True, slots=True)
class JobsOptions:
    """How the scheduler runs. The run timeout must be shorter than the lease, so a live
    run is never mistaken for a crashed one and retried beside itself."""

    lease_seconds: float = 300.0
    run_timeout_seconds: float = 120.0
    max_attempts: int = 3
    concurrency: int = 32
    poll_seconds: float = 1.0
    watchlist_schedule: str = DEFAULT_SCHEDULE
    watchlist_timeout_seconds: float = 50.0
    watchlist_batch: int = 500
    candle_count: int = DEFAULT_CANDLES

    def __post_init__(self) -> None:
        if not 0 < self.run_timeout_seconds < self.lease_seconds:
            raise ConfigError(
                "jobs.run_timeout_seconds", "must be positive and shorter than the lease"
            )
        if not 0 < self.watchlist_timeout_seconds < self.lease_seconds:
            raise ConfigError(
                "jobs.watchlist_timeout_seconds", "must be positive and shorter than the lease"
            )
        if self.max_attempts < 1 or self.concurrency < 1 or self.candle_count < 21:
            raise ConfigError(
                "jobs", "max_attempts and concurrency must be at least 1, candle_count 21"
            )
        parse_schedule(self.watchlist_schedule)


@dataclass(slots=True)
class Jobs:
    system: System
    options: JobsOptions
    market: MarketData
    scheduler: SlotScheduler
    runner: AgentRunner
    agents: AgentJobs
    scraper: WatchlistScraper
    watchlist: WatchlistJob
    metrics: JobsMetrics

    def health(self) -> dict[str, Any]:
        return {"agents": self.agents.stats.health(), "watchlist": self.watchlist.health()}


def llm_provider(
    settings: Settings, system: System, metrics: LlmMetrics | None = None
) -> AgentProvider | None:
    """The LLM provider when COGMORA_LLM_URL and COGMORA_LLM_MODEL are both set."""
    if not (settings.llm_url and settings.llm_model):
        return None
    llm = LlmSettings(
        url=settings.llm_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        daily_call_budget=settings.llm_daily_calls,
    )
    client = httpx.AsyncClient()
    system.closers.append(client.aclose)
    budget = StoreCallBudget(system.store, llm.daily_call_budget)
    return LlmProvider(llm, budget, client, clock=system.clock, metrics=metrics)


def build_jobs(
    system: System,
    options: JobsOptions | None = None,
    *,
    candles: CandleSource | None = None,
) -> Jobs:
    """Wire the jobs; `candles` replaces KuCoin's candles (benchmarks use a prepared set)."""
    options = options or JobsOptions()
    settings = system.settings
    market = MarketData.connect(
        settings.kucoin_spot_url, settings.kucoin_futures_url, system.clock, system.live
    )
    system.closers.append(market.aclose)
    if system.worker is None:  # the worker brings its own REST prices
        system.prices.add(market)
    metrics = JobsMetrics(system.registry)
    providers = Providers(
        BuiltinProvider(), llm_provider(settings, system, LlmMetrics(system.registry))
    )
    scheduler = SlotScheduler(
        system.store,
        lease=timedelta(seconds=options.lease_seconds),
        max_attempts=options.max_attempts,
    )
    builder = ContextBuilder(
        system.store, system.positions, candles or market, settings.fees, options.candle_count
    )
    runner = AgentRunner(
        builder,
        providers,
        system.positions,
        system.triggers,
        system.clock,
        options.run_timeout_seconds,
    )
    agents = AgentJobs(
        scheduler,
        runner,
        system.clock,
        concurrency=options.concurrency,
        poll_seconds=options.poll_seconds,
        metrics=metrics,
    )
    scraper = WatchlistScraper(
        system.store, market, system.catalog, options.watchlist_batch, metrics
    )
    watchlist = WatchlistJob(
        scheduler,
        scraper,
        system.store,
        system.clock,
        schedule=options.watchlist_schedule,
        timeout_seconds=options.watchlist_timeout_seconds,
        metrics=metrics,
    )
    jobs = Jobs(system, options, market, scheduler, runner, agents, scraper, watchlist, metrics)
    system.jobs = jobs
    return jobs


async def start_jobs(system: System, options: JobsOptions | None = None) -> None:
    jobs = build_jobs(system, options)
    sup = system.supervisor
    sup.add_probe("jobs", lambda: Report(jobs.health()))
    await start_catalog(system)  # once per process, whoever asks first
    agents, watchlist = JOB_TASKS
    sup.start(agents, jobs.agents.run_forever)
    sup.start(watchlist, jobs.watchlist.run_forever)
    sup.start("scheduler-orders", build_order_jobs(jobs).run_forever)  # time limits, funding
    log.info(
        "scheduler started",
        llm=bool(system.settings.llm_url and system.settings.llm_model),
        lease_seconds=jobs.options.lease_seconds,
        concurrency=jobs.options.concurrency,
    )


# What the scheduler's tasks are called under the supervisor.
JOB_TASKS = ("scheduler-agents", "scheduler-watchlist")


async def drain_jobs(system: System, within: float) -> bool:
    """SIGTERM's path for the scheduler: claim nothing more and let the agent runs and the
    watchlist refresh in flight finish, for at most `within` seconds. False if the deadline
    came first; the caller then cancels what is left (its lease retries the slot later).
    A run in flight cut short loses nothing: its actions are idempotent per slot."""
    jobs = system.jobs
    if jobs is None:
        return True
    jobs.agents.stop_claiming()
    jobs.watchlist.stop_claiming()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, within)
    finished = True
    for name in JOB_TASKS:
        finished &= await system.supervisor.wait_finished(name, deadline - loop.time())
    if not finished:
        log.warning(
            "drain deadline reached with agent runs in flight; they are cancelled and "
            "their leases retry them",
            runs=len(jobs.agents.stats.in_flight),
        )
    return finished


async def run_agent_now(jobs: Jobs, uid: str) -> AgentDecision:
    """One run of `uid`'s agent outside the schedule (`cogmora agent run`), logged like any
    other. It runs even when the agent is switched off: the user asked for it by name.
    The schedule is left alone."""
    system = jobs.system
    config = await AgentConfigs(system.store, system.clock, True).get(uid)
    if not config.symbols:
        raise ValidationError(
            "symbols", f"user {uid}'s agent has no symbols to trade: save a config first"
        )
    did = new_id()
    req = RunRequest(uid, config, did, run_key=f"manual-{did}")
    decision = await jobs.runner.run(req)
    await system.store.transact(lambda tx: tx.set(decision.path, decision.to_doc()))
    return decision
