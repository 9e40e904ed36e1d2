"""Every endpoint of the messages API, against the real Worker, checked against a model.

The model of a listing is the set of live messages ordered by ``(timestamp, "chat:" + id)``
(``chat_support.ordered``); ``desc`` is exactly the reverse of ``asc``.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from support.chat_support import (
    ULID,
    Message,
    Position,
    assert_problem,
    body,
    count,
    create,
    create_batch,
    ids,
    in_range,
    list_all,
    messages_path,
    ordered,
    page,
    position,
    ulid_ms,
)
from support.worker_harness import LocalWorker

MAX_SCORE = 2**53 - 1


def users(uid: str) -> str:
    return messages_path("users", uid)


def conversations(cid: str) -> str:
    return messages_path("conversations", cid)


def get_message(client: httpx.Client, message_id: str) -> httpx.Response:
    return client.get(f"/v1/messages/{message_id}")


def beyond(message: Message, last: Position | None, order: str) -> bool:
    if last is None:
        return True
    return position(message) > last if order == "asc" else position(message) < last


# -- POST /v1/messages ----------------------------------------------------------------------


def test_create_returns_201_with_server_ulid_and_timestamp(
    client: httpx.Client, unique_id: str
) -> None:
    sender = {"id": "s-1", "name": "Ånne ✓", "role": "user"}
    metadata = {"lang": "en", "tags": ["a", "b"], "n": 3, "nested": {"ok": True}}
    payload = body(unique_id, "hi there ✓", conversation_id=f"{unique_id}-c", sender=sender,
                   metadata=metadata)
    before = int(time.time() * 1000)
    response = client.post("/v1/messages", json=payload)
    after = int(time.time() * 1000)

    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["message"]
    assert ULID.fullmatch(message["id"]), message["id"]
    # The server's clock picks the id's time, the timestamp and created_at: all the same instant.
    assert ulid_ms(message["id"]) == message["created_at"] == message["timestamp"]
    assert before - 5_000 <= message["created_at"] <= after + 5_000
    assert message == {
        "id": message["id"],
        "user_id": unique_id,
        "conversation_id": f"{unique_id}-c",
        "sender": sender,
        "content": "hi there ✓",
        "timestamp": message["timestamp"],
        "metadata": metadata,
        "created_at": message["created_at"],
    }
    fetched = get_message(client, message["id"])
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == {"message": message}


@pytest.mark.parametrize("timestamp", [0, 1_700_000_000_000, MAX_SCORE - 1, MAX_SCORE])
def test_create_keeps_client_id_and_timestamp(client: httpx.Client, unique_id: str,
                                              timestamp: int) -> None:
    payload = body(unique_id, "x", id=f"{unique_id}-m", timestamp=timestamp)
    message = create(client, payload)
    assert message["id"] == f"{unique_id}-m"
    assert message["timestamp"] == timestamp
    assert "conversation_id" not in message  # omitted, not null
    assert "metadata" not in message
    assert isinstance(message["created_at"], int)
    assert get_message(client, message["id"]).json() == {"message": message}
    assert list_all(client, users(unique_id)) == [message]
    assert count(client, users(unique_id), start=timestamp, end=timestamp) == 1


@pytest.mark.parametrize("timestamp", [0, MAX_SCORE - 1, MAX_SCORE])
def test_patch_timestamp_to_the_edges_of_the_range(client: httpx.Client, unique_id: str,
                                                   timestamp: int) -> None:
    conversation = f"{unique_id}-c"
    other = create(client, body(unique_id, "other", conversation_id=conversation,
                                timestamp=1_000))
    moved = create(client, body(unique_id, "moved", conversation_id=conversation,
                                timestamp=2_000))
    response = client.patch(f"/v1/messages/{moved['id']}", json={"timestamp": timestamp})
    assert response.status_code == 200, response.text
    moved = response.json()["message"]
    assert moved["timestamp"] == timestamp
    for path in (users(unique_id), conversations(conversation)):
        assert list_all(client, path, order="asc") == ordered([other, moved])


@pytest.mark.parametrize("with_timestamp", [True, False], ids=["client-ts", "server-ts"])
def test_replay_with_same_fields_returns_200_and_the_original(
    client: httpx.Client, unique_id: str, with_timestamp: bool
) -> None:
    payload = body(unique_id, "same", id=f"{unique_id}-m", conversation_id=f"{unique_id}-c",
                   timestamp=1_000 if with_timestamp else None, metadata={"k": 1})
    first = client.post("/v1/messages", json=payload)
    assert first.status_code == 201, first.text
    time.sleep(0.01)  # a replay that rebuilt the message would get a new created_at
    second = client.post("/v1/messages", json=payload)
    assert second.status_code == 200, second.text
    assert second.json() == first.json()
    assert second.content == first.content
    # Replayed inside a batch too: nothing new, so 200.
    batch = client.post("/v1/messages/batch", json={"messages": [payload]})
    assert batch.status_code == 200, batch.text
    assert batch.json() == {"messages": [first.json()["message"]]}
    assert count(client, users(unique_id)) == 1
    assert count(client, conversations(f"{unique_id}-c")) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"content": "different"},
        {"timestamp": 2_000},
        {"sender": {"id": "someone-else"}},
        {"metadata": {"k": 2}},
        {"conversation_id": "another-conversation"},
        {"user_id": "another-user"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_same_id_with_different_fields_is_409(
    client: httpx.Client, unique_id: str, change: dict[str, Any]
) -> None:
    payload = body(unique_id, "original", id=f"{unique_id}-m", timestamp=1_000,
                   conversation_id=f"{unique_id}-c", metadata={"k": 1})
    original = create(client, payload)
    response = client.post("/v1/messages", json={**payload, **change})
    assert_problem(response, 409, "conflict")
    assert get_message(client, original["id"]).json() == {"message": original}
    assert ids(list_all(client, users(unique_id))) == [original["id"]]


# -- POST /v1/messages/batch ----------------------------------------------------------------


def test_batch_creates_messages_across_users_and_conversations(
    client: httpx.Client, unique_id: str
) -> None:
    u1, u2, c1, c2 = (f"{unique_id}-{s}" for s in ("u1", "u2", "c1", "c2"))
    payloads = [
        body(u1, "a", conversation_id=c1, timestamp=300),
        body(u2, "b", conversation_id=c1, timestamp=100, id=f"{unique_id}-b"),
        body(u1, "c", conversation_id=c2, timestamp=200),
        body(u2, "d", timestamp=300),  # no conversation
        body(u1, "e", conversation_id=c1),  # server timestamp
        body(u2, "f", conversation_id=c2, timestamp=100, id=f"{unique_id}-f"),
    ]
    response = client.post("/v1/messages/batch", json={"messages": payloads})
    assert response.status_code == 201, response.text
    messages = response.json()["messages"]

    assert [m["content"] for m in messages] == [p["content"] for p in payloads]
    assert messages[1]["id"] == f"{unique_id}-b" and messages[5]["id"] == f"{unique_id}-f"
    assert all(ULID.fullmatch(m["id"]) for i, m in enumerate(messages) if i not in (1, 5))
    assert len(set(ids(messages))) == len(messages)
    assert messages[4]["timestamp"] == messages[4]["created_at"]
    for message in messages:
        assert get_message(client, message["id"]).json() == {"message": message}
    scopes = {
        users(u1): [m for m in messages if m["user_id"] == u1],
        users(u2): [m for m in messages if m["user_id"] == u2],
        conversations(c1): [m for m in messages if m.get("conversation_id") == c1],
        conversations(c2): [m for m in messages if m.get("conversation_id") == c2],
    }
    for path, expected in scopes.items():
        assert list_all(client, path, order="asc") == ordered(expected), path
        assert count(client, path) == len(expected), path


def test_batch_with_new_and_replayed_items_is_201(client: httpx.Client, unique_id: str) -> None:
    existing = create(client, body(unique_id, "old", id=f"{unique_id}-old", timestamp=5))
    replay = body(unique_id, "old", id=f"{unique_id}-old", timestamp=5)
    fresh = body(unique_id, "new", id=f"{unique_id}-new", timestamp=6)
    messages = create_batch(client, [replay, fresh])
    assert messages[0] == existing
    assert messages[1]["id"] == f"{unique_id}-new"
    assert ids(list_all(client, users(unique_id), order="asc")) == [
        f"{unique_id}-old", f"{unique_id}-new",
    ]


INVALID_ITEMS: list[tuple[int, dict[str, Any], int, str]] = [
    # (index of the bad item, the bad item's fields over a valid one, status, code)
    (0, {"content": None}, 400, "validation_error"),
    (1, {"timestamp": "5"}, 400, "validation_error"),
    (2, {"unknown": 1}, 400, "validation_error"),
    (3, {"id": "has/slash"}, 400, "validation_error"),
    (2, {"sender": {"name": "no id"}}, 400, "validation_error"),
    (3, {"content": "x" * (64 * 1024 + 1)}, 413, "payload_too_large"),
]


def _batch_with_bad_item(uid: str, bad: int, fields: dict[str, Any]) -> list[dict[str, Any]]:
    """Four valid items of user ``uid`` (ids ``{uid}-0..3``), item ``bad`` spoiled by ``fields``
    (a None value removes the field)."""
    items: list[dict[str, Any]] = [
        body(uid, f"item {i}", id=f"{uid}-{i}", conversation_id=f"{uid}-c", timestamp=100 + i)
        for i in range(4)
    ]
    items[bad] = {k: v for k, v in {**items[bad], **fields}.items() if v is not None}
    return items


@pytest.mark.parametrize(("bad", "fields", "status", "code"), INVALID_ITEMS,
                         ids=[f"{c}-{next(iter(f))}" for _, f, _, c in INVALID_ITEMS])
def test_batch_with_invalid_item_writes_nothing(
    client: httpx.Client, unique_id: str, bad: int, fields: dict[str, Any], status: int,
    code: str,
) -> None:
    items = _batch_with_bad_item(unique_id, bad, fields)
    response = client.post("/v1/messages/batch", json={"messages": items})

    problem = assert_problem(response, status, code)
    assert problem["index"] == bad
    assert problem["detail"].startswith(f"messages[{bad}]"), problem["detail"]
    for i in range(4):
        assert get_message(client, f"{unique_id}-{i}").status_code == 404
    assert list_all(client, users(unique_id)) == []
    assert list_all(client, conversations(f"{unique_id}-c")) == []
    assert count(client, users(unique_id)) == 0


def test_rejected_batches_leave_nothing_in_kv(
    worker: LocalWorker, client: httpx.Client, unique_id: str
) -> None:
    """Straight from KV (one listing per prefix for every rejected batch, as KV reads are slow):
    no message record and no journal entry."""
    for n, (bad, fields, status, _) in enumerate(INVALID_ITEMS):
        items = _batch_with_bad_item(f"{unique_id}-{n}", bad, fields)
        assert client.post("/v1/messages/batch", json={"messages": items}).status_code == status
    create(client, body(f"{unique_id}-x", "original", id=f"{unique_id}-x-0", timestamp=1))
    conflicting = _batch_with_bad_item(f"{unique_id}-x", 0, {"content": "changed"})
    response = client.post("/v1/messages/batch", json={"messages": conflicting})
    assert response.status_code == 409, response.text

    assert worker.kv_list(f"chat:{unique_id}") == [f"chat:{unique_id}-x-0"]
    journals = worker.kv_list(f"idx:log:user:chat:{unique_id}")
    assert all(key.startswith(f"idx:log:user:chat:{unique_id}-x:") for key in journals), journals
    assert len(journals) <= 1  # the one create (unless compaction has collected it already)


def test_batch_with_duplicate_id_names_the_second(client: httpx.Client, unique_id: str) -> None:
    items = [body(unique_id, str(i), id=f"{unique_id}-{i}") for i in range(3)]
    items.append(body(unique_id, "again", id=f"{unique_id}-1"))
    problem = assert_problem(client.post("/v1/messages/batch", json={"messages": items}),
                             400, "validation_error")
    assert problem["index"] == 3
    assert problem["detail"].startswith("messages[3]")
    assert count(client, users(unique_id)) == 0


def test_batch_conflict_writes_nothing(client: httpx.Client, unique_id: str) -> None:
    existing = create(client, body(unique_id, "original", id=f"{unique_id}-x", timestamp=1))
    items = [
        body(unique_id, "new a", id=f"{unique_id}-a", timestamp=2),
        body(unique_id, "changed", id=f"{unique_id}-x", timestamp=1),
        body(unique_id, "new b", id=f"{unique_id}-b", timestamp=3),
    ]
    problem = assert_problem(client.post("/v1/messages/batch", json={"messages": items}),
                             409, "conflict")
    assert problem["index"] == 1
    assert problem["detail"].startswith("messages[1]")
    assert get_message(client, f"{unique_id}-a").status_code == 404
    assert get_message(client, f"{unique_id}-b").status_code == 404
    assert get_message(client, existing["id"]).json() == {"message": existing}
    assert list_all(client, users(unique_id)) == [existing]


@pytest.mark.parametrize("size", [0, 101])
def test_batch_size_bounds(client: httpx.Client, unique_id: str, size: int) -> None:
    items = [body(unique_id, str(i)) for i in range(size)]
    assert_problem(client.post("/v1/messages/batch", json={"messages": items}),
                   400, "validation_error")
    assert count(client, users(unique_id)) == 0


def test_batch_of_100_is_accepted(client: httpx.Client, unique_id: str) -> None:
    messages = create_batch(client, [body(unique_id, str(i), timestamp=i) for i in range(100)])
    assert len(messages) == 100
    assert count(client, users(unique_id)) == 100


# -- GET / PATCH / DELETE /v1/messages/{id} -------------------------------------------------


@pytest.mark.parametrize("message_id", ["does-not-exist", "x" * 128, "bad%20id", "x" * 129])
def test_get_missing_message_is_404(client: httpx.Client, unique_id: str,
                                    message_id: str) -> None:
    assert_problem(get_message(client, f"{unique_id}-{message_id}"), 404, "not_found")


@pytest.mark.parametrize(
    "changes",
    [
        {"content": "edited ✓"},
        {"sender": {"id": "s2", "name": "New"}},
        {"metadata": {"edited": True}},
        {"timestamp": 7},
        {"content": "all", "sender": {"id": "s3"}, "metadata": {}, "timestamp": 0},
    ],
    ids=["content", "sender", "metadata", "timestamp", "all"],
)
def test_patch_changes_fields_and_sets_edited_at(
    client: httpx.Client, unique_id: str, changes: dict[str, Any]
) -> None:
    original = create(client, body(unique_id, "before", conversation_id=f"{unique_id}-c",
                                   timestamp=5, metadata={"v": 1}))
    response = client.patch(f"/v1/messages/{original['id']}", json=changes)
    assert response.status_code == 200, response.text
    patched = response.json()["message"]
    assert isinstance(patched.get("edited_at"), int)
    assert patched["edited_at"] >= original["created_at"]
    assert patched == {**original, **changes, "edited_at": patched["edited_at"]}
    assert get_message(client, original["id"]).json() == {"message": patched}
    assert list_all(client, users(unique_id)) == [patched]
    assert list_all(client, conversations(f"{unique_id}-c")) == [patched]


def test_patch_without_change_keeps_the_message(client: httpx.Client, unique_id: str) -> None:
    original = create(client, body(unique_id, "same", timestamp=5))
    response = client.patch(f"/v1/messages/{original['id']}",
                            json={"content": "same", "timestamp": 5})
    assert response.status_code == 200, response.text
    assert response.json() == {"message": original}  # no edited_at: nothing was edited


def test_patch_timestamp_moves_message_in_user_and_conversation_listings(
    client: httpx.Client, unique_id: str
) -> None:
    conversation = f"{unique_id}-c"
    live = {m["id"]: m for m in create_batch(client, [
        body(unique_id, str(i), conversation_id=conversation, timestamp=100 * i)
        for i in range(1, 6)
    ])}
    scopes = (users(unique_id), conversations(conversation))
    middle = ids(ordered(live.values()))[2]
    for new_timestamp in (50, 1_000, 400, 400):  # to the front, the back, a tie, no move
        response = client.patch(f"/v1/messages/{middle}", json={"timestamp": new_timestamp})
        assert response.status_code == 200, response.text
        live[middle] = response.json()["message"]
        assert live[middle]["timestamp"] == new_timestamp
        for path in scopes:
            for order in ("asc", "desc"):
                assert list_all(client, path, order=order, limit=2) == ordered(
                    live.values(), order), (path, order, new_timestamp)
            for start, end in ((0, 99), (100, 300), (400, 400), (401, 2_000)):
                expected = in_range(live.values(), start, end)
                assert count(client, path, start=start, end=end) == len(expected)
                assert list_all(client, path, order="asc", start=start, end=end) == ordered(
                    expected)


@pytest.mark.parametrize(
    "changes",
    [{"id": "other"}, {"user_id": "other"}, {"conversation_id": "other"},
     {"content": "ok", "user_id": "other"}],
    ids=["id", "user_id", "conversation_id", "mixed"],
)
def test_patch_immutable_field_is_400(
    client: httpx.Client, unique_id: str, changes: dict[str, Any]
) -> None:
    original = create(client, body(unique_id, "fixed", conversation_id=f"{unique_id}-c"))
    problem = assert_problem(client.patch(f"/v1/messages/{original['id']}", json=changes),
                             400, "validation_error")
    assert next(k for k in changes if k != "content") in problem["detail"]
    assert get_message(client, original["id"]).json() == {"message": original}


def test_patch_missing_message_is_404(client: httpx.Client, unique_id: str) -> None:
    assert_problem(client.patch(f"/v1/messages/{unique_id}", json={"content": "x"}),
                   404, "not_found")


def test_delete_is_204_then_404(client: httpx.Client, unique_id: str) -> None:
    conversation = f"{unique_id}-c"
    keep, gone = create_batch(client, [
        body(unique_id, "keep", conversation_id=conversation, timestamp=1),
        body(unique_id, "gone", conversation_id=conversation, timestamp=2),
    ])
    response = client.delete(f"/v1/messages/{gone['id']}")
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_problem(get_message(client, gone["id"]), 404, "not_found")
    assert_problem(client.delete(f"/v1/messages/{gone['id']}"), 404, "not_found")
    assert_problem(client.patch(f"/v1/messages/{gone['id']}", json={"content": "x"}),
                   404, "not_found")
    for path in (users(unique_id), conversations(conversation)):
        assert list_all(client, path) == [keep]
        assert count(client, path) == 1


# -- listings and counts --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["users", "conversations"])
def test_list_defaults_to_50_newest_first(client: httpx.Client, unique_id: str,
                                          kind: str) -> None:
    live = create_batch(client, [
        body(unique_id, str(i), conversation_id=unique_id, timestamp=(i * 7919) % 1_000)
        for i in range(55)
    ])
    path = messages_path(kind, unique_id)
    messages, cursor = page(client, path)
    assert messages == ordered(live, "desc")[:50]
    assert cursor is not None
    rest, cursor = page(client, path, cursor=cursor)
    assert rest == ordered(live, "desc")[50:]
    assert cursor is None
    assert count(client, path) == 55


@pytest.mark.parametrize("limit", [1, 2, 54, 55, 100])
def test_list_limit_within_bounds(client: httpx.Client, unique_id: str, limit: int) -> None:
    live = create_batch(client, [body(unique_id, str(i), timestamp=i % 9) for i in range(55)])
    messages, cursor = page(client, users(unique_id), limit=limit, order="asc")
    assert messages == ordered(live)[:limit]
    assert (cursor is None) == (limit >= 55)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "1.5", "abc", "", "٣"])
def test_list_limit_out_of_bounds_is_400(client: httpx.Client, unique_id: str,
                                         limit: str) -> None:
    create(client, body(unique_id))
    assert_problem(client.get(users(unique_id), params={"limit": limit}),
                   400, "validation_error")


def test_desc_is_exact_reverse_of_asc_including_ties(client: httpx.Client,
                                                     unique_id: str) -> None:
    conversation = f"{unique_id}-c"
    # Ids chosen to spread over the id alphabet's byte order: - . 0-9 A-Z _ a-z ~
    suffixes = ["b", "B", "a-1", "a.1", "a~", "Z9", "0", "_x", "~", "a", "A", "-", "."]
    payloads = [body(unique_id, s, id=f"{unique_id}{s}", conversation_id=conversation,
                     timestamp=500) for s in suffixes]
    payloads += [body(unique_id, f"srv{i}", conversation_id=conversation, timestamp=500)
                 for i in range(4)]  # server ULIDs at the same timestamp
    payloads += [body(unique_id, f"t{t}", conversation_id=conversation, timestamp=t)
                 for t in (499, 501, 0, MAX_SCORE - 1)]
    live = create_batch(client, payloads)
    for path in (users(unique_id), conversations(conversation)):
        asc = list_all(client, path, order="asc", limit=100)
        desc = list_all(client, path, order="desc", limit=100)
        assert asc == ordered(live, "asc")
        assert desc == list(reversed(asc))
        # Small pages cross the ties at every offset: still the same order.
        assert list_all(client, path, order="asc", limit=3) == asc
        assert list_all(client, path, order="desc", limit=4) == desc


RANGES: list[tuple[int | None, int | None]] = [
    (None, None), (20, None), (None, 20), (20, 20), (20, 40), (21, 29), (0, 0), (10, 10),
    (50, 50), (51, None), (0, MAX_SCORE), (11, 49),
]


def test_start_and_end_are_inclusive(client: httpx.Client, unique_id: str) -> None:
    conversation = f"{unique_id}-c"
    live = create_batch(client, [
        body(unique_id, str(i), conversation_id=conversation, timestamp=t)
        for i, t in enumerate([10, 20, 20, 20, 30, 40, 40, 50])
    ])
    for path in (users(unique_id), conversations(conversation)):
        for start, end in RANGES:
            expected = in_range(live, start, end)
            for order in ("asc", "desc"):
                got = list_all(client, path, order=order, start=start, end=end, limit=3)
                assert got == ordered(expected, order), (path, start, end, order)
            assert count(client, path, start=start, end=end) == len(expected), (start, end)


@pytest.mark.parametrize(
    "params",
    [
        {"start": "21", "end": "20"},
        {"start": str(MAX_SCORE), "end": "0"},
        {"start": "-1"},
        {"end": str(MAX_SCORE + 1)},
        {"start": "1e3"},
        {"order": "up"},
        {"order": "ASC"},
        {"cursor": ""},
        {"sort": "asc"},
    ],
    ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()),
)
def test_bad_listing_query_is_400(client: httpx.Client, unique_id: str,
                                  params: dict[str, str]) -> None:
    create(client, body(unique_id, timestamp=25))
    assert_problem(client.get(users(unique_id), params=params), 400, "validation_error")
    count_params = {k: v for k, v in params.items() if k in ("start", "end")}
    if count_params:
        assert_problem(client.get(f"{users(unique_id)}/count", params=count_params),
                       400, "validation_error")


def test_repeated_query_parameter_is_400(client: httpx.Client, unique_id: str) -> None:
    assert_problem(client.get(f"{users(unique_id)}?limit=5&limit=6"), 400, "validation_error")
    assert_problem(client.get(f"{users(unique_id)}/count?start=1&start=2"),
                   400, "validation_error")
    assert_problem(client.get(f"{users(unique_id)}/count?limit=5"), 400, "validation_error")


@pytest.mark.parametrize("scope_id", ["has.dot~ok", "x" * 128])
def test_unused_scope_lists_nothing(client: httpx.Client, unique_id: str,
                                    scope_id: str) -> None:
    scope = (unique_id + scope_id)[:128]
    for kind in ("users", "conversations"):
        assert page(client, messages_path(kind, scope)) == ([], None)
        assert count(client, messages_path(kind, scope)) == 0


@pytest.mark.parametrize("kind", ["users", "conversations"])
def test_invalid_scope_id_is_400(client: httpx.Client, kind: str) -> None:
    for bad in ("x" * 129, "a%20b", "a%2Fb"):
        assert_problem(client.get(messages_path(kind, bad)), 400, "validation_error")


# -- pagination -----------------------------------------------------------------------------


def _ties_and_others(unique_id: str, conversation: str) -> list[dict[str, Any]]:
    ties = [body(unique_id, f"tie {k}", id=f"{unique_id}-t{k:02d}", conversation_id=conversation,
                 timestamp=1_000) for k in range(0, 50, 2)]  # 25 ties, even suffixes
    others = [body(unique_id, f"other {t}", conversation_id=conversation, timestamp=t)
              for t in (5, 999, 1_001, 2_000, 999, 1_001, 0, 3_000)]
    return ties + others


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("kind", ["users", "conversations"])
def test_pagination_across_ties_yields_each_once(
    client: httpx.Client, unique_id: str, order: str, kind: str
) -> None:
    conversation = f"{unique_id}-c"
    live = create_batch(client, _ties_and_others(unique_id, conversation))
    path = messages_path(kind, unique_id if kind == "users" else conversation)
    expected = ordered(live, order)
    pages: list[list[Message]] = []
    cursor: str | None = None
    while True:
        messages, cursor = page(client, path, order=order, limit=7, cursor=cursor)
        pages.append(messages)
        if cursor is None:
            break
        assert len(pages) < 10
    assert pages == [expected[i : i + 7] for i in range(0, len(expected), 7)]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_pagination_with_appends_between_pages(
    client: httpx.Client, unique_id: str, order: str
) -> None:
    conversation = f"{unique_id}-c"
    original = create_batch(client, _ties_and_others(unique_id, conversation))
    live = list(original)
    seen: list[Message] = []
    last: Position | None = None
    cursor: str | None = None
    for round_ in range(30):
        messages, cursor = page(client, conversations(conversation), order=order, limit=7,
                                cursor=cursor)
        # Exactly the next 7 positions after the previous page in the current live set.
        expected = [m for m in ordered(live, order) if beyond(m, last, order)]
        assert messages == expected[:7], f"page {round_}"
        assert (cursor is None) == (len(expected) <= 7), f"page {round_}"
        seen.extend(messages)
        if cursor is None:
            break
        last = position(messages[-1])
        # Appends before, at and after the cursor, ties on both sides of it included.
        live += create_batch(client, [
            body(unique_id, f"r{round_} tie", id=f"{unique_id}-t{2 * round_ + 1:02d}",
                 conversation_id=conversation, timestamp=1_000),
            body(unique_id, f"r{round_} early", conversation_id=conversation, timestamp=1),
            body(unique_id, f"r{round_} late", conversation_id=conversation,
                 timestamp=2_500 + round_),
        ])
    else:
        raise AssertionError("pagination did not end")
    assert len(ids(seen)) == len(set(ids(seen))), "a message was listed twice"
    assert set(ids(original)) <= set(ids(seen)), "a message that was there all along was skipped"


def test_tampered_cursor_is_400(client: httpx.Client, unique_id: str) -> None:
    create_batch(client, [body(unique_id, str(i), timestamp=i) for i in range(5)])
    _, cursor = page(client, users(unique_id), limit=2)
    assert cursor is not None
    flipped = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
    for bad in (flipped, cursor[:-1], cursor[:-4], cursor + "A", cursor[::-1], "garbage",
                "!!!!", "A" * 2_000, cursor.upper() if cursor.upper() != cursor else "x"):
        assert_problem(client.get(users(unique_id), params={"limit": 2, "cursor": bad}),
                       400, "validation_error")


def test_cursor_of_another_query_is_400(client: httpx.Client, unique_id: str) -> None:
    other_user, conversation = f"{unique_id}-other", f"{unique_id}-c"
    for uid in (unique_id, other_user):
        create_batch(client, [body(uid, str(i), conversation_id=conversation, timestamp=i)
                              for i in range(6)])
    _, cursor = page(client, users(unique_id), limit=2, order="asc", start=0, end=10)
    assert cursor is not None
    # The cursor works for its own query...
    assert client.get(users(unique_id), params={"limit": 2, "order": "asc", "start": 0,
                                                "end": 10, "cursor": cursor}).status_code == 200
    # ...and for nothing else.
    foreign: list[tuple[str, dict[str, str | int]]] = [
        (users(other_user), {"order": "asc", "start": 0, "end": 10}),
        (conversations(conversation), {"order": "asc", "start": 0, "end": 10}),
        (conversations(unique_id), {"order": "asc", "start": 0, "end": 10}),
        (users(unique_id), {"order": "desc", "start": 0, "end": 10}),
        (users(unique_id), {"order": "asc", "start": 1, "end": 10}),
        (users(unique_id), {"order": "asc", "start": 0, "end": 9}),
        (users(unique_id), {"order": "asc"}),
    ]
    for path, params in foreign:
        response = client.get(path, params={**params, "limit": 2, "cursor": cursor})
        assert_problem(response, 400, "validation_error")


# -- erase ----------------------------------------------------------------------------------


def test_erase_user_removes_their_messages_everywhere(client: httpx.Client,
                                                      unique_id: str) -> None:
    user, other = f"{unique_id}-u", f"{unique_id}-v"
    shared, own = f"{unique_id}-shared", f"{unique_id}-own"
    mine = create_batch(client, [
        body(user, "m1", conversation_id=shared, timestamp=1),
        body(user, "m2", conversation_id=shared, timestamp=5),
        body(user, "m3", conversation_id=own, timestamp=3),
        body(user, "m4", timestamp=4),
        body(user, "m5", conversation_id=own, timestamp=5),
    ])
    theirs = create_batch(client, [
        body(other, "o1", conversation_id=shared, timestamp=2),
        body(other, "o2", conversation_id=shared, timestamp=5),
        body(other, "o3", timestamp=6),
    ])
    response = client.delete(users(user))
    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": len(mine), "remaining": 0}

    expected = {
        users(user): [],
        users(other): theirs,
        conversations(shared): [m for m in theirs if m.get("conversation_id") == shared],
        conversations(own): [],
    }
    for path, messages in expected.items():
        for order in ("asc", "desc"):
            assert list_all(client, path, order=order) == ordered(messages, order), path
        assert count(client, path) == len(messages), path
    for message in mine:
        assert_problem(get_message(client, message["id"]), 404, "not_found")
    again = client.delete(users(user))
    assert again.status_code == 200, again.text
    assert again.json() == {"deleted": 0, "remaining": 0}


def test_erase_conversation_removes_it_from_every_user(client: httpx.Client,
                                                       unique_id: str) -> None:
    conversation, kept = f"{unique_id}-c", f"{unique_id}-kept"
    u, v = f"{unique_id}-u", f"{unique_id}-v"
    doomed = create_batch(client, [
        body(u, "a", conversation_id=conversation, timestamp=10),
        body(v, "b", conversation_id=conversation, timestamp=10),
        body(u, "c", conversation_id=conversation, timestamp=30),
    ])
    survivors = create_batch(client, [
        body(u, "d", conversation_id=kept, timestamp=10),
        body(v, "e", timestamp=20),
        body(u, "f", timestamp=30),
    ])
    response = client.delete(conversations(conversation))
    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": len(doomed), "remaining": 0}

    expected = {
        conversations(conversation): [],
        conversations(kept): [survivors[0]],
        users(u): [m for m in survivors if m["user_id"] == u],
        users(v): [m for m in survivors if m["user_id"] == v],
    }
    for path, messages in expected.items():
        assert list_all(client, path, order="asc") == ordered(messages), path
        assert count(client, path) == len(messages), path
    for message in doomed:
        assert_problem(get_message(client, message["id"]), 404, "not_found")


def test_erase_of_unknown_scope_deletes_nothing(client: httpx.Client, unique_id: str) -> None:
    for kind in ("users", "conversations"):
        response = client.delete(messages_path(kind, unique_id))
        assert response.status_code == 200, response.text
        assert response.json() == {"deleted": 0, "remaining": 0}
