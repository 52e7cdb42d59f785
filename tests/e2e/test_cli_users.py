"""`cogmora users ...` as a user runs it: the installed console script, a real SQLite file."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cogmora_cli import COGMORA, run_sync


def cli(
    *args: str, store: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_sync(*args, env={"COGMORA_STORE": f"sqlite:///{store}", **(env or {})})


def ledger(store: Path, uid: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(store) as conn:
        rows = conn.execute(
            "SELECT doc FROM ledger WHERE parent = ? ORDER BY f_seq", (f"users/{uid}",)
        ).fetchall()
    docs = [json.loads(r[0]) for r in rows]
    return [(d["kind"], d["amount"], d["balanceAfter"]) for d in docs]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


def test_create_prints_uid_and_token_as_json_and_stores_only_the_hash(store: Path) -> None:
    """stdout is exactly one JSON object; the database holds the token's hash, not the token."""
    r = cli("users", "create", "alice", "--balance", "1000.5", store=store)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"uid", "token"}
    assert out["uid"] == "alice"
    token = out["token"]
    assert len(token) >= 32
    with sqlite3.connect(store) as conn:
        dump = "\n".join(conn.iterdump())
    assert token not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump
    assert ledger(store, "alice") == [("deposit", "1000.50000000", "1000.50000000")]


def test_deposit_adds_to_the_balance_through_the_ledger(store: Path) -> None:
    """Each deposit prints the new balance and books one ledger entry."""
    assert cli("users", "create", "alice", "--balance", "10", store=store).returncode == 0
    r = cli("users", "deposit", "alice", "2.25", store=store)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"uid": "alice", "balance": "12.25000000"}
    assert ledger(store, "alice") == [
        ("deposit", "10.00000000", "10.00000000"),
        ("deposit", "2.25000000", "12.25000000"),
    ]


def test_store_flag_overrides_the_environment(tmp_path: Path, store: Path) -> None:
    """--store wins over COGMORA_STORE."""
    other = tmp_path / "other.db"
    r = cli("users", "create", "bob", "--store", f"sqlite:///{other}", store=store)
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(other) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)
    assert not store.exists() or ledger(store, "bob") == []


REFUSALS = [
    (("users", "deposit", "ghost", "1"), 1, "error: user ghost not found"),
    (("users", "deposit", "alice", "0"), 1, "error: amount must be greater than 0"),
    (("users", "deposit", "alice", "--", "-5"), 1, "error: amount must be greater than 0"),
    (("users", "deposit", "alice", "abc"), 2, "AMOUNT must be a decimal number"),
    (("users", "create", "alice"), 1, "error: user alice already exists"),
    (("users", "create", "bad uid"), 1, "error: uid must be 1 to 64 characters"),
    (("users", "create", "neg", "--balance", "-1"), 1, "error: balance must not be negative"),
    (("users", "create", "nan", "--balance", "NaN"), 2, "--balance must be finite"),
    (("users", "create", "huge", "--balance", "1e400"), 1, "error: balance is too large"),
    (("users", "deposit", "alice", "1e20"), 1, "error: amount is too large"),
    (("users", "deposit", "alice", "0.000000001"), 1,
     "error: amount must have at most 8 decimal places"),
]


def test_a_deposit_for_an_unknown_user_is_refused(store: Path) -> None:
    """Depositing to nobody exits 1 with one line on stderr and no traceback."""
    r = cli("users", "deposit", "ghost", "1", store=store)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"store: sqlite:///{store}\nerror: user ghost not found\n"


@pytest.mark.slow
def test_refusals_exit_non_zero_with_one_clear_line(store: Path) -> None:
    """Bad input is refused with a message on stderr, an exit code, and nothing written."""
    assert cli("users", "create", "alice", "--balance", "5", store=store).returncode == 0
    with ThreadPoolExecutor(4) as pool:  # independent processes: run them side by side
        results = list(pool.map(lambda case: cli(*case[0], store=store), REFUSALS))
    for (args, code, message), r in zip(REFUSALS, results, strict=True):
        assert r.returncode == code, (args, r.stdout, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr, args
        assert r.stdout == "", args
    assert ledger(store, "alice") == [("deposit", "5.00000000", "5.00000000")]
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)


def test_a_bad_store_url_names_the_variable(store: Path) -> None:
    """COGMORA_STORE that is no store URL stops the command, naming the variable."""
    r = cli("users", "create", "x", store=store, env={"COGMORA_STORE": "mysql://nope"})
    assert r.returncode == 2
    assert r.stderr.startswith("configuration error: COGMORA_STORE: ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def api(store: Path) -> Iterator[str]:
    """`cogmora api` on a free loopback port against the same SQLite file."""
    port = _free_port()
    env = {**os.environ, "COGMORA_STORE": f"sqlite:///{store}", "COGMORA_API_PORT": str(port)}
    proc = subprocess.Popen(
        [COGMORA, "api"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # generous: a loaded machine
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
            if time.monotonic() > deadline:
                raise AssertionError("the API did not answer /healthz within 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_printed_token_authenticates_against_the_api(store: Path, api: str) -> None:
    """A token from `users create` opens the API as that user; deposits show in the account."""
    token = json.loads(cli("users", "create", "alice", "--balance", "7", store=store).stdout)[
        "token"
    ]
    assert cli("users", "deposit", "alice", "3", store=store).returncode == 0
    headers = {"Authorization": f"Bearer {token}"}
    r = httpx.get(f"{api}/v1/account", headers=headers, timeout=5)
    assert r.status_code == 200
    assert r.json()["uid"] == "alice"
    assert r.json()["balance"] == "10.00000000"
    assert httpx.get(f"{api}/v1/account", timeout=5).status_code == 401
