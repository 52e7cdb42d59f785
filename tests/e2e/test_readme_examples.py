"""The README's examples run as written against `cogmora simulator` and `cogmora run`
(only the ports are moved to free ones, so the test can run beside anything else)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cogmora_cli import COGMORA

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- readme-example"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def examples() -> list[str]:
    text = README.read_text()
    return [
        m.group(1)
        for m in re.finditer(re.escape(MARKER) + r"[^\n]*\n```sh\n(.*?)```", text, flags=re.S)
    ]


def _wait_for(url: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in time")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The README's terminals 1 and 2, on free ports; yields the port substitutions."""
    ports = {"8181": str(_free_port()), "8182": str(_free_port()), "8000": str(_free_port())}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("COGMORA_STORE", None)
    sim = subprocess.Popen(
        [COGMORA, "simulator", "--spot-port", ports["8181"], "--futures-port", ports["8182"]],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run_env = {
        **env,
        "COGMORA_KUCOIN_SPOT_URL": f"http://127.0.0.1:{ports['8181']}",
        "COGMORA_KUCOIN_FUTURES_URL": f"http://127.0.0.1:{ports['8182']}",
        "COGMORA_API_PORT": ports["8000"],
        "COGMORA_LOG_LEVEL": "WARNING",
    }
    deadline = time.monotonic() + 60
    try:
        _wait_for(f"http://127.0.0.1:{ports['8181']}/api/v1/timestamp", sim, deadline)
        app = subprocess.Popen(
            [COGMORA, "run"],
            cwd=tmp_path,
            env=run_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(f"http://127.0.0.1:{ports['8000']}/healthz", app, deadline)
            yield {**ports, "cwd": str(tmp_path), "PATH": env["PATH"]}
        finally:
            app.terminate()
            app.wait(timeout=30)
    finally:
        sim.terminate()
        sim.wait(timeout=30)


def test_the_readme_has_examples_to_run() -> None:
    """At least the API walkthrough is marked as a runnable example."""
    assert examples()


def test_the_api_walkthrough_runs_as_written(running: dict[str, str]) -> None:
    """Creating a user, opening a futures long with a stop, reading the account, saving an
    agent config and running the agent once all succeed against the simulator."""
    for block in examples():
        script = block
        for port in ("8181", "8182", "8000"):
            script = script.replace(f":{port}", f":{running[port]}")
        env = {**os.environ, "PATH": running["PATH"]}
        env.pop("COGMORA_STORE", None)
        r = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=running["cwd"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert '"detail"' not in r.stdout, r.stdout
        assert '"stopLoss":"64000' in r.stdout.replace(" ", ""), r.stdout
