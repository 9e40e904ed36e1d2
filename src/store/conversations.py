"""Conversations as a chat app's sidebar shows them: a user's list, most recent activity first,
and each conversation's title, metadata, counts and newest message.

The list's order comes from the user's conversation list (``store.activity`` keeps it); what an
item says comes from the conversation's own message index and records, read at once, so counts
and previews follow every edit, delete and erase without waiting for anything. An entry that no
longer names its conversation's newest message, or whose user no longer writes in it (a writer
is still correcting it, or died before it could), is skipped.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from cursor import CursorScope
from errors import NotFound
from index.zset import Entry
from jsonutil import dumps
from kvformat import conversation_key, conversation_list_key, message_id_of
from store.activity import NEWEST_CLEARED, Activity
from store.model import ConversationPage, RangeQuery, Record, Scope
from store.shared import Shared

PREVIEW_CHARS = 200

Conversation = dict[str, Any]


class Conversations:
    def __init__(self, shared: Shared, activity: Activity) -> None:
        self._shared = shared
        self._activity = activity

    async def list_page(self, user_id: str, query: RangeQuery) -> ConversationPage:
        index = conversation_list_key(user_id)
        indexes = self._shared.indexes
        view = await indexes.read(index)
        indexes.after_read(view)
        cursors = self._shared.cursors
        cursor_scope = CursorScope(index, query.order, query.start, query.end)
        position = cursors.decode(query.cursor, cursor_scope) if query.cursor else None
        rev = query.order == "desc"
        start = max(query.start, self._shared.floor())  # the cursor's scope is the query's
        found: list[Conversation] = []
        last: Entry | None = position
        while len(found) < query.limit:
            batch = await view.zrange_by_score(start, query.end, rev=rev,
                                               limit=query.limit - len(found), after=last)
            if not batch:
                break
            items = await asyncio.gather(*(self._item(entry, user_id) for entry in batch))
            found += [item for item in items if item is not None]
            last = batch[-1]
        more = last is not None and bool(
            await view.zrange_by_score(start, query.end, rev=rev, limit=1, after=last))
        next_cursor = cursors.encode(cursor_scope, last) if more and last else None
        return ConversationPage(found, next_cursor)

    async def _item(self, entry: Entry, user_id: str) -> Conversation | None:
        """The conversation a list entry names, if the entry is its newest message's and the
        user still writes in it."""
        stored = await self._shared.load(message_id_of(entry.member))
        if (stored is None or stored.message["timestamp"] != entry.score
                or not self._shared.kept(stored.message)):
            return None
        conversation_id = stored.message.get("conversation_id")
        if conversation_id is None:
            return None
        if stored.message["user_id"] == user_id:  # the newest message is the user's own
            return await self._summary(conversation_id, newest=stored, expected=entry.member)
        summary, writes = await asyncio.gather(
            self._summary(conversation_id, newest=stored, expected=entry.member),
            self._activity.writes_in(conversation_id, user_id))
        return summary if writes else None

    async def get(self, conversation_id: str, viewer: str | None = None) -> Conversation:
        """The conversation; with ``viewer``, one that user has no message in is missing."""
        summary = await self._summary(conversation_id)
        if summary is None or (
            viewer is not None
            and not await self._activity.writes_in(conversation_id, viewer)
        ):
            raise NotFound(f"conversation {conversation_id!r} does not exist")
        return summary

    async def patch(
        self, conversation_id: str, changes: dict[str, Any], viewer: str | None = None
    ) -> Conversation:
        summary = await self.get(conversation_id, viewer)
        fields = await self._fields(conversation_id)
        updated = {**fields, **changes}
        if updated != fields:
            await self._shared.kv.put(conversation_key(conversation_id), dumps(updated))
        return _with_fields(summary, updated)

    async def _fields(self, conversation_id: str) -> dict[str, Any]:
        raw = await self._shared.kv.get(conversation_key(conversation_id))
        found = json.loads(raw) if raw is not None else {}
        return found if isinstance(found, dict) else {}

    async def _summary(
        self, conversation_id: str, newest: Record | None = None, expected: str | None = None
    ) -> Conversation | None:
        view = await self._shared.view(Scope("conversation", conversation_id))
        floor = self._shared.floor()
        top = await view.zrange_by_score(floor, rev=True, limit=NEWEST_CLEARED)
        if not top or (expected is not None and top[0].member != expected):
            return None
        if newest is None:
            # The newest entries whose record exists: a create may still be writing its own.
            records = await self._shared.fetch(e.member for e in top)
            newest = next((r for r in records if r is not None), None)
            if newest is None:
                return None
        count, oldest, fields = await asyncio.gather(
            view.zcount(floor), view.zrange_by_score(floor, limit=1),
            self._fields(conversation_id))
        message = newest.message
        summary: Conversation = {
            "id": conversation_id,
            "created_at": oldest[0].score if oldest else message["timestamp"],
            "last_message_at": message["timestamp"],
            "message_count": count,
            "last_message": {
                "id": message["id"],
                "sender": message["sender"],
                "timestamp": message["timestamp"],
                "preview": message["content"][:PREVIEW_CHARS],
            },
        }
        return _with_fields(summary, fields)


def _with_fields(summary: Conversation, fields: dict[str, Any]) -> Conversation:
    """The summary with the conversation's own fields (those set) after its id."""
    head = {"id": summary["id"]}
    head.update({k: fields[k] for k in ("title", "metadata") if k in fields})
    return {**head, **summary}
