"""`firestore.indexes.json` generated from the query registry.

Firestore's rules, which the seed learned the hard way:
- a collection-group query filtering or ordering on two or more fields needs a composite
  index with `queryScope: COLLECTION_GROUP`;
- a collection-group query on ONE field needs that field's single-field index enabled for
  the collection-group scope, which is a `fieldOverrides` entry; `firebase deploy` rejects a
  one-field entry in `indexes[]`;
- a field override replaces the field's default settings, so it must restate the default
  collection-scope indexes or every ordinary query on that field would break;
- a collection query needs a composite index only when it mixes equality with a range or
  an order on another field; equality-only queries are served by merging single-field ones.

The TTL policies (`ttl.TTL_POLICIES`) ride in the same file, as field overrides with
`"ttl": true` and no index.
"""

from __future__ import annotations

import json
from typing import Any

from cogmora.store.firestore.ttl import TTL_POLICIES
from cogmora.store.queries import DECLARED, QuerySpec

_ORDER = {"asc": "ASCENDING", "desc": "DESCENDING"}
_COLLECTION_DEFAULTS = [
    {"order": "ASCENDING", "queryScope": "COLLECTION"},
    {"order": "DESCENDING", "queryScope": "COLLECTION"},
    {"arrayConfig": "CONTAINS", "queryScope": "COLLECTION"},
]


def _needs_composite(spec: QuerySpec) -> bool:
    fields = spec.index_fields()
    if len(fields) < 2:
        return False
    if spec.scope == "collection_group":
        return True
    return spec.range is not None or bool(spec.order)


def generate(registry: tuple[QuerySpec, ...] = DECLARED) -> dict[str, Any]:
    indexes: dict[str, dict[str, Any]] = {}
    overrides: dict[tuple[str, str], set[str]] = {}
    for spec in registry:
        fields = spec.index_fields()
        if _needs_composite(spec):
            scope = "COLLECTION_GROUP" if spec.scope == "collection_group" else "COLLECTION"
            entry = {
                "collectionGroup": spec.group,
                "queryScope": scope,
                "fields": [{"fieldPath": f, "order": _ORDER[d]} for f, d in fields],
            }
            indexes[json.dumps(entry, sort_keys=True)] = entry
        elif spec.scope == "collection_group" and len(fields) == 1:
            path, direction = fields[0]
            overrides.setdefault((spec.group, path), set()).add(_ORDER[direction])
    field_overrides: list[dict[str, Any]] = [
        {
            "collectionGroup": group,
            "fieldPath": path,
            "indexes": [
                *_COLLECTION_DEFAULTS,
                *({"order": o, "queryScope": "COLLECTION_GROUP"} for o in sorted(orders)),
            ],
        }
        for (group, path), orders in sorted(overrides.items())
    ]
    field_overrides += [
        {"collectionGroup": group, "fieldPath": path, "ttl": True, "indexes": []}
        for group, path in sorted(TTL_POLICIES)
    ]
    return {
        "indexes": [indexes[k] for k in sorted(indexes)],
        "fieldOverrides": field_overrides,
    }


def render(registry: tuple[QuerySpec, ...] = DECLARED) -> str:
    return json.dumps(generate(registry), indent=2) + "\n"


def differences(existing: dict[str, Any], registry: tuple[QuerySpec, ...] = DECLARED) -> list[str]:
    """What `cogmora indexes check` reports: entries missing from or extra in the file."""
    wanted = generate(registry)
    problems: list[str] = []
    for key in ("indexes", "fieldOverrides"):
        have = {json.dumps(e, sort_keys=True) for e in existing.get(key, [])}
        need = {json.dumps(e, sort_keys=True) for e in wanted[key]}
        problems += [f"missing from {key}: {e}" for e in sorted(need - have)]
        problems += [f"not declared in the registry, in {key}: {e}" for e in sorted(have - need)]
    return problems
