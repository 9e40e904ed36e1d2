"""Passes: folding the journal into a new root (and the segments its ops touch), confirming
and vouching for what was listed (rules 1, 2, 5), and collecting what no root needs (3, 4)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace

from errors import StorageUnavailable
from index.journal import Journal
from index.reshape import Reshaper
from index.rules import MAX_COMPACTION_MS, Layout, Retention, Timing
from index.structure import Stamps, Structure
from index.sweep import Sweeper
from index.view import IndexView
from index.zset import Entry, SortedSet
from kvformat import Root, dump_entries
from storage.kv import KVStore

# Reads an index afresh for a pass: (index, trust, cap) -> view.
Reread = Callable[[str, bool, bool], Awaitable[IndexView]]


class Compactor:
    """Decides whether a pass has work, and runs it over a view: fold, stamp, collect."""

    def __init__(
        self, kv: KVStore, clock_ms: Callable[[], int], timing: Timing, layout: Layout,
        structure: Structure, journal: Journal, reshaper: Reshaper, reread: Reread,
        retention: Retention | None = None,
    ) -> None:
        self._kv = kv
        self._clock_ms = clock_ms
        self._timing = timing
        self.layout = layout
        self._structure = structure
        self._journal = journal
        self._reshaper = reshaper
        self._reread = reread
        self._sweeper = Sweeper(retention)

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
        full = self.full_pass_due(view.root, view.read_ms)
        if view.truncated or (full and not view.full):
            # A reader's view will not do: a pass claims every entry up to ``seen`` (rule 5),
            # so it must have listed them all, and a full pass down to the confirmed horizon.
            view = await self._reread(view.index, not full, False)
        # An entry listed late (a lagging put) shows up in a later full pass's window, and so
        # here, even after a collection that found the journal empty.
        if self.lags_behind_root(view):
            return False  # folding it could put back what the root already moved (see below)
        oldest = _earliest(view.root.oldest, (j.written_ms for j in view.journal))
        due = view.read_ms - self._timing.collection_delay_ms
        if view.full and oldest is not None and oldest <= due:
            oldest = await self._journal.collect(view, oldest)
        pending = await self._pending(view)
        if pending or self._sweeper.due(view) or self._stamp_changed(view, oldest):
            return await self._fold(view, pending, oldest)
        self._structure.remember_folded(view, view.root)  # all in place already
        return False

    def lags_behind_root(self, view: IndexView) -> bool:
        """The listing does not show the newest entry the root folded (a lagging listing at
        another location). A pass over it would re-apply older ops of members the root holds at
        newer positions, without the ops that moved them, and so store them twice; it would
        also vouch for entries it never saw. Such a view is good for reading, not for a pass."""
        newest = view.root.newest
        return (view.root.seen is not None and newest > view.horizon
                and not any(j.written_ms >= newest for j in view.journal))

    def full_pass_due(self, root: Root | Stamps, now_ms: int) -> bool:
        return root.seen is None or now_ms - root.at >= self._timing.full_pass_ms

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
        root = view.root
        seen = root.seen if root.seen is not None else root.at - self._timing.settle_ms
        vouched = view.read_ms - self._timing.put_ms
        return any(seen < j.written_ms <= vouched for j in view.journal)

    def _confirmable(self, view: IndexView) -> bool:
        """Entries beyond the confirmed horizon that a full pass now would confirm: folded ones
        the root counts, or (listed late) ones only a full listing shows."""
        return view.root.unconfirmed(self._timing.settle_ms) or (view.full and bool(view.journal))

    def _next_root(self, view: IndexView, head: SortedSet, oldest: int | None) -> Root:
        """The root a pass over ``view`` writes: ``at`` moves only on a full pass (rule 1)."""
        root = view.root
        newest = max([root.newest, *(j.written_ms for j in view.journal)])
        at = view.read_ms if view.full else root.at
        return replace(root, head=head, at=at, seen=view.read_ms - self._timing.put_ms,
                       newest=newest, oldest=oldest, pass_id=secrets.token_hex(4))

    def _maybe_pending(self, view: IndexView) -> bool:
        """Whether a pass may have something to fold, from the head alone (no segment read):
        a member whose known positions all lie in the head's range and that the head shows in
        its final state (at its final score, or absent if removed) surely has nothing."""
        head, head_lo = view.root.head, view.root.head_lo
        for member, final in view.overlay.items():
            in_head_range = all(Entry(s, member) >= head_lo for s in view.positions_of(member))
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
        known = self._structure.folded_in(view.root, view.index)
        unknown = ({op.member for j in view.journal if j.key not in known for op in j.ops or ()}
                   if known else view.overlay.keys())
        for member in unknown:
            final = self._sweeper.final(view, member)
            for score in {*view.positions_of(member), *([final.score] if final else [])}:
                container = await view.load(await view.container_of(Entry(score, member)))
                wanted = final is not None and score == final.score
                if (container.score(member) == score) != wanted:
                    pending.add(member)
                    break
        return pending

    async def _fold(self, view: IndexView, pending: set[str], oldest: int | None) -> bool:
        positions = {m: set(view.positions_of(m)) for m in view.overlay if m in pending}
        # Every container that holds or will hold a pending member, by identity.
        touched: dict[str | None, SortedSet] = {}
        for member, scores in positions.items():
            final = self._sweeper.final(view, member)
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
            final = self._sweeper.final(view, member)
            if final is not None:
                container = await view.container_of(final)
                touched[None if container is None else container.key].zadd(member, final.score)
        # Only what really changed is rewritten: an immutable segment costs a new key each time.
        touched = {
            key: zset for key, zset in touched.items()
            if [zset.score(m) for m in positions] != before[key]
        }
        sweep = self._sweeper.due(view)
        swept_all = await self._sweeper.sweep(view, touched) if sweep else False
        if not touched and not sweep and not self._stamp_changed(view, oldest):
            return False  # the stored root already says everything this view knows
        root = self._next_root(view, touched.get(None, view.root.head), oldest)
        if swept_all:  # else the next pass sweeps on
            root = replace(root, swept=view.read_ms)
        head = root.head
        if (
            any(key is not None for key in touched)
            or len(head) > self.layout.head_max
            or self._reshaper.garbage_due(view.root.garbage_since, view.read_ms)
        ):
            root = await self._reshaper.reshape(view, touched, root)
        if self._clock_ms() - view.read_ms > MAX_COMPACTION_MS:
            return False  # too slow: a newer root may exist (rule 2); what we wrote is leaked
        if view.root.absent and await self._kv.get(view.index) is not None:
            # A pass over "no root" folds the journal alone, so it must not replace a root that
            # exists after all: one written meanwhile, or one the read missed (a get racing an
            # overwrite from another process in the local simulator; a cached miss at the
            # edge), whose entries may be long gone from the journal. A later pass folds this.
            return False
        text = dump_entries(root.head)
        await self._kv.put(view.index, text, metadata=root.metadata())
        self._structure.remember_folded(view, root)
        self._structure.remember_head(view.index, text, root.head)
        self._structure.remember_stamps(view.index, root)
        return True

    def _collection_due(self, root: Root, now_ms: int) -> bool:
        return root.oldest is not None and root.oldest <= now_ms - self._timing.collection_delay_ms

    def wants_compaction(self, view: IndexView) -> bool:
        """Something to fold, a range to confirm, or journal entries to collect."""
        root = view.root
        if root.seen is None:
            return root.at > 0 or bool(view.journal)
        return (
            self._maybe_pending(view)
            or self._sweeper.due(view)
            or self._newly_vouched(view)
            or (self.full_pass_due(root, view.read_ms) and self._confirmable(view))
            or self._collection_due(root, view.read_ms)
        )


def _earliest(oldest: int | None, times: Iterable[int]) -> int | None:
    return min((t for t in (oldest, *times) if t is not None), default=None)
