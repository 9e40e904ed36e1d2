"""Retention (``RETENTION_DAYS``): a message older than now minus the retention is gone at once
for every reader, and stored keys stop growing under a steady stream of messages. Through
``App.handle`` over an in-memory KV with a manual clock, against a model."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth.hs256 import sign_hs256
from config import DAY_MS, Config, ConfigError
from index.rules import Retention
from kvformat import (
    MANIFEST_PREFIX,
    MESSAGE_PREFIX,
    SEGMENT_PREFIX,
    Manifest,
    conversation_list_key,
    participants_key,
    participation_time,
)
from support.app_harness import TOKEN, AppHarness, Reply, ids, message_body

RETENTION_MS = 60_000
JWT_SECRET = "unit-test-jwt-secret-0123456789abcdef"


def harness(**config: Any) -> AppHarness:
    # A small layout, so that the indexes have segments for retention to drop.
    fields: dict[str, Any] = dict(
        api_token=TOKEN, journal_settle_ms=1_000, retention_ms=RETENTION_MS,
        index_head_max=4, index_head_keep=2, index_segment_max=4, jwt_secret=JWT_SECRET,
    )
    fields.update(config)
    return AppHarness(Config(**fields), settle_ms=1_000)


def post(h: AppHarness, message_id: str, ts: int, user: str = "u1",
         conversation: str | None = "c") -> Reply:
    fields: dict[str, Any] = {"id": message_id, "user_id": user, "timestamp": ts}
    if conversation is not None:
        fields["conversation_id"] = conversation
    return h.request("POST", "/v1/messages", json_body=message_body(**fields))


def listing(h: AppHarness, scope: str, query: str = "limit=100") -> list[str]:
    reply = h.request("GET", f"/v1/{scope}/messages", query)
    assert reply.status == 200, reply.body
    assert reply.json["next_cursor"] is None
    return ids(reply.json["messages"])


def count(h: AppHarness, scope: str) -> int:
    reply = h.request("GET", f"/v1/{scope}/messages/count")
    assert reply.status == 200, reply.body
    result: int = reply.json["count"]
    return result


def exported(h: AppHarness, scope: str) -> list[str]:
    reply = h.request("GET", f"/v1/{scope}/export")
    assert reply.status == 200, reply.body
    return [json.loads(line)["id"] for line in reply.body.decode().splitlines()]


def conversations(h: AppHarness, user: str) -> list[dict[str, Any]]:
    reply = h.request("GET", f"/v1/users/{user}/conversations")
    assert reply.status == 200, reply.body
    found: list[dict[str, Any]] = reply.json["conversations"]
    return found


def user_token(user: str) -> str:
    """A user token whose claim lists no conversation: it reaches one only by writing in it."""
    return sign_hs256({"sub": user, "exp": int(time.time()) + 60}, JWT_SECRET.encode())


def stored_entries(h: AppHarness, index: str) -> list[dict[str, Any]]:
    """Every entry the index's stored structure holds (root head and every segment)."""
    snapshot = h.kv.snapshot()
    entries: list[dict[str, Any]] = json.loads(snapshot.get(index, "[]"))
    manifest_key = (h.kv.metadata_of(index) or {}).get("m") if index in snapshot else None
    if manifest_key is not None:
        for segment in Manifest.from_json(json.loads(snapshot[manifest_key])).segments:
            entries += json.loads(snapshot[segment.key])
    return entries


# -- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    (None, None), ("", None), ("30", 30 * DAY_MS), ("0.5", DAY_MS // 2),
    ("0.0001", round(0.0001 * DAY_MS)),
])
def test_retention_days_is_a_decimal_number_of_days(raw: str | None, expected: int | None) -> None:
    env = {} if raw is None else {"RETENTION_DAYS": raw}
    assert Config.from_env(env).retention_ms == expected


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "thirty", "0.00000001"])
def test_a_retention_below_a_second_or_not_a_number_fails_at_start(raw: str) -> None:
    with pytest.raises(ConfigError, match="RETENTION_DAYS"):
        Config.from_env({"RETENTION_DAYS": raw})


# -- gone at once and exactly ----------------------------------------------------------------------


