"""deploy/: firebase.json declares the functions, rules and indexes, and the functions'
requirements name the wheel that prepare.sh builds from this version."""

from __future__ import annotations

import json
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
