"""The Python client (clients/python, ``chat_store_client``) against the real Worker under
``wrangler dev``: every operation, the iterators over several pages, export to a file, erase,
typed errors, and the async client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chat_store_client import (
    AsyncChatStore,
    ChatStore,
    Conflict,
    Message,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    ValidationError,
)
from chat_store_client.types import Conversation, MessageContext, Page
from chat_store_client.ulid import decode_time

from support.worker_harness import LocalWorker


@pytest.fixture
def store(worker: LocalWorker, api_token: str) -> Iterator[ChatStore]:
    with ChatStore(worker.base_url, api_token, timeout=30) as client:
        yield client


def assert_shape(value: Any, typed_dict: Any) -> None:
    """``value`` has the TypedDict's required keys and no key it does not know."""
    keys = set(value)
    assert typed_dict.__required_keys__ <= keys, (typed_dict.__name__, value)
    assert keys <= typed_dict.__required_keys__ | typed_dict.__optional_keys__, value


def seed(store: ChatStore, user: str, conversation: str, count: int,
         first_ts: int = 10_000) -> list[Message]:
    """``count`` messages one second apart (ids in the same order), alternating user and
    assistant, in one batch."""
    return store.create_messages([
        {"id": f"{conversation}-{n:03d}", "user_id": user, "conversation_id": conversation,
         "sender": {"id": user, "role": "user"} if n % 2 == 0 else
         {"id": "assistant", "role": "assistant"},
         "content": f"message {n}", "timestamp": first_ts + 1_000 * n}
        for n in range(count)])


def test_health_and_openapi(store: ChatStore) -> None:
    assert store.get_health() == {"status": "ok"}
    document = store.get_open_api()
    assert document["openapi"].startswith("3.1.")
    assert "/v1/messages" in document["paths"]


def test_create_replay_and_conflict(store: ChatStore, unique_id: str) -> None:
    user = f"{unique_id}-u"
    made = store.create_message(user_id=user, conversation_id=f"{unique_id}-c",
                                sender={"id": user, "role": "user", "name": "Ann"},
                                content="hello ✈", metadata={"lang": "en"})
    assert_shape(made, Message)
    assert len(made["id"]) == 26 and decode_time(made["id"]) > 0  # the client's ULID
    assert made["content"] == "hello ✈" and made["sender"]["name"] == "Ann"

    # What a retry of the same call sends: the same id and fields -> the stored message.
    replay = store.create_message(id=made["id"], user_id=user, conversation_id=f"{unique_id}-c",
                                  sender={"id": user, "role": "user", "name": "Ann"},
                                  content="hello ✈", metadata={"lang": "en"})
    assert replay == made
    assert store.count_user_messages(user) == 1

    with pytest.raises(Conflict) as caught:
        store.create_message(id=made["id"], user_id=user, sender={"id": user},
                             content="something else")
    assert caught.value.status == 409 and caught.value.problem is not None
    assert caught.value.problem["code"] == "conflict"
    assert store.get_message(made["id"]) == made


def test_batch_get_patch_delete(store: ChatStore, unique_id: str) -> None:
    user, conversation = f"{unique_id}-u", f"{unique_id}-c"
    batch = store.create_messages([
        {"user_id": user, "conversation_id": conversation, "sender": {"id": user},
         "content": f"m{n}", "timestamp": 5_000}
        for n in range(5)])
    ids = [m["id"] for m in batch]
    assert ids == sorted(ids) and len(set(ids)) == 5  # client ULIDs, increasing
    # All at one timestamp: the listing keeps the batch's order through the ids.
    assert [m["id"] for m in store.iter_conversation_messages(conversation, order="asc")] == ids
    # A batch retried as sent: every item a replay, answered with the stored messages.
    replayed = store.create_messages(
        [{k: v for k, v in m.items() if k != "created_at"} for m in batch[:2]])
    assert replayed == batch[:2]

    patched = store.patch_message(ids[0], content="edited", metadata={"v": 2}, timestamp=9_000)
    assert patched["content"] == "edited" and patched["metadata"] == {"v": 2}
    assert patched["timestamp"] == 9_000 and "edited_at" in patched
    newest = store.list_conversation_messages(conversation, limit=1)["messages"]
    assert [m["id"] for m in newest] == [ids[0]]  # the move took it to the end

    store.delete_message(ids[1])
    with pytest.raises(NotFound):
        store.get_message(ids[1])
    with pytest.raises(NotFound):
        store.delete_message(ids[1])
    assert store.count_conversation_messages(conversation) == 4


