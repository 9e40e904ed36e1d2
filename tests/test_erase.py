"""Truncating a conversation after a message (edit and regenerate flows), through
``App.handle`` over an in-memory KV: what goes (listing order, ties included, against a model),
chunks, the conversation lists, and who may do it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth.hs256 import sign_hs256
from chat_store import MAX_ERASE_PER_REQUEST
from config import Config
from support.app_harness import TOKEN, AppHarness, Reply, message_body

JWT_SECRET = "unit-test-jwt-secret-0123456789abcdef"


def post(h: AppHarness, message_id: str, ts: int, user: str = "u1", role: str = "user",
         conversation: str = "c") -> None:
    reply = h.request("POST", "/v1/messages", json_body=message_body(
        id=message_id, user_id=user, conversation_id=conversation, timestamp=ts,
        sender={"id": user if role == "user" else role, "role": role}))
    assert reply.status == 201, reply.body


def truncate(h: AppHarness, after: str, conversation: str = "c", **kwargs: Any) -> Reply:
    return h.request("DELETE", f"/v1/conversations/{conversation}/messages", f"after={after}",
                     **kwargs)


def listed(h: AppHarness, path: str = "conversations/c") -> list[str]:
    return [m["id"] for m in h.list_all(path, order="asc")]


def user_token(sub: str, conversations: list[str] | None = None) -> str:
    claims = {"sub": sub, "exp": int(time.time()) + 600, "conversations": conversations or []}
    return sign_hs256(claims, JWT_SECRET.encode())


def test_truncate_deletes_what_is_listed_after_the_message_ties_included() -> None:
    h = AppHarness()
    for n, ts in enumerate([10, 20, 20, 20, 30]):
        post(h, f"m{n}", ts)
    post(h, "elsewhere", 25, conversation="other")
    reply = truncate(h, "m2")
    assert (reply.status, reply.json) == (200, {"deleted": 2, "remaining": 0})
    assert listed(h) == ["m0", "m1", "m2"]
    assert listed(h, "users/u1") == ["m0", "m1", "m2", "elsewhere"]
    assert h.request("GET", "/v1/messages/m4").status == 404
    conversations = h.request("GET", "/v1/users/u1/conversations").json["conversations"]
    assert [(c["id"], c["last_message"]["id"], c["message_count"]) for c in conversations] == [
        ("other", "elsewhere", 1), ("c", "m2", 3)]  # c's newest is now m2 (20), below 25
    assert truncate(h, "m2").json == {"deleted": 0, "remaining": 0}  # a retry: nothing left


def test_truncate_goes_in_chunks() -> None:
    h = AppHarness()
    total = MAX_ERASE_PER_REQUEST + 25
    items = [message_body(id=f"m{n:04d}", user_id="u1", conversation_id="c", timestamp=n)
             for n in range(total)]
    for start in range(0, total, 100):
        reply = h.request("POST", "/v1/messages/batch",
                          json_body={"messages": items[start:start + 100]})
        assert reply.status == 201
    first = truncate(h, "m0009")
    assert first.json == {"deleted": MAX_ERASE_PER_REQUEST, "remaining": total - 10 - 300}
    assert truncate(h, "m0009").json == {"deleted": 15, "remaining": 0}
    assert listed(h) == [f"m{n:04d}" for n in range(10)]


@pytest.mark.parametrize(("after", "conversation", "status"), [
    ("nothing", "c", 404), ("elsewhere", "c", 404), ("..", "c", 404), ("", "c", 400),
])
def test_truncate_needs_a_message_of_that_conversation(
    after: str, conversation: str, status: int
) -> None:
    h = AppHarness()
    post(h, "m0", 1)
    post(h, "elsewhere", 2, conversation="other")
    h.kv.reset_counters()
    reply = truncate(h, after, conversation)
    assert reply.status == status, reply.body
    assert reply.content_type.startswith("application/problem+json")
    assert h.kv.writes == 0


@pytest.mark.parametrize("query", ["after=m0&after=m1", "before=m0", "after=m0&x=1"])
def test_a_bad_erase_query_is_400(query: str) -> None:
    h = AppHarness()
    post(h, "m0", 1)
    reply = h.request("DELETE", "/v1/conversations/c/messages", query)
    assert reply.status == 400 and reply.json["code"] == "validation_error", reply.body
    reply = h.request("DELETE", "/v1/users/u1/messages", "after=m0")
    assert reply.status == 400 and reply.json["code"] == "validation_error", reply.body


# -- who may truncate ------------------------------------------------------------------------------


def world() -> AppHarness:
    h = AppHarness(Config(api_token=TOKEN, jwt_secret=JWT_SECRET, journal_settle_ms=1_000))
    post(h, "q1", 1, user="alice")
    post(h, "a1", 2, user="alice", role="assistant")
    post(h, "q2", 3, user="alice")
    post(h, "t1", 4, user="alice", role="tool")
    post(h, "a2", 5, user="alice", role="assistant")
    return h


def test_a_user_may_regenerate_after_their_own_message() -> None:
    h = world()
    reply = truncate(h, "q2", token=user_token("alice"))  # a participant, no claim needed
    assert (reply.status, reply.json) == (200, {"deleted": 2, "remaining": 0})
    assert listed(h) == ["q1", "a1", "q2"]


def test_another_users_message_in_the_range_refuses_it_all() -> None:
    h = world()
    post(h, "b1", 6, user="bob")
    h.kv.reset_counters()
    reply = truncate(h, "q2", token=user_token("alice", ["c"]))
    assert reply.status == 403 and "b1" in reply.json["detail"]
    assert h.kv.writes == h.kv.deletes == 0
    assert listed(h) == ["q1", "a1", "q2", "t1", "a2", "b1"]
    assert truncate(h, "q2").json == {"deleted": 3, "remaining": 0}  # the service may


def test_a_user_who_cannot_read_the_conversation_may_not_truncate_it() -> None:
    h = world()
    reply = truncate(h, "q1", token=user_token("mallory"))
    assert reply.status == 403 and reply.json["code"] == "forbidden"
    assert listed(h) == ["q1", "a1", "q2", "t1", "a2"]


def test_a_user_truncates_at_most_one_chunk_and_is_told_so() -> None:
    h = world()
    items = [message_body(id=f"x{n:04d}", user_id="alice", conversation_id="c",
                          timestamp=100 + n) for n in range(MAX_ERASE_PER_REQUEST + 1)]
    for first in range(0, len(items), 100):
        assert h.request("POST", "/v1/messages/batch",
                         json_body={"messages": items[first:first + 100]}).status == 201
    reply = truncate(h, "a2", token=user_token("alice"))
    assert reply.status == 403 and "at most 300" in reply.json["detail"]
    assert truncate(h, "x0000", token=user_token("alice")).json == {
        "deleted": MAX_ERASE_PER_REQUEST, "remaining": 0}


# -- against a model ----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 5), min_size=1, max_size=20), st.data())
def test_truncate_matches_a_sorted_set_model(timestamps: list[int], data: st.DataObject) -> None:
    """``ZREMRANGEBYSCORE``-like past a position: exactly the members after it go, in the
    conversation and in their users' indexes, ties ordered by member."""
    h = AppHarness()
    users = [data.draw(st.sampled_from(["u1", "u2"])) for _ in timestamps]
    for n, (ts, user) in enumerate(zip(timestamps, users, strict=True)):
        post(h, f"m{n:02d}", ts, user=user)
    target = data.draw(st.integers(0, len(timestamps) - 1))
    model = sorted((ts, f"m{n:02d}") for n, ts in enumerate(timestamps))
    at = model.index((timestamps[target], f"m{target:02d}"))
    reply = truncate(h, f"m{target:02d}")
    assert reply.json == {"deleted": len(model) - at - 1, "remaining": 0}
    kept = [i for _, i in model[:at + 1]]
    assert listed(h) == kept
    for user in ("u1", "u2"):
        assert listed(h, f"users/{user}") == [i for i in kept if users[int(i[1:])] == user]
        assert h.count(f"users/{user}") == len(listed(h, f"users/{user}"))
