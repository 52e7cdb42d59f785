"""COGMORA_FIREBASE_PROJECT, COGMORA_FIREBASE_OPENING_BALANCE and COGMORA_FIREBASE_API_KEY."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cogmora.errors import ConfigError
from cogmora.settings import load


def test_firebase_auth_is_off_unless_a_project_is_set() -> None:
    """No project: no Firebase ID tokens; the opening balance defaults to 10000."""
    settings = load({})
    assert settings.firebase_project is None
    assert settings.firebase_opening_balance == Decimal(10000)


def test_the_project_and_opening_balance_are_read() -> None:
    """Both variables are read exactly."""
    settings = load(
        {"COGMORA_FIREBASE_PROJECT": "my-app", "COGMORA_FIREBASE_OPENING_BALANCE": "2500.5"}
    )
    assert settings.firebase_project == "my-app"
    assert settings.firebase_opening_balance == Decimal("2500.5")


@pytest.mark.parametrize("value", ["-1", "lots", "NaN", "Infinity", "0.000000001", "1e16"])
def test_a_bad_opening_balance_names_its_variable(value: str) -> None:
    """A negative, non-numeric or non-finite opening balance stops start-up."""
    with pytest.raises(ConfigError) as info:
        load({"COGMORA_FIREBASE_OPENING_BALANCE": value})
    assert info.value.variable == "COGMORA_FIREBASE_OPENING_BALANCE"


def test_the_web_api_key_is_read_with_its_project_and_is_unset_by_default() -> None:
    """The key the page signs in with; blank is unset, like the project."""
    assert load({}).firebase_api_key is None
    assert load({"COGMORA_FIREBASE_API_KEY": "  "}).firebase_api_key is None
    key = "AIzaSyD-3xAmPlE_k3y0123456789abcdefghi"
    settings = load({"COGMORA_FIREBASE_PROJECT": "my-app", "COGMORA_FIREBASE_API_KEY": f" {key} "})
    assert settings.firebase_api_key == key


@pytest.mark.parametrize("value", ["AIza key", 'AIza"><script>', "ключ", "A" * 257])
def test_a_web_api_key_that_is_no_key_names_its_variable(value: str) -> None:
    """Spaces, markup, other scripts or a page of text: not a key the page could send."""
    with pytest.raises(ConfigError) as info:
        load({"COGMORA_FIREBASE_PROJECT": "my-app", "COGMORA_FIREBASE_API_KEY": value})
    assert info.value.variable == "COGMORA_FIREBASE_API_KEY"


def test_a_web_api_key_without_a_project_stops_start_up() -> None:
    """Without a project the API takes no ID tokens: the key would be ignored unnoticed."""
    with pytest.raises(ConfigError) as info:
        load({"COGMORA_FIREBASE_API_KEY": "AIzaSyExample"})
    assert info.value.variable == "COGMORA_FIREBASE_API_KEY"
    assert "COGMORA_FIREBASE_PROJECT" in str(info.value)