def test_listing_iterators_counts_and_context(store: ChatStore, unique_id: str) -> None:
    user, conversation = f"{unique_id}-u", f"{unique_id}-c"
    made = seed(store, user, conversation, 7)
    ids = [m["id"] for m in made]

    first = store.list_user_messages(user, limit=3)
    assert_shape(first, Page)
    assert [m["id"] for m in first["messages"]] == ids[::-1][:3]
    assert first["next_cursor"] is not None
    second = store.list_user_messages(user, limit=3, cursor=first["next_cursor"])
    assert [m["id"] for m in second["messages"]] == ids[::-1][3:6]

    assert [m["id"] for m in store.iter_user_messages(user, page_size=3)] == ids[::-1]
    assert [m["id"] for m in store.iter_conversation_messages(
        conversation, order="asc", page_size=2)] == ids
    ranged = store.iter_conversation_messages(conversation, order="asc", start=11_000,
                                              end=14_000, page_size=2)
    assert [m["id"] for m in ranged] == ids[1:5]
    assert store.count_user_messages(user) == 7
    assert store.count_conversation_messages(conversation, start=11_000, end=14_000) == 4

    context = store.get_message_context(ids[3], before=2, after=2)
    assert_shape(context, MessageContext)
    assert [m["id"] for m in context["before"]] == ids[1:3]
    assert context["message"]["id"] == ids[3]
    assert [m["id"] for m in context["after"]] == ids[4:6]
    assert context["before_cursor"] is not None and context["after_cursor"] is not None
    older = store.list_conversation_messages(conversation, order="desc",
                                             cursor=context["before_cursor"])
    assert [m["id"] for m in older["messages"]] == [ids[0]]
    assert store.get_message_context(ids[0], scope="user", before=0, after=1)["after"][0][
        "id"] == ids[1]


def test_conversations(store: ChatStore, unique_id: str) -> None:
    user = f"{unique_id}-u"
    conversations = [f"{unique_id}-c{n}" for n in range(3)]
    for n, conversation in enumerate(conversations):
        seed(store, user, conversation, 2, first_ts=1_000 * (n + 1))
    walked = list(store.iter_user_conversations(user, page_size=1))
    assert [c["id"] for c in walked] == conversations[::-1]  # most recent activity first
    for found in walked:
        assert_shape(found, Conversation)
        assert found["message_count"] == 2
    renamed = store.patch_conversation(conversations[0], title="Trip ✈", metadata={"pin": True})
    assert renamed["title"] == "Trip ✈" and renamed["metadata"] == {"pin": True}
    assert store.get_conversation(conversations[0])["title"] == "Trip ✈"
    page = store.list_user_conversations(user, limit=2, order="asc")
    assert [c["id"] for c in page["conversations"]] == conversations[:2]
    with pytest.raises(NotFound):
        store.get_conversation(f"{unique_id}-nothing")


def test_export_to_a_file(store: ChatStore, unique_id: str, tmp_path: Path) -> None:
    user, conversation = f"{unique_id}-u", f"{unique_id}-c"
    made = seed(store, user, conversation, 5)
    store.create_message(user_id=user, sender={"id": user}, content="no conversation",
                         timestamp=99_000)
    target = tmp_path / "user.ndjson"
    assert store.export_to(target, user_id=user, page_size=2) == 6
    lines = target.read_text(encoding="utf-8").splitlines()
    exported = [json.loads(line) for line in lines]
    assert [m["id"] for m in exported[:5]] == [m["id"] for m in made]
    assert exported[5]["content"] == "no conversation"
    assert exported[:5] == made  # each line is the stored message

    conversation_file = tmp_path / "conversation.ndjson"
    assert store.export_to(conversation_file, conversation_id=conversation, page_size=3) == 5
    assert [json.loads(line) for line in conversation_file.read_text().splitlines()] == made
    assert list(store.iter_export(conversation_id=conversation, page_size=2)) == made
    page = store.export_user_messages(user, limit=4)
    assert len(page["messages"]) == 4 and page["next_cursor"] is not None
    rest = store.export_user_messages(user, cursor=page["next_cursor"])
    assert [m["id"] for m in page["messages"] + rest["messages"]] == [m["id"] for m in exported]
    assert rest["next_cursor"] is None


def test_truncate_and_erase(store: ChatStore, unique_id: str) -> None:
    user, conversation = f"{unique_id}-u", f"{unique_id}-c"
    made = seed(store, user, conversation, 6)
    truncated = store.erase_conversation_messages(conversation, after=made[2]["id"])
    assert truncated == {"deleted": 3, "remaining": 0}
    assert [m["id"] for m in store.iter_conversation_messages(conversation, order="asc")] == [
        m["id"] for m in made[:3]]

    other = f"{unique_id}-c2"
    seed(store, user, other, 4)
    erased = store.erase_user_messages(user, until_done=True)
    assert erased == {"deleted": 7, "remaining": 0}
    assert store.count_user_messages(user) == 0
    assert store.count_conversation_messages(other) == 0
    assert list(store.iter_user_conversations(user)) == []

    third = f"{unique_id}-c3"
    seed(store, user, third, 3)
    assert store.erase_conversation_messages(third, until_done=True) == {
        "deleted": 3, "remaining": 0}
    assert store.count_conversation_messages(third) == 0


