"""Firestore's side of the boundary, offline: registered queries as the structured queries
the client would send, and google.api_core errors as ours. (The behaviour against a
server is the contract suite's, on the emulator.)"""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from cogmora.errors import (
    ConfigError,
    Conflict,
    FailedPrecondition,
    Fatal,
    NotFound,
    Temporary,
    ValidationError,
)
from cogmora.store import queries as q
from cogmora.store.firestore.errors import translate
from cogmora.store.firestore.tx import to_firestore
from cogmora.store.queries import REGISTRY


@pytest.fixture
def client() -> firestore.Client:
    return firestore.Client(project="demo-offline", credentials=AnonymousCredentials())


def structured(client: firestore.Client, query: q.Query) -> Any:
    fq = to_firestore(client, query)
    if not hasattr(fq, "_to_protobuf"):  # a bare collection: its query is everything in it
        fq = fq._query()
    return fq._to_protobuf()


def test_a_collection_group_query_reaches_every_user(client: firestore.Client) -> None:
    """A query without a parent is a collection-group query with its filters, order and
    limit, fields by dotted path."""
    query = (
        q.Query("tradeTriggers")
        .where("details.status", "==", "active")
        .where("expiresAt", "<=", "2026-01-01T00:00:00.000000Z")
        .order_by("expiresAt")
        .limited(50)
    )
    pb = structured(client, query)
    assert pb.from_[0].collection_id == "tradeTriggers"
    assert pb.from_[0].all_descendants is True
    filters = [f.field_filter for f in pb.where.composite_filter.filters]
    assert [(f.field.field_path, f.op.name, f.value.string_value) for f in filters] == [
        ("details.status", "EQUAL", "active"),
        ("expiresAt", "LESS_THAN_OR_EQUAL", "2026-01-01T00:00:00.000000Z"),
    ]
    assert [(o.field.field_path, o.direction.name) for o in pb.order_by] == [
        ("expiresAt", "ASCENDING")
    ]
    assert pb.limit == 50


def test_a_parent_makes_it_that_users_collection(client: firestore.Client) -> None:
    """A query with a parent runs on users/{uid}/{group} only, descending where asked."""
    query = q.Query("openPositions", parent="users/u1").order_by("openedAt", "desc")
    fq = to_firestore(client, query)
    assert fq._parent._path == ("users", "u1", "openPositions")
    pb = fq._to_protobuf()
    assert pb.from_[0].all_descendants is False
    assert [(o.field.field_path, o.direction.name) for o in pb.order_by] == [
        ("openedAt", "DESCENDING")
    ]


def test_booleans_and_numbers_keep_their_types(client: firestore.Client) -> None:
    """Filter values are sent as Firestore values of their own type, not as text."""
    due = q.Query("agent").where("enabled", "==", True).where("nextRunAt", "<=", "2026")
    pb = structured(client, due.order_by("nextRunAt"))
    first = pb.where.composite_filter.filters[0].field_filter
    assert first.value.boolean_value is True


@pytest.mark.parametrize("spec", REGISTRY, ids=[s.name for s in REGISTRY])
def test_every_registered_query_translates(client: firestore.Client, spec: Any) -> None:
    """Each declared shape becomes a Firestore query of the right scope and order."""
    query = q.Query(spec.group, parent="users/u1" if spec.scope == "collection" else None)
    for f in spec.equals:
        query = query.where(f, "==", "x")
    if spec.range:
        query = query.where(spec.range, ">=", "a")
    for f, d in spec.order:
        query = query.order_by(f, d)
    pb = structured(client, query)
    assert pb.from_[0].all_descendants is (spec.scope == "collection_group")
    assert [o.field.field_path for o in pb.order_by] == [f for f, _ in spec.order]


def test_an_undeclared_query_is_refused_before_it_reaches_firestore(
    client: firestore.Client,
) -> None:
    """The registry check runs first: FailedPrecondition naming the index it would need."""
    with pytest.raises(FailedPrecondition, match="openPositions \\[COLLECTION_GROUP\\]"):
        to_firestore(client, q.Query("openPositions").where("side", "==", "long"))


@pytest.mark.parametrize(
    ("exc", "ours"),
    [
        (gexc.Aborted("contention"), Temporary),
        (gexc.ServiceUnavailable("down"), Temporary),
        (gexc.DeadlineExceeded("slow"), Temporary),
        (gexc.ResourceExhausted("quota"), Temporary),
        (gexc.InternalServerError("oops"), Temporary),
        (gexc.AlreadyExists("exists"), Conflict),
        (gexc.FailedPrecondition("The query requires an index"), FailedPrecondition),
        (gexc.NotFound("gone"), NotFound),
        (gexc.InvalidArgument("too big"), ValidationError),
        (gexc.PermissionDenied("no"), ConfigError),
        (gexc.Unauthenticated("who"), ConfigError),
        (gexc.Unknown("?"), Fatal),
    ],
)
def test_library_errors_become_ours(exc: Exception, ours: type[Exception]) -> None:
    """Each google.api_core error maps to the cogmora error that says what to do."""
    assert type(translate(exc)) is ours


def test_a_missing_index_keeps_firestores_message() -> None:
    """FAILED_PRECONDITION keeps Firestore's text, which links to the index to create."""
    err = translate(gexc.FailedPrecondition("The query requires an index: https://x/y"))
    assert "https://x/y" in str(err)
