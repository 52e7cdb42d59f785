"""The one typed, frozen settings object, read from COGMORA_* variables (SPEC section 8).

A bad value stops start-up with a message naming the variable: a trading system that
silently fell back to a default fee or store would be wrong in a way nobody notices.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlparse

from cogmora.domain.fees import FeeSchedule
from cogmora.errors import ConfigError

STORE_SCHEMES = ("sqlite", "postgresql", "postgres", "firestore")


@dataclass(frozen=True, slots=True)
class Settings:
    store_url: str = "sqlite:///./cogmora.db"
    kucoin_spot_url: str = "https://api.kucoin.com"
    kucoin_futures_url: str = "https://api-futures.kucoin.com"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # PORT (Cloud Run's): where `worker` and `jobs` serve /healthz, /livez and /metrics;
    # None: they serve nothing. `api` and `run` listen on it (see load()).
    probe_port: int | None = None
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    llm_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_daily_calls: int = 96
    price_max_age_seconds: float = 5.0
    # A feed price more than this factor away from the symbol's last accepted price is
    # dropped, never evaluated (SPEC 5.1; engine/price_filter.py).
    price_band: Decimal = Decimal(10)
    log_level: str = "INFO"
    log_json: bool = True
    firebase_project: str | None = None  # the API also accepts this project's ID tokens
    firebase_opening_balance: Decimal = Decimal(10000)  # a Firebase user's first balance
    # The web API key the page signs in with (public by Firebase's design: it names the
    # project to Identity Toolkit, it grants nothing); /v1/auth/config hands it out.
    firebase_api_key: str | None = None
    # The change feed keeps at least the latest N changes and every change younger than
    # this many seconds (store/retention.py; on Firestore, N bounds each instance's buffer).
    feed_retention_rows: int = 100_000
    feed_retention_seconds: int = 600

    def with_overrides(self, **changes: Any) -> Settings:
        """Flags override the environment; unset (None) flags leave a value alone."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = env.get(name, default).strip()
    parsed = urlparse(value)
    if parsed.scheme not in schemes:
        raise ConfigError(name, f"must be a URL starting with one of {schemes}, got {value!r}")
    if parsed.scheme in ("http", "https") and not parsed.netloc:
        raise ConfigError(name, f"has no host: {value!r}")
    return value.rstrip("/")


def _rate(env: Mapping[str, str], name: str, default: Decimal) -> Decimal:
    return _decimal(
        env,
        name,
        default,
        "a decimal rate such as 0.001",
        lambda v: 0 <= v < 1,
        "a rate from 0 up to 1",
    )


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    text = raw.strip()
    # int() would also take "1_000" and other scripts' digits; a setting is ASCII digits.
    if not (text.removeprefix("-").isascii() and text.removeprefix("-").isdigit()):
        raise ConfigError(name, f"must be a whole number, got {raw!r}")
    value = int(text)
    if not low <= value <= high:
        raise ConfigError(name, f"must be from {low} to {high}, got {value}")
    return value


def _band(env: Mapping[str, str], name: str, default: Decimal) -> Decimal:
    return _decimal(
        env,
        name,
        default,
        "a factor such as 10",
        lambda v: 1 < v <= 1_000_000,
        "a factor above 1 (and at most 1000000)",
    )


def _decimal(
    env: Mapping[str, str],
    name: str,
    default: Decimal,
    example: str,
    within: Callable[[Decimal], bool],
    rule: str,
) -> Decimal:
    """A finite decimal setting that `within` accepts; the errors say what one looks like
    (`example`) and which values are allowed (`rule`)."""
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise ConfigError(name, f"must be {example}, got {raw!r}") from None
    if not value.is_finite() or not within(value):
        raise ConfigError(name, f"must be {rule}, got {raw!r}")
    return value


def _firebase_api_key(env: Mapping[str, str], project: str | None) -> str | None:
    """A key the page could not use would show as a sign-in failure in every browser, long
    after start-up; a key without a project would be ignored without a word."""
    raw = env.get("COGMORA_FIREBASE_API_KEY")
    if raw is None or raw.strip() == "":
        return None
    key = raw.strip()
    if not (key.isascii() and len(key) <= 256 and all(c.isalnum() or c in "_-" for c in key)):
        raise ConfigError(
            "COGMORA_FIREBASE_API_KEY",
            "must be the web API key of the Firebase project's settings (letters, digits,"
            f" _ and -, e.g. AIzaSy...), got {raw!r}",
        )
    if project is None:
        raise ConfigError(
            "COGMORA_FIREBASE_API_KEY", "is set but COGMORA_FIREBASE_PROJECT is not: set both"
        )
    return key


