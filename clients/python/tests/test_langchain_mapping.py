"""LangChain messages <-> chat-store messages, and ChatStoreMessageHistory's own logic over an
in-memory stand-in (batches, order, clear with either credential). The real Worker is in
tests/integration/test_langchain_history.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytest.importorskip("langchain_core")

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

from chat_store_client import AsyncChatStore, ChatStore
from chat_store_client.langchain import (
    ChatStoreMessageHistory,
    from_store,
    to_store,
)
from chat_store_client.ulid import decode_time

EVERY_KIND: list[BaseMessage] = [
    SystemMessage("You are terse."),
    HumanMessage("Weather in Paris?", name="alice", id="h-1"),
    HumanMessage(content=[{"type": "text", "text": "And this? "},
                          {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                          "thanks"]),
    AIMessage("", id="run-1",
              tool_calls=[{"name": "weather", "args": {"city": "Paris"}, "id": "call-1"},
                          {"name": "clock", "args": {}, "id": None}],
              usage_metadata={"input_tokens": 10, "output_tokens": 3, "total_tokens": 13},
              response_metadata={"model_name": "fake", "finish_reason": "tool_calls"}),
    ToolMessage("21 °C", tool_call_id="call-1", name="weather", artifact={"raw": [21]}),
    ToolMessage("clock broke", tool_call_id="call-2", status="error"),
    AIMessage("It is 21 °C.", additional_kwargs={"refusal": None},
              invalid_tool_calls=[{"type": "invalid_tool_call", "name": "x", "args": "{",
                                   "id": "bad", "error": "json"}]),
    AIMessage(content=[{"type": "text", "text": "Both: "}, {"type": "reasoning", "x": 1}],
              tool_calls=[{"name": "weather", "args": {"city": "Oslo"}, "id": "call-3"}]),
    ChatMessage(content="Looks right.", role="critic"),
    FunctionMessage(content="42", name="answer"),
]


def stored_form(message: BaseMessage, n: int = 0) -> dict[str, Any]:
    """What the server would return for this message: the create, through JSON, plus the
    server's fields (content from text parts when missing, as the Worker does)."""
    record = json.loads(json.dumps(to_store(message, "alice", "conv")))
    return {**record, "created_at": 1_000 + n}


@pytest.mark.parametrize("message", EVERY_KIND, ids=lambda m: type(m).__name__)
def test_every_kind_round_trips_to_an_equal_message(message: BaseMessage) -> None:
    assert from_store(stored_form(message)) == message


def test_roles_senders_parts_and_metadata() -> None:
    records = [stored_form(m) for m in EVERY_KIND]
    assert [r["sender"]["role"] for r in records] == [
        "system", "user", "user", "assistant", "tool", "tool", "assistant", "assistant",
        "critic", "function"]
    assert records[1]["sender"] == {"id": "alice", "role": "user", "name": "alice"}
    assert records[0]["sender"] == {"id": "system", "role": "system"}
    assert records[2]["content"] == "And this? thanks"
    tool_call = records[3]
    assert tool_call["parts"] == [
        {"type": "tool-weather", "toolCallId": "call-1", "state": "input-available",
         "input": {"city": "Paris"}},
        {"type": "tool-clock", "toolCallId": None, "state": "input-available", "input": {}}]
    assert tool_call["metadata"]["langchain"]["id"] == "run-1"
    assert records[7]["parts"][0] == {"type": "text", "text": "Both: "}
    assert records[4]["metadata"]["langchain"] == {
        "type": "tool", "tool_call_id": "call-1", "artifact": {"raw": [21]}}
    # Defaults are left out: a plain message carries only its type.
    assert records[0]["metadata"] == {"langchain": {"type": "system"}}
    assert all(r["conversation_id"] == "conv" and r["user_id"] == "alice" for r in records)


def test_ids_and_timestamps_increase_in_the_order_given() -> None:
    records = [to_store(HumanMessage(str(n)), "u", "c") for n in range(300)]
    keys = [(r["timestamp"], r["id"]) for r in records]
    assert keys == sorted(keys) and len(set(keys)) == 300
    assert all(decode_time(r["id"]) == r["timestamp"] for r in records)


def test_chunks_are_stored_as_their_message_and_remove_messages_refused() -> None:
    chunk = AIMessageChunk(content="partial", id="c1")
    assert from_store(stored_form(chunk)) == AIMessage(content="partial", id="c1")
    with pytest.raises(ValueError):
        to_store(RemoveMessage(id="x"), "u", "c")


