"""Sorted-set indexes in Workers KV: no lost write under concurrency, bounded cost at any size.

KV has no atomic update, so an index is kept LSM-style: a *root* (the newest entries, in the
seed's format, with the pass's stamps in its metadata), immutable *segments* listed by immutable
*manifests*, and a *journal* of immutable keys written before a write is acknowledged (what is
where: ``kvformat``). Writers only journal (:meth:`IndexStore.append`); readers merge the root
with the journal above their horizon (:meth:`IndexStore.read` gives an :class:`IndexView` with
Redis-style ``zrange_by_score``/``zcount``); passes fold the journal into new roots and segments
after the response (:meth:`IndexStore.compact`) and collect what no root can need any more.
The rules they follow (1-5: when an entry is confirmed, when a pass may write, when anything
may be deleted, what a reader may trust) and why they hold at the edge are in
``docs/design.md``; the code names them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from aio import both
from errors import StorageUnavailable
from index.compactor import Compactor
from index.journal import Journal
from index.pacer import CompactionPacer
from index.reshape import Reshaper
from index.rules import (
    FIRST_PAGE,
    FULL_PASS_MS,
    HINT_MARGIN_MS,
    MAX_COMPACTION_MS,
    MAX_GC_DELETES,
    MAX_HINT_READS,
    MAX_PUT_MS,
    MAX_READ_ENTRIES,
    MIN_SETTLE_MS,
    PAGE_GROWTH,
    Layout,
    Retention,
    Timing,
)
from index.structure import Folded, IndexObjects, Stamps, Structure
from index.view import IndexView
from index.zset import Entry, SortedSet
from kvformat import BOTTOM, Op, Root, dump_entries
from storage.kv import KVStore

__all__ = [
    "FIRST_PAGE",
    "FULL_PASS_MS",
    "MAX_COMPACTION_MS",
    "MAX_GC_DELETES",
    "MAX_PUT_MS",
    "MAX_READ_ENTRIES",
    "MIN_SETTLE_MS",
    "PAGE_GROWTH",
    "Defer",
    "Folded",
    "IndexObjects",
    "IndexStore",
    "IndexView",
    "Layout",
    "Retention",
]

# Runs work after the response (``ctx.waitUntil``); in tests, a list to drain.
Defer = Callable[[Awaitable[object]], None]


class IndexStore:
    """The index's face: journal writes, reads, and passes scheduled after a request.

    ``cache`` (one per isolate) keeps parsed segments and manifests, which are immutable;
    ``defer`` and ``pacer`` decide when passes run (without ``defer``, only when asked).
    """

    def __init__(
        self, kv: KVStore, clock_ms: Callable[[], int], settle_ms: int,
        layout: Layout | None = None, cache: IndexObjects | None = None, *,
        defer: Defer | None = None, pacer: CompactionPacer | None = None,
        retention: Retention | None = None,
    ) -> None:
        self._kv = kv
        self._clock_ms = clock_ms
        self._timing = Timing(settle_ms)
        self.layout = layout or Layout()
        self._defer = defer
        # Without the isolate's pacer, compact after every write (interval 0).
        self._pacer = pacer if pacer is not None else CompactionPacer(interval_ms=0)
        self._structure = Structure(kv, self._timing, cache)
        self._journal = Journal(kv, clock_ms, self._timing, self._structure)
        self._reshaper = Reshaper(kv, clock_ms, self._timing, self.layout, self._structure)
        self.compactor = Compactor(kv, clock_ms, self._timing, self.layout, self._structure,
                                   self._journal, self._reshaper, self._reread, retention)

    @property
    def settle_ms(self) -> int:
        return self._timing.settle_ms

    @property
    def put_ms(self) -> int:
        return self._timing.put_ms

    @property
    def full_pass_ms(self) -> int:
        return self._timing.full_pass_ms

    @property
    def trust_ms(self) -> int:
        return self._timing.trust_ms

    @property
    def collection_delay_ms(self) -> int:
        return self._timing.collection_delay_ms

    # -- when to compact --------------------------------------------------------------------

    def after_write(self, index: str) -> None:
        """Call after journaling to ``index``: schedules the compaction that folds it, at the
        end of the pacer's interval (what follows soon shares it)."""
        self._compact_soon(index, trailing=True)

    def after_read(self, view: IndexView) -> None:
        """Call with a view a request read: compacts (from it, if now) when it shows work."""
        if self._defer is None or self._pacer.is_scheduled(view.index):
            return  # the scheduled pass reads the index afresh and folds this view's work too
        if self.wants_compaction(view):
            self._compact_soon(view.index, view)

    def _compact_soon(
        self, index: str, view: IndexView | None = None, *, trailing: bool = False
    ) -> None:
        """Hand a compaction of ``index`` to ``defer``, paced: now (of ``view`` if given),
        later, or not at all when one is already scheduled that will fold this too."""
        if self._defer is None:
            return
        delay = self._pacer.plan(index, self._clock_ms(), trailing=trailing)
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

    # -- writing and reading ----------------------------------------------------------------

    async def append(self, index: str, ops: Sequence[Op]) -> None:
        """Durably journal ``ops`` for ``index``; once this returns, readers see them."""
        await self._journal.append(index, ops)

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
        # The root and the journal's first page in one round trip: the page is sized for the
        # root this isolate read last, and the walk goes on from it as far as the root it gets
        # says. Listed after ``read_ms`` as before, so rule 1 holds for passes; a root got a
        # moment after the listing is like a cached one, older than the rules allow for.
        last = self._structure.last_stamps(index)
        guess = last is not None and self._horizon(last, read_ms, trust)[1]
        root, listed = await both(
            self._structure.root(index), self._journal.first_page(index, deep=guess)
        )
        horizon, full = self._horizon(root, read_ms, trust)
        window, hints, truncated, legacy = await self._journal.scan(
            index, horizon, MAX_READ_ENTRIES if cap else None,
            HINT_MARGIN_MS if full else 0, listed,
        )
        # Only entries journaled before every op fitted in metadata (or a lone op too big for
        # it) have their ops in the value alone; a reader reads a bounded number of them.
        unread = [j for j in window if j.ops is None][: MAX_HINT_READS if cap else None]
        loaded = dict(zip(
            (j.key for j in unread),
            await asyncio.gather(*(self._journal.ops_of(j) for j in unread)),
            strict=True,
        ))
        window = [replace(j, ops=loaded.get(j.key, ())) if j.ops is None else j for j in window]
        return IndexView(self._structure, index, root, window, read_ms, hints,
                         settle_ms=self._timing.settle_ms, horizon=horizon,
                         full=full and not truncated,
                         trusted=not full, truncated=truncated, legacy=legacy)

    def _horizon(self, root: Root | Stamps, read_ms: int, trust: bool | None) -> tuple[int, bool]:
        """How far down a read at ``read_ms`` lists the journal over ``root`` (see
        :meth:`read`), and whether that is the confirmed horizon (rule 1) rather than a
        trusted one (rule 5)."""
        if trust is None:
            trust = not self.compactor.full_pass_due(root, read_ms)
        confirmed = root.at - self._timing.settle_ms
        seen = root.seen
        trusted = trust and read_ms - root.at < self._timing.trust_ms
        if trusted and seen is not None and seen > confirmed:
            return seen, False
        return confirmed, True

    async def _reread(self, index: str, trust: bool, cap: bool) -> IndexView:
        return await self.read(index, trust=trust, cap=cap)

    # -- passes -----------------------------------------------------------------------------

    async def compact(self, view: IndexView) -> bool:
        """Fold the view's journal into a new root; collect what no reader can need any more.
        Returns True when a new root was written; KV trouble only delays convergence."""
        return await self.compactor.compact(view)

    def wants_compaction(self, view: IndexView) -> bool:
        """Something to fold, a range to confirm, or journal entries to collect."""
        return self.compactor.wants_compaction(view)

    def lags_behind_root(self, view: IndexView) -> bool:
        """The listing does not show the newest entry the root folded: good for reading, not
        for a pass (see ``Compactor.lags_behind_root``)."""
        return self.compactor.lags_behind_root(view)

    # -- repair -----------------------------------------------------------------------------

    async def rebuild(self, index: str, entries: list[Entry], scan_started_ms: int) -> bool:
        """Replace the whole index with a set rebuilt from message records (``reindex``).

        Stamped with the time the scan began: every journal entry settled before then is
        reflected in the records it read; later ones are replayed on top by readers. Like a
        compaction, a scan that took too long must not write (rule 2). The old structure
        becomes garbage of the new manifest.
        """
        old = await self._structure.root(index)
        old_manifest = await self._structure.manifest(old.manifest_key)
        ordered = SortedSet(entries).entries()
        head_part = ordered[-self.layout.head_keep :] if ordered else []
        older = ordered[: len(ordered) - len(head_part)]
        now = self._clock_ms()
        garbage = [*old_manifest.garbage, *((s.key, now) for s in old_manifest.segments)]
        if old.manifest_key is not None:
            garbage.append((old.manifest_key, now))
        parts = self._reshaper.split(older, BOTTOM, index) if older else []
        await asyncio.gather(*(self._kv.put(s.key, dump_entries(e)) for s, e in parts))
        # The records are the truth as of the scan: nothing beyond the confirmed horizon is
        # claimed, and the journal's age is unknown, so the next full pass collects.
        confirmed = scan_started_ms - self._timing.settle_ms
        root = Root(SortedSet.from_sorted(head_part), scan_started_ms, seen=confirmed,
                    newest=confirmed, oldest=0)
        if parts or garbage:
            root.manifest_key = await self._structure.write_manifest(
                index, [s for s, _ in parts], garbage, now
            )
            root.head_lo = head_part[0] if parts and head_part else BOTTOM
            root.garbage_since = min((since for _, since in garbage), default=None)
        if self._clock_ms() - scan_started_ms > MAX_COMPACTION_MS:
            return False
        await self._kv.put(index, dump_entries(head_part), metadata=root.metadata())
        return True
