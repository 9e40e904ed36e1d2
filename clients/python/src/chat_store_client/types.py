"""The API's JSON shapes as TypedDicts, one per schema in ``openapi.json``
(``components.schemas``), with the same names and keys.

Optional keys are ``NotRequired``: they are absent, never ``null``, when unset (the API never
sends ``null`` for them). A unit test (``tests/test_schema_sync.py``) keeps every TypedDict here
equal to its schema, key by key and type by type.

``Problem.code`` is typed ``str``, not a ``Literal`` of today's codes, so that a newer server's
code does not break a client: branch on the exception class (``chat_store_client.errors``).
"""

# No `from __future__ import annotations` here: on Python 3.11, TypedDict reads NotRequired
# only from evaluated annotations (stringified ones would make every key required at runtime).
from typing import Any, Literal, NotRequired, TypedDict

Metadata = dict[str, Any]
"""A free-form JSON object (``components.schemas.Metadata``)."""

Part = dict[str, Any]
"""One structured-content part: a JSON object with a string ``type`` (``text`` parts also have a
string ``text``), stored verbatim; see ``components.schemas.Parts``."""

Order = Literal["asc", "desc"]
ContextScope = Literal["conversation", "user"]


class Sender(TypedDict):
    id: str
    name: NotRequired[str]
    role: NotRequired[str]


class MessageCreate(TypedDict):
    """A message to create. ``content`` and/or ``parts`` must be given."""

    id: NotRequired[str]
    user_id: str
    conversation_id: NotRequired[str]
    sender: Sender
    content: NotRequired[str]
    parts: NotRequired[list[Part]]
    timestamp: NotRequired[int]
    metadata: NotRequired[Metadata]


class MessagePatch(TypedDict, total=False):
    content: str
    parts: list[Part]
    sender: Sender
    metadata: Metadata
    timestamp: int


class Message(TypedDict):
    id: str
    user_id: str
    conversation_id: NotRequired[str]
    sender: Sender
    content: str
    parts: NotRequired[list[Part]]
    timestamp: int
    metadata: NotRequired[Metadata]
    created_at: int
    edited_at: NotRequired[int]


class BatchCreate(TypedDict):
    messages: list[MessageCreate]


class MessageEnvelope(TypedDict):
    message: Message


class MessageList(TypedDict):
    messages: list[Message]


class Page(TypedDict):
    messages: list[Message]
    next_cursor: str | None


class Count(TypedDict):
    count: int


class EraseResult(TypedDict):
    deleted: int
    remaining: int


class ReindexResult(TypedDict):
    index: str
    entries: int
    scanned: int


class Health(TypedDict):
    status: Literal["ok"]


class OpenAPIDocument(TypedDict):
    """The OpenAPI document; only its top-level required keys are typed."""

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


class Problem(TypedDict):
    """An RFC 9457 problem document, as every error response carries."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: NotRequired[str]
    index: NotRequired[int]


class ConversationPatch(TypedDict, total=False):
    title: str
    metadata: Metadata


class LastMessage(TypedDict):
    id: str
    sender: Sender
    timestamp: int
    preview: str


class Conversation(TypedDict):
    id: str
    title: NotRequired[str]
    metadata: NotRequired[Metadata]
    created_at: int
    last_message_at: int
    message_count: int
    last_message: LastMessage


class ConversationEnvelope(TypedDict):
    conversation: Conversation


class ConversationPage(TypedDict):
    conversations: list[Conversation]
    next_cursor: str | None


class MessageContext(TypedDict):
    before: list[Message]
    message: Message
    after: list[Message]
    before_cursor: str | None
    after_cursor: str | None


class ExportPage(TypedDict):
    """One response of an export (not a schema of its own: the body is NDJSON): its messages,
    oldest first, and the ``Chat-Store-Next-Cursor`` header (``None`` on the last one)."""

    messages: list[Message]
    next_cursor: str | None


__all__ = [
    "BatchCreate",
    "ContextScope",
    "Conversation",
    "ConversationEnvelope",
    "ConversationPage",
    "ConversationPatch",
    "Count",
    "EraseResult",
    "ExportPage",
    "Health",
    "LastMessage",
    "Message",
    "MessageContext",
    "MessageCreate",
    "MessageEnvelope",
    "MessageList",
    "MessagePatch",
    "Metadata",
    "OpenAPIDocument",
    "Order",
    "Page",
    "Part",
    "Problem",
    "ReindexResult",
    "Sender",
]
