"""What got in a new user's way in their first hour (issue 10, Part 3), as they met it:
the installed `cogmora` command, real files, real sockets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cogmora_cli import COGMORA


def cogmora(*args: str, cwd: Path, env: dict[str, str | None]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    return subprocess.run(
        [COGMORA, *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_users_create_without_cogmora_store_says_which_file_it_used(tmp_path: Path) -> None:
    """With COGMORA_STORE unset, stderr names the SQLite file it created (absolute) and that
    it is the default; stdout is still only the JSON."""
    r = cogmora(
        "users", "create", "alice", "--balance", "5", cwd=tmp_path, env={"COGMORA_STORE": None}
    )
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)) == {"uid", "token"}
    db = tmp_path / "cogmora.db"
    assert db.exists()
    assert r.stderr == (
        f"store: sqlite:///{db.resolve()} "
        "(COGMORA_STORE is not set: the default; set it or pass --store)\n"
    )


def test_a_bad_postgresql_url_fails_at_once_with_one_line_naming_cogmora_store(
    tmp_path: Path,
) -> None:
    """A refused PostgreSQL connection is one line naming COGMORA_STORE, without the
    password and without the pool's retry warnings."""
    url = "postgresql://trader:hunter2@127.0.0.1:1/nodb"
    r = cogmora("users", "create", "alice", cwd=tmp_path, env={"COGMORA_STORE": url})
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(
        "fatal: COGMORA_STORE: cannot connect to PostgreSQL at "
        "postgresql://trader:***@127.0.0.1:1/nodb: "
    ), r.stderr
    assert "hunter2" not in r.stderr


def test_run_on_a_busy_port_fails_before_it_says_started(tmp_path: Path, busy_port: int) -> None:
    """`cogmora run` on a port in use exits 2 naming the address, and never logs "started"."""
    r = cogmora(
        "run",
        "--port",
        str(busy_port),
        cwd=tmp_path,
        env={"COGMORA_STORE": f"sqlite:///{tmp_path / 'run.db'}"},
    )
    assert r.returncode == 2, r.stderr
    assert f"fatal: cannot listen on 127.0.0.1:{busy_port}: " in r.stderr, r.stderr
    assert "--port or COGMORA_API_PORT" in r.stderr
    assert '"started"' not in r.stdout + r.stderr
    assert "Traceback" not in r.stderr
