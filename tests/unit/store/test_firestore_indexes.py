"""firestore.indexes.json from the registry, by Firestore's own rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from cogmora.store import queries as q
from cogmora.store.firestore.indexes import differences, generate, render

DEPLOYED = Path(__file__).resolve().parents[3] / "deploy" / "firestore.indexes.json"


def _composites(doc: dict[str, Any]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    return {
        (e["collectionGroup"], e["queryScope"]): [(f["fieldPath"], f["order"]) for f in e["fields"]]
        for e in doc["indexes"]
    }


def test_multi_field_collection_group_queries_get_collection_group_composites() -> None:
    """The worker's symbol+status queries and the range queries get COLLECTION_GROUP indexes."""
    doc = generate()
    entries = [(e["collectionGroup"], e["queryScope"], e["fields"]) for e in doc["indexes"]]
    for spec in q.REGISTRY:
        if spec.scope != "collection_group" or len(spec.index_fields()) < 2:
            continue
        fields = [
            {"fieldPath": f, "order": "ASCENDING" if d == "asc" else "DESCENDING"}
            for f, d in spec.index_fields()
        ]
        assert (spec.group, "COLLECTION_GROUP", fields) in entries, spec.name
    assert ("openPositions", "COLLECTION_GROUP", [
        {"fieldPath": "symbol", "order": "ASCENDING"},
        {"fieldPath": "details.status", "order": "ASCENDING"},
    ]) in entries


def test_no_single_field_entry_in_indexes() -> None:
    """`firebase deploy` rejects a one-field composite; none is generated."""
    assert all(len(e["fields"]) >= 2 for e in generate()["indexes"])


def test_single_field_collection_group_needs_become_field_overrides() -> None:
    """details.status alone over all users is a fieldOverride that keeps the defaults (the
    TTL policies' overrides aside)."""
    overrides = {
        (o["collectionGroup"], o["fieldPath"]): o
        for o in generate()["fieldOverrides"]
        if not o.get("ttl")
    }
    assert set(overrides) == {
        ("openPositions", "details.status"),
        ("tradeTriggers", "details.status"),
    }
    indexes = overrides[("tradeTriggers", "details.status")]["indexes"]
    assert {"order": "ASCENDING", "queryScope": "COLLECTION_GROUP"} in indexes
    # an override replaces the field's defaults, so they are restated
    for default in (
        {"order": "ASCENDING", "queryScope": "COLLECTION"},
        {"order": "DESCENDING", "queryScope": "COLLECTION"},
        {"arrayConfig": "CONTAINS", "queryScope": "COLLECTION"},
    ):
        assert default in indexes


def test_collection_queries_get_composites_only_when_mixing_fields() -> None:
    """A user's positions by status, newest first, needs a composite; by time alone does not."""
    composites = _composites(generate())
    assert composites[("openPositions", "COLLECTION")] == [
        ("details.status", "ASCENDING"),
        ("openedAt", "DESCENDING"),
    ]
    ledger = [
        [(f["fieldPath"], f["order"]) for f in i["fields"]]
        for i in generate()["indexes"]
        if i["collectionGroup"] == "ledger"
    ]
    assert [("seq", "ASCENDING")] not in ledger  # by seq alone: the single-field index
    assert [("kind", "ASCENDING"), ("seq", "ASCENDING")] in ledger  # kind mixed with seq
    assert ("positionHistory", "COLLECTION") not in composites


def test_a_descending_single_field_collection_group_query_overrides_descending() -> None:
    """A collection-group query ordered descending on one field asks for that direction."""
    registry = (
        q.QuerySpec("newest", "events", "collection_group", order=(("at", "desc"),)),
        q.QuerySpec("multi", "events", "collection_group", equals=("a", "b")),
        q.QuerySpec("plain", "events", "collection_group"),
    )
    doc = generate(registry)
    (override,) = [o for o in doc["fieldOverrides"] if not o.get("ttl")]
    assert (override["collectionGroup"], override["fieldPath"]) == ("events", "at")
    assert {"order": "DESCENDING", "queryScope": "COLLECTION_GROUP"} in override["indexes"]
    assert {"order": "ASCENDING", "queryScope": "COLLECTION_GROUP"} not in override["indexes"]
    assert len(doc["indexes"]) == 1


def test_render_is_deterministic_json() -> None:
    """The same registry renders the same bytes, so the file diffs cleanly."""
    assert render() == render()
    assert json.loads(render()) == generate()


def test_differences_report_missing_and_extra_entries() -> None:
    """A file that lost an index or carries an undeclared one fails the check, saying which."""
    good = generate()
    assert differences(good) == []
    lost = copy.deepcopy(good)
    removed = lost["indexes"].pop(0)
    problems = differences(lost)
    assert len(problems) == 1
    assert problems[0].startswith("missing from indexes: ")
    assert removed["collectionGroup"] in problems[0]
    extra = copy.deepcopy(good)
    extra["fieldOverrides"].append(
        {"collectionGroup": "users", "fieldPath": "balance", "indexes": []}
    )
    (problem,) = differences(extra)
    assert problem.startswith("not declared in the registry, in fieldOverrides: ")
    assert differences({}) != []


def test_the_deployed_file_matches_the_registry() -> None:
    """deploy/firestore.indexes.json is exactly what the registry generates."""
    assert DEPLOYED.read_text() == render()
