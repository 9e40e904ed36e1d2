"""A LangChain chat message history stored in chat-store (needs the ``langchain`` extra).

::

    from chat_store_client import ChatStore
    from chat_store_client.langchain import ChatStoreMessageHistory

    store = ChatStore()  # CHAT_STORE_URL, CHAT_STORE_TOKEN
    history = ChatStoreMessageHistory(store, user_id="alice", conversation_id="c1")
    history.add_messages([HumanMessage("hi"), AIMessage("hello")])
    history.messages  # -> [HumanMessage("hi"), AIMessage("hello")]

**The history is the conversation**: ``messages`` lists every message of ``conversation_id``
in listing order (also those other clients or users wrote), and new messages are stored in it
under ``user_id`` (the chat's owner: an assistant's reply is the user's data too, so a user
token may read, truncate and erase it).

**Mapping.** A LangChain message becomes one stored message:

- ``sender.role``: ``user`` (``HumanMessage``), ``assistant`` (``AIMessage``), ``system``,
  ``tool`` (``ToolMessage``), ``function``, or a ``ChatMessage``'s own role; ``sender.id`` is
  the user id for ``user`` messages and the role otherwise; ``sender.name`` is the message's
  ``name``;
- ``content``: the text (a list content's text blocks, joined);
- ``parts``: for an ``AIMessage`` with tool calls, its text as a ``text`` part and each tool
  call as an AI SDK tool part (``{"type": "tool-<name>", "toolCallId": id, "state":
  "input-available", "input": args}``), so other chat-store clients see the calls;
- ``metadata.langchain``: everything else the message class holds that is not at its
  default (``type``, ``id``, ``tool_call_id``, ``status``, ``artifact``, ``additional_kwargs``,
  ``response_metadata``, ``usage_metadata``, ``invalid_tool_calls``, a list ``content``, ...),
  so that reading it back gives an equal LangChain message. Values must be JSON.

Messages without ``metadata.langchain`` (stored by another client) are read by their role
(unknown roles as ``ChatMessage``), with the stored ``id`` as the message id and tool parts as
tool calls. Streaming chunks (``AIMessageChunk``, ...) are stored as their complete message
class.

**Order.** Each stored message gets a client-made monotonic ULID as its id and that ULID's
milliseconds as its ``timestamp``; listings order by timestamp and then id, so messages keep
the order they were added in, within one call and across calls of one process (even within a
millisecond). A batch is sent up to 100 messages per request with those ids, so a retried add
stores nothing twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
    message_chunk_to_message,
    messages_from_dict,
)
from langchain_core.messages.tool import ToolCall

from chat_store_client._core import MAX_BATCH, dumps
from chat_store_client.aio import AsyncChatStore
from chat_store_client.client import ChatStore
from chat_store_client.errors import Forbidden, NotFound
from chat_store_client.types import EraseResult, Message, MessageCreate, Page, Part, Sender
from chat_store_client.ulid import new_ulid_with_time

METADATA_KEY = "langchain"
"""The key under ``metadata`` that holds what only LangChain knows about a message."""

ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool",
         "function": "function"}
"""LangChain message ``type`` -> ``sender.role`` (a ``ChatMessage`` has its own role)."""

_IN_PARTS_OR_FIELDS = {"content", "tool_calls", "name"}
"""Fields stored outside ``metadata.langchain`` (when they are the plain kind: a ``str``
content; tool calls as parts; the name in ``sender.name``)."""

_TOOL_PART_PREFIX = "tool-"


# -- mapping ------------------------------------------------------------------------------------


def to_store(message: BaseMessage, user_id: str, conversation_id: str,
             make_id: Callable[[], tuple[str, int]] = new_ulid_with_time) -> MessageCreate:
    """The chat-store message (to create) for a LangChain message."""
    if isinstance(message, RemoveMessage):
        raise ValueError("a RemoveMessage is an instruction to a graph, not a message to store")
    message = message_chunk_to_message(message)
    data = message.model_dump()
    kind = data["type"]
    role = data["role"] if kind == "chat" else ROLES.get(kind)
    if not isinstance(role, str):
        raise ValueError(f"cannot store a message of type {kind!r}")
    text = _text(message.content)

    extra: dict[str, Any] = {"type": kind}
    fields = type(message).model_fields
    for name, value in data.items():
        if name in _IN_PARTS_OR_FIELDS or name == "type":
            continue
        field = fields.get(name)
        if field is not None and not field.is_required() and value == field.get_default(
                call_default_factory=True):
            continue
        extra[name] = value
    if not isinstance(message.content, str):
        extra["content"] = message.content
    if kind == "chat":
        extra.pop("role", None)  # in sender.role

    sender: Sender = {"id": user_id if role == "user" else role, "role": role}
    if message.name is not None:
        sender["name"] = message.name
    store_id, timestamp = make_id()
    out: MessageCreate = {
        "id": store_id,
        "user_id": user_id,
        "conversation_id": conversation_id,
        "sender": sender,
        "content": text,
        "timestamp": timestamp,
        "metadata": {METADATA_KEY: extra},
    }
    tool_calls: list[ToolCall] = data.get("tool_calls") or []
    if tool_calls:
        parts: list[Part] = [{"type": "text", "text": text}] if text else []
        parts += [{"type": _TOOL_PART_PREFIX + call["name"], "toolCallId": call.get("id"),
                   "state": "input-available", "input": call["args"]} for call in tool_calls]
        out["parts"] = parts
    return out


def from_store(record: Message | Mapping[str, Any]) -> BaseMessage:
    """The LangChain message for a stored chat-store message."""
    sender = record.get("sender", {})
    metadata = record.get("metadata") or {}
    extra = metadata.get(METADATA_KEY)
    if not isinstance(extra, dict) or not isinstance(extra.get("type"), str):
        return _foreign(record)
    data = {name: value for name, value in extra.items() if name != "type"}
    kind: str = extra["type"]
    data.setdefault("content", record["content"])
    if "name" in sender:
        data["name"] = sender["name"]
    if kind == "chat":
        data["role"] = sender.get("role", "")
    if kind == "ai":
        data["tool_calls"] = _tool_calls(record.get("parts") or [])
    return messages_from_dict([{"type": kind, "data": data}])[0]


def _foreign(record: Mapping[str, Any]) -> BaseMessage:
    """A message another client stored: by its role, with its stored id."""
    sender = record.get("sender", {})
    role = sender.get("role")
    if role is None:
        role = "user" if sender.get("id") == record["user_id"] else "assistant"
    common: dict[str, Any] = {"content": record["content"], "id": record["id"]}
    if "name" in sender:
        common["name"] = sender["name"]
    if role == "user":
        return HumanMessage(**common)
    if role == "assistant":
        return AIMessage(**common, tool_calls=_tool_calls(record.get("parts") or []))
    if role == "system":
        return SystemMessage(**common)
    if role == "tool":
        call_id = (record.get("metadata") or {}).get("tool_call_id")
        return ToolMessage(**common, tool_call_id=call_id if isinstance(call_id, str) else "")
    return ChatMessage(**common, role=role)


def _tool_calls(parts: Iterable[Part]) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for part in parts:
        kind = part.get("type")
        if not isinstance(kind, str):
            continue
        if kind.startswith(_TOOL_PART_PREFIX):
            name = kind[len(_TOOL_PART_PREFIX):]
        elif kind == "dynamic-tool" and isinstance(part.get("toolName"), str):
            name = part["toolName"]
        else:
            continue
        args = part.get("input")
        calls.append({"name": name, "args": args if isinstance(args, dict) else {},
                      "id": part.get("toolCallId"), "type": "tool_call"})
    return calls


def _text(content: str | list[str | dict[str, Any]]) -> str:
    """The text of a message content: itself, or a list's strings and text blocks joined."""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
        elif block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
    return "".join(texts)


