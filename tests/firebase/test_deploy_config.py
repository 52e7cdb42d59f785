"""deploy/: firebase.json declares the functions, rules and indexes, and the functions'
requirements name the wheel that prepare.sh builds from this version."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path
from types import ModuleType

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_firebase_json_declares_functions_rules_and_indexes() -> None:
    """Each path firebase.json names exists, and the functions run the predeploy step."""
    config = json.loads((DEPLOY / "firebase.json").read_text())
    assert (DEPLOY / config["firestore"]["rules"]).is_file()
    assert (DEPLOY / config["firestore"]["indexes"]).is_file()
    [functions] = config["functions"]
    assert (DEPLOY / functions["source"] / "main.py").is_file()
    assert functions["runtime"].startswith("python3")
    assert any("prepare.sh" in step for step in functions["predeploy"])


def test_requirements_name_the_wheel_of_this_version() -> None:
    """requirements.txt installs cogmora from the wheel of pyproject's version."""
    root = DEPLOY.parent
    version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    lines = (DEPLOY / "functions" / "requirements.txt").read_text().splitlines()
    assert f"./vendor/cogmora-{version}-py3-none-any.whl" in lines


def test_the_functions_declare_their_triggers(functions: ModuleType) -> None:
    """The trigger watches position updates; the three schedules run every minute."""
    endpoint = functions.closePositionHandler.__firebase_endpoint__
    trigger = endpoint.eventTrigger
    assert trigger["eventType"] == "google.cloud.firestore.document.v1.updated"
    assert trigger["eventFilterPathPatterns"] == {
        "document": "users/{uid}/openPositions/{positionId}"
    }
    for name in ("agentScheduler", "watchlistScraper", "closingSweeper"):
        schedule = getattr(functions, name).__firebase_endpoint__.scheduleTrigger
        assert schedule["schedule"] == "every 1 minutes", name


def test_the_ttl_script_applies_the_codes_policies_with_gcloud(tmp_path: Path) -> None:
    """deploy/firestore-ttl.sh enables TTL (and drops the single-field index) on each of
    TTL_POLICIES, on the database asked for, and DEPLOY.md tells to run it."""
    from cogmora.store.firestore.store import MARKER_GROUP, MARKER_TTL_FIELD, TTL_POLICIES

    assert (MARKER_GROUP, MARKER_TTL_FIELD) in TTL_POLICIES
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "gcloud"  # records its arguments, one call a line
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}", "DATABASE": "staging"}
    subprocess.run([str(DEPLOY / "firestore-ttl.sh")], env=env, check=True, timeout=60)
    expected = []
    for group, field in TTL_POLICIES:
        expected += [
            f"firestore fields ttls update {field} --collection-group={group}"
            " --database=staging --enable-ttl",
            f"firestore indexes fields update {field} --collection-group={group}"
            " --database=staging --disable-indexes",
        ]
    assert calls.read_text().splitlines() == expected
    assert "deploy/firestore-ttl.sh" in (DEPLOY.parent / "DEPLOY.md").read_text()
