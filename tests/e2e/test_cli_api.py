"""`cogmora api` as a user starts it."""

from __future__ import annotations

from cogmora_cli import run_sync


def test_an_api_port_out_of_range_is_refused_before_start() -> None:
    """`cogmora api --port 99999` is a usage error naming the option, not a restart loop."""
    r = run_sync("api", "--port", "99999", timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "--port" in r.stderr
