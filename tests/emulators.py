"""The emulators' side of the tests: what the Firestore emulator reports back about them,
and firebase-tools' Auth emulator.

`FirestoreProjects` hands out one fresh project id per test and remembers them, so that
`index_usage` can read every project's index-usage report (the emulator's
`GET /emulator/v1/projects/P:indexUsage`) once the Firestore tests have run. `start_auth`
runs firebase-tools' Auth emulator on free loopback ports.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class EmulatorUnavailable(Exception):
    """The emulator cannot be started here; the message says why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FirestoreProjects:
    """Fresh project ids on one emulator, one per test, remembered for the index guard."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.used: list[str] = []

    def new(self, prefix: str = "demo-test") -> str:
        project = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.used.append(project)
        return project

    def index_usage(self, project: str) -> list[dict[str, Any]]:
        """The emulator's report of the indexes the project's queries needed."""
        database = f"projects/{project}/databases/(default)"
        url = f"http://{self.host}/emulator/v1/projects/{project}:indexUsage?database={database}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            reports: list[dict[str, Any]] = json.load(answer).get("reports", [])
        return reports


def firebase_tools() -> str | None:
    """The `firebase` command (npm's firebase-tools; `.ci/run` installs it)."""
    return os.environ.get("COGMORA_FIREBASE_TOOLS") or shutil.which("firebase")


@contextmanager
def start_auth(project: str, timeout: float = 90.0) -> Iterator[str]:
    """host:port of firebase-tools' Auth emulator (JavaScript: it runs offline), stopped on
    exit. Its hub and logging ports are free ones too, so it never clashes with another."""
    tool = firebase_tools()
    if tool is None:
        raise EmulatorUnavailable(
            "no Firebase Auth emulator: set FIREBASE_AUTH_EMULATOR_HOST, or install "
            "firebase-tools (`npm install -g firebase-tools`; .ci/run does)"
        )
    port, hub, logging_port = free_port(), free_port(), free_port()
    config = {
        "emulators": {
            "auth": {"host": "127.0.0.1", "port": port},
            "hub": {"host": "127.0.0.1", "port": hub},
            "logging": {"host": "127.0.0.1", "port": logging_port},
            "ui": {"enabled": False},
            "singleProjectMode": True,
        }
    }
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"cogmora-auth-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True)
    (workdir / "firebase.json").write_text(json.dumps(config))
    proc = subprocess.Popen(
        [tool, "emulators:start", "--only", "auth", "--project", project],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        try:
            while True:
                line = lines.get(timeout=timeout)
                seen.append(line)
                if "All emulators ready" in line:
                    break
                if line == "":
                    raise EmulatorUnavailable(
                        "the Auth emulator exited at start:\n" + "".join(seen[-20:])
                    )
        except queue.Empty:
            raise EmulatorUnavailable(
                f"the Auth emulator did not start within {timeout:.0f} s"
            ) from None
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)
