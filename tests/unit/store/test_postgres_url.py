"""PostgresStore's URL: our `schema` parameter becomes libpq's search_path option."""

from __future__ import annotations

import pytest

from cogmora.errors import ValidationError
from cogmora.store.postgres import PostgresStore, parse_url


def test_schema_becomes_the_search_path() -> None:
    """?schema=NAME is removed from the URL and set as the connection's search_path."""
    conninfo, schema = parse_url("postgresql://127.0.0.1:5432/test?schema=app_1")
    assert schema == "app_1"
    assert conninfo == "postgresql://127.0.0.1:5432/test?options=-csearch_path%3Dapp_1"


def test_other_parameters_and_options_are_kept() -> None:
    """libpq parameters pass through, and an existing `options` gains the search_path."""
    conninfo, schema = parse_url(
        "postgres://u@h/db?sslmode=disable&options=-cstatement_timeout%3D5000&schema=s"
    )
    assert schema == "s"
    assert conninfo.startswith("postgresql://u@h/db?sslmode=disable&options=")
    assert "-cstatement_timeout%3D5000+-csearch_path%3Ds" in conninfo


def test_without_schema_the_url_is_unchanged() -> None:
    """No schema parameter: the URL is libpq's as given (its own search_path works too)."""
    url = "postgresql://127.0.0.1/test?options=-csearch_path%3Dx"
    assert parse_url(url) == (url, None)


def test_a_schema_that_is_not_an_identifier_is_refused() -> None:
    """The schema name reaches DDL, so only a plain identifier is accepted."""
    with pytest.raises(ValidationError):
        parse_url("postgresql://h/db?schema=a;drop")


def test_the_name_hides_the_password() -> None:
    """name is safe to log: no password in it."""
    store = PostgresStore("postgresql://user:secret@db.internal:5433/app?schema=s")
    assert "secret" not in store.name
    assert store.name == "postgresql://db.internal:5433/app?schema=s"
