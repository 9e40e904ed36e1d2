"""Reading along an index beyond pages: the context around a message and the NDJSON export,
through ``App.handle`` over an in-memory KV, against a model sorted set (ties included)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth.hs256 import sign_hs256
from config import Config
from jsonutil import dumps
from support.app_harness import TOKEN, AppHarness, Reply, message_body

JWT_SECRET = "unit-test-jwt-secret-0123456789abcdef"


def post(h: AppHarness, message_id: str, ts: int, user: str = "u1",
         conversation: str | None = "c") -> None:
    fields: dict[str, Any] = {"id": message_id, "user_id": user, "timestamp": ts}
    if conversation is not None:
        fields["conversation_id"] = conversation
    reply = h.request("POST", "/v1/messages", json_body=message_body(**fields))
    assert reply.status == 201, reply.body


def context(h: AppHarness, message_id: str, query: str = "", **kwargs: Any) -> Reply:
    return h.request("GET", f"/v1/messages/{message_id}/context", query, **kwargs)


def ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["id"] for m in messages]


def listing(h: AppHarness, path: str, query: str) -> list[str]:
    reply = h.request("GET", f"/v1/{path}/messages", query)
    assert reply.status == 200, reply.body
    return ids(reply.json["messages"])


# -- context ---------------------------------------------------------------------------------------


def test_context_is_the_listing_around_a_message_with_cursors_that_go_on() -> None:
    h = AppHarness()
    for n, ts in enumerate([10, 20, 20, 20, 30, 40, 50]):  # ties at 20: ordered by member
        post(h, f"m{n}", ts)
    reply = context(h, "m2", "before=1&after=2")
    assert reply.status == 200, reply.body
    body = reply.json
    assert (ids(body["before"]), body["message"]["id"], ids(body["after"])) == (
        ["m1"], "m2", ["m3", "m4"])
    assert listing(h, "conversations/c", f"order=desc&cursor={body['before_cursor']}") == ["m0"]
    assert listing(h, "conversations/c", f"order=asc&cursor={body['after_cursor']}") == [
        "m5", "m6"]


def test_context_at_the_ends_has_no_cursor_and_zero_still_gives_one() -> None:
    h = AppHarness()
    for n in range(3):
        post(h, f"m{n}", n)
    body = context(h, "m0").json
    assert (ids(body["before"]), ids(body["after"])) == ([], ["m1", "m2"])
    assert (body["before_cursor"], body["after_cursor"]) == (None, None)
    body = context(h, "m1", "before=0&after=0").json
    assert (body["before"], body["after"]) == ([], [])
    assert listing(h, "conversations/c", f"order=desc&cursor={body['before_cursor']}") == ["m0"]
    assert listing(h, "conversations/c", f"order=asc&cursor={body['after_cursor']}") == ["m2"]


def test_context_defaults_to_the_conversation_and_can_ask_for_the_user() -> None:
    h = AppHarness()
    post(h, "a", 1, user="u1", conversation="c")
    post(h, "b", 2, user="u2", conversation="c")
    post(h, "c1", 3, user="u1", conversation=None)
    post(h, "d", 4, user="u1", conversation="other")
    assert ids(context(h, "a").json["after"]) == ["b"]
    assert ids(context(h, "a", "scope=user").json["after"]) == ["c1", "d"]
    assert ids(context(h, "c1").json["before"]) == ["a"]  # no conversation: the user's
    reply = context(h, "c1", "scope=conversation")
    assert reply.status == 400 and "scope=user" in reply.json["detail"]


@pytest.mark.parametrize("query", ["before=101", "after=-1", "before=x", "scope=all",
                                   "around=1", "before=1&before=2"])
def test_a_bad_context_query_is_400(query: str) -> None:
    h = AppHarness()
    post(h, "m", 1)
    reply = context(h, "m", query)
    assert reply.status == 400 and reply.json["code"] == "validation_error", reply.body


def test_context_of_another_users_message_is_404_and_of_an_unclaimed_conversation_403() -> None:
    h = AppHarness(Config(api_token=TOKEN, jwt_secret=JWT_SECRET, journal_settle_ms=1_000))
    post(h, "mine", 1, user="alice", conversation="c")
    post(h, "bobs", 2, user="bob", conversation="c")
    token = sign_hs256({"sub": "alice", "exp": int(time.time()) + 60}, JWT_SECRET.encode())
    on_bob = context(h, "bobs", token=token)
    on_missing = context(h, "nothing", token=token)
    assert on_bob.status == on_missing.status == 404
    assert context(h, "mine", token=token).status == 403
    reply = context(h, "mine", "scope=user", token=token)
    assert reply.status == 200 and ids(reply.json["after"]) == []
    claimed = sign_hs256({"sub": "alice", "exp": int(time.time()) + 60, "conversations": ["c"]},
                         JWT_SECRET.encode())
    assert ids(context(h, "mine", token=claimed).json["after"]) == ["bobs"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 6), min_size=1, max_size=25), st.data())
def test_context_matches_a_sorted_set_model(timestamps: list[int], data: st.DataObject) -> None:
    """``ZRANGE ... BYSCORE REV LIMIT`` before the message and ``ZRANGE ... LIMIT`` after it,
    ties by member, and the cursors continue exactly where the lists stop."""
    h = AppHarness()
    for n, ts in enumerate(timestamps):
        post(h, f"m{n:02d}", ts)
    deleted = data.draw(st.sets(st.integers(0, len(timestamps) - 1), max_size=3))
    target = data.draw(st.sampled_from([n for n in range(len(timestamps)) if n not in deleted]
                                       or [0]))
    if target in deleted:
        return
    for n in deleted:
        assert h.request("DELETE", f"/v1/messages/m{n:02d}").status == 204
    model = sorted((ts, f"m{n:02d}") for n, ts in enumerate(timestamps) if n not in deleted)
    at = model.index((timestamps[target], f"m{target:02d}"))
    before, after = data.draw(st.integers(0, 5)), data.draw(st.integers(0, 5))
    body = context(h, f"m{target:02d}", f"before={before}&after={after}").json
    assert ids(body["before"]) == [i for _, i in model[max(0, at - before):at]]
    assert ids(body["after"]) == [i for _, i in model[at + 1:at + 1 + after]]
    if body["before_cursor"] is None:
        assert at - before <= 0
    else:
        rest = listing(h, "conversations/c", f"order=desc&limit=100&cursor={body['before_cursor']}")
        assert rest == [i for _, i in model[:max(0, at - before)]][::-1]
    if body["after_cursor"] is None:
        assert at + 1 + after >= len(model)
    else:
        rest = listing(h, "conversations/c", f"order=asc&limit=100&cursor={body['after_cursor']}")
        assert rest == [i for _, i in model[at + 1 + after:]]


# -- export ----------------------------------------------------------------------------------------


def export_all(h: AppHarness, path: str, limit: int, between: Any = None) -> list[str]:
    """Follow ``Link: rel="next"`` to the end; returns the lines."""
    lines: list[str] = []
    url, query = f"/v1/{path}/export", f"limit={limit}"
    while True:
        reply = h.request("GET", url, query)
        assert reply.status == 200, reply.body
        assert reply.content_type == "application/x-ndjson; charset=utf-8"
        text = reply.body.decode("utf-8")
        assert text == "" or text.endswith("\n")
        lines += text.splitlines()
        link = reply.header("link")
        if link is None:
            assert reply.header("chat-store-next-cursor") is None
            return lines
        target = link.split(">")[0].lstrip("<")
        url, query = target.split("?", 1)
        assert f"cursor={reply.header('chat-store-next-cursor')}" in query
        assert link.endswith('; rel="next"')
        if between is not None:
            between()


def test_an_export_yields_every_stored_message_once_oldest_first_as_stored() -> None:
    h = AppHarness()
    for n in range(7):
        post(h, f"m{n}", 100 - n, conversation="c" if n % 2 else None)
    lines = export_all(h, "users/u1", limit=3)
    assert [json.loads(line)["id"] for line in lines] == [f"m{n}" for n in range(6, -1, -1)]
    stored = h.kv.snapshot()
    assert lines == [stored[f"chat:m{n}"] for n in range(6, -1, -1)]  # the stored JSON itself
    assert [json.loads(x)["id"] for x in export_all(h, "conversations/c", limit=500)] == [
        "m5", "m3", "m1"]


def test_an_export_while_messages_are_appended_still_yields_each_once() -> None:
    h = AppHarness()
    for n in range(5):
        post(h, f"m{n}", 10 + n)
    appended: list[str] = []

    def append() -> None:  # after each page, one newer message and one older one
        n = len(appended)
        post(h, f"new{n}", 100 + n)
        post(h, f"old{n}", 0)
        appended.append(f"new{n}")

    got = [json.loads(line)["id"] for line in export_all(h, "users/u1", 2, between=append)]
    # Newer ones come at the end; older ones, behind the cursor, are not this walk's.
    assert got == [f"m{n}" for n in range(5)] + appended
    assert len(appended) >= 3


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "order=desc", "cursor=", "cursor=x"])
def test_a_bad_export_query_is_400(query: str) -> None:
    h = AppHarness()
    reply = h.request("GET", "/v1/users/u1/export", query)
    assert reply.status == 400 and reply.json["code"] == "validation_error", reply.body


def test_an_export_of_another_user_is_403() -> None:
    h = AppHarness(Config(api_token=TOKEN, jwt_secret=JWT_SECRET, journal_settle_ms=1_000))
    post(h, "m", 1, user="bob")
    token = sign_hs256({"sub": "alice", "exp": int(time.time()) + 60}, JWT_SECRET.encode())
    assert h.request("GET", "/v1/users/bob/export", token=token).status == 403
    assert h.request("GET", "/v1/users/alice/export", token=token).body == b""


# -- listings send records as stored ---------------------------------------------------------------


def test_a_listing_sends_each_record_as_stored_which_is_its_canonical_json() -> None:
    h = AppHarness()
    post(h, "m1", 10)
    post(h, "m2", 20)
    h.request("PATCH", "/v1/messages/m1", json_body={"content": "ünïcode ✓", "metadata": {"b": 1}})
    reply = h.request("GET", "/v1/conversations/c/messages", "limit=1&order=asc")
    assert reply.status == 200, reply.body
    stored = [h.kv.snapshot()[f"chat:{i}"] for i in ("m1",)]
    # The body is byte for byte what serializing the parsed page gives.
    assert reply.body == dumps(reply.json).encode("utf-8")
    assert reply.body.decode("utf-8").startswith('{"messages":[' + stored[0] + "]")
    assert ids(reply.json["messages"]) == ["m1"]
    assert reply.json["next_cursor"] is not None
