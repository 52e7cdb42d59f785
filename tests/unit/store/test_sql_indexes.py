"""SQL indexes from the registry: one B-tree per shape, none for a shape another one leads."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cogmora.store import queries as q
from cogmora.store.sqlite.tx import DIALECT, create_group


def test_a_shape_led_by_a_longer_index_gets_no_index_of_its_own() -> None:
    """`status` is served by `status, uid`: only the longer index is built, and it is the
    one named as serving both."""
    ddl = " ".join(DIALECT.create_indexes("openPositions"))
    assert '"ix_positions_by_status"' in ddl
    assert '"ix_positions_in_status"' not in ddl
    assert DIALECT.index_serving(q.POSITIONS_IN_STATUS) == "ix_positions_by_status"
    assert DIALECT.index_serving(q.POSITIONS_BY_STATUS) == "ix_positions_by_status"


def test_every_declared_shape_is_served_by_an_index_that_is_built() -> None:
    """No shape is left without an index: each one's serving index is among those built."""
    for spec in q.REGISTRY:
        if spec.scope == "collection_group" and not spec.index_fields():
            continue
        built = {d.split('"')[1] for d in DIALECT.create_indexes(spec.group)}
        assert DIALECT.index_serving(spec) in built, spec.name


def test_sqlite_drops_an_index_the_registry_no_longer_declares(tmp_path: Path) -> None:
    """A file made under an older registry loses its stale `ix_` index when the table is
    opened, and keeps indexes that are not the registry's."""
    conn = sqlite3.connect(tmp_path / "old.db")
    create_group(conn, "openPositions")
    conn.execute('CREATE INDEX "ix_positions_in_status" ON "openPositions" (f_details_status)')
    conn.execute('CREATE INDEX "mine" ON "openPositions" (id)')
    create_group(conn, "openPositions")
    names = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'openPositions'"
        )
    }
    assert "ix_positions_in_status" not in names
    assert {"ix_positions_by_status", "mine"} <= names
    conn.close()
