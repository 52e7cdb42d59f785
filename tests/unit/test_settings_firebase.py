"""COGMORA_FIREBASE_PROJECT and COGMORA_FIREBASE_OPENING_BALANCE."""

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
