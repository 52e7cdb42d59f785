"""The emulators' side of the tests: what the Firestore emulator reports back about them,
and firebase-tools' Auth emulator.

`FirestoreProjects` hands out one fresh project id per test and remembers them, so that
`index_usage` can read every project's index-usage report (the emulator's
`GET /emulator/v1/projects/P:indexUsage`) once the Firestore tests have run. `start_auth`
runs firebase-tools' Auth emulator on free loopback ports.
"""

from __future__ import annotations

import json
import socket
import urllib.request
import uuid
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
