"""The asynchronous client, :class:`AsyncChatStore` (the same methods as
:class:`~chat_store_client.client.ChatStore`, awaited; iterators are ``async for``)."""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar, cast

import httpx

from chat_store_client._core import (
    Call,
    Calls,
    EraseLoop,
    RetryPolicy,
    RetryState,
    Token,
    count_lines,
    error_from_response,
    request_headers,
    scope_of,
    settings,
    transport_error,
)
from chat_store_client.errors import ChatStoreError, NotFound
from chat_store_client.types import (
    ContextScope,
    Conversation,
    ConversationPage,
    EraseResult,
    ExportPage,
    Health,
    Message,
    MessageContext,
    MessageCreate,
    Metadata,
    Order,
    Page,
    Part,
    ReindexResult,
    Sender,
)
from chat_store_client.ulid import new_ulid

T = TypeVar("T")


class AsyncChatStore:
    """A client of the chat-store HTTP API (v1), one method per operation.

    ::

        async with AsyncChatStore("https://chat.example.com", token) as store:
            await store.create_message(user_id="alice", conversation_id="c1",
                                       sender={"id": "alice", "role": "user"}, content="hello")
            async for message in store.iter_conversation_messages("c1", order="asc"):
                print(message["content"])

    ``base_url`` and ``token`` default to the environment variables ``CHAT_STORE_URL`` and
    ``CHAT_STORE_TOKEN``. The token is the service token (``API_TOKEN``) or a user's JWT, sent as
    a bearer token; it may be a function returning the current token. Pass ``http_client`` (an
    ``httpx.AsyncClient``, which stays yours to close) or ``transport`` to control connections.

    Failed requests raise a subclass of :class:`~chat_store_client.errors.ChatStoreError`, one
    per problem ``code``. ``429`` and ``503`` responses and network failures are retried as
    ``retry`` (a :class:`RetryPolicy`) says, waiting with ``sleep`` (injectable for tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: Token | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        make_id: Callable[[], str] = new_ulid,
        rng: random.Random | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ValueError("pass http_client or transport, not both")
        self._settings = settings(base_url, token,
                                  http_client.base_url if http_client is not None else None)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport, timeout=timeout)
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._calls = Calls(make_id)

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    async def aclose(self) -> None:
        """Closes the connections (unless the httpx client was passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncChatStore:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # -- transport ------------------------------------------------------------------------

    async def _run(self, call: Call[T], sink: IO[bytes] | None = None) -> T:
        """Sends ``call`` (again, as the retry policy allows) and decodes its success response.
        With ``sink``, the success body is streamed into it instead of being read, and what an
        interrupted attempt wrote is cut off again before the next one."""
        state = RetryState(self._retry, self._rng)
        url = self._settings.base_url + call.path
        while True:
            start = sink.tell() if sink is not None else 0
            try:
                async with self._http.stream(
                        call.method, url, params=call.params, content=call.body,
                        headers=request_headers(self._settings, call)) as response:
                    if response.is_success:
                        if sink is None:
                            await response.aread()
                        else:
                            async for chunk in response.aiter_bytes():
                                sink.write(chunk)
                        return call.decode(response)
                    await response.aread()
                    error: ChatStoreError = error_from_response(response)
            except httpx.TransportError as exc:
                error = transport_error(call, exc)
            if sink is not None:
                sink.seek(start)
                sink.truncate()
            if isinstance(error, NotFound) and call.gone_is_done and state.uncertain:
                return cast(T, None)  # an earlier attempt did it; its answer was lost
            delay = state.next_delay(error)
            if delay is None:
                raise error
            await self._sleep(delay)

    # -- operations (one per operationId) --------------------------------------------------

    async def get_health(self) -> Health:
        """``GET /health`` (no credential needed)."""
        return await self._run(self._calls.get_health())

    async def get_open_api(self) -> dict[str, Any]:
        """``GET /openapi.json``: the API's OpenAPI document."""
        return await self._run(self._calls.get_open_api())

    async def create_message(
        self,
        *,
        user_id: str,
        sender: Sender,
        content: str | None = None,
        parts: list[Part] | None = None,
        conversation_id: str | None = None,
        timestamp: int | None = None,
        metadata: Metadata | None = None,
        id: str | None = None,
    ) -> Message:
        """``POST /v1/messages``: stores a message and returns it as stored.

        ``id`` defaults to a new client-made ULID, made once per call, so the retries of this
        call are exactly-once: a replay of an identical message is answered with the stored one
        (200) and nothing is written twice. The same ``id`` with other fields raises
        :class:`~chat_store_client.errors.Conflict`. ``timestamp`` (Unix ms) defaults to the
        server's clock. Give ``content`` and/or ``parts``.
        """
        return await self._run(self._calls.create_message({
            "id": id, "user_id": user_id, "conversation_id": conversation_id,
            "sender": sender, "content": content, "parts": parts, "timestamp": timestamp,
            "metadata": metadata,
        }))

    async def create_messages(
        self, messages: Iterable[MessageCreate | Mapping[str, Any]]
    ) -> list[Message]:
        """``POST /v1/messages/batch``: stores 1-100 messages, all or nothing; returns them as
        stored, in order. Each message without an ``id`` gets a client-made ULID (in order), so
        retries are exactly-once as for :meth:`create_message`."""
        return await self._run(self._calls.create_messages(messages))

    async def get_message(self, message_id: str) -> Message:
        """``GET /v1/messages/{id}``; :class:`~chat_store_client.errors.NotFound` if missing."""
        return await self._run(self._calls.get_message(message_id))

    async def patch_message(
        self,
        message_id: str,
        *,
        content: str | None = None,
        parts: list[Part] | None = None,
        sender: Sender | None = None,
        metadata: Metadata | None = None,
        timestamp: int | None = None,
    ) -> Message:
        """``PATCH /v1/messages/{id}``: replaces the fields given (each whole); a new
        ``timestamp`` moves the message in every listing. Returns the message as stored."""
        return await self._run(self._calls.patch_message(message_id, {
            "content": content, "parts": parts, "sender": sender, "metadata": metadata,
            "timestamp": timestamp,
        }))

    async def delete_message(self, message_id: str) -> None:
        """``DELETE /v1/messages/{id}``; :class:`~chat_store_client.errors.NotFound` if there is
        no such message (unless an earlier attempt of this call may have deleted it)."""
        await self._run(self._calls.delete_message(message_id))

    async def get_message_context(
        self,
        message_id: str,
        *,
        scope: ContextScope | None = None,
        before: int | None = None,
        after: int | None = None,
    ) -> MessageContext:
        """``GET /v1/messages/{id}/context``: the message with up to ``before`` and ``after``
        (0-100, default 10) of its neighbours in its conversation (or ``scope="user"``)."""
        return await self._run(self._calls.get_message_context(message_id, scope, before, after))

    async def list_user_messages(
        self,
        user_id: str,
        *,
        limit: int | None = None,
        order: Order | None = None,
        start: int | None = None,
        end: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        """``GET /v1/users/{user_id}/messages``: one page (``limit`` 1-100, default 50; newest
        first unless ``order="asc"``; ``start``/``end`` inclusive timestamp bounds). See
        :meth:`iter_user_messages` for every page."""
        return await self._run(self._calls.list_messages("users", user_id, limit, order, start, end,
                                                   cursor))

    async def erase_user_messages(self, user_id: str, *, until_done: bool = False) -> EraseResult:
        """``DELETE /v1/users/{user_id}/messages``: deletes up to 300 of the user's messages per
        request and says how many remain; ``until_done=True`` repeats it until none do (and
        returns the total deleted)."""
        return await self._erase(lambda: self._calls.erase_messages("users", user_id, None),
                           until_done)

    async def count_user_messages(self, user_id: str, *, start: int | None = None,
                            end: int | None = None) -> int:
        """``GET /v1/users/{user_id}/messages/count``: the user's messages in the bounds."""
        return await self._run(self._calls.count_messages("users", user_id, start, end))

    async def export_user_messages(self, user_id: str, *, limit: int | None = None,
                             cursor: str | None = None) -> ExportPage:
        """``GET /v1/users/{user_id}/export``: one page of the export (``limit`` 1-500), oldest
        first; see :meth:`export_to` and :meth:`iter_export` for the whole history."""
        return await self._run(self._calls.export_messages("users", user_id, limit, cursor))

    async def list_conversation_messages(
        self,
        conversation_id: str,
        *,
        limit: int | None = None,
        order: Order | None = None,
        start: int | None = None,
        end: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        """``GET /v1/conversations/{conversation_id}/messages``: as
        :meth:`list_user_messages`, for a conversation."""
        return await self._run(self._calls.list_messages("conversations", conversation_id, limit,
                                                   order, start, end, cursor))

    async def erase_conversation_messages(self, conversation_id: str, *, after: str | None = None,
                                    until_done: bool = False) -> EraseResult:
        """``DELETE /v1/conversations/{conversation_id}/messages``: erases the conversation
        (service token only), or with ``after`` (a message id) truncates it after that message
        (exclusive; a user token may do this for its own and assistant/system/tool messages).
        ``until_done=True`` repeats the request until nothing remains."""
        return await self._erase(
            lambda: self._calls.erase_messages("conversations", conversation_id, after),
            until_done)

    async def count_conversation_messages(self, conversation_id: str, *, start: int | None = None,
                                    end: int | None = None) -> int:
        """``GET /v1/conversations/{conversation_id}/messages/count``."""
        return await self._run(self._calls.count_messages("conversations", conversation_id, start,
                                                    end))

    async def export_conversation_messages(self, conversation_id: str, *, limit: int | None = None,
                                     cursor: str | None = None) -> ExportPage:
        """``GET /v1/conversations/{conversation_id}/export``: one page of the export."""
        return await self._run(self._calls.export_messages("conversations", conversation_id, limit,
                                                     cursor))

    async def list_user_conversations(
        self,
        user_id: str,
        *,
        limit: int | None = None,
        order: Order | None = None,
        start: int | None = None,
        end: int | None = None,
        cursor: str | None = None,
    ) -> ConversationPage:
        """``GET /v1/users/{user_id}/conversations``: one page of the user's conversations, most
        recent activity first (``limit`` 1-100, default 20; bounds on ``last_message_at``)."""
        return await self._run(self._calls.list_user_conversations(
            user_id, limit, order, start, end, cursor))

    async def get_conversation(self, conversation_id: str) -> Conversation:
        """``GET /v1/conversations/{conversation_id}``."""
        return await self._run(self._calls.get_conversation(conversation_id))

    async def patch_conversation(self, conversation_id: str, *, title: str | None = None,
                           metadata: Metadata | None = None) -> Conversation:
        """``PATCH /v1/conversations/{conversation_id}``: sets its title and/or metadata."""
        return await self._run(self._calls.patch_conversation(conversation_id, title, metadata))

    async def reindex(self, *, user_id: str | None = None,
                conversation_id: str | None = None) -> ReindexResult:
        """``POST /v1/admin/reindex`` (service token): rebuilds one index from the records."""
        return await self._run(self._calls.reindex(user_id, conversation_id))

    # -- iterators -------------------------------------------------------------------------

    async def iter_user_messages(
        self,
        user_id: str,
        *,
        order: Order | None = None,
        start: int | None = None,
        end: int | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Message]:
        """Every message of the user in the bounds, page after page (following
        ``next_cursor``: each exactly once, also while messages are added)."""
        cursor: str | None = None
        while True:
            page = await self.list_user_messages(user_id, limit=page_size, order=order, start=start,
                                           end=end, cursor=cursor)
            for message in page["messages"]:
                yield message
            cursor = page["next_cursor"]
            if cursor is None:
                return

    async def iter_conversation_messages(
        self,
        conversation_id: str,
        *,
        order: Order | None = None,
        start: int | None = None,
        end: int | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Message]:
        """Every message of the conversation in the bounds, page after page."""
        cursor: str | None = None
        while True:
            page = await self.list_conversation_messages(
                conversation_id, limit=page_size, order=order, start=start, end=end,
                cursor=cursor)
            for message in page["messages"]:
                yield message
            cursor = page["next_cursor"]
            if cursor is None:
                return

    async def iter_user_conversations(
        self,
        user_id: str,
        *,
        order: Order | None = None,
        start: int | None = None,
        end: int | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Conversation]:
        """Every conversation of the user, page after page."""
        cursor: str | None = None
        while True:
            page = await self.list_user_conversations(user_id, limit=page_size, order=order,
                                                start=start, end=end, cursor=cursor)
            for conversation in page["conversations"]:
                yield conversation
            cursor = page["next_cursor"]
            if cursor is None:
                return

    async def iter_export(self, *, user_id: str | None = None, conversation_id: str | None = None,
                    page_size: int | None = None) -> AsyncIterator[Message]:
        """Every message of a user or a conversation, oldest first, through the export (up to
        500 per request)."""
        kind, scope_id = scope_of(user_id, conversation_id)
        cursor: str | None = None
        while True:
            page = await self._run(self._calls.export_messages(kind, scope_id, page_size, cursor))
            for message in page["messages"]:
                yield message
            cursor = page["next_cursor"]
            if cursor is None:
                return

    async def export_to(self, path: str | os.PathLike[str], *, user_id: str | None = None,
                  conversation_id: str | None = None, page_size: int | None = None) -> int:
        """Writes the whole history of a user or a conversation to ``path`` as NDJSON (one
        message per line, oldest first, each as the server stored it), following
        ``Chat-Store-Next-Cursor``; returns the number of messages written.

        Responses are streamed to disk, never held whole in memory. The file appears
        complete or not at all: it is written next to ``path`` and renamed into place at the end
        (with the temporary file's mode, readable by its owner only: it holds private chats).
        """
        kind, scope_id = scope_of(user_id, conversation_id)
        target = Path(path)
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                         dir=target.parent)
        try:
            with os.fdopen(fd, "w+b") as sink:
                cursor: str | None = None
                while True:
                    cursor = await self._run(
                        self._calls.export_raw(kind, scope_id, page_size, cursor), sink=sink)
                    if cursor is None:
                        break
                lines = count_lines(sink)
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return lines

    # -- helpers ---------------------------------------------------------------------------

    async def _erase(self, make_call: Callable[[], Call[EraseResult]],
                     until_done: bool) -> EraseResult:
        if not until_done:
            return await self._run(make_call())
        loop = EraseLoop()
        while loop.add(await self._run(make_call())):
            pass
        return loop.result()

