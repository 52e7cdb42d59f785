"""One Firestore transaction as the port's Tx, and registered queries as Firestore queries.

Reads go straight to the client inside the transaction (Firestore locks what a
transaction reads, so a concurrent writer aborts one of the two and the body is re-run);
writes are buffered and handed to the transaction at commit, which is when Firestore
sends them anyway. A compare-and-set reads its documents in the transaction and writes
the merged ones, so it has the same isolation as a hand-written read-modify-write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from cogmora.store.port import Doc
from cogmora.store.queries import IN, Query, require
from cogmora.store.rules import TxRules, check_group, doc_path, matches, set_fields

_DIRECTION = {"asc": firestore.Query.ASCENDING, "desc": firestore.Query.DESCENDING}


def to_firestore(client: firestore.Client, query: Query) -> Any:
    """The registered query as a collection-group or collection query; an undeclared shape
    raises FailedPrecondition here, before Firestore would (in production)."""
    require(query)
    group = check_group(query.group)
    if query.parent is None:
        fq: Any = client.collection_group(group)
    elif query.parent == "":
        fq = client.collection(group)
    else:
        fq = client.document(query.parent).collection(group)
    for flt in query.filters:
        value = list(flt.value) if flt.op == IN else flt.value
        fq = fq.where(filter=FieldFilter(flt.field, flt.op, value))
    for field, direction in query.order:
        fq = fq.order_by(field, direction=_DIRECTION[direction])
    if query.limit is not None:
        fq = fq.limit(int(query.limit))
    return fq


class FsTx(TxRules):
    def __init__(self, client: firestore.Client, transaction: Any, writable: bool) -> None:
        super().__init__(writable)
        self._client = client
        self._t = transaction
        self._cas_writes: list[tuple[str, Doc]] = []

    def _ref(self, path: str) -> Any:
        doc_path(path)
        return self._client.document(path)

    # ---------------------------------------------------------------- reads
    def get(self, path: str) -> Doc | None:
        return self.get_many([path])[0]

    def get_many(self, paths: Sequence[str]) -> list[Doc | None]:
        self.check_read()
        return self._fetch(paths)

    def _fetch(self, paths: Sequence[str]) -> list[Doc | None]:
        if not paths:
            return []
        refs = [self._ref(p) for p in dict.fromkeys(paths)]
        found: dict[str, Doc | None] = {}
        for snap in self._client.get_all(refs, transaction=self._t):
            found[snap.reference.path] = snap.to_dict() if snap.exists else None
        return [found.get(p) for p in paths]

    def query(self, query: Query) -> list[tuple[str, Doc]]:
        self.check_read()
        fq = to_firestore(self._client, query)
        return [(snap.reference.path, snap.to_dict()) for snap in fq.stream(transaction=self._t)]

    # ---------------------------------------------------------------- writes
    # create, set and delete are the rules' own (buffered `Write`s, sent by apply()).
    def compare_and_set(
        self, paths: Sequence[str], expect: dict[str, Any], updates: dict[str, Any]
    ) -> list[str]:
        if self.cas_group(paths) is None:
            return []
        changed = []
        for path, doc in zip(paths, self._fetch(paths), strict=True):
            if doc is not None and matches(doc, expect):
                self._cas_writes.append((path, set_fields(doc, updates)))
                changed.append(path)
        return changed

    def proof(self) -> tuple[str, Doc] | None:
        """A document this transaction creates: if it exists as written after a commit
        whose answer was lost, the commit happened (a create cannot have succeeded twice)."""
        for w in self.writes:
            if w.kind == "create" and w.doc is not None:
                return w.path.path, w.doc
        return None

    @property
    def write_count(self) -> int:
        return len(self.writes) + len(self._cas_writes)

    def written(self) -> list[tuple[str, Doc | None]]:
        """Each write as (path, document; None for a delete), in the order apply() sends
        them: what the change feed's log records of this transaction."""
        return [(p, d) for p, d in self._cas_writes] + [(w.path.path, w.doc) for w in self.writes]

    def apply(self) -> frozenset[str]:
        """Hand the buffered writes to the transaction; returns the groups written."""
        groups = set()
        for path, doc in self._cas_writes:
            self._t.set(self._client.document(path), doc)
            groups.add(doc_path(path).group)
        for w in self.writes:
            ref = self._client.document(w.path.path)
            if w.kind == "create":
                self._t.create(ref, w.doc)
            elif w.kind == "set":
                self._t.set(ref, w.doc)
            else:
                self._t.delete(ref)
            groups.add(w.path.group)
        return frozenset(groups)
