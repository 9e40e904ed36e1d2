"""Sorted-set indexes in Workers KV: no lost write under concurrency, bounded cost at any size.

KV has no atomic update, so an index is kept LSM-style: a *root* (the newest entries, in the
seed's format, with the pass's stamps in its metadata), immutable *segments* listed by immutable
*manifests*, and a *journal* of immutable keys written before a write is acknowledged (what is
where: ``kvformat``). Writers only journal (:meth:`IndexStore.record`); readers merge the root
with the journal above their horizon (:meth:`IndexStore.read` gives an :class:`IndexView` with
Redis-style ``zrange_by_score``/``zcount``); passes fold the journal into new roots and segments
after the response (:meth:`IndexStore.compact`) and collect what no root can need any more.
The rules they follow (1-5: when an entry is confirmed, when a pass may write, when anything
may be deleted, what a reader may trust) and why they hold at the edge are in
``docs/design.md``; the code names them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from bisect import bisect_right
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from errors import StorageUnavailable
from index.object_cache import ObjectCache
from index.pacer import CompactionPacer
from index.sortedset import MAX_SCORE, MIN_SCORE, Entry, SortedSet
from jsonutil import dumps
from kvformat import (
    BOTTOM,
    MANIFEST_PREFIX,
    METADATA_ROOM,
    SEGMENT_PREFIX,
    VERSION_BUCKET,
    VERSION_BUCKET_DIGITS,
    VERSION_CEILING,
    JournalEntry,
    Manifest,
    Op,
    Root,
    Segment,
    decode_root,
    dump_entries,
    journal_key,
    journal_key_time,
    journal_prefix,
    metadata_pieces,
    parse_entries,
    parse_ops,
    version_prefixes,
    with_lo,
)
from storage.kv import MAX_LIST_LIMIT, KVStore

FOLDED_PREFIX = "folded:"  # per-isolate cache keys only, never stored in KV
MAX_COMPACTION_MS = 10_000
# Rule 1 assumes a put shows in listings within settle_ms of its clock reading: never 0.
MIN_SETTLE_MS = 100
# Rule 5: how long after its clock reading a journal put is taken to be listed where it was
# made (retries included), how often a busy index gets a full pass, and for how long after a
# full pass readers trust what the passes saw. Capped at fractions of the settle time so that
# tests with a tiny settle time keep the same proportions.
MAX_PUT_MS = 2_000
FULL_PASS_MS = 5_000
# Deletes per journal collection (and per garbage round): inside KV's 1,000-op budget.
MAX_GC_DELETES = 256
# Journal entries a *reader* applies at most (one listing page): a read's work and memory stay
# bounded whatever the write volume. Compactions are not capped (see ``IndexStore.read``).
MAX_READ_ENTRIES = 1_000
# The first listing page is small: a reader of a freshly compacted index needs only a few
# entries, and a page carries every op of its keys across the FFI.
FIRST_PAGE = 64
# How far below its horizon a full listing still reads ops, as position hints only: two racing
# moves of one message (one request apart) may both name the same stale ``prev``, and only the
# first one's op says where it put the member.
HINT_MARGIN_MS = MAX_COMPACTION_MS
# Collection probes at most this many version buckets for the oldest entry it leaves.
MAX_PROBES = 64
# Value-only journal entries (written before ops always fit in metadata) a reader reads.
MAX_HINT_READS = 16

_counter = itertools.count()


@dataclass(frozen=True)
class Layout:
    """Size bounds (chosen by measurement; see the README's benchmark section)."""

    head_max: int = 128  # the head spills into the newest segment beyond this many entries
    head_keep: int = 64  # ...keeping this many newest entries
    segment_max: int = 2048  # a segment splits in two beyond this many entries


class IndexView:
    """One index as one request sees it: root, lazily loaded segments, unfolded journal.

    ``window`` holds the journal entries newer than the horizon the view listed down to
    (oldest first, ops loaded); ``full`` says that horizon was the confirmed one
    (``root.at - settle_ms``), ``truncated`` that a reader stopped at ``MAX_READ_ENTRIES``.
    Members touched by window ops form the *overlay*: they are hidden wherever the stored
    structure has them, and shown at their final position (if any) instead.
    """

    def __init__(
        self, store: IndexStore, index: str, root: Root, window: list[JournalEntry],
        read_ms: int, hints: Iterable[Op] = (), *, horizon: int = 0, full: bool = True,
        trusted: bool = False, truncated: bool = False, legacy: bool = False,
    ) -> None:
        self._store = store
        self.index = index
        self.root = root
        self.journal = window
        self.read_ms = read_ms
        self.full = full
        self.trusted = trusted  # listed only past root.seen (rule 5)
        self.horizon = horizon
        self.truncated = truncated
        self.legacy = legacy  # the listing met entries of the previous release's key format
        unfolded_ops = [op for entry in window for op in entry.ops or ()]
        self.unfolded = len(unfolded_ops)
        self._touched_ms = {op.member: entry.written_ms for entry in window
                            for op in entry.ops or ()}
        self.overlay: dict[str, Entry | None] = {}
        self.positions: dict[str, set[int]] = {}
        for op in unfolded_ops:
            self.overlay[op.member] = (
                Entry(op.score, op.member) if op.kind == "add" and op.score is not None else None
            )
            self.positions.setdefault(op.member, set()).update(op.positions())
        # ``prev`` is only a hint, and two racing writers may send the same stale one. Folded
        # ops just below the horizon name where an earlier move put the member, and the head
        # says where it sits if it is there, so counts stay exact in both cases.
        for op in hints:
            if op.member in self.positions:
                self.positions[op.member].update(op.positions())
        for member, scores in self.positions.items():
            in_head = root.head.score(member)
            if in_head is not None:
                scores.add(in_head)
        self._manifest: Manifest | None = None
        self._segments: dict[str, SortedSet] = {}

    def is_recent(self, member: str) -> bool:
        """Touched by a listed op less than the settle time ago: its record may not be visible
        everywhere yet, or (a create in flight) not written yet."""
        return self._touched_ms.get(member, 0) > self.read_ms - self._store.settle_ms

    async def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = await self._store.load_manifest(self.root.manifest_key)
        return self._manifest

    async def segment(self, segment: Segment) -> SortedSet:
        if segment.key not in self._segments:
            self._segments[segment.key] = await self._store.load_segment(segment.key)
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
            for score in self.positions[member]:
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


@dataclass(frozen=True)
class Folded:
    """Journal entries (key -> write time) whose ops one root shows: a pass of this isolate
    wrote that root after seeing them, or found them all in place in it. Facts about an
    immutable root's content, so never stale; a root written by anyone else has another
    ``pass_id`` and is checked in full."""

    pass_id: str
    entries: dict[str, int]


IndexObjects = ObjectCache[SortedSet | Manifest | Folded]
# Runs work after the response (``ctx.waitUntil``); in tests, a list to drain.
Defer = Callable[[Awaitable[object]], None]


class IndexStore:
    """Reads, journals and compacts sorted-set indexes stored in KV.

    ``cache`` (one per isolate) keeps parsed segments and manifests: they are immutable.
    """

    def __init__(
        self, kv: KVStore, clock_ms: Callable[[], int], settle_ms: int,
        layout: Layout | None = None, cache: IndexObjects | None = None, *,
        defer: Defer | None = None, pacer: CompactionPacer | None = None,
    ) -> None:
        if settle_ms < MIN_SETTLE_MS:
            raise ValueError(f"settle_ms must be at least {MIN_SETTLE_MS} (slower than any put)")
        self._kv = kv
        self._clock_ms = clock_ms
        self._settle_ms = settle_ms
        self.layout = layout or Layout()
        self._cache = cache
        self._defer = defer
        # Without the isolate's pacer, compact after every write (interval 0).
        self._pacer = pacer if pacer is not None else CompactionPacer(interval_ms=0)

    # -- when to compact --------------------------------------------------------------------

    def after_write(self, index: str) -> None:
        """Call after journaling to ``index``: schedules the compaction that folds it (paced)."""
        self._compact_soon(index)

    def after_read(self, view: IndexView) -> None:
        """Call with a view a request read: compacts (from it, if now) when it shows work."""
        if self.wants_compaction(view):
            self._compact_soon(view.index, view)

    def _compact_soon(self, index: str, view: IndexView | None = None) -> None:
        """Hand a compaction of ``index`` to ``defer``, paced: now (of ``view`` if given),
        later, or not at all when one is already scheduled that will fold this too."""
        if self._defer is None:
            return
        delay = self._pacer.plan(index, self._clock_ms())
        if delay == 0 and view is not None:
            self._defer(self.compact(view))
        elif delay is not None:
            self._defer(self._compact_later(index, delay))

    async def _compact_later(self, index: str, delay_ms: int = 0) -> None:
        if delay_ms:
            await self._pacer.wait(index, delay_ms, self._clock_ms)
        try:
            view = await self.read(index, trust=None, cap=False)
        except StorageUnavailable:
            return  # background work: the next write or read compacts instead
        await self.compact(view)

    def _new_version(self, now_ms: int) -> str:
        # Milliseconds first for time order; a per-isolate counter and random bits for unicity.
        return f"{now_ms:013d}-{next(_counter) & 0xFFFFFF:06x}{secrets.token_hex(5)}"

    def _journal_key(self, index: str, now_ms: int) -> str:
        # The counter counts down too, so the later of two pieces written in one millisecond by
        # this isolate is listed (and so applied) as the newer one.
        seq = 0xFFFFFF - (next(_counter) & 0xFFFFFF)
        return journal_key(index, now_ms, seq, secrets.token_hex(5))

    @property
    def settle_ms(self) -> int:
        return self._settle_ms

    @property
    def put_ms(self) -> int:
        return min(MAX_PUT_MS, self._settle_ms // 2)

    @property
    def full_pass_ms(self) -> int:
        return min(FULL_PASS_MS, self._settle_ms // 2)

    @property
    def trust_ms(self) -> int:
        """How long after a full pass readers trust ``root.seen`` (rule 5)."""
        return 2 * self.full_pass_ms

    # -- writing ----------------------------------------------------------------------------

    async def record(self, index: str, ops: Sequence[Op]) -> None:
        """Durably journal ``ops`` for ``index``; once this returns, readers see them.

        Ops go in pieces small enough for KV metadata, one journal key each, so that a listing
        carries every op and no reader or compaction ever reads a journal value.
        """
        if not ops:
            return
        now = self._clock_ms()
        puts = []
        for piece in metadata_pieces([op.to_json() for op in ops]):
            text = dumps(piece)
            metadata: dict[str, object] = {"t": now}
            if len(text.encode("utf-8")) <= METADATA_ROOM:
                metadata["ops"] = piece
            puts.append(self._kv.put(self._journal_key(index, now), text, metadata=metadata))
        await asyncio.gather(*puts)

    # -- reading ----------------------------------------------------------------------------

    async def read(
        self, index: str, *, trust: bool | None = True, cap: bool = True
    ) -> IndexView:
        """The index as of now.

        With ``trust``, a root written by a full pass less than ``trust_ms`` ago is taken at its
        word for what the passes saw (rule 5): only newer entries are listed. Otherwise the
        listing goes down to the confirmed horizon (rule 1). With ``cap``, at most
        ``MAX_READ_ENTRIES`` entries are applied, newest first (a reader's bound); a compaction
        reads uncapped, since it must not claim entries it did not see. ``trust=None`` lists
        what a compaction of this index needs now: trusting unless a full pass is due.
        """
        read_ms = self._clock_ms()
        root = await self._read_root(index)
        if trust is None:
            trust = not self._full_pass_due(root, read_ms)
        confirmed = root.at - self._settle_ms
        horizon = confirmed
        if trust and root.seen is not None and read_ms - root.at < self.trust_ms:
            horizon = max(confirmed, root.seen)
        window, hints, truncated, legacy = await self._scan_journal(
            index, horizon, MAX_READ_ENTRIES if cap else None,
            HINT_MARGIN_MS if horizon == confirmed else 0,
        )
        # Only entries journaled before every op fitted in metadata (or a lone op too big for
        # it) have their ops in the value alone; a reader reads a bounded number of them.
        unread = [j for j in window if j.ops is None][: MAX_HINT_READS if cap else None]
        loaded = dict(zip(
            (j.key for j in unread),
            await asyncio.gather(*(self._ops_of(j) for j in unread)),
            strict=True,
        ))
        window = [replace(j, ops=loaded.get(j.key, ())) if j.ops is None else j for j in window]
        return IndexView(self, index, root, window, read_ms, hints, horizon=horizon,
                         full=horizon == confirmed and not truncated,
                         trusted=horizon > confirmed, truncated=truncated, legacy=legacy)

    async def _read_root(self, index: str) -> Root:
        stored = await self._kv.get_with_metadata(index)
        return decode_root(None, None) if stored is None else decode_root(stored.value,
                                                                          stored.metadata)

    async def load_manifest(self, key: str | None) -> Manifest:
        if key is None:
            return Manifest()
        cached = self._cache.get(key) if self._cache is not None else None
        if isinstance(cached, Manifest):
            return cached
        raw = await self._kv.get(key)
        if raw is None:  # only a bug or a manual deletion gets here; retrying may help
            raise StorageUnavailable(detail="index manifest is missing; run a reindex")
        manifest = Manifest.from_json(json.loads(raw))
        self._remember(key, manifest)
        return manifest

    async def load_segment(self, key: str) -> SortedSet:
        """A segment, shared with other requests of this isolate: never modify it."""
        cached = self._cache.get(key) if self._cache is not None else None
        if isinstance(cached, SortedSet):
            return cached
        raw = await self._kv.get(key)
        if raw is None:
            raise StorageUnavailable(detail="index segment is missing; run a reindex")
        segment = SortedSet.from_sorted(parse_entries(raw))
        self._remember(key, segment)
        return segment

    def _remember(self, key: str, value: SortedSet | Manifest | Folded) -> None:
        if self._cache is not None:
            if isinstance(value, Manifest):
                weight = len(value.segments)
            elif isinstance(value, Folded):
                weight = len(value.entries)
            else:
                weight = len(value)
            self._cache.put(key, value, weight)

    def _folded_in(self, root: Root, index: str) -> dict[str, int]:
        """The journal entries this isolate knows ``root`` shows (see ``Folded``)."""
        if root.pass_id is None or self._cache is None:
            return {}
        known = self._cache.get(f"{FOLDED_PREFIX}{index}")
        return known.entries if isinstance(known, Folded) and known.pass_id == root.pass_id else {}

    def _remember_folded(self, view: IndexView, root: Root) -> None:
        """``root`` (the view's, or the one a pass over it wrote) shows every listed entry, and
        what was known of the view's root. Entries below the confirmed horizon (and its hint
        margin) are no longer listed by any pass, so they are forgotten."""
        if root.pass_id is None:
            return
        floor = root.at - self._settle_ms - HINT_MARGIN_MS
        entries = {k: t for k, t in self._folded_in(view.root, view.index).items() if t > floor}
        entries.update((j.key, j.written_ms) for j in view.journal if j.written_ms > floor)
        self._remember(f"{FOLDED_PREFIX}{view.index}", Folded(root.pass_id, entries))

    async def _scan_journal(
        self, index: str, horizon: int, cap: int | None, hint_margin_ms: int = 0
    ) -> tuple[list[JournalEntry], list[Op], bool, bool]:
        """The entries written after ``horizon`` (oldest first), the ops of those written within
        ``hint_margin_ms`` below it (position hints), whether ``cap`` cut the entries, and
        whether entries of the previous release's key format were met.

        The listing is newest first, so this reads only as far back as it must, a page at a
        time, and keeps nothing of a page but what it needs.
        """
        window: list[JournalEntry] = []
        hints: list[Op] = []
        truncated = legacy = False
        async for entry in self._walk_journal(index):
            legacy = legacy or entry.legacy
            if entry.written_ms <= horizon - hint_margin_ms:
                if entry.legacy:
                    continue
                break
            if entry.written_ms <= horizon:
                hints.extend(entry.ops or ())
            elif cap is not None and len(window) >= cap:
                truncated = True
                break
            else:
                window.append(entry)
        window.reverse()
        return window, hints, truncated, legacy

    async def _walk_journal(
        self, index: str, versions: str = "", *, with_ops: bool = True
    ) -> AsyncIterator[JournalEntry]:
        """The journal entries of ``index`` whose version starts with ``versions``, newest
        first, listed a page at a time; without ``with_ops``, ops are left unparsed (None)."""
        prefix = journal_prefix(index)
        cursor: str | None = None
        limit = FIRST_PAGE
        while True:
            page = await self._kv.list(prefix=prefix + versions, limit=limit, cursor=cursor)
            for key in page.keys:
                written, legacy = journal_key_time(key.name, prefix, key.metadata)
                raw_ops = (key.metadata or {}).get("ops") if with_ops else None
                ops = parse_ops(raw_ops) if raw_ops is not None else None
                yield JournalEntry(key.name, written, ops, legacy)
            if page.list_complete or not page.cursor:
                return
            cursor, limit = page.cursor, MAX_LIST_LIMIT

    async def _ops_of(self, entry: JournalEntry) -> tuple[Op, ...]:
        if entry.ops is not None:
            return entry.ops
        raw = await self._kv.get(entry.key)
        if raw is None:  # deleted by a concurrent GC, so it is folded already
            return ()
        return parse_ops(json.loads(raw)) or ()

    # -- compaction -------------------------------------------------------------------------

    async def compact(self, view: IndexView) -> bool:
        """Fold the view's journal into a new root; collect what no reader can need any more.

        Returns True when a new root was written. KV trouble only delays convergence: the
        journal keeps every write, so failures here are swallowed.
        """
        try:
            return await self._compact(view)
        except StorageUnavailable:
            return False  # e.g. 429 on a hot root at the edge: a later compaction catches up

    async def _compact(self, view: IndexView) -> bool:
        if self._clock_ms() - view.read_ms > MAX_COMPACTION_MS:
            return False
        full = self._full_pass_due(view.root, view.read_ms)
        if view.truncated or (full and not view.full):
            # A reader's view will not do: a pass claims every entry up to ``seen`` (rule 5),
            # so it must have listed them all, and a full pass down to the confirmed horizon.
            view = await self.read(view.index, trust=not full, cap=False)
        # An entry listed late (a lagging put) shows up in a later full pass's window, and so
        # here, even after a collection that found the journal empty.
        if self.lags_behind_root(view):
            return False  # folding it could put back what the root already moved (see below)
        oldest = _earliest(view.root.oldest, (j.written_ms for j in view.journal))
        if view.full and oldest is not None and oldest <= view.read_ms - self.collection_delay_ms:
            oldest = await self._collect_journal(view, oldest)
        pending = await self._pending(view)
        if pending or self._stamp_changed(view, oldest):
            return await self._fold(view, pending, oldest)
        self._remember_folded(view, view.root)  # all in place already
        return False

    def lags_behind_root(self, view: IndexView) -> bool:
        """The listing does not show the newest entry the root folded (a lagging listing at
        another location). A pass over it would re-apply older ops of members the root holds at
        newer positions, without the ops that moved them, and so store them twice; it would
        also vouch for entries it never saw. Such a view is good for reading, not for a pass."""
        newest = view.root.newest
        return (view.root.seen is not None and newest > view.horizon
                and not any(j.written_ms >= newest for j in view.journal))

    def _full_pass_due(self, root: Root, now_ms: int) -> bool:
        return root.seen is None or now_ms - root.at >= self.full_pass_ms

    def _stamp_changed(self, view: IndexView, oldest: int | None) -> bool:
        """Whether the root's metadata alone is worth a write: new entries folded, an
        unconfirmed range confirmed (or a root from before rule 5 converted), the journal's
        oldest entry changed."""
        root = view.root
        if root.seen is None:
            return root.at > 0 or bool(view.journal)  # no root and no journal: nothing to say
        return (
            self._newly_vouched(view)
            or (view.full and self._confirmable(view))
            or oldest != root.oldest
        )

    def _newly_vouched(self, view: IndexView) -> bool:
        """Listed entries that a root written now would vouch for and the stored one does not."""
        seen = view.root.seen if view.root.seen is not None else view.root.at - self._settle_ms
        vouched = view.read_ms - self.put_ms
        return any(seen < j.written_ms <= vouched for j in view.journal)

    def _confirmable(self, view: IndexView) -> bool:
        """Entries beyond the confirmed horizon that a full pass now would confirm: folded ones
        the root counts, or (listed late) ones only a full listing shows."""
        return view.root.unconfirmed(self._settle_ms) or (view.full and bool(view.journal))

    def _next_root(self, view: IndexView, head: SortedSet, oldest: int | None) -> Root:
        """The root a pass over ``view`` writes: ``at`` moves only on a full pass (rule 1)."""
        root = view.root
        newest = max([root.newest, *(j.written_ms for j in view.journal)])
        at = view.read_ms if view.full else root.at
        return replace(root, head=head, at=at, seen=view.read_ms - self.put_ms, newest=newest,
                       oldest=oldest, pass_id=secrets.token_hex(4))

    def _maybe_pending(self, view: IndexView) -> bool:
        """Whether a pass may have something to fold, from the head alone (no segment read):
        a member whose known positions all lie in the head's range and that the head shows in
        its final state (at its final score, or absent if removed) surely has nothing."""
        head, head_lo = view.root.head, view.root.head_lo
        for member, final in view.overlay.items():
            in_head_range = all(Entry(s, member) >= head_lo for s in view.positions[member])
            shown = (member not in head if final is None
                     else head.score(member) == final.score)
            if not (in_head_range and shown):
                return True
        return False

    async def _pending(self, view: IndexView) -> set[str]:
        """Overlaid members whose final state the stored structure does not show yet.

        Within the settle window a full pass sees the same ops again; a member that sits at its
        final position (or nowhere, if removed) and at none of the other positions its ops
        name is in place, wherever it lives: re-folding it would cost the pass time in
        proportion to everything written in the window (a whole import), and write nothing.
        """
        pending: set[str] = set()
        known = self._folded_in(view.root, view.index)
        unknown = ({op.member for j in view.journal if j.key not in known for op in j.ops or ()}
                   if known else view.overlay.keys())
        for member in unknown:
            final = view.overlay[member]
            for score in {*view.positions[member], *([final.score] if final else [])}:
                container = await view.load(await view.container_of(Entry(score, member)))
                wanted = final is not None and score == final.score
                if (container.score(member) == score) != wanted:
                    pending.add(member)
                    break
        return pending

    async def _fold(self, view: IndexView, pending: set[str], oldest: int | None) -> bool:
        positions = {m: set(s) for m, s in view.positions.items() if m in pending}
        # Every container that holds or will hold a pending member, by identity.
        touched: dict[str | None, SortedSet] = {}
        for member, scores in positions.items():
            final = view.overlay[member]
            spots = [Entry(s, member) for s in scores] + ([final] if final else [])
            for spot in spots:
                container = await view.container_of(spot)
                key = None if container is None else container.key
                if key not in touched:
                    touched[key] = SortedSet((await view.load(container)).entries())
        before = {key: [zset.score(m) for m in positions] for key, zset in touched.items()}
        for member in positions:
            for zset in touched.values():
                zset.zrem(member)
            final = view.overlay[member]
            if final is not None:
                container = await view.container_of(final)
                touched[None if container is None else container.key].zadd(member, final.score)
        # Only what really changed is rewritten: an immutable segment costs a new key each time.
        touched = {
            key: zset for key, zset in touched.items()
            if [zset.score(m) for m in positions] != before[key]
        }
        if not touched and not self._stamp_changed(view, oldest):
            return False  # the stored root already says everything this view knows
        root = self._next_root(view, touched.get(None, view.root.head), oldest)
        head = root.head
        if (
            any(key is not None for key in touched)
            or len(head) > self.layout.head_max
            or self._garbage_due(view.root.garbage_since, view.read_ms)
        ):
            root = await self._reshape(view, touched, root)
        if self._clock_ms() - view.read_ms > MAX_COMPACTION_MS:
            return False  # too slow: a newer root may exist (rule 2); what we wrote is leaked
        await self._kv.put(view.index, dump_entries(root.head), metadata=root.metadata())
        self._remember_folded(view, root)
        return True

    async def _reshape(
        self, view: IndexView, touched: dict[str | None, SortedSet], root: Root
    ) -> Root:
        """Rewrite touched segments, spill an overgrown head, collect due garbage: everything
        that changes the manifest. ``root`` comes in with the folded head, goes out complete."""
        manifest = await view.manifest()
        head = root.head
        segments: list[Segment] = []
        replaced: list[str] = []
        new_segments: dict[str, list[Entry]] = {}
        for segment in manifest.segments:
            if segment.key not in touched:
                segments.append(segment)
                continue
            # Segments are immutable: a changed one is written anew (split if it grew too big)
            # and the old one becomes garbage. An emptied one simply disappears: its range
            # falls to the segment before it.
            replaced.append(segment.key)
            entries = touched[segment.key].entries()
            if entries:
                for part, part_entries in self._split(entries, segment.lo, view.index):
                    segments.append(part)
                    new_segments[part.key] = part_entries
        head_lo = view.root.head_lo
        if len(head) > self.layout.head_max:
            entries = head.entries()
            spill, keep = entries[: -self.layout.head_keep], entries[-self.layout.head_keep :]
            spill_lo = head_lo
            if segments:
                # Into the newest segment rather than a new small one: segments stay between
                # half and all of segment_max, so the manifest stays short at any history size.
                last = segments.pop()
                if last.key in new_segments:
                    older = new_segments.pop(last.key)
                else:
                    older = (await view.segment(last)).entries()
                    replaced.append(last.key)
                spill, spill_lo = older + spill, last.lo
            for part, part_entries in self._split(spill, spill_lo, view.index):
                segments.append(part)
                new_segments[part.key] = part_entries
            head, head_lo = SortedSet.from_sorted(keep), keep[0]
        segments.sort(key=lambda s: s.lo)
        if segments:
            segments[0] = with_lo(segments[0], BOTTOM)  # the first segment covers the bottom
        elif head_lo != BOTTOM:
            head_lo = BOTTOM  # no segments left: the head covers everything again
        now = self._clock_ms()
        garbage = await self._collect_garbage(
            [*manifest.garbage, *((k, now) for k in replaced)], view.read_ms
        )
        await asyncio.gather(*(self._kv.put(k, dump_entries(v)) for k, v in new_segments.items()))
        for key, entries in new_segments.items():  # the next read of this history wants them
            self._remember(key, SortedSet.from_sorted(entries))
        manifest_key = view.root.manifest_key
        if new_segments or garbage != list(manifest.garbage):
            if manifest_key is not None:  # replaced by the one written below
                garbage.append((manifest_key, now))
            manifest_key = None
            if segments or garbage:
                manifest_key = await self._write_manifest(view.index, segments, garbage,
                                                          view.read_ms)
        garbage_since = min((since for _, since in garbage), default=None)
        return replace(root, head=head, manifest_key=manifest_key, head_lo=head_lo,
                       garbage_since=garbage_since)

    async def _write_manifest(
        self, index: str, segments: list[Segment], garbage: list[tuple[str, int]], now: int
    ) -> str:
        key = f"{MANIFEST_PREFIX}{index}:{self._new_version(now)}"
        manifest = Manifest(tuple(segments), tuple(garbage))
        await self._kv.put(key, dumps(manifest.to_json()))
        self._remember(key, manifest)
        return key

    def _garbage_due(self, since: int | None, read_ms: int) -> bool:
        return since is not None and since <= read_ms - self._garbage_delay()

    def _garbage_delay(self) -> int:
        """Rule 4: how long a replaced object stays readable by some root."""
        return 2 * (self._settle_ms + MAX_COMPACTION_MS)

    def _split(
        self, entries: list[Entry], lo: Entry, index: str
    ) -> list[tuple[Segment, list[Entry]]]:
        """Cut ``entries`` into segments of at most ``segment_max``, the first starting at lo."""
        size = self.layout.segment_max
        pieces = max(1, -(-len(entries) // size))
        step = -(-len(entries) // pieces)
        parts: list[tuple[Segment, list[Entry]]] = []
        for n in range(pieces):
            chunk = entries[n * step : (n + 1) * step]
            key = f"{SEGMENT_PREFIX}{index}:{self._new_version(self._clock_ms())}"
            start = lo if n == 0 else chunk[0]
            parts.append((Segment(key, start, len(chunk), chunk[0].score, chunk[-1].score),
                          chunk))
        return parts

    async def _collect_garbage(
        self, garbage: list[tuple[str, int]], read_ms: int
    ) -> list[tuple[str, int]]:
        """Delete replaced objects once no root that references them can be read (rule 4)."""
        cutoff = read_ms - self._garbage_delay()
        due = [g for g in garbage if g[1] <= cutoff][:MAX_GC_DELETES]
        await asyncio.gather(*(self._kv.delete(key) for key, _ in due))
        return [g for g in garbage if g not in due]

    @property
    def collection_delay_ms(self) -> int:
        """Rule 3, with rule 5's passes: how long a folded journal entry may still be needed."""
        return 2 * self._settle_ms + MAX_COMPACTION_MS + self.full_pass_ms

    def _collection_due(self, root: Root, now_ms: int) -> bool:
        return root.oldest is not None and root.oldest <= now_ms - self.collection_delay_ms

    def wants_compaction(self, view: IndexView) -> bool:
        """Something to fold, a range to confirm, or journal entries to collect."""
        root = view.root
        if root.seen is None:
            return root.at > 0 or bool(view.journal)
        return (
            self._maybe_pending(view)
            or self._newly_vouched(view)
            or (self._full_pass_due(root, view.read_ms) and self._confirmable(view))
            or self._collection_due(root, view.read_ms)
        )

    async def _collect_journal(self, view: IndexView, oldest: int) -> int | None:
        """Delete the journal entries no root can need any more (rule 3), measured from the
        root the full pass read; returns a time at or below the write time of every entry left
        (the oldest one's, when found), or None when the journal is empty.

        ``oldest`` is such a time for the journal before this round (the root's ``j`` and the
        view's window). Versions count down from the clock, so the entries written in a time
        range are the keys under a few decimal prefixes of their version: a busy index's
        journal holds ``2S`` of writes, and this lists the few seconds of it that are due.
        """
        confirmed = view.root.at - self._settle_ms
        cutoff = min(view.read_ms - self.collection_delay_ms, confirmed)
        # The window's write rate says how long the whole journal is likely to be.
        expected = len(view.journal) * (view.read_ms - oldest) // max(1, view.read_ms - confirmed)
        if view.legacy or oldest <= 0 or expected < FIRST_PAGE:
            # Unknown age (a rebuilt root, or one from before rule 5), keys of the previous
            # release's format (which no version prefix reaches), or a journal that one
            # listing page likely holds: walk it all.
            scans = [""]
        else:
            scans = version_prefixes(VERSION_CEILING - cutoff, VERSION_CEILING - oldest)
        whole = scans == [""]
        due: list[str] = []
        kept: list[int] = []
        for versions in reversed(scans):  # oldest first
            async for entry in self._walk_journal(view.index, versions, with_ops=False):
                if entry.written_ms <= cutoff and len(due) < MAX_GC_DELETES:
                    due.append(entry.key)
                elif entry.written_ms > cutoff or whole:
                    kept.append(entry.written_ms)
                else:
                    break
            if len(due) >= MAX_GC_DELETES and not whole:
                break
        await asyncio.gather(*(self._kv.delete(key) for key in due))
        if len(due) >= MAX_GC_DELETES and not whole:
            return oldest  # more is due, where this round stopped listing
        if not kept and not whole:
            kept = await self._first_written_after(view.index, cutoff, confirmed)
        newer = [j.written_ms for j in view.journal]  # listed down to the confirmed horizon
        return min(kept + newer, default=None)

    async def _first_written_after(self, index: str, after: int, until: int) -> list[int]:
        """The write times in the first non-empty version bucket written after ``after`` up to
        ``until``, probing one bucket at a time from the oldest (a busy journal's first one
        holds entries); ``[until]`` (a bound, not a find) if there are too many to probe."""
        first = (VERSION_CEILING - after) // VERSION_BUCKET
        last = (VERSION_CEILING - until) // VERSION_BUCKET
        for n, bucket in enumerate(range(first, last - 1, -1)):
            if n == MAX_PROBES:  # the earliest time this bucket's versions can stand for
                return [VERSION_CEILING - (bucket + 1) * VERSION_BUCKET + 1]
            versions = f"{bucket:0{13 - VERSION_BUCKET_DIGITS}d}"
            found = [entry.written_ms
                     async for entry in self._walk_journal(index, versions, with_ops=False)
                     if entry.written_ms > after]
            if found:
                return found
        return []

    # -- repair -----------------------------------------------------------------------------

    async def rebuild(self, index: str, entries: list[Entry], scan_started_ms: int) -> bool:
        """Replace the whole index with a set rebuilt from message records (``reindex``).

        Stamped with the time the scan began: every journal entry settled before then is
        reflected in the records it read; later ones are replayed on top by readers. Like a
        compaction, a scan that took too long must not write (rule 2). The old structure
        becomes garbage of the new manifest.
        """
        old = await self._read_root(index)
        old_manifest = await self.load_manifest(old.manifest_key)
        ordered = SortedSet(entries).entries()
        head_part = ordered[-self.layout.head_keep :] if ordered else []
        older = ordered[: len(ordered) - len(head_part)]
        now = self._clock_ms()
        garbage = [*old_manifest.garbage, *((s.key, now) for s in old_manifest.segments)]
        if old.manifest_key is not None:
            garbage.append((old.manifest_key, now))
        parts = self._split(older, BOTTOM, index) if older else []
        await asyncio.gather(*(self._kv.put(s.key, dump_entries(e)) for s, e in parts))
        # The records are the truth as of the scan: nothing beyond the confirmed horizon is
        # claimed, and the journal's age is unknown, so the next full pass collects.
        confirmed = scan_started_ms - self._settle_ms
        root = Root(SortedSet.from_sorted(head_part), scan_started_ms, seen=confirmed,
                    newest=confirmed, oldest=0)
        if parts or garbage:
            root.manifest_key = await self._write_manifest(
                index, [s for s, _ in parts], garbage, now
            )
            root.head_lo = head_part[0] if parts and head_part else BOTTOM
            root.garbage_since = min((since for _, since in garbage), default=None)
        if self._clock_ms() - scan_started_ms > MAX_COMPACTION_MS:
            return False
        await self._kv.put(index, dump_entries(head_part), metadata=root.metadata())
        return True


def _earliest(oldest: int | None, times: Iterable[int]) -> int | None:
    return min((t for t in (oldest, *times) if t is not None), default=None)


