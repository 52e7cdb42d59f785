"""The state one simulated host (spot or futures) shares between REST, websocket and control.

Spot and futures are separate hosts on KuCoin with tokens that are not interchangeable, so
each host here has its own instruments, token book, hub and fault switches.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from cogmora.domain.enums import Market
from cogmora.simulator.config import SimulatorConfig
from cogmora.simulator.funding import Funding
from cogmora.simulator.hub import Hub
from cogmora.simulator.market import Instrument

SPOT_PREFIXES = frozenset(
    {
        "/market/ticker",
        "/market/match",
        "/market/snapshot",  # a symbol, or a market (USDS): one message per symbol
        "/market/candles",  # SYMBOL_TYPE, e.g. BTC-USDT_1hour
        "/market/level2",
        "/spotMarket/level1",
        "/spotMarket/level2Depth5",
        "/spotMarket/level2Depth50",
    }
)
FUTURES_PREFIXES = frozenset(
    {
        "/contractMarket/execution",
        "/contract/instrument",
        "/contractMarket/tickerV2",
        "/contractMarket/ticker",
        "/contractMarket/snapshot",
        "/contractMarket/level2",
        "/contractMarket/level2Depth5",
        "/contractMarket/level2Depth50",
        "/contractMarket/limitCandle",  # SYMBOL_TYPE
    }
)
CANDLE_PREFIXES = frozenset({"/market/candles", "/contractMarket/limitCandle"})
SPOT_MARKETS = frozenset({"USDS"})  # what /market/snapshot:{market} accepts


class TokenBook:
    """Tokens issued by the bullet call, each valid until its expiry."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._expires: dict[str, float] = {}
        self.issued = 0

    def issue(self) -> str:
        # Real tokens carry '=', '.', '-' and '_': clients must URL-encode them.
        token = f"{secrets.token_urlsafe(24)}=.{secrets.token_urlsafe(8)}=="
        self._expires[token] = time.monotonic() + self.ttl_s
        self.issued += 1
        return token

    def check(self, token: str | None) -> str | None:
        """None when the token is good, else KuCoin's error text for it."""
        if not token or token not in self._expires:
            return "token is invalid"
        if time.monotonic() >= self._expires[token]:
            return "token is expired"
        return None

    def expire_all(self) -> int:
        now = time.monotonic()
        for token in self._expires:
            self._expires[token] = now
        return len(self._expires)


@dataclass(slots=True)
class RestLimiter:
    """KuCoin's weighted public pool: `limit` weight per window, 429000 beyond it."""

    limit: int
    window_ms: int
    used: int = 0
    window_start_ms: int = 0
    forced: int = 0  # the next `forced` requests answer 429 whatever the budget
    forced_reset_ms: int = 1000

    def take(self, weight: int, now_ms: int) -> tuple[bool, int, int]:
        """(allowed, remaining, reset_ms) for a request of `weight` at `now_ms`."""
        if now_ms - self.window_start_ms >= self.window_ms:
            self.window_start_ms = now_ms
            self.used = 0
        reset = self.window_start_ms + self.window_ms - now_ms
        if self.forced > 0:
            self.forced -= 1
            return False, 0, self.forced_reset_ms
        if self.used + weight > self.limit:
            return False, max(0, self.limit - self.used), reset
        self.used += weight
        return True, self.limit - self.used, reset


@dataclass(slots=True)
class Host:
    market: Market
    config: SimulatorConfig
    instruments: dict[str, Instrument]
    hub: Hub
    tokens: TokenBook
    limiter: RestLimiter
    ws_url: str = ""
    stall_pongs: bool = False
    refuse_ws: bool = False  # websocket upgrades answer 503 (the exchange's edge is down)
    candle_failures: int = 0  # the next N candle requests answer HTTP 500
    connections_opened: int = 0
    pings_answered: int = 0
    frames_sent: int = 0
    topic_cap: int | None = None
    request_sizes: list[int] = field(default_factory=list)  # topics per subscribe request
    prefixes: frozenset[str] = field(default_factory=frozenset)
    funding: Funding = field(default_factory=lambda: Funding(0))

    @classmethod
    def create(
        cls, market: Market, config: SimulatorConfig, instruments: dict[str, Instrument]
    ) -> Host:
        spot = market is Market.SPOT
        return cls(
            market=market,
            config=config,
            instruments=instruments,
            hub=Hub(market),
            tokens=TokenBook(config.token_ttl_s),
            limiter=RestLimiter(config.rest_weight_limit, config.rest_window_ms),
            topic_cap=config.spot_topic_cap if spot else config.futures_topic_cap,
            prefixes=SPOT_PREFIXES if spot else FUTURES_PREFIXES,
            funding=Funding(config.seed),
        )