def test_a_message_is_gone_everywhere_the_moment_it_ages_out() -> None:
    h = harness(index_head_max=128, index_head_keep=64)
    now = h.clock()
    assert post(h, "old", now - RETENTION_MS + 5_000).status == 201
    assert post(h, "mid", now - 1_000, user="u2").status == 201
    assert post(h, "new", now).status == 201
    assert listing(h, "conversations/c") == ["new", "mid", "old"]
    assert count(h, "users/u1") == 2
    h.clock.now_ms = now + 5_000  # "old" is exactly at the floor: still kept
    assert listing(h, "users/u1", "order=asc") == ["old", "new"]
    h.clock.now_ms = now + 5_001  # one millisecond later it is gone, with no pass in between
    assert listing(h, "conversations/c") == ["new", "mid"]
    assert listing(h, "users/u1") == ["new"]
    assert count(h, "users/u1") == 1
    assert count(h, "conversations/c") == 2
    assert exported(h, "conversations/c") == ["mid", "new"]
    assert h.request("GET", "/v1/messages/old").status == 404
    assert h.request("PATCH", "/v1/messages/old", json_body={"content": "x"}).status == 404
    assert h.request("DELETE", "/v1/messages/old").status == 404
    context = h.request("GET", "/v1/messages/mid/context", "before=5&after=5")
    assert context.status == 200, context.body
    assert (ids(context.json["before"]), ids(context.json["after"])) == ([], ["new"])
    assert context.json["before_cursor"] is None
    [summary] = conversations(h, "u2")
    assert (summary["message_count"], summary["created_at"]) == (2, now - 1_000)


def test_a_conversation_whose_messages_all_aged_out_leaves_every_list() -> None:
    h = harness()
    now = h.clock()
    assert post(h, "a", now - RETENTION_MS + 1_000).status == 201
    assert post(h, "b", now - RETENTION_MS + 2_000, user="u2").status == 201
    assert [c["id"] for c in conversations(h, "u1")] == ["c"]
    h.clock.advance(1_500)  # u1's only message has aged out; u2's has not
    assert conversations(h, "u1") == []
    assert [c["id"] for c in conversations(h, "u2")] == ["c"]
    reply = h.request("GET", "/v1/conversations/c", token=user_token("u1"))
    assert reply.status == 404, "u1 no longer has a message in it"
    assert h.request("GET", "/v1/conversations/c", token=user_token("u2")).status == 200
    h.clock.advance(1_000)
    assert conversations(h, "u2") == []
    assert h.request("GET", "/v1/conversations/c").status == 404


def test_creating_a_message_retention_already_removed_is_422_and_writes_nothing() -> None:
    h = harness()
    now = h.clock()
    before = h.kv.snapshot()
    reply = post(h, "late", now - RETENTION_MS - 1)
    assert reply.status == 422, reply.body
    assert reply.json["code"] == "retention_expired"
    assert reply.content_type.startswith("application/problem+json")
    batch = h.request("POST", "/v1/messages/batch", json_body={"messages": [
        message_body(id="ok", user_id="u1", timestamp=now),
        message_body(id="late", user_id="u1", timestamp=now - RETENTION_MS - 1),
    ]})
    assert batch.status == 422, batch.body
    assert batch.json["index"] == 1
    assert h.kv.snapshot() == before
    assert post(h, "edge", h.clock() - RETENTION_MS).status == 201  # exactly at the floor: kept


def test_moving_a_message_out_of_retention_is_422_and_changes_nothing() -> None:
    h = harness()
    now = h.clock()
    assert post(h, "m", now).status == 201
    stored = h.request("GET", "/v1/messages/m").json
    reply = h.request("PATCH", "/v1/messages/m", json_body={"timestamp": now - RETENTION_MS - 5})
    assert reply.status == 422, reply.body
    assert reply.json["code"] == "retention_expired"
    assert h.request("GET", "/v1/messages/m").json == stored


def test_an_id_whose_message_aged_out_can_be_created_again() -> None:
    h = harness()
    now = h.clock()
    assert post(h, "m", now - RETENTION_MS + 10).status == 201
    h.clock.advance(20)
    reply = post(h, "m", h.clock(), user="u2")  # different fields: not a conflict any more
    assert reply.status == 201, reply.body
    assert listing(h, "conversations/c") == ["m"]
    assert listing(h, "users/u1") == []
    assert listing(h, "users/u2") == ["m"]


# -- a steady stream: stored keys and bytes stop growing -------------------------------------------


def _stored_shape(h: AppHarness) -> tuple[int, int, int]:
    snapshot = h.kv.snapshot()
    records = sum(1 for k in snapshot if k.startswith(MESSAGE_PREFIX))
    objects = sum(1 for k in snapshot if k.startswith((SEGMENT_PREFIX, MANIFEST_PREFIX)))
    return records, objects, sum(len(k) + len(v) for k, v in snapshot.items())


