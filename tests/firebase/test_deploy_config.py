"""deploy/: firebase.json declares the functions, rules and indexes, and the functions'
requirements name the wheel that prepare.sh builds from this version."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

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



def test_the_ttl_policies_of_the_code_are_declared_for_firebase_deploy() -> None:
    """Each TTL policy is a field override of the indexes file firebase.json names, with
    `"ttl": true` and no index; DEPLOY.md names the policy."""
    from cogmora.store.firestore.ttl import MARKER_GROUP, MARKER_TTL_FIELD, TTL_POLICIES

    assert (MARKER_GROUP, MARKER_TTL_FIELD) in TTL_POLICIES
    config = json.loads((DEPLOY / "firebase.json").read_text())
    overrides = json.loads((DEPLOY / config["firestore"]["indexes"]).read_text())["fieldOverrides"]
    ttl = {(o["collectionGroup"], o["fieldPath"]): o for o in overrides if "ttl" in o}
    assert set(ttl) == set(TTL_POLICIES)
    assert all(o["ttl"] is True and o["indexes"] == [] for o in ttl.values())
    guide = (DEPLOY.parent / "DEPLOY.md").read_text()
    for group, field in TTL_POLICIES:
        assert f"gcloud firestore fields ttls update {field} --collection-group={group}" in guide


# `firebase` is firebase-tools/lib/bin/firebase.js behind a link.
FIREBASE_TOOLS = Path(shutil.which("firebase") or "/nonexistent/a/b/c").resolve().parents[2]


@pytest.mark.skipif(not (FIREBASE_TOOLS / "lib/firestore/api.js").is_file(),
                    reason="firebase-tools is not installed (.ci/run installs it)")
def test_firebase_tools_accepts_the_indexes_file_with_its_ttl_overrides(tmp_path: Path) -> None:
    """firebase-tools' own validator (what `firebase deploy --only firestore` runs first)
    accepts deploy/firestore.indexes.json and keeps its TTL overrides."""
    script = tmp_path / "validate.js"
    script.write_text(
        f"const api = require({json.dumps(str(FIREBASE_TOOLS / 'lib/firestore/api.js'))});\n"
        "const spec = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));\n"
        "const f = new api.FirestoreApi();\n"
        "const out = f.upgradeOldSpec(spec);\n"
        "f.validateSpec(out);\n"
        "console.log(JSON.stringify(out.fieldOverrides.filter((o) => o.ttl)));\n"
    )
    done = subprocess.run(
        ["node", str(script), str(DEPLOY / "firestore.indexes.json")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert [(o["collectionGroup"], o["fieldPath"]) for o in json.loads(done.stdout)] == [
        ("feedlog", "expireAt"),
        ("txmarks", "expireAt"),
    ]
