"""Retention in the index: where a member ends up once aged-out entries are gone, and the sweep
that drops them from the head and segments (design.md §5: every read applies the floor at once,
so a sweep needs none of rules 1-3's care and may go on over several passes)."""

from __future__ import annotations

from index.rules import MAX_SWEPT_SEGMENTS, Retention
from index.view import IndexView
from index.zset import Entry, SortedSet
from kvformat import entry_time, score_is_time


class Sweeper:
    """The retention half of a pass; with no retention configured it keeps everything."""

    def __init__(self, retention: Retention | None) -> None:
        self._retention = retention

    def due(self, view: IndexView) -> bool:
        """Retention is on, the index holds entries, and its last sweep is old enough."""
        root = view.root
        if self._retention is None or (not len(root.head) and root.manifest_key is None):
            return False
        return root.swept is None or view.read_ms - root.swept >= self._retention.sweep_every_ms

    def expired(self, index: str, entry: Entry, floor: int | None) -> bool:
        if floor is None:
            return False
        time = entry_time(index, entry)
        return time is not None and time < floor

    def floor(self, view: IndexView) -> int | None:
        return None if self._retention is None else self._retention.floor(view.read_ms)

    def final(self, view: IndexView, member: str) -> Entry | None:
        """Where the member ends up: its last op's position, unless retention removed it."""
        final = view.overlay[member]
        if final is not None and self.expired(view.index, final, self.floor(view)):
            return None
        return final

    async def sweep(self, view: IndexView, touched: dict[str | None, SortedSet]) -> bool:
        """Drop what retention removed: from the head and the touched segments, whole segments
        below the floor where scores are timestamps (unread), and segments whose oldest entry
        has aged out (read, filtered and written anew, a bounded number per pass: where scores
        are timestamps, only the one the floor falls in). Returns whether nothing aged out is
        left for another pass."""
        floor = self.floor(view)
        index = view.index

        def kept(zset: SortedSet) -> SortedSet | None:
            entries = zset.entries()
            alive = [e for e in entries if not self.expired(index, e, floor)]
            return SortedSet.from_sorted(alive) if len(alive) != len(entries) else None

        for key, zset in [(None, touched.get(None, view.root.head)), *touched.items()]:
            if (alive := kept(zset)) is not None:
                touched[key] = alive
        if view.root.manifest_key is None or floor is None:
            return True
        loaded = 0
        by_score = score_is_time(index)
        for segment in (await view.manifest()).segments:
            if segment.key in touched:
                continue
            if by_score and segment.max_score < floor:
                touched[segment.key] = SortedSet()  # an emptied segment disappears
                continue
            oldest = segment.min_score if by_score else segment.oldest
            if oldest is not None and oldest < floor:  # partly aged out (by score: one)
                if loaded == MAX_SWEPT_SEGMENTS:
                    return False
                loaded += 1
                zset = await view.segment(segment)
                alive = kept(zset)
                # (Rewritten even if nothing aged out, which corrects a stale ``oldest``.)
                touched[segment.key] = SortedSet.from_sorted(zset.entries()) if alive is None \
                    else alive
        return True
