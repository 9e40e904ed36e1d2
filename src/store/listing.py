"""Reading an index: a page of messages, a count, and a rebuild from the records' metadata."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from cursor import CursorScope
from errors import StorageUnavailable
from index.sorted_index import IndexView
from index.zset import MAX_SCORE, MIN_SCORE, Entry
from jsonutil import is_int
from kvformat import MESSAGE_PREFIX, message_key, participants_key, participation_member
from storage.kv import ValueWithMetadata, get_many_with_metadata
from store.activity import Activity
from store.model import (
    Context,
    ExportPage,
    Message,
    Order,
    Page,
    RangeQuery,
    ReindexResult,
    Scope,
)
from store.shared import Shared

# 900 list calls scan 900,000 message keys and still leave room in the 1,000-op budget.
MAX_REINDEX_PAGES = 900


class Listing:
    def __init__(self, shared: Shared, activity: Activity) -> None:
        self._shared = shared
        self._activity = activity

    async def list_page(self, scope: Scope, query: RangeQuery) -> Page:
        view = await self._shared.view(scope)
        cursors = self._shared.cursors
        cursor_scope = CursorScope(scope.index, query.order, query.start, query.end)
        position = cursors.decode(query.cursor, cursor_scope) if query.cursor else None
        start = max(query.start, self._shared.floor())  # the cursor's scope is the query's
        run = await _collect(self._shared, view, start, query.end,
                             rev=query.order == "desc", limit=query.limit, after=position)
        next_cursor = cursors.encode(cursor_scope, run.last) if run.more and run.last else None
        return Page(run.texts, next_cursor)

    async def export_page(self, scope: Scope, limit: int, cursor: str | None) -> ExportPage:
        """Up to ``limit`` messages, oldest first, each as the JSON text stored for it."""
        view = await self._shared.view(scope)
        cursors = self._shared.cursors
        cursor_scope = CursorScope(scope.index, "asc", MIN_SCORE, MAX_SCORE)
        position = cursors.decode(cursor, cursor_scope) if cursor else None
        run = await _collect(self._shared, view, self._shared.floor(), MAX_SCORE, rev=False,
                             limit=limit, after=position)
        next_cursor = cursors.encode(cursor_scope, run.last) if run.more and run.last else None
        return ExportPage(run.texts, next_cursor)

    async def context(self, scope: Scope, message: Message, before: int, after: int) -> Context:
        """The messages listed before and after ``message`` in ``scope`` (both oldest first),
        with cursors that continue the scope's listing past them in each direction."""
        view = await self._shared.view(scope)
        cursors = self._shared.cursors
        here = Entry(message["timestamp"], message_key(message["id"]))
        floor = self._shared.floor()
        older, newer = await asyncio.gather(
            _collect(self._shared, view, floor, MAX_SCORE, rev=True, limit=before, after=here),
            _collect(self._shared, view, floor, MAX_SCORE, rev=False, limit=after, after=here))

        def cursor(run: _Run, order: Order) -> str | None:
            if not run.more:
                return None
            scope_of_listing = CursorScope(scope.index, order, MIN_SCORE, MAX_SCORE)
            return cursors.encode(scope_of_listing, run.last or here)

        return Context(
            before=older.messages[::-1],
            message=message,
            after=newer.messages,
            before_cursor=cursor(older, "desc"),
            after_cursor=cursor(newer, "asc"),
        )

    async def count(self, scope: Scope, start: int, end: int) -> int:
        return await (await self._shared.view(scope)).zcount(max(start, self._shared.floor()),
                                                             end)

    async def reindex(self, scope: Scope) -> ReindexResult:
        """Rebuild an index from the message records' KV metadata: one ``list`` per 1,000
        messages in the namespace, no value reads."""
        started = self._shared.clock_ms()
        field_name = "u" if scope.kind == "user" else "c"
        entries: list[Entry] = []
        writers: list[Entry] = []  # a conversation's participants index, from the same records
        scanned = 0
        cursor: str | None = None
        for _ in range(MAX_REINDEX_PAGES):
            page = await self._shared.kv.list(prefix=MESSAGE_PREFIX, cursor=cursor)
            scanned += len(page.keys)
            for key in page.keys:
                meta = key.metadata or {}
                score = meta.get("s")
                if meta.get(field_name) == scope.id and isinstance(score, int):
                    entries.append(Entry(score, key.name))
                    writer = meta.get("u")
                    if isinstance(writer, str):
                        writers.append(Entry(0, participation_member(writer, score, key.name)))
            if page.list_complete or not page.cursor:
                break
            cursor = page.cursor
        else:
            raise StorageUnavailable(detail="too many messages to reindex in one request")
        if not await self._shared.indexes.rebuild(scope.index, entries, started):
            raise StorageUnavailable(detail="the reindex scan took too long; retry")
        if scope.kind == "conversation":
            # The records say who writes in it: lists a crashed write left behind catch up.
            listed_before = await self._activity.participants(scope.id)
            if not await self._shared.indexes.rebuild(participants_key(scope.id), writers,
                                                      started):
                raise StorageUnavailable(detail="the reindex scan took too long; retry")
            await self._activity.refresh(scope.id, leavers=listed_before)
        return ReindexResult(scope.index, len(entries), scanned)


@dataclass
class _Run:
    """Messages read along an index in one direction: their stored JSON text, the last entry
    examined and whether the index goes on past it."""

    texts: list[str] = field(default_factory=list)
    last: Entry | None = None
    more: bool = False

    @property
    def messages(self) -> list[Message]:
        return [json.loads(text) for text in self.texts]


async def _collect(
    shared: Shared, view: IndexView, start: int, end: int, *, rev: bool, limit: int,
    after: Entry | None,
) -> _Run:
    """Up to ``limit`` messages along ``view`` past ``after``, as their stored JSON text,
    skipping entries whose message is gone (which may take another round to fill the page).
    Records are not parsed: the timestamp comes from their metadata."""
    run = _Run(last=after)
    while len(run.texts) < limit:
        want = limit - len(run.texts)
        batch = await view.zrange_by_score(start, end, rev=rev, limit=want, after=run.last)
        if not batch:
            break
        found = await get_many_with_metadata(shared.kv, [e.member for e in batch])
        # Nothing is repaired on a read's word: at the edge a record read may be a stale or a
        # cached miss, and a correction journaled from it could outlive a delete or a
        # re-create made elsewhere. An entry whose record is gone is skipped (a retry, an erase
        # or a reindex removes it); one whose record has moved meanwhile (its move not yet
        # folded, or two moves racing) is shown only inside the range asked for.
        for value in found:
            if value is not None and start <= _timestamp(value) <= end:
                run.texts.append(value.value)
        run.last = batch[-1]
    run.more = run.last is not None and bool(
        await view.zrange_by_score(start, end, rev=rev, limit=1, after=run.last))
    return run


def _timestamp(record: ValueWithMetadata) -> int:
    """A record's timestamp, from its metadata (``s``, written with it), else from its JSON."""
    stamped: object = (record.metadata or {}).get("s")
    if is_int(stamped):
        return stamped
    timestamp: int = json.loads(record.value)["timestamp"]
    return timestamp
