"""The seed's backend: Firestore through the official client.

`FirestoreStore` is imported lazily so that `cogmora.store.firestore.indexes` (the index
file generator, used by the CLI) does not pay for the Google client's import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cogmora.store.firestore.store import FirestoreStore

__all__ = ["FirestoreStore"]


def __getattr__(name: str) -> Any:
    if name == "FirestoreStore":
        from cogmora.store.firestore.store import FirestoreStore

        return FirestoreStore
    raise AttributeError(name)
