"""The chat store: messages in KV, listed through sorted-set indexes.

Messages are records at ``chat:{id}``, listed through the sorted-set indexes of their user and
conversation (``index``); the keys and codecs are in ``kvformat``, the argument for the write
order in ``docs/design.md``.

Write order keeps every crash point harmless (a crash leaves extra or stale index entries, never
a live message that no index can find), nothing is corrected on the word of a read, and races
are settled where they happen (``docs/design.md`` §3 has the argument). Index compaction is
handed to ``defer`` so it runs after the response.

``ChatStore`` is the public face; the work is done by the parts in ``store``: ``create``
(creates and replays), ``messages`` (get, patch, delete), ``plans`` (delete and erase plans),
``listing`` (list, count, reindex) and ``erase``, over one ``shared.Shared`` (KV, clock,
indexes, cursors). The values and constants other modules use are importable from here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from cursor import CursorCodec
from index.pacer import CompactionPacer
from index.sorted_index import Defer, IndexObjects, IndexStore, Layout, Retention
from storage.kv import KVStore
from store.activity import Activity
from store.conversations import PREVIEW_CHARS, Conversation, Conversations
from store.create import Creator
from store.erase import MAX_ERASE_PER_REQUEST, MAX_INTENTS, Eraser
from store.listing import MAX_REINDEX_PAGES, Listing
from store.messages import Messages
from store.model import (
    MAX_POSITION_HISTORY,
    Context,
    ConversationPage,
    EraseResult,
    ExportPage,
    Message,
    MessageDraft,
    MessagePatch,
    Page,
    RangeQuery,
    Record,
    ReindexResult,
    Scope,
    ScopeKind,
    indexes_of,
)
from store.plans import MAX_DELETE_MS, Plans
from store.shared import Shared

__all__ = [
    "MAX_DELETE_MS",
    "MAX_ERASE_PER_REQUEST",
    "MAX_INTENTS",
    "MAX_POSITION_HISTORY",
    "MAX_REINDEX_PAGES",
    "PREVIEW_CHARS",
    "ChatStore",
    "Context",
    "Conversation",
    "ConversationPage",
    "EraseResult",
    "ExportPage",
    "Message",
    "MessageDraft",
    "MessagePatch",
    "Page",
    "RangeQuery",
    "Record",
    "ReindexResult",
    "Scope",
    "ScopeKind",
    "indexes_of",
]


class ChatStore:
    def __init__(
        self,
        kv: KVStore,
        clock_ms: Callable[[], int],
        defer: Defer,
        *,
        settle_ms: int,
        cursor_secret: str,
        layout: Layout | None = None,
        index_objects: IndexObjects | None = None,
        pacer: CompactionPacer | None = None,
        retention_ms: int | None = None,
    ) -> None:
        """``retention_ms``: messages whose timestamp is older than that are gone (None: kept
        forever)."""
        indexes = IndexStore(kv, clock_ms, settle_ms, layout, index_objects, defer=defer,
                             pacer=pacer,
                             retention=None if retention_ms is None else Retention(retention_ms))
        shared = Shared(kv, clock_ms, indexes, CursorCodec(cursor_secret), retention_ms)
        activity = Activity(shared)
        plans = Plans(shared, activity)
        self._creator = Creator(shared, plans, activity, defer,
                                pacer.sleep if pacer is not None else asyncio.sleep)
        self._messages = Messages(shared, plans, activity)
        self._listing = Listing(shared, activity)
        self._eraser = Eraser(shared, plans, activity)
        self._conversations = Conversations(shared, activity)
        self._activity = activity

    async def create(self, draft: MessageDraft) -> tuple[Message, bool]:
        """Store a message; returns it and whether it was new (False: an identical replay)."""
        messages, created = await self.create_many([draft])
        return messages[0], created[0]

    async def create_many(self, drafts: Sequence[MessageDraft]) -> tuple[list[Message], list[bool]]:
        """All-or-nothing: conflicts are found before anything is written."""
        return await self._creator.create_many(drafts)

    async def get(self, message_id: str, owner: str | None = None) -> Message:
        """The message; with ``owner``, another user's message is reported exactly as missing."""
        return await self._messages.get(message_id, owner)

    async def patch(
        self, message_id: str, patch: MessagePatch, owner: str | None = None
    ) -> Message:
        return await self._messages.patch(message_id, patch, owner)

    async def delete(self, message_id: str, owner: str | None = None) -> None:
        await self._messages.delete(message_id, owner)

    async def list_page(self, scope: Scope, query: RangeQuery) -> Page:
        return await self._listing.list_page(scope, query)

    async def export_page(self, scope: Scope, limit: int, cursor: str | None) -> ExportPage:
        """Up to ``limit`` messages of ``scope``, oldest first, as their stored JSON text."""
        return await self._listing.export_page(scope, limit, cursor)

    async def context(
        self, message: Message, scope: Scope, before: int, after: int
    ) -> Context:
        """``before`` and ``after`` messages around ``message`` in ``scope``'s listing order."""
        return await self._listing.context(scope, message, before, after)

    async def count(self, scope: Scope, start: int, end: int) -> int:
        return await self._listing.count(scope, start, end)

    async def reindex(self, scope: Scope) -> ReindexResult:
        """Rebuild an index from the message records' KV metadata: one ``list`` per 1,000
        messages in the namespace, no value reads."""
        return await self._listing.reindex(scope)

    async def erase(self, scope: Scope) -> EraseResult:
        """Delete every message of a user or conversation, from every index they are in."""
        return await self._eraser.erase(scope)

    async def truncate(
        self, conversation_id: str, after: Message, allowed: Callable[[Message], bool] | None = None
    ) -> EraseResult:
        """Delete the conversation's messages listed after ``after``, a chunk per request;
        with ``allowed``, only if every one of them passes it (else 403, nothing deleted)."""
        return await self._eraser.truncate(Scope("conversation", conversation_id), after,
                                           allowed)

    async def writes_in(self, conversation_id: str, user_id: str) -> bool:
        """Whether the user has a message in the conversation."""
        return await self._activity.writes_in(conversation_id, user_id)

    async def list_conversations(self, user_id: str, query: RangeQuery) -> ConversationPage:
        """The user's conversations by activity (their newest message's timestamp)."""
        return await self._conversations.list_page(user_id, query)

    async def get_conversation(
        self, conversation_id: str, viewer: str | None = None
    ) -> Conversation:
        """The conversation; with ``viewer``, one that user has no message in is missing."""
        return await self._conversations.get(conversation_id, viewer)

    async def patch_conversation(
        self, conversation_id: str, changes: dict[str, Any], viewer: str | None = None
    ) -> Conversation:
        """Set its ``title`` and/or ``metadata``; a conversation with no message is missing."""
        return await self._conversations.patch(conversation_id, changes, viewer)
