"""Reading an index: a page of messages, a count, and a rebuild from the records' metadata."""

from __future__ import annotations

from cursor import CursorScope
from errors import StorageUnavailable
from index.zset import Entry
from kvformat import MESSAGE_PREFIX, participants_key, participation_member
from store.activity import Activity
from store.model import Message, Page, RangeQuery, ReindexResult, Scope
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
        rev = query.order == "desc"
        found: list[Message] = []
        last: Entry | None = position
        # Skipping index entries whose message is gone may need another round to fill the page.
        while len(found) < query.limit:
            want = query.limit - len(found)
            batch = await view.zrange_by_score(
                query.start, query.end, rev=rev, limit=want, after=last
            )
            if not batch:
                break
            fetched = await self._shared.fetch(e.member for e in batch)
            # Nothing is repaired on a read's word: at the edge a record read may be a stale
            # or a cached miss, and a correction journaled from it could outlive a delete or a
            # re-create made elsewhere. An entry whose record is gone is skipped (a retry, an
            # erase or a reindex removes it); one whose record has moved meanwhile (its move
            # not yet folded, or two moves racing) is shown only inside the range asked for.
            found += [
                stored.message for stored in fetched
                if stored is not None
                and query.start <= stored.message["timestamp"] <= query.end
            ]
            last = batch[-1]
        more = last is not None and bool(
            await view.zrange_by_score(query.start, query.end, rev=rev, limit=1, after=last)
        )
        next_cursor = cursors.encode(cursor_scope, last) if more and last else None
        return Page(found, next_cursor)

    async def count(self, scope: Scope, start: int, end: int) -> int:
        return await (await self._shared.view(scope)).zcount(start, end)

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
                        writers.append(Entry(0, participation_member(writer, key.name)))
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
