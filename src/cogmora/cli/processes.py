"""The long-running commands: api, run, worker, jobs (and the demo, which runs them all)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import structlog
import typer

from cogmora.cli.catalog import start_catalog
from cogmora.cli.compose import System, build_system
from cogmora.cli.stores import feed_retention, start_store
from cogmora.errors import CogmoraError
from cogmora.jobs.close_handler import run_close_handler
from cogmora.services.prices import PriceSource
from cogmora.settings import Settings

if TYPE_CHECKING:
    from uvicorn import Server  # loaded only by the processes that serve HTTP

log = structlog.get_logger("cogmora")

HostOpt = Annotated[str | None, typer.Option("--host", help="API host (COGMORA_API_HOST).")]
PortOpt = Annotated[
    int | None,
    typer.Option(
        "--port", min=0, max=65535, help="API port (overrides PORT, then COGMORA_API_PORT)."
    ),
]
StoreOpt = Annotated[str | None, typer.Option("--store", help="Store URL (COGMORA_STORE).")]

COMPONENTS = ("worker", "close-handler", "scheduler", "api")


# Cloud Run sends SIGKILL 10 s after SIGTERM: drain within 8 s, then exit 0.
DRAIN_SECONDS = 8.0
SETTLE_RESERVE_SECONDS = 1.0  # of the drain, kept from agent runs for settlement


async def wait_for_stop(system: System) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    fatal = system.supervisor.fatal
    waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
    if fatal is not None:
        waiters.append(fatal)
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if fatal is not None and fatal.done():
        raise fatal.result()


def rest_prices(system: System) -> PriceSource:
    """KuCoin's REST ticker as a price source, for a process without the worker's feed."""
    from cogmora.jobs.market import MarketData

    settings = system.settings
    market = MarketData.connect(
        settings.kucoin_spot_url, settings.kucoin_futures_url, system.clock, system.live
    )
    system.closers.append(market.aclose)
    return market


async def start_components(system: System, components: tuple[str, ...]) -> dict[str, Server]:
    """Start them under the supervisor; returns the HTTP servers started (by task name)."""
    settings = system.settings
    sup = system.supervisor
    servers: dict[str, Server] = {}
    api_socket = None
    if "api" in components:
        from cogmora.cli.serve import bind  # FastAPI loads only for processes that serve

        api_socket = bind(settings.api_host, settings.api_port)  # a busy port fails first
    if "close-handler" in components:
        sup.start("close-handler", lambda: run_close_handler(system.store, system.settler))
    if "worker" in components:
        from cogmora.cli.worker import start_worker

        await start_worker(system)
    if "scheduler" in components:
        from cogmora.cli.jobs import start_jobs

        await start_jobs(system)
    if api_socket is not None:
        from cogmora.cli.serve import api_server

        await start_catalog(system)
        if system.worker is None and system.jobs is None:
            # Fills of a symbol nobody follows: KuCoin's REST ticker, after the live
            # prices and the worker's prices/{symbol} mirror.
            system.prices.add(rest_prices(system))

        servers["api"] = api_server(system, settings.api_host, settings.api_port)
        # The check is done: uvicorn binds the port itself. Served on our socket instead,
        # an idle worker's feed never connected (test_worker_live's healthz test hung).
        api_socket.close()
        sup.start("api", servers["api"].serve)
    return servers


async def drain(system: System, servers: dict[str, Server], within: float) -> None:
    """Stop taking work, let what is in flight finish, then return (SIGTERM's path).

    Order: the API stops accepting (open requests get a short grace); the feeds and the
    scheduler stop; crossings already queued are committed and agent runs in flight
    finish (cancelled at the deadline, their leases retry them); positions already
    `closing` are settled. Every write is one transaction, so whatever the deadline cuts short is
    either committed whole or not at all, and the next start picks it up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    sup = system.supervisor
    sup.phase = "stopping: draining after a stop signal"
    log.info("draining", within=within)
    for name, server in servers.items():
        if name != "probes":
            server.should_exit = True
    jobs_drained = None
    if system.jobs is not None:
        from cogmora.cli.jobs import drain_jobs

        # Agent runs in flight finish, beside the worker's drain; a second of the budget
        # is kept for settling what is closing.
        jobs_drained = asyncio.create_task(
            drain_jobs(system, deadline - loop.time() - SETTLE_RESERVE_SECONDS)
        )
    if system.worker is not None:
        from cogmora.cli.worker import drain_worker

        await drain_worker(system.worker, max(0.0, deadline - loop.time()))
    if jobs_drained is not None:
        await jobs_drained
    await sup.cancel([n for n in sup.names() if n.startswith(("scheduler-", "jobs-"))])
    for name in servers:
        if name != "probes":
            await sup.wait_finished(name, deadline - loop.time())
    settled = 0
    if "close-handler" in sup.names():
        await sup.cancel(["close-handler"])
        try:
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                while n := await system.settler.settle_pending():
                    settled += n
        except TimeoutError:
            log.warning("drain deadline reached with positions still closing", settled=settled)
        except CogmoraError as exc:
            log.warning("could not settle while draining", error=str(exc), settled=settled)
    log.info("drained", seconds=round(within - (deadline - loop.time()), 3), settled=settled)


async def serve(
    settings: Settings, components: tuple[str, ...], drain_within: float = DRAIN_SECONDS
) -> None:
    store = await start_store(settings.store_url, feed_retention(settings))
    system = build_system(settings, store)
    sup = system.supervisor
    sup.phase = "starting"
    servers: dict[str, Server] = {}
    try:
        if settings.probe_port is not None and "api" not in components:
            # Cloud Run's startup and liveness probes, before the (slow) book load.
            from cogmora.cli.serve import probe_server

            servers["probes"] = probe_server(system, settings.api_host, settings.probe_port)
            sup.start("probes", servers["probes"].serve)
        servers |= await start_components(system, components)
        sup.phase = None
        where = {}
        if "api" in servers and settings.api_port:
            where["dashboard"] = f"http://{settings.api_host}:{settings.api_port}/"
        log.info("started", components=list(components), store=store.name, **where)
        await wait_for_stop(system)
        await drain(system, servers, drain_within)
    finally:
        probes = servers.get("probes")
        if probes is not None:
            probes.should_exit = True
            await sup.wait_finished("probes", 2.0)
        await sup.stop()
        await system.aclose()
        await store.close()
        log.info("stopped")


def register(
    app: typer.Typer,
    settings_or_exit: Callable[..., Settings],
    run_async: Callable[[Callable[[], Awaitable[Any]]], Any],
) -> None:
    @app.command("api")
    def api(host: HostOpt = None, port: PortOpt = None, store: StoreOpt = None) -> None:
        """Serve the HTTP API (OpenAPI docs at /docs) and the dashboard (at /) against a
        shared store.

        With COGMORA_FIREBASE_PROJECT set it also takes that project's Firebase ID tokens,
        and the page signs in by email and password with COGMORA_FIREBASE_API_KEY."""
        settings = settings_or_exit(api_host=host, api_port=port, store_url=store)
        run_async(lambda: serve(settings, ("api",)))

    @app.command("run")
    def run(host: HostOpt = None, port: PortOpt = None, store: StoreOpt = None) -> None:
        """Run everything in one process: worker, close handler, scheduler and API."""
        settings = settings_or_exit(api_host=host, api_port=port, store_url=store)
        run_async(lambda: serve(settings, COMPONENTS))

    @app.command("worker")
    def worker(store: StoreOpt = None) -> None:
        """Run the real-time worker (KuCoin feeds -> trigger book) and the close handler.

        Several replicas may run against one PostgreSQL store: every write is a
        compare-and-set, so exactly one replica wins each crossing."""
        settings = settings_or_exit(store_url=store)
        run_async(lambda: serve(settings, ("worker", "close-handler")))

    @app.command("jobs")
    def jobs(store: StoreOpt = None) -> None:
        """Run the scheduler: due agent runs and the watchlist scraper, once per slot."""
        settings = settings_or_exit(store_url=store)
        run_async(lambda: serve(settings, ("scheduler", "close-handler")))
