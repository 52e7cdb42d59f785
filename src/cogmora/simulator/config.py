"""What the simulated exchange looks like: its hosts, timings, limits and instruments.

Defaults are KuCoin's own values (ping 18 s / 10 s, 100 topics per request, 400 topics per
spot connection, 24 h tokens) so that the demo behaves like production; tests shrink the
timings to keep the suite fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

# Realistic starting prices; the walk moves them from there.
DEFAULT_SPOT: Mapping[str, str] = {
    "BTC-USDT": "67000.0",
    "ETH-USDT": "3500.00",
    "SOL-USDT": "150.000",
    "XRP-USDT": "0.55000",
    "BNB-USDT": "580.000",
    "DOGE-USDT": "0.150000",
    "ADA-USDT": "0.45000",
    "AVAX-USDT": "35.0000",
    "LINK-USDT": "15.0000",
    "DOT-USDT": "7.0000",
    "TRX-USDT": "0.120000",
    "LTC-USDT": "80.000",
    "BCH-USDT": "450.00",
    "ATOM-USDT": "9.0000",
    "NEAR-USDT": "6.0000",
    "UNI-USDT": "9.0000",
    "APT-USDT": "9.0000",
    "ARB-USDT": "1.10000",
    "OP-USDT": "2.20000",
    "SUI-USDT": "1.50000",
    "TON-USDT": "6.0000",
    "KCS-USDT": "10.0000",
}

DEFAULT_FUTURES: Mapping[str, str] = {
    "XBTUSDTM": "67000.0",
    "ETHUSDTM": "3500.00",
    "SOLUSDTM": "150.000",
    "XRPUSDTM": "0.55000",
    "BNBUSDTM": "580.000",
    "DOGEUSDTM": "0.150000",
    "ADAUSDTM": "0.45000",
    "AVAXUSDTM": "35.0000",
    "LINKUSDTM": "15.0000",
    "LTCUSDTM": "80.000",
}

# Lot sizes of the futures contracts (base units per contract), as /contracts/active reports.
FUTURES_MULTIPLIERS: Mapping[str, str] = {
    "XBTUSDTM": "0.001",
    "ETHUSDTM": "0.01",
    "SOLUSDTM": "0.1",
    "XRPUSDTM": "10",
    "BNBUSDTM": "0.01",
    "DOGEUSDTM": "100",
    "ADAUSDTM": "10",
    "AVAXUSDTM": "0.1",
    "LINKUSDTM": "0.1",
    "LTCUSDTM": "0.1",
}


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    host: str = "127.0.0.1"
    spot_port: int = 0  # 0: an ephemeral port, read it back from KucoinSimulator.spot_url
    futures_port: int = 0
    seed: int = 0
    # Random-walk ticks per second per symbol that has subscribers; 0 = only scripted prices.
    tick_rate: float = 10.0
    # Futures mark price pushes per second (KuCoin: 1 per second).
    mark_rate: float = 1.0
    # Walk every symbol, watched or not (the standalone sandbox: a bot that only polls REST
    # sees a moving market); False walks only the symbols somebody subscribed to.
    walk_unwatched: bool = False
    # Timed pushes, KuCoin's periods: /market/snapshot 2 s, /contractMarket/snapshot 5 s,
    # the predicted funding rate on /contract/instrument each minute.
    snapshot_interval_s: float = 2.0
    futures_snapshot_interval_s: float = 5.0
    funding_interval_s: float = 60.0
    ping_interval_ms: int = 18_000
    ping_timeout_ms: int = 10_000
    # Close a connection that sent nothing for this long (KuCoin does, with error 400
    # "ping timeout"); None = ping_interval + ping_timeout.
    silent_client_timeout_s: float | None = None
    max_topics_per_request: int = 100
    spot_topic_cap: int = 400
    futures_topic_cap: int | None = None  # KuCoin: "no such restriction for Futures"
    token_ttl_s: float = 24 * 3600.0
    # REST rate limit: weight per window, as KuCoin's public pool.
    rest_weight_limit: int = 2000
    rest_window_ms: int = 30_000
    spot: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SPOT))
    futures: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FUTURES))
    # A recorded-ticks file (feeds/recording.py format) replayed in a loop instead of the walk.
    record_file: Path | None = None
    # Relative standard deviation of one random-walk step.
    volatility: Decimal = Decimal("0.0004")

    @property
    def silent_timeout_s(self) -> float:
        if self.silent_client_timeout_s is not None:
            return self.silent_client_timeout_s
        return (self.ping_interval_ms + self.ping_timeout_ms) / 1000.0
