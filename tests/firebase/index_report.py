"""Reading the emulator's index-usage reports against deploy/firestore.indexes.json.

An index is a collection group, a scope and its fields in order; the report's trailing
`__name__` is implied and dropped. A declared index serves a needed one when both have the
same fields and, past a leading run of ascending fields that may come in any order (the
equality filters, which Firestore matches in any order), the same fields in the same order
(the range and the sort). A collection-scope query on one field is served by Firestore's
automatic single-field indexes; a collection-group one needs a `fieldOverrides` entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Field = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Index:
    group: str
    scope: str
    fields: tuple[Field, ...]

    def __str__(self) -> str:
        cols = ", ".join(f"{f} {o[:3].lower()}" for f, o in self.fields)
        return f"{self.group} [{self.scope}] ({cols})"

    def serves(self, need: Index) -> bool:
        if (self.group, self.scope) != (need.group, need.scope):
            return False
        mine, theirs = self.fields, need.fields
        if len(mine) != len(theirs):
            return False
        cut = next((i for i in range(len(mine) + 1) if mine[i:] == theirs[i:]), len(mine))
        head = mine[:cut]
        return sorted(head) == sorted(theirs[:cut]) and all(o == "ASCENDING" for _, o in head)


def needed(reports: Iterable[dict[str, Any]]) -> set[Index]:
    """The indexes the reported queries needed, less what Firestore builds by itself."""
    out: set[Index] = set()
    for report in reports:
        index = report["index"]
        group = index["name"].split("/collectionGroups/")[1].split("/")[0]
        fields = tuple(
            (f["fieldPath"], f.get("order", f.get("arrayConfig", "")))
            for f in index["fields"]
            if f["fieldPath"] != "__name__"
        )
        scope = index["queryScope"]
        if not fields or (scope == "COLLECTION" and len(fields) == 1):
            continue  # the automatic single-field (or name) index serves it
        out.add(Index(group, scope, fields))
    return out


def declared(config: dict[str, Any]) -> set[Index]:
    """Composite indexes, and the collection-group single-field ones of fieldOverrides."""
    out = {
        Index(
            e["collectionGroup"],
            e["queryScope"],
            tuple((f["fieldPath"], f.get("order", f.get("arrayConfig", ""))) for f in e["fields"]),
        )
        for e in config.get("indexes", [])
    }
    for e in config.get("fieldOverrides", []):
        for ix in e.get("indexes", []):
            if ix.get("queryScope") == "COLLECTION_GROUP":
                order = ix.get("order", ix.get("arrayConfig", ""))
                out.add(Index(e["collectionGroup"], "COLLECTION_GROUP", ((e["fieldPath"], order),)))
    return out


def missing(need: set[Index], have: set[Index]) -> list[Index]:
    return sorted((n for n in need if not any(h.serves(n) for h in have)), key=str)


def unused(need: set[Index], have: set[Index]) -> list[Index]:
    return sorted((h for h in have if not any(h.serves(n) for n in need)), key=str)
