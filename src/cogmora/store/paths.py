"""Firestore paths, split into what SQL backends index: collection group, parent, id.

`users/u1/openPositions/p1` -> group `openPositions`, parent `users/u1`, id `p1`.
A top-level document such as `prices/BTC-USDT` has parent "".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DocPath:
    group: str
    parent: str
    id: str

    @property
    def path(self) -> str:
        return f"{self.parent}/{self.group}/{self.id}" if self.parent else f"{self.group}/{self.id}"

    @property
    def uid(self) -> str | None:
        """The owning user, for documents under `users/{uid}` (and the user document itself)."""
        if self.group == "users":
            return self.id
        if self.parent.startswith("users/"):
            return self.parent.split("/", 2)[1]
        return None


def split(path: str) -> DocPath:
    parts = path.split("/")
    if len(parts) < 2 or len(parts) % 2 or any(not p for p in parts):
        raise ValueError(f"not a document path: {path!r}")
    return DocPath(group=parts[-2], parent="/".join(parts[:-2]), id=parts[-1])
