"""`users/{uid}/agent/config`: whether, when, how and within which limits a user's agent trades.

Defaults are deliberately timid (off, hourly, the builtin strategy, 3x leverage, 1000 USDT
per position, 3 positions, 100 USDT daily loss): an agent a user switches on without
reading the settings should not be able to hurt them much.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cogmora.domain.models import Doc
from cogmora.domain.money import parse, to_str
from cogmora.domain.schedule import next_run, parse_schedule
from cogmora.domain.timeutil import opt_from_iso, opt_iso
from cogmora.domain.watchlist import is_usdt_settled, parse_symbols
from cogmora.errors import ValidationError

MAX_AGENT_SYMBOLS = 20
MAX_LEVERAGE = Decimal(125)
MAX_OPEN_POSITIONS = 100


class ProviderKind(StrEnum):
    BUILTIN = "builtin"
    LLM = "llm"


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The user's hard limits; the risk guard checks every action against them."""

    max_leverage: Decimal = Decimal(3)
    max_position_notional: Decimal = Decimal(1000)
    max_open_positions: int = 3
    max_daily_loss: Decimal = Decimal(100)

    def __post_init__(self) -> None:
        lev = self.max_leverage
        if not lev.is_finite() or lev != lev.to_integral_value() or not 1 <= lev <= MAX_LEVERAGE:
            raise ValidationError(
                "risk.maxLeverage",
                f"risk.maxLeverage must be a whole number from 1 to {MAX_LEVERAGE}",
            )
        for name, value in (
            ("risk.maxPositionNotional", self.max_position_notional),
            ("risk.maxDailyLoss", self.max_daily_loss),
        ):
            if not value.is_finite() or value <= 0:
                raise ValidationError(name, f"{name} must be greater than 0")
        count = self.max_open_positions
        if (
            isinstance(count, bool)
            or not isinstance(count, int)
            or not 0 <= count <= MAX_OPEN_POSITIONS
        ):
            raise ValidationError(
                "risk.maxOpenPositions",
                f"risk.maxOpenPositions must be a whole number from 0 to {MAX_OPEN_POSITIONS}",
            )

    def to_doc(self) -> Doc:
        return {
            "maxLeverage": to_str(self.max_leverage),
            "maxPositionNotional": to_str(self.max_position_notional),
            "maxOpenPositions": self.max_open_positions,
            "maxDailyLoss": to_str(self.max_daily_loss),
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> RiskLimits:
        """Read stored or user input; missing keys take the defaults, unknown keys are refused."""
        if doc is None:
            return cls()
        if not isinstance(doc, Mapping):
            raise ValidationError("risk", "risk must be an object")
        names = {
            "maxLeverage": "max_leverage",
            "maxPositionNotional": "max_position_notional",
            "maxOpenPositions": "max_open_positions",
            "maxDailyLoss": "max_daily_loss",
        }
        values: dict[str, Any] = {}
        for key, value in doc.items():
            name = f"risk.{key}"
            if key not in names:
                raise ValidationError(name, f"{name} is not a known field")
            if value is None:
                continue
            if key == "maxOpenPositions":
                values[names[key]] = _whole(value, name)
            else:
                values[names[key]] = parse(value, name, positive=True)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    enabled: bool = False
    schedule: str = "every 1h"
    provider: ProviderKind = ProviderKind.BUILTIN
    symbols: tuple[str, ...] = ()
    risk: RiskLimits = field(default_factory=RiskLimits)
    next_run_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValidationError("enabled", "enabled must be true or false")
        # Stored in its normal form, so two replicas compare schedules byte for byte.
        object.__setattr__(self, "schedule", parse_schedule(self.schedule).text)
        symbols = parse_symbols(list(self.symbols), "symbols", MAX_AGENT_SYMBOLS)
        for i, symbol in enumerate(symbols):
            if not is_usdt_settled(symbol):
                raise ValidationError(
                    f"symbols[{i}]",
                    f"symbols[{i}] must be a USDT spot pair or USDT-margined contract, "
                    f"not {symbol}",
                )
        object.__setattr__(self, "symbols", tuple(symbols))
        if self.enabled and not self.symbols:
            raise ValidationError("symbols", "symbols must list at least one symbol to enable")

    def rescheduled(self, now: datetime) -> AgentConfig:
        """This config with `nextRunAt` set from `now`: the first slot after it, or None if off."""
        nxt = next_run(self.schedule, now) if self.enabled else None
        return replace(self, next_run_at=nxt)

    def to_doc(self) -> Doc:
        return {
            "enabled": self.enabled,
            "schedule": self.schedule,
            "provider": self.provider.value,
            "symbols": list(self.symbols),
            "risk": self.risk.to_doc(),
            "nextRunAt": opt_iso(self.next_run_at),
            "updatedAt": opt_iso(self.updated_at),
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> AgentConfig:
        return cls(
            enabled=bool(doc.get("enabled", False)),
            schedule=doc.get("schedule", "every 1h"),
            provider=ProviderKind(doc.get("provider", "builtin")),
            symbols=tuple(doc.get("symbols") or ()),
            risk=RiskLimits.from_doc(doc.get("risk")),
            next_run_at=opt_from_iso(doc.get("nextRunAt")),
            updated_at=opt_from_iso(doc.get("updatedAt")),
        )

    @classmethod
    def from_input(cls, body: object) -> AgentConfig:
        """A user's `PUT /v1/agent` body: every field optional (defaults), unknown ones refused.

        `nextRunAt` and `updatedAt` are accepted and ignored so a client can send back what
        `GET` gave it; the service sets them.
        """
        if not isinstance(body, Mapping):
            raise ValidationError("body", "the agent config must be a JSON object")
        known = {"enabled", "schedule", "provider", "symbols", "risk", "nextRunAt", "updatedAt"}
        for key in body:
            if key not in known:
                raise ValidationError(str(key), f"{key} is not a known field")
        defaults = cls()
        enabled = body.get("enabled", defaults.enabled)
        if not isinstance(enabled, bool):
            raise ValidationError("enabled", "enabled must be true or false")
        provider = body.get("provider", defaults.provider.value)
        try:
            kind = ProviderKind(provider)
        except ValueError:
            raise ValidationError("provider", "provider must be 'builtin' or 'llm'") from None
        symbols = body.get("symbols", [])
        return cls(
            enabled=enabled,
            schedule=body.get("schedule", defaults.schedule),
            provider=kind,
            symbols=tuple(parse_symbols(symbols, "symbols", MAX_AGENT_SYMBOLS)),
            risk=RiskLimits.from_doc(body.get("risk")),
        )


def _whole(value: object, name: str) -> int:
    number = parse(value, name)
    if number != number.to_integral_value():
        raise ValidationError(name, f"{name} must be a whole number from 0 to {MAX_OPEN_POSITIONS}")
    return int(number)
