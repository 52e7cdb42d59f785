from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from cogmora.domain.agent import AgentConfig, ProviderKind, RiskLimits
from cogmora.domain.paths import agent_config_path
from cogmora.errors import ValidationError

D = Decimal
NOW = datetime(2024, 5, 1, 12, 7, tzinfo=UTC)


def test_defaults_are_off_hourly_builtin_and_timid() -> None:
    """A fresh config is disabled, hourly, builtin, with small limits."""
    config = AgentConfig()
    assert (config.enabled, config.schedule, config.provider) == (
        False,
        "every 1h",
        ProviderKind.BUILTIN,
    )
    assert config.risk == RiskLimits(D(3), D(1000), 3, D(100))
    assert agent_config_path("u1") == "users/u1/agent/config"


def test_a_config_survives_a_document_round_trip() -> None:
    """to_doc then from_doc gives back an equal config, times included."""
    config = AgentConfig(
        enabled=True,
        schedule="*/15 * * * *",
        provider=ProviderKind.LLM,
        symbols=("BTC-USDT", "XBTUSDTM"),
        risk=RiskLimits(D(10), D("2500.5"), 5, D(50)),
        next_run_at=NOW,
        updated_at=NOW,
    )
    doc = config.to_doc()
    assert doc["risk"] == {
        "maxLeverage": "10.00000000",
        "maxPositionNotional": "2500.50000000",
        "maxOpenPositions": 5,
        "maxDailyLoss": "50.00000000",
    }
    assert doc["nextRunAt"] == "2024-05-01T12:07:00.000000Z"
    assert AgentConfig.from_doc(doc) == config


def test_user_input_is_normalized_and_defaults_fill_the_gaps() -> None:
    """Symbols are upper-cased, the schedule normalized, missing risk keys defaulted."""
    config = AgentConfig.from_input(
        {
            "enabled": True,
            "schedule": "EVERY 15m",
            "provider": "llm",
            "symbols": ["btc-usdt", "xbtusdtm"],
            "risk": {"maxLeverage": "5", "maxOpenPositions": 2},
            "nextRunAt": "2000-01-01T00:00:00Z",
        }
    )
    assert config.symbols == ("BTC-USDT", "XBTUSDTM")
    assert config.schedule == "every 15m"
    assert config.risk == RiskLimits(D(5), D(1000), 2, D(100))
    assert config.next_run_at is None


def test_rescheduling_sets_the_next_slot_only_when_enabled() -> None:
    """An enabled agent gets the next slot after now; a disabled one gets none."""
    on = AgentConfig(enabled=True, schedule="every 15m", symbols=("BTC-USDT",))
    assert on.rescheduled(NOW).next_run_at == datetime(2024, 5, 1, 12, 15, tzinfo=UTC)
    assert AgentConfig().rescheduled(NOW).next_run_at is None


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"risk": {"maxLeverage": "0"}}, "risk.maxLeverage", "greater than 0"),
        ({"risk": {"maxLeverage": "200"}}, "risk.maxLeverage", "whole number from 1 to 125"),
        ({"risk": {"maxLeverage": "2.5"}}, "risk.maxLeverage", "whole number from 1 to 125"),
        ({"risk": {"maxLeverage": 2.5}}, "risk.maxLeverage", "not a float"),
        ({"risk": {"maxPositionNotional": "-1"}}, "risk.maxPositionNotional", "greater than 0"),
        ({"risk": {"maxDailyLoss": "abc"}}, "risk.maxDailyLoss", "decimal number"),
        ({"risk": {"maxOpenPositions": "1.5"}}, "risk.maxOpenPositions", "whole number"),
        ({"risk": {"maxOpenPositions": 101}}, "risk.maxOpenPositions", "0 to 100"),
        ({"risk": {"maxLoss": "1"}}, "risk.maxLoss", "not a known field"),
        ({"risk": []}, "risk", "must be an object"),
        ({"schedule": "every 5s"}, "schedule", "schedule must be"),
        ({"provider": "gpt"}, "provider", "'builtin' or 'llm'"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"enabled": True}, "symbols", "at least one symbol"),
        ({"symbols": "BTC-USDT"}, "symbols", "must be a list"),
        ({"symbols": ["BTC-USDT", "btc-usdt"]}, "symbols[1]", "repeats BTC-USDT"),
        ({"symbols": ["ETH-BTC"]}, "symbols[0]", "USDT spot pair"),
        ({"symbols": ["XBTUSDM"]}, "symbols[0]", "USDT-margined"),
        ({"symbols": ["BTC USDT"]}, "symbols[0]", "KuCoin symbol"),
        ({"symbols": ["A-USDT"] * 21}, "symbols", "at most 20"),
        ({"colour": "red"}, "colour", "not a known field"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    body: dict[str, Any], field: str, fragment: str
) -> None:
    """Each bad field raises a ValidationError whose field and message name it."""
    with pytest.raises(ValidationError, match=fragment) as caught:
        AgentConfig.from_input(body)
    assert caught.value.field == field
    assert field.split("[")[0] in str(caught.value)


def test_a_non_object_body_is_refused() -> None:
    """The config must be a JSON object."""
    with pytest.raises(ValidationError, match="JSON object"):
        AgentConfig.from_input(["enabled"])


def test_zero_open_positions_is_allowed_as_close_only() -> None:
    """maxOpenPositions 0 lets an agent only reduce risk."""
    assert RiskLimits(max_open_positions=0).max_open_positions == 0
