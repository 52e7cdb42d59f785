"""One ladder of the trigger book: the levels of one symbol that fire in one direction.

Levels are scaled integers stored so that the levels a price crosses are always a suffix
of a sorted list: a cross is one bisect and one slice delete. The keys at one level share
a bucket (a bare key, or an insertion-ordered dict of keys when several share it).
Removing a key leaves its level as a tombstone, popped at once when it is the top (so the
edge, which the book's no-hit path compares against, is always live) and compacted away
when tombstones outnumber live levels.
"""

from __future__ import annotations

from bisect import bisect_left
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal

PLACES = 8
# Unbounded precision: scaling by 10**8 must never round, whatever the input.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
NEG_INF = Decimal("-Infinity")
POS_INF = Decimal("Infinity")

Bucket = str | dict[str, None]


class Ladder:
    """The levels of one symbol that fire in one direction; crossed levels are a suffix."""

    __slots__ = ("buckets", "dirty", "edge", "sign", "vals")

    def __init__(self, sign: int) -> None:
        self.vals: list[int] = []  # ascending, distinct; may hold tombstones below the top
        self.buckets: dict[int, Bucket] = {}
        self.sign = sign
        self.dirty = False  # vals unsorted during a bulk load
        self.edge = NEG_INF if sign > 0 else POS_INF

    def _set_edge(self) -> None:
        if self.vals:
            self.edge = Decimal(self.sign * self.vals[-1]).scaleb(-PLACES, EXACT)
        else:
            self.edge = NEG_INF if self.sign > 0 else POS_INF

    def _fix_top(self) -> None:
        vals, buckets = self.vals, self.buckets
        while vals and vals[-1] not in buckets:
            vals.pop()
        self._set_edge()

    def add(self, v: int, key: str) -> bool:
        """Add `key` at `v`; True when the edge moved."""
        buckets = self.buckets
        bucket = buckets.get(v)
        if bucket is not None:
            if isinstance(bucket, str):
                buckets[v] = {bucket: None, key: None}
            else:
                bucket[key] = None
            return False
        buckets[v] = key
        if self.dirty:
            return False
        vals = self.vals
        if not vals or v > vals[-1]:
            vals.append(v)
            self._set_edge()
            return True
        i = bisect_left(vals, v)
        if vals[i] != v:  # otherwise v was a tombstone and is live again
            vals.insert(i, v)
        return False

    def discard(self, v: int, key: str) -> bool:
        """Remove `key` from `v` if it is there; True when the edge moved."""
        buckets = self.buckets
        bucket = buckets.get(v)
        if bucket is None:
            return False
        if isinstance(bucket, str):
            if bucket != key:
                return False
        else:
            if key not in bucket:
                return False
            del bucket[key]
            if len(bucket) > 1:
                return False
            if bucket:
                buckets[v] = next(iter(bucket))  # back to the compact form
                return False
        del buckets[v]
        if self.dirty:
            return False
        vals = self.vals
        if vals[-1] == v:
            self._fix_top()
            return True
        if len(vals) > 2 * len(buckets) + 16:
            self.vals = [x for x in vals if x in buckets]
        return False

    def take(self, q: int) -> list[Bucket]:
        """Remove and return the buckets at levels >= q, nearest to the price first."""
        vals = self.vals
        i = bisect_left(vals, q)
        crossed = vals[i:]
        del vals[i:]
        pop = self.buckets.pop
        taken = []
        for v in reversed(crossed):
            bucket = pop(v, None)
            if bucket is not None:
                taken.append(bucket)
        self._fix_top()
        return taken

    def rebuild(self) -> None:
        self.vals = sorted(self.buckets)
        self.dirty = False
        self._set_edge()