def test_messages_other_clients_stored_are_read_by_role(
        make_message: Callable[..., dict[str, Any]]) -> None:
    def foreign(role: str | None, **extra: Any) -> dict[str, Any]:
        record = make_message("m1", **extra)
        record["sender"] = {"id": "bot" if role != "user" else "alice",
                            **({"role": role} if role else {})}
        return record

    assert from_store(foreign("user")) == HumanMessage("text of m1", id="m1")
    assert from_store(foreign("system")) == SystemMessage("text of m1", id="m1")
    assert from_store(foreign(None)) == AIMessage("text of m1", id="m1")
    assert from_store(foreign("moderator")) == ChatMessage(content="text of m1", id="m1",
                                                           role="moderator")
    tool = foreign("tool", metadata={"tool_call_id": "t9"})
    assert from_store(tool) == ToolMessage("text of m1", id="m1", tool_call_id="t9")
    ai_sdk = foreign("assistant", parts=[
        {"type": "text", "text": "Looking."},
        {"type": "tool-weather", "toolCallId": "t1", "state": "output-available",
         "input": {"city": "Paris"}, "output": {"celsius": 21}},
        {"type": "dynamic-tool", "toolName": "search", "toolCallId": "t2",
         "state": "input-available", "input": {"q": "x"}}])
    assert from_store(ai_sdk) == AIMessage("text of m1", id="m1", tool_calls=[
        {"name": "weather", "args": {"city": "Paris"}, "id": "t1", "type": "tool_call"},
        {"name": "search", "args": {"q": "x"}, "id": "t2", "type": "tool_call"}])


def history_over(fake: Any, **kwargs: Any) -> ChatStoreMessageHistory:
    client = ChatStore("http://fake.test", "t", transport=httpx.MockTransport(fake))
    return ChatStoreMessageHistory(client, user_id="alice", conversation_id="conv", **kwargs)


def test_history_adds_in_batches_of_100_and_reads_back_in_order(
        fake_store: Callable[..., Any]) -> None:
    fake = fake_store()
    history = history_over(fake)
    added = [HumanMessage(f"q{n}") if n % 2 == 0 else AIMessage(f"a{n}") for n in range(230)]
    history.add_messages(added)
    assert fake.batches == [100, 100, 30]
    assert history.messages == added
    assert history_over(fake, max_messages=5).messages == added[-5:]
    history.add_message(SystemMessage("later"))
    assert history.messages[-1] == SystemMessage("later")


def test_a_message_that_cannot_be_stored_fails_before_anything_is_sent(
        fake_store: Callable[..., Any]) -> None:
    fake = fake_store()
    history = history_over(fake)
    fine = [HumanMessage(f"ok {n}") for n in range(150)]
    with pytest.raises(TypeError):  # in the second batch: the first is not sent either
        history.add_messages([*fine, ToolMessage("x", tool_call_id="t", artifact=object())])
    assert fake.records == {}


@pytest.mark.parametrize("service", [True, False], ids=["service-token", "user-token"])
def test_clear_empties_the_conversation(fake_store: Callable[..., Any], service: bool) -> None:
    fake = fake_store(service=service)
    history = history_over(fake)
    history.add_messages([HumanMessage(f"m{n}") for n in range(250)])
    fake.records["elsewhere"] = {"id": "elsewhere", "conversation_id": "other",
                                 "timestamp": 0, "content": ""}
    history.clear()
    assert history.messages == []
    assert list(fake.records) == ["elsewhere"]


def test_async_history_uses_the_async_client(fake_store: Callable[..., Any]) -> None:
    fake = fake_store(service=False)
    client = AsyncChatStore("http://fake.test", "t", transport=httpx.MockTransport(fake))
    history = ChatStoreMessageHistory(user_id="alice", conversation_id="conv",
                                      async_client=client, max_messages=150)
    added = [HumanMessage(f"m{n}") for n in range(160)]

    async def go() -> tuple[list[BaseMessage], list[BaseMessage]]:
        await history.aadd_messages(added)
        got = await history.aget_messages()
        await history.aclear()
        return got, await history.aget_messages()

    got, after_clear = asyncio.run(go())
    assert got == added[-150:] and after_clear == []
    with pytest.raises(RuntimeError):
        history.messages  # noqa: B018  (only an async client was given)