def load(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    base = Settings()
    store_url = env.get("COGMORA_STORE", base.store_url).strip()
    if urlparse(store_url).scheme not in STORE_SCHEMES:
        raise ConfigError(
            "COGMORA_STORE",
            f"must start with sqlite:///, postgresql:// or firestore://, got {store_url!r}",
        )
    llm_url = env.get("COGMORA_LLM_URL") or None
    if llm_url is not None:
        llm_url = _url(env, "COGMORA_LLM_URL", llm_url, ("http", "https"))
    log_level = env.get("COGMORA_LOG_LEVEL", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(
            "COGMORA_LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR: {log_level}"
        )
    log_format = env.get("COGMORA_LOG_FORMAT", "json").lower()
    if log_format not in ("json", "console"):
        raise ConfigError("COGMORA_LOG_FORMAT", f"must be json or console, got {log_format!r}")
    # The platform's PORT wins over COGMORA_API_PORT (a flag wins over both), and with it
    # the default host is every interface: a platform that sets PORT probes from outside.
    probe_port = _int(env, "PORT", 0, 1, 65535) if env.get("PORT") else None
    host = env.get(
        "COGMORA_API_HOST", base.api_host if probe_port is None else "0.0.0.0"
    ).strip()
    opening = env.get("COGMORA_FIREBASE_OPENING_BALANCE")
    try:
        opening_balance = base.firebase_opening_balance if opening is None else Decimal(opening)
    except InvalidOperation:
        opening_balance = Decimal(-1)
    if (
        not opening_balance.is_finite()
        or opening_balance < 0
        or opening_balance >= Decimal(10) ** 16
        or opening_balance != opening_balance.quantize(Decimal("1e-8"))
    ):
        raise ConfigError(
            "COGMORA_FIREBASE_OPENING_BALANCE",
            f"must be an amount from 0 below 10^16 with at most 8 decimals, got {opening!r}",
        )
    if not host:
        raise ConfigError("COGMORA_API_HOST", "must not be empty")
    api_port = _int(env, "COGMORA_API_PORT", base.api_port, 0, 65535)
    firebase_project = env.get("COGMORA_FIREBASE_PROJECT", "").strip() or None
    return Settings(
        store_url=store_url,
        kucoin_spot_url=_url(
            env, "COGMORA_KUCOIN_SPOT_URL", base.kucoin_spot_url, ("http", "https")
        ),
        kucoin_futures_url=_url(
            env, "COGMORA_KUCOIN_FUTURES_URL", base.kucoin_futures_url, ("http", "https")
        ),
        api_host=host,
        api_port=api_port if probe_port is None else probe_port,
        probe_port=probe_port,
        fees=FeeSchedule(
            spot_taker=_rate(env, "COGMORA_FEE_SPOT", base.fees.spot_taker),
            futures_taker=_rate(env, "COGMORA_FEE_FUTURES", base.fees.futures_taker),
            maintenance_margin_rate=_rate(env, "COGMORA_MMR", base.fees.maintenance_margin_rate),
        ),
        llm_url=llm_url,
        llm_model=env.get("COGMORA_LLM_MODEL") or None,
        llm_api_key=env.get("COGMORA_LLM_API_KEY") or None,
        llm_daily_calls=_int(env, "COGMORA_LLM_DAILY_CALLS", base.llm_daily_calls, 0, 100_000),
        price_band=_band(env, "COGMORA_PRICE_BAND", base.price_band),
        log_level=log_level,
        log_json=log_format == "json",
        firebase_project=firebase_project,
        firebase_opening_balance=opening_balance,
        firebase_api_key=_firebase_api_key(env, firebase_project),
        feed_retention_rows=_int(
            env, "COGMORA_FEED_RETENTION_ROWS", base.feed_retention_rows, 1, 1_000_000_000
        ),
        feed_retention_seconds=_int(
            env, "COGMORA_FEED_RETENTION_SECONDS", base.feed_retention_seconds, 0, 30 * 86_400
        ),
    )
