"""What the Firestore emulator reports back about the tests.

`FirestoreProjects` hands out one fresh project id per test and remembers them, so that
`index_usage` can read every project's index-usage report (the emulator's
`GET /emulator/v1/projects/P:indexUsage`) once the Firestore tests have run. Starting the
emulators (Firestore and Auth) is `cogmora.emulators`' job, shared with the benchmarks.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any


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
