"""PORT, the platform's port: it wins over COGMORA_API_PORT and opens the default host."""

from __future__ import annotations

import pytest

from cogmora.errors import ConfigError
from cogmora.settings import load


def test_without_port_nothing_serves_probes_and_the_api_keeps_its_own() -> None:
    """No PORT: no probe port, COGMORA_API_PORT and the loopback default hold."""
    s = load({"COGMORA_API_PORT": "9001"})
    assert (s.probe_port, s.api_port, s.api_host) == (None, 9001, "127.0.0.1")


def test_port_overrides_the_api_port_and_listens_on_every_interface() -> None:
    """PORT=8080 is the probe port and the API's, on 0.0.0.0 unless a host is given."""
    s = load({"PORT": "8080", "COGMORA_API_PORT": "9001"})
    assert (s.probe_port, s.api_port, s.api_host) == (8080, 8080, "0.0.0.0")
    assert load({"PORT": "8080", "COGMORA_API_HOST": "10.0.0.5"}).api_host == "10.0.0.5"


def test_a_flag_overrides_port() -> None:
    """--port (an override) wins over PORT."""
    assert load({"PORT": "8080"}).with_overrides(api_port=7000).api_port == 7000


def test_a_bad_port_names_the_variable() -> None:
    """PORT=abc stops start-up naming PORT."""
    with pytest.raises(ConfigError, match="PORT"):
        load({"PORT": "abc"})
