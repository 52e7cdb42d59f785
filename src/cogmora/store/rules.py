"""The port's transaction rules, checked the same way by the PostgreSQL and Firestore backends.

Firestore enforces some of these natively, in its own words and at its own moment (a
`create` on an existing document fails only at commit; a read after a write is a
ValueError); PostgreSQL would not enforce them at all. Checking them here, in one place,
makes a body that breaks a rule fail the same way on every backend, so a bug found on one
is the bug the others would have had.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cogmora.errors import Fatal, ValidationError
from cogmora.store.paths import DocPath, split

_GROUP = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

WriteKind = Literal["create", "set", "delete"]


class ReadAfterWrite(Fatal):
    """A transaction body read after writing: Firestore forbids it, so we do too."""


class ReadOnly(Fatal):
    """A read-only body tried to write."""


def check_group(group: str) -> str:
    """A collection name must be a plain identifier: SQL backends make it a table name,
    so nothing else may reach their DDL."""
    if not _GROUP.match(group):
        raise ValidationError("path", f"collection name {group!r} is not a plain identifier")
    return group


def doc_path(path: str) -> DocPath:
    dp = split(path)
    check_group(dp.group)
    return dp


def one_group(paths: Sequence[str]) -> str:
    groups = {doc_path(p).group for p in paths}
    if len(groups) != 1:
        raise ValueError("compare_and_set takes paths of one collection group")
    return groups.pop()


@dataclass(frozen=True, slots=True)
class Write:
    """One write a body asked for, kept until commit (Firestore applies them at commit too)."""

    kind: WriteKind
    path: DocPath
    doc: dict[str, Any] | None


class TxRules:
    """The bookkeeping a Tx shares: reads first, compare-and-set between reads and plain
    writes, no writes when read-only."""

    def __init__(self, writable: bool) -> None:
        self._writable = writable
        self._cas = False
        self._wrote = False
        self.writes: list[Write] = []

    def check_read(self) -> None:
        if self._wrote or self._cas:
            raise ReadAfterWrite("every read must come before the first write in a transaction")

    def check_cas(self) -> None:
        """A compare-and-set reads, so no plain write may precede it; several may follow
        one another (each reads only the documents it writes)."""
        self._check_writable()
        if self._wrote:
            raise ReadAfterWrite("compare_and_set must come before the first plain write")
        self._cas = True

    def cas_group(self, paths: Sequence[str]) -> str | None:
        """Open a compare-and-set of `paths`: its order is checked, and it names the one
        group they are in (None: no paths, nothing to do)."""
        self.check_cas()
        return one_group(paths) if paths else None

    def add_write(self, kind: WriteKind, path: str, doc: dict[str, Any] | None) -> None:
        self.note_write()
        self.writes.append(Write(kind, doc_path(path), doc))

    # The port's plain writes, for a backend that buffers `Write`s until its commit.
    def create(self, path: str, doc: dict[str, Any]) -> None:
        self.add_write("create", path, doc)

    def set(self, path: str, doc: dict[str, Any]) -> None:
        self.add_write("set", path, doc)

    def delete(self, path: str) -> None:
        self.add_write("delete", path, None)

    def note_write(self) -> None:
        """A plain write that the backend buffers itself (SQLite's hot path keeps rows,
        not `Write`s); the rules only need to know it happened."""
        self._check_writable()
        self._wrote = True

    def _check_writable(self) -> None:
        if not self._writable:
            raise ReadOnly("write in a read-only transaction")


def get_field(doc: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    """(present, value) of a dotted field."""
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def set_fields(doc: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """A copy of `doc` with the dotted `updates` applied (missing parents are created)."""
    out = _copy(doc)
    for dotted, value in updates.items():
        target = out
        *parents, last = dotted.split(".")
        for part in parents:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                target[part] = nxt
            target = nxt
        target[last] = value
    return out


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, dict) else v for k, v in doc.items()}


def matches(doc: dict[str, Any], expect: dict[str, Any]) -> bool:
    """Exact equality of each dotted field; expecting None means null or absent (a position
    with no take profit may store `null` or leave the field out)."""
    for dotted, want in expect.items():
        present, value = get_field(doc, dotted)
        if want is None:
            if value is not None:
                return False
            continue
        if not present or value != want or isinstance(value, bool) != isinstance(want, bool):
            return False
    return True
