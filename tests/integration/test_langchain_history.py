"""``chat_store_client.langchain.ChatStoreMessageHistory`` against the real Worker: every
LangChain message type round-trips, order holds within a millisecond, ``RunnableWithMessageHistory``
over langchain-core's fake chat model stores a multi-turn chat (checked through the plain API),
and ``clear`` works with the service token and with a user's JWT (which may only truncate)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest

pytest.importorskip("langchain_core")

from chat_store_client import AsyncChatStore, ChatStore, Forbidden
from chat_store_client.langchain import ChatStoreMessageHistory
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from auth.hs256 import sign_hs256
from support.worker_harness import LocalWorker

JWT_SECRET = "langchain-history-jwt-secret-0123456789"

EVERY_KIND: list[BaseMessage] = [
    SystemMessage("You are a weather bot."),
    HumanMessage("Weather in Paris and Oslo?", name="ann", id="human-1"),
    HumanMessage(content=[{"type": "text", "text": "Also this map: "},
                          {"type": "image_url", "image_url": {"url": "https://x.test/m.png"}}]),
    AIMessage("Checking.", id="run-1",
              tool_calls=[{"name": "weather", "args": {"city": "Paris"}, "id": "call-1"},
                          {"name": "weather", "args": {"city": "Oslo"}, "id": "call-2"}],
              usage_metadata={"input_tokens": 12, "output_tokens": 9, "total_tokens": 21},
              response_metadata={"model_name": "fake", "finish_reason": "tool_calls"}),
    ToolMessage("21 °C", tool_call_id="call-1", name="weather", artifact={"celsius": 21}),
    ToolMessage("station down", tool_call_id="call-2", status="error"),
    AIMessage("Paris: 21 °C. Oslo: unknown.", additional_kwargs={"refusal": None}),
    ChatMessage(content="Answer checked.", role="critic"),
    FunctionMessage(content="{\"ok\": true}", name="verify"),
]


@pytest.fixture
def store(worker: LocalWorker, api_token: str) -> Iterator[ChatStore]:
    with ChatStore(worker.base_url, api_token) as client:
        yield client


@pytest.fixture(scope="module")
def jwt_worker(worker: LocalWorker, api_token: str) -> Iterator[LocalWorker]:
    """chat-store again, over the same KV, also accepting user JWTs."""
    w = worker.sibling(vars={"API_TOKEN": api_token, "AUTH_DISABLED": "false",
                             "JOURNAL_SETTLE_MS": "2000", "JWT_SECRET": JWT_SECRET})
    with w:
        yield w


def user_token(user: str, conversations: list[str]) -> str:
    claims = {"sub": user, "exp": int(time.time()) + 3_600, "conversations": conversations}
    return sign_hs256(claims, JWT_SECRET.encode())


def stored(client: httpx.Client, conversation: str) -> list[dict[str, Any]]:
    """The conversation through the plain API, oldest first."""
    reply = client.get(f"/v1/conversations/{conversation}/messages",
                       params={"order": "asc", "limit": 100})
    assert reply.status_code == 200, reply.text
    messages: list[dict[str, Any]] = reply.json()["messages"]
    assert reply.json()["next_cursor"] is None
    return messages


def test_every_message_type_round_trips(store: ChatStore, client: httpx.Client,
                                        unique_id: str) -> None:
    history = ChatStoreMessageHistory(store, user_id=f"{unique_id}-u",
                                      conversation_id=f"{unique_id}-c")
    assert history.messages == []
    history.add_messages(EVERY_KIND)
    history.add_message(AIMessageChunk(content="streamed", id="chunk-1"))
    assert history.messages == [*EVERY_KIND, AIMessage(content="streamed", id="chunk-1")]

    records = stored(client, f"{unique_id}-c")
    assert [r["sender"]["role"] for r in records] == [
        "system", "user", "user", "assistant", "tool", "tool", "assistant", "critic",
        "function", "assistant"]
    assert {r["user_id"] for r in records} == {f"{unique_id}-u"}
    assert records[1]["sender"] == {"id": f"{unique_id}-u", "role": "user", "name": "ann"}
    assert records[2]["content"] == "Also this map: "
    assert records[3]["content"] == "Checking."
    assert records[3]["parts"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool-weather", "toolCallId": "call-1", "state": "input-available",
         "input": {"city": "Paris"}},
        {"type": "tool-weather", "toolCallId": "call-2", "state": "input-available",
         "input": {"city": "Oslo"}}]
    assert records[4]["metadata"]["langchain"]["tool_call_id"] == "call-1"


def test_order_holds_within_a_millisecond_and_across_batches(
        store: ChatStore, client: httpx.Client, unique_id: str) -> None:
    history = ChatStoreMessageHistory(store, user_id=f"{unique_id}-u",
                                      conversation_id=f"{unique_id}-c")
    first = [HumanMessage(f"q{n}") if n % 2 == 0 else AIMessage(f"a{n}") for n in range(150)]
    history.add_messages(first)  # two batch requests, most messages sharing a millisecond
    second = [HumanMessage(f"later {n}") for n in range(3)]
    for message in second:
        history.add_message(message)
    assert history.messages == first + second
    # The plain listing has the same order (first page).
    reply = client.get(f"/v1/conversations/{unique_id}-c/messages",
                       params={"order": "asc", "limit": 100})
    assert [r["content"] for r in reply.json()["messages"]] == [m.content for m in first[:100]]
    assert ChatStoreMessageHistory(store, user_id=f"{unique_id}-u",
                                   conversation_id=f"{unique_id}-c",
                                   max_messages=4).messages == first[-1:] + second


class ModelInputs(BaseCallbackHandler):
    """Records the messages each chat model call was given."""

    def __init__(self) -> None:
        self.calls: list[list[BaseMessage]] = []

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]],
                            *, run_id: UUID, **kwargs: Any) -> None:
        self.calls.append(messages[0])


@pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")
def test_runnable_with_message_history_over_a_fake_model(
        store: ChatStore, worker: LocalWorker, api_token: str, client: httpx.Client,
        unique_id: str) -> None:
    user = f"{unique_id}-u"
    replies = iter([
        AIMessage("Hello Ann."),
        AIMessage("", tool_calls=[{"name": "weather", "args": {"city": "Paris"},
                                   "id": "call-7"}]),
        AIMessage("It is 21 °C in Paris."),
        AIMessage("You asked about Paris."),
    ])
    model = GenericFakeChatModel(messages=replies)
    prompt = ChatPromptTemplate.from_messages([
        ("system", "You are a helpful assistant."),
        MessagesPlaceholder("history"),
        ("human", "{question}"),
    ])
    async_client = AsyncChatStore(worker.base_url, api_token)

    def session(session_id: str) -> ChatStoreMessageHistory:
        return ChatStoreMessageHistory(store, user_id=user, conversation_id=session_id,
                                       async_client=async_client)

    chat = RunnableWithMessageHistory(prompt | model, session, input_messages_key="question",
                                      history_messages_key="history")
    inputs = ModelInputs()
    conversation = f"{unique_id}-c"
    config: Any = {"configurable": {"session_id": conversation}, "callbacks": [inputs]}
    questions = ["Hi, I am Ann.", "Weather in Paris?", "So?", "What did I ask?"]
    answers = [chat.invoke({"question": q}, config=config) for q in questions[:3]]

    async def last_turn() -> Any:  # through the async client: aget_messages, aadd_messages
        async with async_client:
            return await chat.ainvoke({"question": questions[3]}, config=config)

    answers.append(asyncio.run(last_turn()))

    assert [a.content for a in answers] == [
        "Hello Ann.", "", "It is 21 °C in Paris.", "You asked about Paris."]
    # Each turn the model saw the system prompt, every earlier turn, then the new question.
    assert [len(call) for call in inputs.calls] == [2, 4, 6, 8]
    assert [m.content for m in inputs.calls[3][1:7:2]] == questions[:3]
    seen_tool_call = inputs.calls[3][4]
    assert isinstance(seen_tool_call, AIMessage)
    assert seen_tool_call.tool_calls == answers[1].tool_calls

    records = stored(client, conversation)
    assert [(r["sender"]["role"], r["content"]) for r in records] == [
        ("user", questions[0]), ("assistant", "Hello Ann."),
        ("user", questions[1]), ("assistant", ""),
        ("user", questions[2]), ("assistant", "It is 21 °C in Paris."),
        ("user", questions[3]), ("assistant", "You asked about Paris.")]
    assert records[3]["parts"] == [{"type": "tool-weather", "toolCallId": "call-7",
                                    "state": "input-available", "input": {"city": "Paris"}}]
    timestamps = [(r["timestamp"], r["id"]) for r in records]
    assert timestamps == sorted(timestamps)
    assert session(conversation).messages == [
        m for q, a in zip(questions, answers, strict=True) for m in (HumanMessage(q), a)]


def test_clear_with_the_service_token(store: ChatStore, client: httpx.Client,
                                      unique_id: str) -> None:
    conversation = f"{unique_id}-c"
    history = ChatStoreMessageHistory(store, user_id=f"{unique_id}-u",
                                      conversation_id=conversation)
    history.add_messages([HumanMessage(f"m{n}") for n in range(5)])
    ChatStoreMessageHistory(store, user_id=f"{unique_id}-other",
                            conversation_id=f"{unique_id}-keep").add_messages([HumanMessage("x")])
    history.clear()
    assert history.messages == [] and stored(client, conversation) == []
    assert client.get(f"/v1/conversations/{unique_id}-keep/messages/count").json() == {
        "count": 1}


def test_clear_with_a_user_token_truncates(jwt_worker: LocalWorker, client: httpx.Client,
                                           unique_id: str) -> None:
    user, conversation = f"{unique_id}-u", f"{unique_id}-c"
    token = user_token(user, [conversation])
    added = [m for n in range(160) for m in (HumanMessage(f"q{n}"), AIMessage(f"a{n}"))]
    with ChatStore(jwt_worker.base_url, token) as mine:
        history = ChatStoreMessageHistory(mine, user_id=user, conversation_id=conversation)
        history.add_messages(added)
        assert len(history.messages) == 320
        with pytest.raises(Forbidden):  # why clear() cannot simply erase
            mine.erase_conversation_messages(conversation)
        history.clear()
        assert history.messages == []
    assert stored(client, conversation) == []
    assert client.get(f"/v1/users/{user}/messages/count").json() == {"count": 0}


def test_the_async_methods(jwt_worker: LocalWorker, client: httpx.Client,
                           unique_id: str) -> None:
    user, conversation = f"{unique_id}-u", f"{unique_id}-c"

    async def go() -> tuple[list[BaseMessage], list[BaseMessage], list[BaseMessage]]:
        async with AsyncChatStore(jwt_worker.base_url,
                                  user_token(user, [conversation])) as mine:
            history = ChatStoreMessageHistory(user_id=user, conversation_id=conversation,
                                              async_client=mine)
            await history.aadd_messages(EVERY_KIND[:4])
            await history.aadd_messages(EVERY_KIND[4:])
            everything = await history.aget_messages()
            history.max_messages = 2
            newest = await history.aget_messages()
            await history.aclear()
            return everything, newest, await history.aget_messages()

    everything, newest, after = asyncio.run(go())
    assert everything == EVERY_KIND
    assert newest == EVERY_KIND[-2:]
    assert after == [] and stored(client, conversation) == []


def test_messages_stored_by_other_clients(store: ChatStore, unique_id: str) -> None:
    user, conversation = f"{unique_id}-u", f"{unique_id}-c"
    store.create_messages([
        {"id": f"{unique_id}-1", "user_id": user, "conversation_id": conversation,
         "sender": {"id": user, "role": "user"}, "content": "Weather?", "timestamp": 1},
        {"id": f"{unique_id}-2", "user_id": user, "conversation_id": conversation,
         "sender": {"id": "bot", "role": "assistant"}, "timestamp": 2,
         "parts": [{"type": "text", "text": "Paris: "},
                   {"type": "tool-weather", "toolCallId": "t1", "state": "output-available",
                    "input": {"city": "Paris"}, "output": {"celsius": 21}}]},
    ])
    history = ChatStoreMessageHistory(store, user_id=user, conversation_id=conversation)
    assert history.messages == [
        HumanMessage("Weather?", id=f"{unique_id}-1"),
        AIMessage("Paris: ", id=f"{unique_id}-2", tool_calls=[
            {"name": "weather", "args": {"city": "Paris"}, "id": "t1", "type": "tool_call"}]),
    ]
