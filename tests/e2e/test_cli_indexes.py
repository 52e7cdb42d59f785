"""`cogmora indexes generate|check` as a deployer runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cogmora_cli import run_sync

from cogmora.store.firestore.indexes import render

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_sync("indexes", *args, cwd=cwd)


def test_generate_writes_the_default_path_and_check_accepts_it(tmp_path: Path) -> None:
    """generate writes deploy/firestore.indexes.json from the registry; check then passes."""
    r = cli("generate", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    written = tmp_path / "deploy" / "firestore.indexes.json"
    assert written.read_text() == render()
    r = cli("check", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "matches the query registry" in r.stdout


def test_the_repository_file_matches_the_registry() -> None:
    """The committed deploy/firestore.indexes.json is what the code's queries need."""
    r = cli("check", cwd=REPO)
    assert r.returncode == 0, r.stderr


def test_check_fails_naming_a_missing_and_an_undeclared_index(tmp_path: Path) -> None:
    """A file missing a composite or carrying one the code never uses fails with both named."""
    path = tmp_path / "idx.json"
    doc = json.loads(render())
    removed = doc["indexes"].pop(0)
    doc["indexes"].append({
        "collectionGroup": "users",
        "queryScope": "COLLECTION",
        "fields": [{"fieldPath": "balance", "order": "ASCENDING"},
                   {"fieldPath": "createdAt", "order": "DESCENDING"}],
    })
    path.write_text(json.dumps(doc))
    r = cli("check", "--file", str(path), cwd=tmp_path)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("missing from indexes: ")
    assert json.loads(lines[0].removeprefix("missing from indexes: ")) == removed
    assert lines[1].startswith("not declared in the registry, in indexes: ")
    assert '"balance"' in lines[1]


def test_check_fails_when_a_field_override_is_lost(tmp_path: Path) -> None:
    """Dropping the collection-group override for details.status fails the check."""
    path = tmp_path / "idx.json"
    doc = json.loads(render())
    doc["fieldOverrides"] = doc["fieldOverrides"][1:]
    path.write_text(json.dumps(doc))
    r = cli("check", "--file", str(path), cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith("missing from fieldOverrides: ")


def test_check_refuses_missing_or_malformed_files_without_a_traceback(tmp_path: Path) -> None:
    """No file, invalid JSON and JSON that is not an object each fail with one clear line."""
    cases = {
        "absent.json": None,
        "broken.json": "{not json",
        "list.json": "[]",
    }
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        r = cli("check", "--file", str(tmp_path / name), cwd=tmp_path)
        assert r.returncode == 1, (name, r.stderr)
        assert "Traceback" not in r.stderr, name
        assert name in r.stderr, (name, r.stderr)
