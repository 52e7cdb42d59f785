"""Settings from COGMORA_* variables: SPEC defaults, and a bad value names its variable."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cogmora.errors import ConfigError
from cogmora.settings import Settings, load


def test_defaults_are_the_spec_table() -> None:
    """With nothing set, every value is SPEC section 8's default."""
    s = load({})
    assert s.store_url == "sqlite:///./cogmora.db"
    assert s.kucoin_spot_url == "https://api.kucoin.com"
    assert s.kucoin_futures_url == "https://api-futures.kucoin.com"
    assert (s.api_host, s.api_port) == ("127.0.0.1", 8000)
    assert s.fees.spot_taker == D("0.001")
    assert s.fees.futures_taker == D("0.0006")
    assert s.fees.maintenance_margin_rate == D("0.005")
    assert s.llm_url is s.llm_model is s.llm_api_key is None
    assert s.price_max_age_seconds == 5.0
    assert s.price_band == D(10)


def test_every_variable_is_read() -> None:
    """Each documented variable sets its field; rates stay exact decimals."""
    s = load({
        "COGMORA_STORE": " postgresql://u@h/db ",
        "COGMORA_KUCOIN_SPOT_URL": "http://127.0.0.1:9001/",
        "COGMORA_KUCOIN_FUTURES_URL": "http://127.0.0.1:9002",
        "COGMORA_API_HOST": "0.0.0.0",
        "COGMORA_API_PORT": "9000",
        "COGMORA_FEE_SPOT": "0.002",
        "COGMORA_FEE_FUTURES": "0.0004",
        "COGMORA_MMR": "0.01",
        "COGMORA_LLM_URL": "http://127.0.0.1:11434/v1",
        "COGMORA_LLM_MODEL": "m",
        "COGMORA_LLM_API_KEY": "k",
        "COGMORA_LOG_LEVEL": "debug",
        "COGMORA_LOG_FORMAT": "console",
        "COGMORA_PRICE_BAND": "4",
    })
    assert s.store_url == "postgresql://u@h/db"
    assert s.kucoin_spot_url == "http://127.0.0.1:9001"  # trailing slash dropped
    assert s.kucoin_futures_url == "http://127.0.0.1:9002"
    assert (s.api_host, s.api_port) == ("0.0.0.0", 9000)
    assert (s.fees.spot_taker, s.fees.futures_taker, s.fees.maintenance_margin_rate) == (
        D("0.002"), D("0.0004"), D("0.01")
    )
    assert (s.llm_url, s.llm_model, s.llm_api_key) == ("http://127.0.0.1:11434/v1", "m", "k")
    assert (s.log_level, s.log_json) == ("DEBUG", False)
    assert s.price_band == D(4)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COGMORA_STORE", "mysql://x"),
        ("COGMORA_STORE", "cogmora.db"),
        ("COGMORA_KUCOIN_SPOT_URL", "ftp://api.kucoin.com"),
        ("COGMORA_KUCOIN_FUTURES_URL", "https://"),
        ("COGMORA_API_HOST", "  "),
        ("COGMORA_API_PORT", "eighty"),
        ("COGMORA_API_PORT", "70000"),
        ("COGMORA_FEE_SPOT", "abc"),
        ("COGMORA_FEE_SPOT", "-0.001"),
        ("COGMORA_FEE_FUTURES", "1"),
        ("COGMORA_MMR", "NaN"),
        ("COGMORA_LLM_URL", "localhost:8080"),
        ("COGMORA_LOG_LEVEL", "loud"),
        ("COGMORA_LOG_FORMAT", "xml"),
        ("COGMORA_PRICE_BAND", "ten"),
        ("COGMORA_PRICE_BAND", "1"),
        ("COGMORA_PRICE_BAND", "0.5"),
        ("COGMORA_PRICE_BAND", "Infinity"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    """A value that cannot be right stops start-up with an error naming the variable."""
    with pytest.raises(ConfigError) as info:
        load({variable: value})
    assert info.value.variable == variable
    assert str(info.value).startswith(f"{variable}: ")


def test_flags_override_and_unset_flags_do_not() -> None:
    """`with_overrides` replaces given values and ignores None."""
    s = Settings().with_overrides(store_url="sqlite:///x.db", api_port=None)
    assert s.store_url == "sqlite:///x.db"
    assert s.api_port == 8000


def test_settings_are_frozen() -> None:
    """The settings object cannot be changed after it is built."""
    s = Settings()
    with pytest.raises(AttributeError):
        s.api_port = 1  # type: ignore[misc]
