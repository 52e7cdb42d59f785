"""What the API needs from the rest of the system, wired once by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from cogmora.services.accounts import Accounts
from cogmora.services.agent import AgentConfigs
from cogmora.services.clock import Clock
from cogmora.services.positions import Positions
from cogmora.services.prices import PriceSource
from cogmora.services.symbols import SymbolCatalog
from cogmora.services.triggers import Triggers
from cogmora.services.watchlist import Watchlists
from cogmora.store.port import Store

if TYPE_CHECKING:
    from cogmora.api.firebase_auth import FirebaseIdTokens
    from cogmora.api.routes.market import KucoinHosts


@dataclass(frozen=True, slots=True)
class ApiDeps:
    store: Store
    accounts: Accounts
    positions: Positions
    triggers: Triggers
    prices: PriceSource
    catalog: SymbolCatalog
    clock: Clock
    registry: CollectorRegistry
    watchlists: Watchlists
    agent_configs: AgentConfigs
    health: Callable[[], dict[str, Any]] = lambda: {"status": "ok"}
    liveness: Callable[[], dict[str, Any]] = lambda: {"status": "alive"}
    firebase_id_tokens: FirebaseIdTokens | None = None  # also accept Firebase ID tokens
    firebase_api_key: str | None = None  # Settings.firebase_api_key, for /v1/auth/config
    kucoin: KucoinHosts | None = None  # candles for charts (api/routes/market.py)
