"""What the functions' tests share: the world they run in, and events in the SDK's types."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import google.events.cloud.firestore as events
from firebase_functions import firestore_fn
from firebase_functions.core import Change
from google.cloud import firestore
from google.cloud.firestore import DocumentSnapshot
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.types import Document

from cogmora.cli.compose import System

UPDATED = "google.cloud.firestore.document.v1.updated"


@dataclass
class FsWorld:
    project: str
    system: System
    client: firestore.Client

    def snapshot(self, path: str) -> firestore.DocumentSnapshot:
        return self.client.document(path).get()


def updated_event(
    fs: FsWorld, path: str, before: DocumentSnapshot, after: DocumentSnapshot
) -> firestore_fn.Event[Change[DocumentSnapshot | None]]:
    """The event Cloud Functions delivers for an update of `path`, in the SDK's own types."""
    _, uid, _, pid = path.split("/")
    return firestore_fn.Event(
        specversion="1.0",
        id=uuid.uuid4().hex,
        source=f"//firestore.googleapis.com/projects/{fs.project}/databases/(default)",
        type=UPDATED,
        time=datetime.now(UTC),
        data=Change(before=before, after=after),
        subject=f"documents/{path}",
        location="nam5",
        project=fs.project,
        database="(default)",
        namespace="(default)",
        document=path,
        params={"uid": uid, "positionId": pid},
    )


def _event_doc(project: str, path: str, snap: DocumentSnapshot) -> events.Document:
    name = f"projects/{project}/databases/(default)/documents/{path}"
    doc = Document(name=name, fields=_helpers.encode_dict(snap.to_dict() or {}))
    return events.Document.deserialize(Document.serialize(doc))


def event_data(project: str, path: str, before: DocumentSnapshot, after: DocumentSnapshot) -> bytes:
    """The protobuf `DocumentEventData` of an update, as Eventarc sends it."""
    data = events.DocumentEventData(
        value=_event_doc(project, path, after), old_value=_event_doc(project, path, before)
    )
    return bytes(events.DocumentEventData.serialize(data))