def test_reindex(store: ChatStore, unique_id: str) -> None:
    user = f"{unique_id}-u"
    seed(store, user, f"{unique_id}-c", 3)
    result = store.reindex(user_id=user)
    assert result["index"] == f"user:chat:{user}" and result["entries"] == 3


def test_typed_errors(store: ChatStore, worker: LocalWorker, unique_id: str) -> None:
    user = f"{unique_id}-u"
    with pytest.raises(NotFound) as missing:
        store.get_message(f"{unique_id}-missing")
    assert missing.value.status == 404 and missing.value.detail
    with pytest.raises(ValidationError) as bad_limit:
        store.list_user_messages(user, limit=0)
    assert bad_limit.value.status == 400 and bad_limit.value.problem_code == "validation_error"
    with pytest.raises(ValidationError):
        store.list_user_messages(user, start=10, end=5)
    with pytest.raises(ValidationError):
        store.list_user_messages(user, cursor="not-a-cursor")
    with pytest.raises(ValidationError):
        store.list_user_messages("bad id!")
    with pytest.raises(ValidationError) as bad_batch:
        store.create_messages([{"user_id": user, "sender": {"id": user}, "content": "ok"},
                               {"user_id": user, "sender": {"id": ""}, "content": "bad"}])
    assert bad_batch.value.index == 1
    assert store.count_user_messages(user) == 0  # all or nothing
    with pytest.raises(PayloadTooLarge):
        store.create_message(user_id=user, sender={"id": user}, content="x" * 70_000)
    with ChatStore(worker.base_url, "wrong-token") as stranger, pytest.raises(Unauthorized):
        stranger.count_user_messages(user)


def test_url_and_token_from_the_environment(worker: LocalWorker, api_token: str,
                                            monkeypatch: pytest.MonkeyPatch,
                                            unique_id: str) -> None:
    monkeypatch.setenv("CHAT_STORE_URL", worker.base_url)
    monkeypatch.setenv("CHAT_STORE_TOKEN", api_token)
    with ChatStore() as client:
        client.create_message(user_id=unique_id, sender={"id": unique_id}, content="env")
        assert client.count_user_messages(unique_id) == 1


def test_the_async_client(worker: LocalWorker, api_token: str, unique_id: str,
                          tmp_path: Path) -> None:
    user, conversation = f"{unique_id}-u", f"{unique_id}-c"

    async def go() -> list[str]:
        async with AsyncChatStore(worker.base_url, api_token) as client:
            made = await client.create_messages([
                {"user_id": user, "conversation_id": conversation, "sender": {"id": user},
                 "content": f"m{n}", "timestamp": 1_000 + n} for n in range(5)])
            replay = await client.create_message(
                id=made[0]["id"], user_id=user, conversation_id=conversation,
                sender={"id": user}, content="m0", timestamp=1_000)
            assert replay == made[0]
            listed = [m async for m in client.iter_conversation_messages(
                conversation, order="asc", page_size=2)]
            assert listed == made
            assert [c["id"] async for c in client.iter_user_conversations(user)] == [
                conversation]
            assert await client.count_user_messages(user) == 5
            patched = await client.patch_message(made[1]["id"], content="edited")
            assert patched["content"] == "edited"
            assert await client.export_to(tmp_path / "a.ndjson", user_id=user, page_size=2) == 5
            await client.delete_message(made[4]["id"])
            with pytest.raises(NotFound):
                await client.get_message(made[4]["id"])
            with pytest.raises(Conflict):
                await client.create_message(id=made[0]["id"], user_id=user,
                                            sender={"id": user}, content="different")
            context = await client.get_message_context(made[2]["id"], before=1, after=1)
            assert [m["id"] for m in context["before"] + context["after"]] == [
                made[1]["id"], made[3]["id"]]
            erased = await client.erase_conversation_messages(conversation, until_done=True)
            assert erased == {"deleted": 4, "remaining": 0}
            return [m["id"] for m in made]

    ids = asyncio.run(go())
    lines = (tmp_path / "a.ndjson").read_text().splitlines()
    exported = [json.loads(line) for line in lines]
    assert [m["id"] for m in exported] == ids
    assert exported[1]["content"] == "edited"
