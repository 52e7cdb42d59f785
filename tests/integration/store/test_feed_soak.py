"""A small seeded run of bench/feed_soak.py: with pruning the feed stays bounded."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[3] / "bench"))

import feed_soak


async def test_a_pruned_feed_stays_bounded_while_the_naive_one_grows(tmp_path: Path) -> None:
    """Through 20,000 changes the pruned feed never holds more than `keep` plus one pruning
    interval of changes, and its database ends smaller than the naive one, which keeps all
    (in pages: the file's and the WAL's sizes say when SQLite last checkpointed, which
    depends on the machine's load, not on pruning)."""
    keep, batch, every = 2_000, 500, 2
    pruned, naive, _, _ = await feed_soak.run(
        "sqlite", 20_000, batch=batch, report=5_000, keep=keep, prune_every=every, where=tmp_path
    )
    assert [s.changes for s in pruned] == [5_000, 10_000, 15_000, 20_000]
    assert all(s.rows <= keep + batch * every for s in pruned)
    assert [s.rows for s in naive] == [5_000, 10_000, 15_000, 20_000]
    assert pruned[-1].size_bytes < naive[-1].size_bytes
