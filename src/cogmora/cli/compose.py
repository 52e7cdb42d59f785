"""Wiring: one place builds every object from the settings and hands them their collaborators."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from cogmora.api.deps import ApiDeps
from cogmora.health import StoreProbe
from cogmora.services.accounts import Accounts
from cogmora.services.agent import AgentConfigs
from cogmora.services.clock import Clock, SystemClock
from cogmora.services.positions import Positions
from cogmora.services.prices import ChainedPrices, LivePrices, PriceSource, StorePrices
from cogmora.services.settlement import Settler
from cogmora.services.symbols import SymbolCatalog
from cogmora.services.triggers import Triggers
from cogmora.services.watchlist import Watchlists
from cogmora.settings import Settings
from cogmora.store.port import Store
from cogmora.supervisor import Supervisor

if TYPE_CHECKING:
    from cogmora.api.firebase_auth import FirebaseIdTokens
    from cogmora.api.routes.market import KucoinHosts
    from cogmora.cli.jobs import Jobs
    from cogmora.cli.worker import Worker


@dataclass(slots=True)
class System:
    settings: Settings
    store: Store
    clock: Clock
    registry: CollectorRegistry
    supervisor: Supervisor
    live: LivePrices
    prices: ChainedPrices
    catalog: SymbolCatalog
    accounts: Accounts
    positions: Positions
    triggers: Triggers
    settler: Settler
    watchlists: Watchlists
    agent_configs: AgentConfigs
    firebase_id_tokens: FirebaseIdTokens | None = None  # COGMORA_FIREBASE_PROJECT is set
    # The components this process runs, set by whoever starts them (None: not here).
    worker: Worker | None = None
    jobs: Jobs | None = None
    catalog_kept: bool = False  # cli/catalog.py's loop runs in this process
    kucoin: KucoinHosts | None = None  # the API's candle proxy, made by api_deps()
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        """Close what the components opened (HTTP clients), newest first."""
        while self.closers:
            await self.closers.pop()()

    def api_deps(self) -> ApiDeps:
        if self.kucoin is None:
            from cogmora.api.routes.market import KucoinHosts  # only processes that serve

            urls = (self.settings.kucoin_spot_url, self.settings.kucoin_futures_url)
            self.kucoin = KucoinHosts(*urls)
            self.closers.append(self.kucoin.aclose)
        return ApiDeps(
            store=self.store,
            accounts=self.accounts,
            positions=self.positions,
            triggers=self.triggers,
            prices=self.prices,
            catalog=self.catalog,
            clock=self.clock,
            registry=self.registry,
            watchlists=self.watchlists,
            agent_configs=self.agent_configs,
            health=self.supervisor.health,
            liveness=self.supervisor.liveness,
            firebase_id_tokens=self.firebase_id_tokens,
            firebase_api_key=self.settings.firebase_api_key,
            kucoin=self.kucoin,
        )


def firebase_id_tokens(settings: Settings, accounts: Accounts) -> FirebaseIdTokens | None:
    """The Firebase ID-token verifier when COGMORA_FIREBASE_PROJECT is set (api/auth.py)."""
    if settings.firebase_project is None:
        return None
    from cogmora.api.firebase_auth import FirebaseIdTokens

    return FirebaseIdTokens(settings.firebase_project, settings.firebase_opening_balance, accounts)


def build_system(
    settings: Settings,
    store: Store,
    *,
    catalog: SymbolCatalog | None = None,
    clock: Clock | None = None,
    extra_prices: tuple[PriceSource, ...] = (),
) -> System:
    clock = clock or SystemClock()
    catalog = catalog or SymbolCatalog()
    live = LivePrices()
    prices = ChainedPrices(
        live,
        StorePrices(store),
        *extra_prices,
        clock=clock,
        max_age_seconds=settings.price_max_age_seconds,
    )
    fees = settings.fees
    registry = CollectorRegistry()
    accounts = Accounts(store, clock)
    supervisor = Supervisor(registry=registry)
    store_probe = StoreProbe(store)  # every process: an unreachable store is a reason
    supervisor.add_probe("storeProbe", store_probe.report)
    return System(
        settings=settings,
        store=store,
        clock=clock,
        registry=registry,
        supervisor=supervisor,
        live=live,
        prices=prices,
        catalog=catalog,
        accounts=accounts,
        positions=Positions(store, prices, catalog, fees, clock, settings.price_max_age_seconds),
        triggers=Triggers(store, catalog, fees, clock),
        settler=Settler(store, fees, clock),
        watchlists=Watchlists(store, clock),
        agent_configs=AgentConfigs(
            store, clock, llm_configured=bool(settings.llm_url and settings.llm_model)
        ),
        firebase_id_tokens=firebase_id_tokens(settings, accounts),
        closers=[store_probe.aclose],
    )