def test_a_steady_stream_keeps_what_retention_keeps_and_stored_state_stops_growing() -> None:
    h = harness()
    shapes = []
    for n in range(600):
        ts = h.clock()
        assert post(h, f"m{n:04d}", ts, user=f"u{n % 3}").status == 201
        h.clock.advance(500 - h.step_ms)  # two messages a second
        if n in (299, 599):
            shapes.append(_stored_shape(h))
    h.step_ms = 0  # the reads below all see the same floor
    floor = h.clock() - RETENTION_MS
    kept = [f"m{n:04d}" for n in range(600) if h.clock() - (600 - n) * 500 >= floor]
    every = [m["id"] for m in h.list_all("conversations/c", order="asc", limit=100)]
    assert every == kept
    assert h.count("conversations/c") == len(kept)
    for user in ("u0", "u1", "u2"):
        assert [m["id"] for m in h.list_all(f"users/{user}", order="asc")] == [
            k for k in kept if int(k[1:]) % 3 == int(user[1:])]
    # Records expire in KV; aged-out index entries and segments are swept: the stored state
    # after 300 s of messages is no bigger than after 150 s (two retention periods in).
    (records_then, objects_then, bytes_then), (records_now, objects_now, bytes_now) = shapes
    assert records_now <= records_then + 5
    assert objects_now <= objects_then + 4
    assert bytes_now <= bytes_then * 1.15
    # What is still stored beyond that aged out since the last sweep (one every
    # ``sweep_every_ms``, two messages a second), or shares a segment with what is kept.
    lag_ms = Retention(RETENTION_MS).sweep_every_ms + 1_000
    slack = lag_ms // 500 + 4
    assert len(stored_entries(h, "conversation:chat:c")) <= len(kept) + slack
    members = stored_entries(h, participants_key("c"))
    assert len(members) <= len(kept) + slack
    assert all((participation_time(e["member"]) or 0) >= floor - lag_ms for e in members)
    assert all(e["score"] >= floor - lag_ms
               for e in stored_entries(h, conversation_list_key("u0")))


# -- against a model -------------------------------------------------------------------------------

_OPS = st.lists(st.one_of(
    st.tuples(st.just("create"), st.integers(0, 2), st.integers(-RETENTION_MS - 3_000, 3_000)),
    st.tuples(st.just("advance"), st.integers(0, 25_000), st.just(0)),
    st.tuples(st.just("delete"), st.integers(0, 40), st.just(0)),
    st.tuples(st.just("move"), st.integers(0, 40), st.integers(-RETENTION_MS - 3_000, 3_000)),
), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_OPS)
def test_listings_and_counts_are_the_model_minus_what_aged_out(
    ops: list[tuple[str, int, int]],
) -> None:
    h = harness()
    h.step_ms = 0  # the model's clock is the harness's
    model: dict[str, tuple[str, int]] = {}  # id -> (user, timestamp)
    made = 0
    for kind, a, b in ops:
        now = h.clock()
        floor = now - RETENTION_MS
        if kind == "advance":
            h.clock.advance(a)
            continue
        if kind == "create":
            message_id, user, ts = f"m{made}", f"u{a}", now + b
            made += 1
            reply = post(h, message_id, ts, user=user)
            assert reply.status == (201 if ts >= floor else 422), reply.body
            if ts >= floor:
                model[message_id] = (user, ts)
            continue
        message_id = f"m{a}"
        alive = message_id in model and model[message_id][1] >= floor
        if kind == "delete":
            reply = h.request("DELETE", f"/v1/messages/{message_id}")
            assert reply.status == (204 if alive else 404), reply.body
            model.pop(message_id, None)
        else:
            ts = now + b
            reply = h.request("PATCH", f"/v1/messages/{message_id}", json_body={"timestamp": ts})
            expected = 404 if not alive else 200 if ts >= floor else 422
            assert reply.status == expected, reply.body
            if expected == 200:
                model[message_id] = (model[message_id][0], ts)
    floor = h.clock() - RETENTION_MS
    live = sorted((ts, f"chat:{i}", user) for i, (user, ts) in model.items() if ts >= floor)
    assert [m["id"] for m in h.list_all("conversations/c", order="asc", limit=7)] == [
        member[5:] for _, member, _ in live]
    assert h.count("conversations/c") == len(live)
    for user in ("u0", "u1", "u2"):
        mine = [member[5:] for _, member, u in live if u == user]
        assert [m["id"] for m in h.list_all(f"users/{user}", order="desc")] == mine[::-1]
        assert h.count(f"users/{user}") == len(mine)
        listed = [c["id"] for c in conversations(h, user)]
        assert listed == (["c"] if mine else [])
