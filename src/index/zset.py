"""An in-memory sorted set with Redis semantics (a *zset*, in Redis's words): the pure core of
every index, whose stored form in KV is ``index.sorted_index``.

Members are ordered by ``(score, member)``, ties broken by the member's bytes (Python compares
``str`` by code point, which is the same order as UTF-8 bytes). ``zrange_by_score`` with
``rev=True`` is exactly the reverse of the ascending order, as ``ZRANGE ... BYSCORE REV`` is.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from typing import NamedTuple

# Scores are Unix milliseconds, 0..2**53-1; these bound "everything" in range queries.
MIN_SCORE = 0
MAX_SCORE = 2**53 - 1
# Sorts after every real member at the same score (members are short ASCII strings).
_AFTER_ALL = "\U0010ffff"


class Entry(NamedTuple):
    """A member at its score; ordered by ``(score, member)``. A named tuple rather than a
    dataclass: a segment holds thousands, and tuples are compared in C and cost no ``__dict__``."""

    score: int
    member: str

    def to_json(self) -> dict[str, int | str]:
        return {"score": self.score, "member": self.member}


class SortedSet:
    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._scores: dict[str, int] = {}
        self._order: list[Entry] = []
        for entry in entries:
            self.zadd(entry.member, entry.score)

    @classmethod
    def from_sorted(cls, entries: list[Entry]) -> SortedSet:
        """Trusts that ``entries`` are sorted and unique (a head array we wrote ourselves)."""
        zset = cls()
        zset._order = list(entries)
        zset._scores = {e.member: e.score for e in entries}
        if len(zset._scores) != len(zset._order) or zset._order != sorted(zset._order):
            return cls(entries)  # not what we wrote: rebuild rather than trust it
        return zset

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, member: object) -> bool:
        return member in self._scores

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._order)

    def score(self, member: str) -> int | None:
        return self._scores.get(member)

    def zadd(self, member: str, score: int) -> int:
        """Add or move ``member``; returns 1 if it is new (like ``ZADD``), else 0."""
        old = self._scores.get(member)
        if old == score:
            return 0
        if old is not None:
            self._order.pop(bisect_left(self._order, (old, member)))
        self._scores[member] = score
        insort(self._order, Entry(score, member))
        return 1 if old is None else 0

    def zrem(self, member: str) -> int:
        old = self._scores.pop(member, None)
        if old is None:
            return 0
        self._order.pop(bisect_left(self._order, (old, member)))
        return 1

    def _span(self, min_score: int, max_score: int) -> tuple[int, int]:
        lo = bisect_left(self._order, (min_score, ""))
        hi = bisect_right(self._order, (max_score, _AFTER_ALL))
        return lo, max(lo, hi)

    def zcount(self, min_score: int = MIN_SCORE, max_score: int = MAX_SCORE) -> int:
        lo, hi = self._span(min_score, max_score)
        return hi - lo

    def zrange_by_score(
        self,
        min_score: int = MIN_SCORE,
        max_score: int = MAX_SCORE,
        *,
        rev: bool = False,
        limit: int | None = None,
        after: Entry | None = None,
    ) -> list[Entry]:
        """Entries with ``min_score <= score <= max_score`` in order (descending if ``rev``).

        ``after`` is an exclusive position in that order (the last entry of the previous page),
        so a cursor stays exact when entries are inserted elsewhere between pages.
        """
        lo, hi = self._span(min_score, max_score)
        if after is not None:
            key = (after.score, after.member)
            if rev:
                hi = min(hi, bisect_left(self._order, key))
            else:
                lo = max(lo, bisect_right(self._order, key))
        if hi <= lo:
            return []
        count = hi - lo if limit is None else min(limit, hi - lo)
        return self._order[hi - count : hi][::-1] if rev else self._order[lo : lo + count]

    def entries(self) -> list[Entry]:
        return list(self._order)
