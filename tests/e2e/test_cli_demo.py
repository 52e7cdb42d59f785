"""`cogmora demo`, the README's main command, as a user runs it (output not a terminal)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cogmora_cli import COGMORA


def test_demo_runs_offline_and_every_ledger_balances(tmp_path: Path) -> None:
    """The demo trades against the simulator, prints its summary and exits 0."""
    result = subprocess.run(
        [COGMORA, "demo", "--duration", "8", "--keep-db", str(tmp_path / "demo.db")],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every ledger sums to its balance" in result.stdout
    assert "positions opened through the API: 18" in result.stdout
    assert "closes: " in result.stdout and "{" not in result.stdout  # words, not a dict
    assert (tmp_path / "demo.db").exists()
    assert "dashboard http://127.0.0.1:" in result.stdout and "/#token=" in result.stdout
