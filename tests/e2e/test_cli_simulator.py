"""`cogmora simulator` as a user starts it."""

from __future__ import annotations

import socket

from cogmora_cli import run_sync


def test_a_taken_port_is_one_clear_line_and_exit_2() -> None:
    """A port already in use is named in one line on stderr, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_sync("simulator", "--spot-port", str(port), "--futures-port", "0")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert f"spot port {port}" in r.stderr
    assert "address already in use" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_port_out_of_range_is_refused_before_start() -> None:
    """--spot-port 99999 is a usage error naming the option."""
    r = run_sync("simulator", "--spot-port", "99999")
    assert r.returncode == 2
    assert "--spot-port" in r.stderr

