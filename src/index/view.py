"""One index as one request sees it: the root, segments loaded on demand, and the journal
entries above the horizon laid over them, with Redis sorted-set reads."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

from index.structure import Structure
from index.zset import MAX_SCORE, MIN_SCORE, Entry, SortedSet
from kvformat import JournalEntry, Manifest, Op, Root, Segment


class IndexView:
    """One index as one request sees it: root, lazily loaded segments, unfolded journal.

    ``window`` holds the journal entries newer than the horizon the view listed down to
    (oldest first, ops loaded); ``full`` says that horizon was the confirmed one
    (``root.at - settle_ms``), ``truncated`` that a reader stopped at ``MAX_READ_ENTRIES``.
    Members touched by window ops form the *overlay*: they are hidden wherever the stored
    structure has them, and shown at their final position (if any) instead.
    """

    def __init__(
        self, structure: Structure, index: str, root: Root, window: list[JournalEntry],
        read_ms: int, hints: Iterable[Op] = (), *, settle_ms: int, horizon: int = 0,
        full: bool = True,
        trusted: bool = False, truncated: bool = False, legacy: bool = False,
    ) -> None:
        self._structure = structure
        self._settle_ms = settle_ms
        self.index = index
        self.root = root
        self.journal = window
        self.read_ms = read_ms
        self.full = full
        self.trusted = trusted  # listed only past root.seen (rule 5)
        self.horizon = horizon
        self.truncated = truncated
        self.legacy = legacy  # the listing met entries of the previous release's key format
        self.unfolded = 0
        self._touched_ms: dict[str, int] = {}
        self.overlay: dict[str, Entry | None] = {}
        self._ops: dict[str, list[Op]] = {}  # per member, for its positions (computed on demand)
        for entry in window:
            for op in entry.ops or ():
                self.unfolded += 1
                self._touched_ms[op.member] = entry.written_ms
                self.overlay[op.member] = (
                    Entry(op.score, op.member) if op.kind == "add" and op.score is not None
                    else None
                )
                self._ops.setdefault(op.member, []).append(op)
        self._hints = hints
        self._hints_by_member: dict[str, list[Op]] | None = None
        self._positions: dict[str, set[int]] = {}
        self._manifest: Manifest | None = None
        self._segments: dict[str, SortedSet] = {}

    def positions_of(self, member: str) -> set[int]:
        """Every score at which an overlaid member may sit in the stored structure: those its
        listed ops name, and where the head has it. (Computed on demand: a reader that only
        lists never needs them.)"""
        found = self._positions.get(member)
        if found is None:
            found = set()
            for op in self._ops.get(member, ()):
                found.update(op.positions())
            # ``prev`` is only a hint, and two racing writers may send the same stale one.
            # Folded ops just below the horizon name where an earlier move put the member, and
            # the head says where it sits if it is there, so counts stay exact in both cases.
            if self._hints_by_member is None:
                self._hints_by_member = {}
                for op in self._hints:
                    self._hints_by_member.setdefault(op.member, []).append(op)
            for op in self._hints_by_member.get(member, ()):
                found.update(op.positions())
            in_head = self.root.head.score(member)
            if in_head is not None:
                found.add(in_head)
            self._positions[member] = found
        return found

    def is_recent(self, member: str) -> bool:
        """Touched by a listed op less than the settle time ago: its record may not be visible
        everywhere yet, or (a create in flight) not written yet."""
        return self._touched_ms.get(member, 0) > self.read_ms - self._settle_ms

    async def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = await self._structure.manifest(self.root.manifest_key)
        return self._manifest

    async def segment(self, segment: Segment) -> SortedSet:
        if segment.key not in self._segments:
            self._segments[segment.key] = await self._structure.segment(segment.key)
        return self._segments[segment.key]

    async def load(self, container: Segment | None) -> SortedSet:
        """The head (``None``) or a segment; shared with the isolate's cache: never modify."""
        return self.root.head if container is None else await self.segment(container)

    async def container_of(self, position: Entry) -> Segment | None:
        if self.root.manifest_key is None or position >= self.root.head_lo:
            return None
        segments = (await self.manifest()).segments
        i = bisect_right([s.lo for s in segments], position) - 1
        return segments[max(i, 0)] if segments else None

    async def zrange_by_score(
        self, min_score: int = MIN_SCORE, max_score: int = MAX_SCORE, *, rev: bool = False,
        limit: int | None = None, after: Entry | None = None,
    ) -> list[Entry]:
        """Like ``ZRANGE key min max BYSCORE [REV] LIMIT``, ``after`` an exclusive position."""

        def beyond(entry: Entry) -> bool:
            return after is None or (entry < after if rev else entry > after)

        extra = [
            e for e in self.overlay.values()
            if e is not None and min_score <= e.score <= max_score and beyond(e)
        ]
        want = None if limit is None else limit + len(self.overlay)
        found: list[Entry] = []

        def take(zset: SortedSet) -> bool:
            for entry in zset.zrange_by_score(min_score, max_score, rev=rev, limit=want,
                                              after=after):
                if entry.member not in self.overlay:
                    found.append(entry)
            return limit is not None and len(found) >= limit

        # Newest-first reads usually end inside the head, without reading the manifest.
        done = rev and take(self.root.head)
        if not done and self.root.manifest_key is not None:
            segments = (await self.manifest()).segments
            for segment in reversed(segments) if rev else segments:
                if _overlaps(segment, min_score, max_score, after, rev):
                    done = take(await self.segment(segment))
                    if done:
                        break
        if not rev and not done:
            take(self.root.head)
        merged = sorted(found + extra, reverse=rev)
        return merged if limit is None else merged[:limit]

    async def zcount(self, min_score: int = MIN_SCORE, max_score: int = MAX_SCORE) -> int:
        """Like ``ZCOUNT``: segments wholly inside the range count from the manifest alone."""
        total = self.root.head.zcount(min_score, max_score)
        if self.root.manifest_key is not None:
            for segment in (await self.manifest()).segments:
                if segment.max_score < min_score or segment.min_score > max_score:
                    continue
                if min_score <= segment.min_score and segment.max_score <= max_score:
                    total += segment.count
                else:
                    total += (await self.segment(segment)).zcount(min_score, max_score)
        for member, final in self.overlay.items():
            for score in self.positions_of(member):
                if min_score <= score <= max_score:
                    zset = await self.load(await self.container_of(Entry(score, member)))
                    if zset.score(member) == score:
                        total -= 1
            if final is not None and min_score <= final.score <= max_score:
                total += 1
        return total


def _overlaps(segment: Segment, lo: int, hi: int, after: Entry | None, rev: bool) -> bool:
    if segment.max_score < lo or segment.min_score > hi:
        return False
    if after is None:
        return True
    return segment.min_score <= after.score if rev else segment.max_score >= after.score
