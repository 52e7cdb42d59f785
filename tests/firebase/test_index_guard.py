"""The index guard: what the Firestore tests' queries needed, per the emulator's own
index-usage reports, against deploy/firestore.indexes.json. Runs after every other test
(marker `after_firestore`), over every project id the session handed out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from index_report import Index, declared, missing, needed, unused

from emulators import FirestoreProjects

ROOT = Path(__file__).resolve().parents[2]
INDEXES = ROOT / "deploy" / "firestore.indexes.json"
pytestmark = pytest.mark.after_firestore


def session_needs(projects: FirestoreProjects) -> set[Index]:
    if not projects.used:
        pytest.skip("no test used the Firestore emulator in this session")
    need: set[Index] = set()
    for project in projects.used:
        need |= needed(projects.index_usage(project))
    return need


def whole_contract_suite(config: pytest.Config) -> bool:
    """Whether this session ran every contract test: only then is an unneeded index news."""
    if config.option.keyword or config.option.markexpr or config.option.deselect:
        return False
    wide = {ROOT, ROOT / "tests", ROOT / "tests" / "contract"}
    return any((config.rootpath / a).resolve() in wide for a in config.args)


def test_every_index_the_queries_needed_is_declared(firestore_projects: FirestoreProjects) -> None:
    """Each index a query needed on the emulator is served by one in firestore.indexes.json."""
    need = session_needs(firestore_projects)
    gaps = missing(need, declared(json.loads(INDEXES.read_text())))
    assert not gaps, (
        "queries needed indexes that deploy/firestore.indexes.json lacks (production would "
        "answer FAILED_PRECONDITION); declare the query in store/queries.py and run "
        "`cogmora indexes generate`:\n  " + "\n  ".join(map(str, gaps))
    )


def test_every_declared_index_was_needed(
    firestore_projects: FirestoreProjects, request: pytest.FixtureRequest
) -> None:
    """Each index in firestore.indexes.json served a query of the contract suite."""
    if not whole_contract_suite(request.config):
        pytest.skip("only a full run of the contract suite tells which indexes are unneeded")
    need = session_needs(firestore_projects)
    extra = unused(need, declared(json.loads(INDEXES.read_text())))
    assert not extra, (
        "deploy/firestore.indexes.json declares indexes no query of the contract suite "
        "needed (cost on every write; a query the tests do not cover?):\n  "
        + "\n  ".join(map(str, extra))
    )
