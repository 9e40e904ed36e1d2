"""The store's values: what it accepts (drafts, patches, range queries, which ``validation``
makes from requests), scopes, pages, records and results, and which indexes list a message."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from index.zset import MAX_SCORE, MIN_SCORE
from kvformat import (
    Op,
    earlier_positions,
    message_key,
    participants_key,
    participation_member,
)
from storage.kv import ValueWithMetadata

# Earlier positions a record remembers: enough for several crashed moves in a row, and read
# repair or a reindex covers anything older.
MAX_POSITION_HISTORY = 4

Message = dict[str, Any]
Parts = list[dict[str, Any]]  # structured content (AI SDK ``UIMessage`` parts), stored verbatim
ScopeKind = Literal["user", "conversation"]
Order = Literal["asc", "desc"]
DEFAULT_LIMIT = 50  # messages per page when the query names no limit


@dataclass(frozen=True)
class MessageDraft:
    """A validated create request. ``id``/``timestamp`` are None when the server picks them."""

    user_id: str
    sender: dict[str, str]
    content: str
    id: str | None = None
    conversation_id: str | None = None
    timestamp: int | None = None
    metadata: dict[str, Any] | None = None
    parts: Parts | None = None


@dataclass(frozen=True)
class MessagePatch:
    changes: dict[str, Any]


@dataclass(frozen=True)
class RangeQuery:
    limit: int = DEFAULT_LIMIT
    order: Order = "desc"
    start: int = MIN_SCORE
    end: int = MAX_SCORE
    cursor: str | None = None


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    id: str

    @property
    def index(self) -> str:
        return f"{self.kind}:chat:{self.id}"


@dataclass(frozen=True)
class Page:
    """A page of messages as the JSON text stored for each: a response sends them on as they
    are, with no parse and re-serialisation per record; ``messages`` parses them for Python
    callers (once)."""

    texts: list[str]
    next_cursor: str | None

    @cached_property
    def messages(self) -> list[Message]:
        return [json.loads(text) for text in self.texts]


@dataclass(frozen=True)
class ExportPage:
    lines: list[str]  # each message's stored JSON, oldest first
    next_cursor: str | None


@dataclass(frozen=True)
class Context:
    before: list[Message]
    message: Message
    after: list[Message]
    before_cursor: str | None
    after_cursor: str | None


@dataclass(frozen=True)
class ConversationPage:
    conversations: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class Record:
    """A message record and its earlier positions: timestamps (newest first) at which
    an index entry may survive a move whose index write never happened. Kept in KV metadata."""

    message: Message
    earlier: tuple[int, ...] = ()


@dataclass(frozen=True)
class ReindexResult:
    index: str
    entries: int
    scanned: int


@dataclass(frozen=True)
class EraseResult:
    deleted: int
    remaining: int


def indexes_of(message: Message) -> list[str]:
    return scope_indexes(message["user_id"], message.get("conversation_id"))


def scope_indexes(user_id: str, conversation_id: str | None) -> list[str]:
    """The indexes that list a message of this user (and conversation, if any)."""
    indexes = [Scope("user", user_id).index]
    if conversation_id is not None:
        indexes.append(Scope("conversation", conversation_id).index)
    return indexes


def participation(
    message: Message, present: bool, earlier: Iterable[int] = ()
) -> dict[str, list[Op]]:
    """The ops on the participants index of the message's conversation (none without one): the
    message's entry there (``user:{user}:{timestamp}:chat:{id}``, score 0), or its removal, and
    the removal of its entries at ``earlier`` timestamps (where a move left them)."""
    conversation_id = message.get("conversation_id")
    if conversation_id is None:
        return {}
    user_id, member = message["user_id"], message_key(message["id"])
    now = participation_member(user_id, message["timestamp"], member)
    ops = [Op.rem(participation_member(user_id, t, member), 0)
           for t in dict.fromkeys(earlier) if t != message["timestamp"]]
    ops.append(Op.add(now, 0, 0) if present else Op.rem(now, 0))
    return {participants_key(conversation_id): ops}


def message_ops(message: Message, op: Op, earlier: Iterable[int] = ()) -> dict[str, list[Op]]:
    """``op`` (an add or a removal of the message's member) on every index that lists the
    message, and the matching op on its conversation's participants index (see
    :func:`participation`; ``earlier``: timestamps whose participants entries go)."""
    return merge_ops({index: [op] for index in indexes_of(message)},
                     participation(message, op.kind == "add", earlier))


def merge_ops(*parts: dict[str, list[Op]]) -> dict[str, list[Op]]:
    """Ops by index, several sets of them in order."""
    merged: dict[str, list[Op]] = {}
    for part in parts:
        for index, ops in part.items():
            merged.setdefault(index, []).extend(ops)
    return merged


def record_from(found: ValueWithMetadata) -> Record:
    """A record as read from KV: the message, and its earlier positions from the metadata."""
    return Record(json.loads(found.value),
                  earlier_positions(found.metadata, MAX_POSITION_HISTORY))
