"""SQLite's typed columns: the compiled per-group extraction agrees with `extract`."""

from __future__ import annotations

from typing import Any

from cogmora.store.sqlite.tx import _extractor, _typed_values
from cogmora.store.sqlschema import KNOWN_GROUPS, extract, fields_for

# What a document may hold where a typed field is looked for.
VALUES: tuple[Any, ...] = ("open", "", 0, 7, -1.5, True, False, None, {"a": 1}, [1, 2], 2**70)


def _docs(fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """Each value at every field, a field's parent missing or not an object, and empty."""
    docs: list[dict[str, Any]] = [{}]
    for value in VALUES:
        doc: dict[str, Any] = {}
        for field in fields:
            *parents, last = field.split(".")
            at = doc
            for part in parents:
                at = at.setdefault(part, {})
            at[last] = value
        docs.append(doc)
        docs.append({field.split(".")[0]: value for field in fields})
    return docs


def test_every_groups_typed_columns_are_what_extract_gives() -> None:
    """Bools as 0/1, objects and arrays as no value, a missing path as no value."""
    for group in KNOWN_GROUPS:
        fields = fields_for(group)
        for doc in _docs(fields):
            got = _typed_values(group, doc)
            assert got == tuple(extract(doc, f) for f in fields), (group, doc)
            assert [v.__class__ for v in got] == [extract(doc, f).__class__ for f in fields]


def test_nested_and_single_field_extraction() -> None:
    """A path three deep, and a group of one field (a one-element tuple)."""
    deep = _extractor(("a.b.c",))
    assert deep({"a": {"b": {"c": True}}}) == (1,)
    assert deep({"a": {"b": 3}}) == (None,)
    assert deep({"a": []}) == (None,)
    assert _extractor(())({"x": 1}) == ()
