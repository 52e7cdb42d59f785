"""The change feed's retention from COGMORA_FEED_RETENTION_ROWS / _SECONDS: the defaults
of store/retention.py, a bad value names its variable, and the stores are built with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cogmora.cli.stores import feed_retention, open_store
from cogmora.errors import ConfigError, FeedResync
from cogmora.settings import load
from cogmora.store.port import Tx
from cogmora.store.retention import DEFAULT_RETENTION, Retention
from cogmora.store.sqlite import SqliteStore
from conditions import until


def test_defaults_are_the_retention_modules() -> None:
    """Unset, the feed keeps 100,000 changes and every change younger than 10 minutes."""
    s = load({})
    assert (s.feed_retention_rows, s.feed_retention_seconds) == (100_000, 600)
    assert feed_retention(s) == DEFAULT_RETENTION


def test_both_variables_are_read() -> None:
    """Each variable sets its half of the rule; a 0 s window keeps by count only."""
    s = load({"COGMORA_FEED_RETENTION_ROWS": " 5000 ", "COGMORA_FEED_RETENTION_SECONDS": "0"})
    assert feed_retention(s) == Retention(keep=5000, min_age=0)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COGMORA_FEED_RETENTION_ROWS", "0"),
        ("COGMORA_FEED_RETENTION_ROWS", "-1"),
        ("COGMORA_FEED_RETENTION_ROWS", "lots"),
        ("COGMORA_FEED_RETENTION_ROWS", "1_000"),
        ("COGMORA_FEED_RETENTION_ROWS", "\u0661\u0660\u0660\u0660"),  # Arabic-Indic 1000
        ("COGMORA_FEED_RETENTION_ROWS", "1e5"),
        ("COGMORA_FEED_RETENTION_SECONDS", "-1"),
        ("COGMORA_FEED_RETENTION_SECONDS", "10m"),
        ("COGMORA_FEED_RETENTION_SECONDS", "0.5"),
        ("COGMORA_FEED_RETENTION_SECONDS", str(31 * 86_400)),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(variable: str, value: str) -> None:
    """A count below 1, a negative or unit-suffixed window, or digits that are not plain
    ASCII stop start-up with an error naming the variable."""
    with pytest.raises(ConfigError) as info:
        load({variable: value})
    assert info.value.variable == variable


async def test_open_store_hands_the_rule_to_the_stores_own_pruner(tmp_path: Path) -> None:
    """The store opened with a rule prunes by it, in its own background task: with 3 rows
    and a 0 s window, a follower from the start is told to resync, one 3 behind is not."""
    rule = Retention(keep=3, min_age=0, period=0.05)
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}", rule)
    assert isinstance(store, SqliteStore)
    await store.start()
    try:
        for i in range(10):

            def write(tx: Tx, i: int = i) -> None:
                tx.set(f"users/u{i}", {"uid": f"u{i}"})

            await store.transact(write)
        head = await store.head()

        async def pruned() -> bool:
            try:
                await store.changes(0)
            except FeedResync:
                return True
            return False

        await until(pruned, what="the store's pruner pruned to the latest 3")
        assert len(await store.changes(head - 3)) == 3
    finally:
        await store.close()