# -- the history ----------------------------------------------------------------------------


class ChatStoreMessageHistory(BaseChatMessageHistory):
    """The messages of one conversation in chat-store, as a LangChain chat history.

    Give a :class:`~chat_store_client.ChatStore` (for ``messages``, ``add_messages``,
    ``clear``) and/or an :class:`~chat_store_client.AsyncChatStore` (for ``aget_messages``,
    ``aadd_messages``, ``aclear``; without one, those run the sync methods in a thread).
    ``max_messages`` limits what ``messages`` returns to the newest that many (in order),
    for long conversations.

    ``clear`` erases the conversation (repeating until nothing remains). That needs the service
    token; with a user token (403) it truncates the conversation from its end instead, which a
    user may do to its own, assistant, system and tool messages, and then deletes the first.
    """

    def __init__(
        self,
        client: ChatStore | None = None,
        *,
        user_id: str,
        conversation_id: str,
        async_client: AsyncChatStore | None = None,
        max_messages: int | None = None,
    ) -> None:
        super().__init__()
        if client is None and async_client is None:
            client = ChatStore()
        if max_messages is not None and max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self.client = client
        self.async_client = async_client
        self.user_id = user_id
        self.conversation_id = conversation_id
        self.max_messages = max_messages

    def _sync(self) -> ChatStore:
        if self.client is None:
            raise RuntimeError("this history has only an async client: use aget_messages, "
                               "aadd_messages and aclear")
        return self.client

    # -- read --------------------------------------------------------------------------------

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]  # base: an attribute
        """The conversation's messages, oldest first."""
        store = self._sync()
        if self.max_messages is None:
            records = list(store.iter_conversation_messages(
                self.conversation_id, order="asc", page_size=100))
        else:
            records = []
            for record in store.iter_conversation_messages(
                    self.conversation_id, order="desc", page_size=min(self.max_messages, 100)):
                records.append(record)
                if len(records) == self.max_messages:
                    break
            records.reverse()
        return [from_store(record) for record in records]

    async def aget_messages(self) -> list[BaseMessage]:
        if self.async_client is None:
            return await super().aget_messages()
        records: list[Message] = []
        if self.max_messages is None:
            async for record in self.async_client.iter_conversation_messages(
                    self.conversation_id, order="asc", page_size=100):
                records.append(record)
        else:
            async for record in self.async_client.iter_conversation_messages(
                    self.conversation_id, order="desc", page_size=min(self.max_messages, 100)):
                records.append(record)
                if len(records) == self.max_messages:
                    break
            records.reverse()
        return [from_store(record) for record in records]

    # -- write -------------------------------------------------------------------------------

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Stores the messages in order (up to 100 per request, each request all or nothing)."""
        store = self._sync()
        for batch in self._batches(messages):
            store.create_messages(batch)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        if self.async_client is None:
            await super().aadd_messages(messages)
            return
        for batch in self._batches(messages):
            await self.async_client.create_messages(batch)

    def _batches(self, messages: Sequence[BaseMessage]) -> list[list[MessageCreate]]:
        # Every message is mapped (and so gets its id and timestamp) before the first request:
        # a message that cannot be stored fails the call before anything is written.
        records = [to_store(m, self.user_id, self.conversation_id) for m in messages]
        dumps(records)  # raises for a value that is not JSON, before any batch is sent
        return [records[i:i + MAX_BATCH] for i in range(0, len(records), MAX_BATCH)]

    # -- clear -------------------------------------------------------------------------------

    def clear(self) -> None:
        store = self._sync()
        try:
            _check_erased(store.erase_conversation_messages(self.conversation_id,
                                                            until_done=True))
            return
        except Forbidden:
            pass  # a user token: it may only truncate
        progress = _Progress()
        while True:
            page = store.list_conversation_messages(self.conversation_id, order="desc",
                                                    limit=100)
            if not progress.check(page):
                return
            oldest = page["messages"][-1]["id"]
            if len(page["messages"]) > 1:
                store.erase_conversation_messages(self.conversation_id, after=oldest,
                                                  until_done=True)
            if page["next_cursor"] is None:
                with contextlib.suppress(NotFound):  # deleted meanwhile
                    store.delete_message(oldest)

    async def aclear(self) -> None:
        if self.async_client is None:
            await super().aclear()
            return
        store = self.async_client
        try:
            _check_erased(await store.erase_conversation_messages(self.conversation_id,
                                                                  until_done=True))
            return
        except Forbidden:
            pass  # a user token: it may only truncate
        progress = _Progress()
        while True:
            page = await store.list_conversation_messages(self.conversation_id, order="desc",
                                                          limit=100)
            if not progress.check(page):
                return
            oldest = page["messages"][-1]["id"]
            if len(page["messages"]) > 1:
                await store.erase_conversation_messages(self.conversation_id, after=oldest,
                                                        until_done=True)
            if page["next_cursor"] is None:
                with contextlib.suppress(NotFound):  # deleted meanwhile
                    await store.delete_message(oldest)


def _check_erased(result: EraseResult) -> None:
    if result["remaining"]:
        raise RuntimeError(f"clear left {result['remaining']} entries that the erase could "
                           "not take yet (messages still being written); call it again")


class _Progress:
    """Guards the truncation loop of ``clear``: each round must shrink the newest page."""

    def __init__(self) -> None:
        self.last: tuple[str, int] | None = None

    def check(self, page: Page) -> bool:
        """Whether there is something left to delete; raises, rather than loop for ever, if
        the last round left the newest page as it was."""
        if not page["messages"]:
            return False
        seen = (page["messages"][0]["id"], len(page["messages"]))
        if seen == self.last:
            raise RuntimeError(f"clear made no progress at message {seen[0]!r}")
        self.last = seen
        return True


__all__ = ["METADATA_KEY", "ChatStoreMessageHistory", "from_store", "to_store"]

