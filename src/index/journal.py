"""An index's journal: immutable, uniquely named keys written before a write is acknowledged,
listed newest first down to a horizon, and collected by version prefixes once no root can need
them (rule 3)."""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from aio import gather
from errors import StorageUnavailable
from index.rules import (
    FIRST_PAGE,
    MAX_GC_DELETES,
    MAX_JOURNAL_ATTEMPTS,
    MAX_PROBES,
    PAGE_GROWTH,
    Timing,
)
from index.structure import Structure
from jsonutil import dumps
from kvformat import (
    METADATA_ROOM,
    VERSION_BUCKET,
    VERSION_BUCKET_DIGITS,
    VERSION_CEILING,
    JournalEntry,
    Op,
    journal_key,
    journal_key_time,
    journal_prefix,
    metadata_pieces,
    parse_ops,
    version_prefixes,
)
from storage.kv import MAX_LIST_LIMIT, KVStore, ListPage

if TYPE_CHECKING:
    from index.view import IndexView

_counter = itertools.count()


class FirstPage(NamedTuple):
    """A journal's first listing page and the limit it was listed with (the next grows
    from it)."""

    page: ListPage
    limit: int


class Journal:
    """Writes journal pieces, lists them newest first, and deletes the collectable ones."""

    def __init__(
        self, kv: KVStore, clock_ms: Callable[[], int], timing: Timing, structure: Structure
    ) -> None:
        self._kv = kv
        self._structure = structure  # its cache keeps parsed ops
        self._clock_ms = clock_ms
        self._timing = timing

    def _key(self, index: str, now_ms: int) -> str:
        # The counter counts down too, so the later of two pieces written in one millisecond by
        # this isolate is listed (and so applied) as the newer one.
        seq = 0xFFFFFF - (next(_counter) & 0xFFFFFF)
        return journal_key(index, now_ms, seq, secrets.token_hex(5))

    async def append(self, index: str, ops: Sequence[Op]) -> None:
        """Durably journal ``ops`` for ``index``; once this returns, readers see them.

        Ops go in pieces small enough for KV metadata, one journal key each, so that a listing
        carries every op and no reader or compaction ever reads a journal value.

        A pass vouches for every entry written up to ``put_ms`` before it read (rule 5), so an
        entry must be listable within ``put_ms`` of the time in its key. A put that took longer
        (a slow KV, retries, a starved isolate) may have been missed by such a pass, and a
        trusting reader would not list it until the next full pass: it is written again under a
        fresh key (a replay is harmless: the later copy carries the same ops). Only when every
        attempt is that slow does the write fail (503), before anything is acknowledged.
        """
        if not ops:
            return
        pieces = [(piece, dumps(piece)) for piece in metadata_pieces([op.to_json() for op in ops])]
        for _ in range(MAX_JOURNAL_ATTEMPTS):
            now = self._clock_ms()
            puts = []
            for piece, text in pieces:
                metadata: dict[str, object] = {"t": now}
                if len(text.encode("utf-8")) <= METADATA_ROOM:
                    metadata["ops"] = piece
                puts.append(self._kv.put(self._key(index, now), text, metadata=metadata))
            await gather(*puts)
            if self._clock_ms() - now <= self._timing.put_ms:
                return
        raise StorageUnavailable(
            detail=f"journal writes to {index} kept taking longer than {self._timing.put_ms} ms"
        )

    async def first_page(self, index: str, deep: bool) -> FirstPage:
        """The newest keys of the journal of ``index``, as many as a walk as ``deep`` is likely
        to need (see ``Structure.first_page``): listed before the walk's horizon is known."""
        limit = self._structure.first_page(index, deep)
        return FirstPage(await self._kv.list(prefix=journal_prefix(index), limit=limit), limit)

    async def scan(
        self, index: str, horizon: int, cap: int | None, hint_margin_ms: int = 0,
        listed: FirstPage | None = None,
    ) -> tuple[list[JournalEntry], list[Op], bool, bool]:
        """The entries written after ``horizon`` (oldest first), the ops of those written within
        ``hint_margin_ms`` below it (position hints), whether ``cap`` cut the entries, and
        whether entries of the previous release's key format were met.

        The listing is newest first, so this reads only as far back as it must, a page at a
        time (from ``listed``, when its first page was listed already), and keeps nothing of a
        page but what it needs.
        """
        window: list[JournalEntry] = []
        hints: list[Op] = []
        truncated = legacy = False
        deep = hint_margin_ms > 0
        walked = 0
        async for entry in self.walk(
            index, first_page=self._structure.first_page(index, deep), listed=listed
        ):
            walked += 1
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
        self._structure.remember_walked(index, deep, walked)
        window.reverse()
        return window, hints, truncated, legacy

    async def walk(
        self, index: str, versions: str = "", *, with_ops: bool = True,
        first_page: int = FIRST_PAGE, listed: FirstPage | None = None,
    ) -> AsyncIterator[JournalEntry]:
        """The journal entries of ``index`` whose version starts with ``versions``, newest
        first, listed a page at a time (pages grow from ``first_page``: see ``PAGE_GROWTH``;
        ``listed``: the first page of the whole journal, listed already); without
        ``with_ops``, ops are left unparsed (None)."""
        prefix = journal_prefix(index)
        cursor: str | None = None
        limit = first_page
        page: ListPage | None = None
        if listed is not None and not versions:
            page, limit = listed.page, listed.limit
        while True:
            if page is None:
                page = await self._kv.list(prefix=prefix + versions, limit=limit, cursor=cursor)
            for key in page.keys:
                written, legacy = journal_key_time(key.name, prefix, key.metadata)
                raw_ops = (key.metadata or {}).get("ops") if with_ops else None
                ops = (self._structure.journal_ops(key.name, raw_ops) if raw_ops is not None
                       else None)
                yield JournalEntry(key.name, written, ops, legacy)
            if page.list_complete or not page.cursor:
                return
            cursor, limit = page.cursor, min(MAX_LIST_LIMIT, limit * PAGE_GROWTH)
            page = None

    async def ops_of(self, entry: JournalEntry) -> tuple[Op, ...]:
        if entry.ops is not None:
            return entry.ops
        raw = await self._kv.get(entry.key)
        if raw is None:  # deleted by a concurrent GC, so it is folded already
            return ()
        return parse_ops(json.loads(raw)) or ()

    async def collect(self, view: IndexView, oldest: int) -> int | None:
        """Delete the journal entries no root can need any more (rule 3), measured from the
        root the full pass read; returns a time at or below the write time of every entry left
        (the oldest one's, when found), or None when the journal is empty.

        ``oldest`` is such a time for the journal before this round (the root's ``j`` and the
        view's window). Versions count down from the clock, so the entries written in a time
        range are the keys under a few decimal prefixes of their version: a busy index's
        journal holds ``2S`` of writes, and this lists the few seconds of it that are due.
        """
        confirmed = view.root.at - self._timing.settle_ms
        cutoff = min(view.read_ms - self._timing.collection_delay_ms, confirmed)
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
            async for entry in self.walk(view.index, versions, with_ops=False):
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
                     async for entry in self.walk(index, versions, with_ops=False)
                     if entry.written_ms > after]
            if found:
                return found
        return []
