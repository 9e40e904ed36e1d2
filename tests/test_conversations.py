"""Conversations, through ``App.handle`` over an in-memory KV: the sidebar list (order, paging,
ranges, items), GET/PATCH of one conversation, how activity follows appends, deletes, moves and
erases (Redis ``ZADD ... GT`` for appends, exact recompute otherwise), authorization, and a
model-based test with concurrent writers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth.hs256 import sign_hs256
from chat_store import PREVIEW_CHARS
from config import Config
from index.sorted_index import IndexStore
from kvformat import Op, conversation_key, conversation_list_key, participants_key
from storage.kv import ListPage, Metadata, ValueWithMetadata
from support.app_harness import TOKEN, AppHarness, Reply, message_body
from support.memory_kv import MemoryKV
from validation import MAX_BATCH_CONVERSATIONS, MAX_TITLE_CHARS

JWT_SECRET = "unit-test-jwt-secret-0123456789abcdef"


def post(h: AppHarness, message_id: str, user: str, conversation: str | None, ts: int,
         content: str | None = None, **extra: Any) -> dict[str, Any]:
    text = content if content is not None else f"text of {message_id}"
    fields: dict[str, Any] = {"id": message_id, "user_id": user, "timestamp": ts,
                              "content": text, **extra}
    if conversation is not None:
        fields["conversation_id"] = conversation
    reply = h.request("POST", "/v1/messages", json_body=message_body(**fields))
    assert reply.status == 201, reply.body
    message: dict[str, Any] = reply.json["message"]
    return message


def sidebar(h: AppHarness, user: str, query: str = "", token: str | None = TOKEN) -> Reply:
    return h.request("GET", f"/v1/users/{user}/conversations", query, token=token)


def ids_of(reply: Reply) -> list[str]:
    assert reply.status == 200, reply.body
    return [c["id"] for c in reply.json["conversations"]]


def walk(h: AppHarness, user: str, **params: Any) -> list[list[str]]:
    """Every page of the user's list, following ``next_cursor``."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = "&".join(f"{k}={v}" for k, v in {**params, **({"cursor": cursor} if cursor
                                                                else {})}.items())
        reply = sidebar(h, user, query)
        pages.append(ids_of(reply))
        cursor = reply.json["next_cursor"]
        if cursor is None:
            return pages


def user_token(sub: str, conversations: list[str] | None = None) -> str:
    claims = {"sub": sub, "exp": int(time.time()) + 3600, "conversations": conversations or []}
    return sign_hs256(claims, JWT_SECRET.encode())


# -- the list -------------------------------------------------------------------------------------


def test_a_sidebar_lists_conversations_by_their_newest_message() -> None:
    h = AppHarness()
    post(h, "a1", "alice", "trip", 100)
    post(h, "a2", "alice", "work", 200)
    post(h, "b1", "bob", "trip", 300, content="Bob's reply")
    post(h, "a3", "alice", None, 400)  # no conversation: in no list
    post(h, "a4", "alice", "books", 50)
    assert ids_of(sidebar(h, "alice")) == ["trip", "work", "books"]
    assert ids_of(sidebar(h, "alice", "order=asc")) == ["books", "work", "trip"]
    assert ids_of(sidebar(h, "bob")) == ["trip"]  # everyone with a message in it
    [trip, *_] = sidebar(h, "alice").json["conversations"]
    assert trip == {
        "id": "trip", "created_at": 100, "last_message_at": 300, "message_count": 2,
        "last_message": {"id": "b1", "sender": {"id": "s1", "name": "Sam", "role": "user"},
                         "timestamp": 300, "preview": "Bob's reply"},
    }
    assert h.request("GET", "/v1/conversations/trip").json == {"conversation": trip}


def test_pages_and_ranges_follow_the_activity_order() -> None:
    h = AppHarness()
    for n in range(7):
        post(h, f"m{n}", "u1", f"c{n}", 1_000 + 10 * n)
    assert walk(h, "u1", limit=3) == [["c6", "c5", "c4"], ["c3", "c2", "c1"], ["c0"]]
    assert walk(h, "u1", limit=3, order="asc") == [["c0", "c1", "c2"], ["c3", "c4", "c5"],
                                                   ["c6"]]
    assert walk(h, "u1", start=1_020, end=1_040) == [["c4", "c3", "c2"]]
    assert ids_of(sidebar(h, "u1")) == [f"c{n}" for n in range(6, -1, -1)]  # default 20
    # A cursor is bound to its list and query, like a message listing's.
    cursor = sidebar(h, "u1", "limit=1").json["next_cursor"]
    reply = sidebar(h, "u1", f"limit=1&order=asc&cursor={cursor}")
    assert reply.status == 400 and reply.json["code"] == "validation_error"


def test_appends_arriving_meanwhile_do_not_break_a_walk() -> None:
    h = AppHarness()
    for n in range(4):
        post(h, f"m{n}", "u1", f"c{n}", 10 * (n + 1))
    first = sidebar(h, "u1", "limit=2&order=asc")
    assert ids_of(first) == ["c0", "c1"]
    post(h, "late", "u1", "c9", 5)  # older than the cursor: before it, not on a later page
    post(h, "new", "u1", "c8", 99)
    rest = sidebar(h, "u1", f"limit=10&order=asc&cursor={first.json['next_cursor']}")
    assert ids_of(rest) == ["c2", "c3", "c8"]


def test_a_late_old_message_never_moves_a_conversation_back() -> None:
    """``ZADD ... GT``: activity is the newest message, whatever arrives when."""
    h = AppHarness()
    post(h, "x1", "u1", "x", 500)
    post(h, "y1", "u1", "y", 400)
    post(h, "x0", "u1", "x", 100)  # imported late
    [x, y] = sidebar(h, "u1").json["conversations"]
    assert (x["id"], x["last_message_at"], x["message_count"], y["id"]) == ("x", 500, 2, "y")
    assert x["created_at"] == 100 and x["last_message"]["id"] == "x1"


def test_deleting_the_newest_message_sorts_the_conversation_by_the_next_one() -> None:
    h = AppHarness()
    post(h, "x1", "u1", "x", 100)
    post(h, "x2", "u1", "x", 500, content="regrettable")
    post(h, "y1", "u1", "y", 300)
    assert ids_of(sidebar(h, "u1")) == ["x", "y"]
    assert h.request("DELETE", "/v1/messages/x2").status == 204
    reply = sidebar(h, "u1")
    assert ids_of(reply) == ["y", "x"]
    assert b"regrettable" not in reply.body  # never a deleted message's preview
    x = reply.json["conversations"][1]
    assert (x["last_message_at"], x["message_count"], x["last_message"]["id"]) == (100, 1, "x1")
    assert h.request("DELETE", "/v1/messages/x1").status == 204
    assert ids_of(sidebar(h, "u1")) == ["y"]  # no message left: no conversation
    assert h.request("GET", "/v1/conversations/x").status == 404


def test_moving_a_message_moves_its_conversation_both_ways() -> None:
    h = AppHarness()
    post(h, "x1", "u1", "x", 100)
    post(h, "y1", "u1", "y", 300)
    assert h.request("PATCH", "/v1/messages/x1", json_body={"timestamp": 900}).status == 200
    assert [(c["id"], c["last_message_at"]) for c in sidebar(h, "u1").json["conversations"]] \
        == [("x", 900), ("y", 300)]
    assert h.request("PATCH", "/v1/messages/x1", json_body={"timestamp": 10}).status == 200
    assert [(c["id"], c["last_message_at"], c["created_at"])
            for c in sidebar(h, "u1").json["conversations"]] == [("y", 300, 300), ("x", 10, 10)]
    assert walk(h, "u1", limit=1) == [["y"], ["x"]]


def test_previews_follow_edits_at_once_and_are_cut_on_a_character_boundary() -> None:
    h = AppHarness()
    post(h, "m1", "u1", "c", 1, content="draft")
    assert h.request("PATCH", "/v1/messages/m1", json_body={"content": "é👋" * 150}).status == 200
    [c] = sidebar(h, "u1").json["conversations"]
    assert c["last_message"]["preview"] == ("é👋" * 150)[:PREVIEW_CHARS]
    assert len(c["last_message"]["preview"]) == PREVIEW_CHARS == 200


def test_a_message_with_parts_previews_their_text() -> None:
    h = AppHarness()
    body = message_body(id="m1", user_id="u1", conversation_id="c",
                        parts=[{"type": "reasoning", "text": "hmm"},
                               {"type": "text", "text": "The answer."}])
    del body["content"]
    assert h.request("POST", "/v1/messages", json_body=body).status == 201
    [c] = sidebar(h, "u1").json["conversations"]
    assert c["last_message"]["preview"] == "The answer."


def test_a_batch_lists_each_conversation_once_by_its_newest_message() -> None:
    h = AppHarness()
    items = [message_body(id=f"m{n}", user_id="u1", conversation_id=f"c{n % 3}",
                          timestamp=100 - n) for n in range(9)]
    assert h.request("POST", "/v1/messages/batch", json_body={"messages": items}).status == 201
    assert [(c["id"], c["last_message"]["id"], c["message_count"])
            for c in sidebar(h, "u1").json["conversations"]] == [
        ("c0", "m0", 3), ("c1", "m1", 3), ("c2", "m2", 3)]


def test_a_batch_spans_a_bounded_number_of_conversations() -> None:
    h = AppHarness()
    items = [message_body(user_id="u1", conversation_id=f"c{n}")
             for n in range(MAX_BATCH_CONVERSATIONS + 1)]
    reply = h.request("POST", "/v1/messages/batch", json_body={"messages": items})
    assert reply.status == 400 and "at most 20 conversations" in reply.json["detail"]
    assert h.kv.writes == 0
    ok = {"messages": items[:MAX_BATCH_CONVERSATIONS]}
    assert h.request("POST", "/v1/messages/batch", json_body=ok).status == 201
    assert len(ids_of(sidebar(h, "u1"))) == MAX_BATCH_CONVERSATIONS


# -- erasing ---------------------------------------------------------------------------------------


def erase(h: AppHarness, scope: str) -> list[dict[str, int]]:
    results = []
    while True:
        reply = h.request("DELETE", f"/v1/{scope}/messages")
        assert reply.status == 200, reply.body
        results.append(reply.json)
        if reply.json["remaining"] == 0:
            return results


def test_erasing_a_conversation_takes_it_off_every_participants_list() -> None:
    h = AppHarness()
    post(h, "a1", "alice", "shared", 1)
    post(h, "b1", "bob", "shared", 2)
    post(h, "a2", "alice", "own", 3)
    erase(h, "conversations/shared")
    assert ids_of(sidebar(h, "alice")) == ["own"]
    assert ids_of(sidebar(h, "bob")) == []


def test_erasing_a_user_takes_their_conversations_off_their_list_and_their_messages_out() -> None:
    h = AppHarness()
    post(h, "a1", "alice", "shared", 10)
    post(h, "b1", "bob", "shared", 5)
    post(h, "a2", "alice", "own", 3)
    post(h, "b2", "bob", "bobs", 1)
    erase(h, "users/alice")
    assert ids_of(sidebar(h, "alice")) == []
    [shared, bobs] = sidebar(h, "bob").json["conversations"]
    assert (shared["id"], shared["last_message"]["id"], shared["message_count"]) == (
        "shared", "b1", 1)
    assert bobs["id"] == "bobs"
    # Alice writes again: she is back in that conversation's list, and only there.
    post(h, "a3", "alice", "shared", 20)
    assert ids_of(sidebar(h, "alice")) == ["shared"]


def test_erasing_a_user_goes_in_chunks_of_a_few_conversations() -> None:
    h = AppHarness()
    items = [message_body(id=f"m{n:02d}", user_id="u1", conversation_id=f"c{n:02d}",
                          timestamp=n) for n in range(20)]
    assert h.request("POST", "/v1/messages/batch", json_body={"messages": items}).status == 201
    chunks = erase(h, "users/u1")
    assert [c["deleted"] for c in chunks] == [8, 8, 4]
    assert [c["remaining"] for c in chunks] == [12, 4, 0]
    assert ids_of(sidebar(h, "u1")) == []


def test_a_user_whose_last_message_in_a_conversation_goes_no_longer_lists_it() -> None:
    h = AppHarness()
    post(h, "a1", "alice", "shared", 1)
    post(h, "a2", "alice", "shared", 3)
    post(h, "b1", "bob", "shared", 2)
    assert h.request("DELETE", "/v1/messages/a2").status == 204
    assert ids_of(sidebar(h, "alice")) == ["shared"]  # a1 is still hers
    assert h.request("DELETE", "/v1/messages/a1").status == 204
    assert ids_of(sidebar(h, "alice")) == []
    assert [(c["id"], c["last_message"]["id"]) for c in sidebar(h, "bob").json[
        "conversations"]] == [("shared", "b1")]
    post(h, "b2", "bob", "shared", 4)  # others' activity does not bring it back
    assert ids_of(sidebar(h, "alice")) == []
    post(h, "a3", "alice", "shared", 5)  # her own does
    assert ids_of(sidebar(h, "alice")) == ["shared"]


def test_moving_a_message_keeps_its_writer_in_the_conversation() -> None:
    h = AppHarness()
    post(h, "a1", "alice", "shared", 5)
    post(h, "b1", "bob", "shared", 6)
    assert h.request("PATCH", "/v1/messages/a1", json_body={"timestamp": 9}).status == 200
    for user in ("alice", "bob"):
        [c] = sidebar(h, user).json["conversations"]
        assert (c["last_message"]["id"], c["last_message_at"]) == ("a1", 9)


# -- one conversation ------------------------------------------------------------------------------


def test_a_rename_and_metadata_show_in_the_list_and_change_nothing_else() -> None:
    h = AppHarness()
    post(h, "m1", "u1", "c", 5)
    reply = h.request("PATCH", "/v1/conversations/c", json_body={"title": "Trip to Paris ✈"})
    assert reply.status == 200, reply.body
    assert reply.json["conversation"]["title"] == "Trip to Paris ✈"
    reply = h.request("PATCH", "/v1/conversations/c", json_body={"metadata": {"pinned": True}})
    assert reply.json["conversation"]["title"] == "Trip to Paris ✈"
    assert reply.json["conversation"]["metadata"] == {"pinned": True}
    [item] = sidebar(h, "u1").json["conversations"]
    assert list(item)[:3] == ["id", "title", "metadata"]
    assert item == reply.json["conversation"]
    assert json.loads(h.kv.snapshot()[conversation_key("c")]) == {
        "title": "Trip to Paris ✈", "metadata": {"pinned": True}}
    h.kv.reset_counters()
    again = h.request("PATCH", "/v1/conversations/c", json_body={"metadata": {"pinned": True}})
    assert again.status == 200 and h.kv.writes == 0  # nothing changed, nothing written


@pytest.mark.parametrize(("body", "status", "text"), [
    ({}, 400, "nothing to change"),
    ({"name": "x"}, 400, "unknown field"),
    ({"title": ""}, 400, "title"),
    ({"title": "x" * (MAX_TITLE_CHARS + 1)}, 400, "title"),
    ({"title": 5}, 400, "title"),
    ({"title": None}, 400, "title"),
    ({"metadata": []}, 400, "metadata"),
    ({"metadata": {"k": "x" * 17_000}}, 413, "metadata"),
    ([], 400, "must be a JSON object"),
])
def test_a_bad_conversation_patch_is_refused_and_writes_nothing(
    body: Any, status: int, text: str
) -> None:
    h = AppHarness()
    post(h, "m1", "u1", "c", 5)
    h.kv.reset_counters()
    reply = h.request("PATCH", "/v1/conversations/c", json_body=body)
    assert reply.status == status, reply.body
    assert reply.content_type.startswith("application/problem+json")
    assert text in reply.json["detail"]
    assert h.kv.writes == 0


def test_a_title_of_200_characters_is_accepted() -> None:
    h = AppHarness()
    post(h, "m1", "u1", "c", 5)
    title = "👋" * MAX_TITLE_CHARS
    reply = h.request("PATCH", "/v1/conversations/c", json_body={"title": title})
    assert reply.status == 200 and reply.json["conversation"]["title"] == title


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_a_conversation_without_messages_is_404(method: str) -> None:
    h = AppHarness()
    body: dict[str, Any] = {"json_body": {"title": "x"}} if method == "PATCH" else {}
    for path in ("/v1/conversations/nothing-here", "/v1/conversations/..",
                 "/v1/conversations/" + "x" * 129):
        reply = h.request(method, path, **body)
        assert reply.status == 404 and reply.json["code"] == "not_found", (path, reply.body)
    assert h.kv.writes == 0


# -- authorization ---------------------------------------------------------------------------------


def authz_harness() -> AppHarness:
    h = AppHarness(Config(api_token=TOKEN, jwt_secret=JWT_SECRET, journal_settle_ms=1_000))
    post(h, "a1", "alice", "with-alice", 1)  # written by the service, in no claim of hers
    post(h, "b1", "bob", "with-alice", 2)
    post(h, "b2", "bob", "bobs", 3, content="secret of bob")
    post(h, "b3", "bob", "claimed", 4)
    return h


def test_a_user_token_lists_only_its_own_conversations() -> None:
    h = authz_harness()
    alice = user_token("alice")
    assert ids_of(sidebar(h, "alice", token=alice)) == ["with-alice"]
    reply = sidebar(h, "bob", token=alice)
    assert reply.status == 403 and reply.json["code"] == "forbidden"
    assert ids_of(sidebar(h, "bob")) == ["claimed", "bobs", "with-alice"]  # the service: all


def test_a_user_reaches_conversations_it_writes_in_or_claims_and_no_other() -> None:
    h = authz_harness()
    alice = user_token("alice", ["claimed"])
    for conversation in ("with-alice", "claimed"):
        assert h.request("GET", f"/v1/conversations/{conversation}", token=alice).status == 200
        renamed = h.request("PATCH", f"/v1/conversations/{conversation}", token=alice,
                            json_body={"title": "mine"})
        assert renamed.status == 200, renamed.body
    on_bobs = h.request("GET", "/v1/conversations/bobs", token=alice)
    on_missing = h.request("GET", "/v1/conversations/nothing", token=alice)
    assert on_bobs.status == on_missing.status == 404
    assert on_bobs.body.replace(b"bobs", b"<c>") == on_missing.body.replace(b"nothing", b"<c>")
    assert b"secret" not in on_bobs.body
    h.kv.reset_counters()
    assert h.request("PATCH", "/v1/conversations/bobs", token=alice,
                     json_body={"title": "hijacked"}).status == 404
    assert h.kv.writes == 0
    assert "title" not in h.request("GET", "/v1/conversations/bobs").json["conversation"]


def test_a_list_entry_that_is_not_its_conversations_newest_is_skipped() -> None:
    """A writer's entry that a racing write already superseded (until that writer's check
    removes it) never shows its conversation twice or at a stale place."""
    h = AppHarness()
    post(h, "x1", "u1", "x", 100)
    post(h, "x2", "u1", "x", 300)
    post(h, "y1", "u1", "y", 200)
    stale = Op.add("chat:x1", 100, 100)  # as a writer that had not seen x2 would journal it
    writer = IndexStore(h.kv, h.clock, h.config.journal_settle_ms)
    asyncio.run(writer.append(conversation_list_key("u1"), [stale]))
    assert ids_of(sidebar(h, "u1")) == ["x", "y"]
    assert ids_of(sidebar(h, "u1", "order=asc")) == ["y", "x"]
    assert walk(h, "u1", limit=1) == [["x"], ["y"], []]


# -- the KV layout ---------------------------------------------------------------------------------


def test_the_list_and_participants_are_indexes_in_the_seed_format() -> None:
    h = AppHarness()
    post(h, "m1", "u1", "c", 5)
    post(h, "m2", "u2", "c", 7)
    stored = h.kv.snapshot()
    for user in ("u1", "u2"):
        assert json.loads(stored[conversation_list_key(user)]) == [
            {"score": 7, "member": "chat:m2"}]
    assert json.loads(stored[participants_key("c")]) == [
        {"score": 0, "member": "user:u1:0000000000000005:chat:m1"},
        {"score": 0, "member": "user:u2:0000000000000007:chat:m2"}]


# -- concurrent writers, against a model -----------------------------------------------------------

USERS = ("u0", "u1", "u2")
CONVERSATIONS = ("c0", "c1", "c2", "c3")


@st.composite
def rounds(draw: st.DrawFn) -> list[list[tuple[Any, ...]]]:
    """Rounds of writes run concurrently; within a round each message is touched once."""
    made: list[str] = []
    result: list[list[tuple[Any, ...]]] = []
    for r in range(draw(st.integers(1, 6))):
        touched: set[str] = set()
        ops: list[tuple[Any, ...]] = []
        for n in range(draw(st.integers(1, 5))):
            choice = draw(st.sampled_from(["create", "create", "create", "delete", "move",
                                           "edit", "erase-user", "erase-conversation"]))
            free = [m for m in made if m not in touched]
            if choice == "create" or (choice in ("delete", "move", "edit") and not free):
                message_id = f"r{r}n{n}"
                made.append(message_id)
                touched.add(message_id)
                ops.append(("create", message_id, draw(st.sampled_from(USERS)),
                            draw(st.sampled_from(CONVERSATIONS)), draw(st.integers(0, 20))))
            elif choice in ("delete", "move", "edit"):
                message_id = draw(st.sampled_from(free))
                touched.add(message_id)
                ops.append((choice, message_id, draw(st.integers(0, 20))))
            elif not ops:  # erases run alone: they race creates by design, not here
                ops.append((choice, draw(st.sampled_from(
                    USERS if choice == "erase-user" else CONVERSATIONS))))
                break
        result.append(ops)
    return result


class Model:
    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}

    def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "create":
            _, message_id, user, conversation, ts = op
            self.messages[message_id] = {"user": user, "c": conversation, "ts": ts,
                                         "content": f"text of {message_id}"}
        elif kind == "delete":
            self.messages.pop(op[1], None)
        elif kind == "move" and op[1] in self.messages:
            self.messages[op[1]]["ts"] = op[2]
        elif kind == "edit" and op[1] in self.messages:
            self.messages[op[1]]["content"] = f"edit {op[2]}"
        elif kind == "erase-user":
            for message_id in [m for m, v in self.messages.items() if v["user"] == op[1]]:
                del self.messages[message_id]
        elif kind == "erase-conversation":
            for message_id in [m for m, v in self.messages.items() if v["c"] == op[1]]:
                del self.messages[message_id]

    def sidebar(self, user: str) -> list[tuple[str, int, int, str, str]]:
        rows = []
        for conversation in CONVERSATIONS:
            held = sorted(((v["ts"], f"chat:{m}"), m) for m, v in self.messages.items()
                          if v["c"] == conversation)
            if any(self.messages[m]["user"] == user for _, m in held):
                (ts, _), newest = held[-1]
                rows.append(((ts, f"chat:{newest}"), (conversation, ts, len(held), newest,
                                                      self.messages[newest]["content"])))
        return [row for _, row in sorted(rows, reverse=True)]


class InterleavingKV:
    """A KV whose every call first yields to the event loop a seeded number of times, so that
    concurrent requests interleave between their KV operations (``MemoryKV`` never yields)."""

    def __init__(self, inner: MemoryKV, seed: int) -> None:
        self.inner = inner
        self._rng = random.Random(seed)

    async def _yield(self) -> None:
        for _ in range(self._rng.randrange(6)):
            await asyncio.sleep(0)

    async def get(self, key: str) -> str | None:
        await self._yield()
        return await self.inner.get(key)

    async def get_with_metadata(self, key: str) -> ValueWithMetadata | None:
        await self._yield()
        return await self.inner.get_with_metadata(key)

    async def put(
        self, key: str, value: str, *, metadata: Metadata | None = None,
        expiration: int | None = None,
    ) -> None:
        await self._yield()
        await self.inner.put(key, value, metadata=metadata, expiration=expiration)

    async def delete(self, key: str) -> None:
        await self._yield()
        await self.inner.delete(key)

    async def list(
        self, *, prefix: str = "", limit: int = 1000, cursor: str | None = None
    ) -> ListPage:
        await self._yield()
        return await self.inner.list(prefix=prefix, limit=limit, cursor=cursor)


async def run_op(h: AppHarness, op: tuple[Any, ...], stagger: int = 0) -> None:
    for _ in range(stagger * 7):  # so that one write's steps fall between another's
        await asyncio.sleep(0)
    kind = op[0]
    if kind == "create":
        _, message_id, user, conversation, ts = op
        reply = await h.arequest("POST", "/v1/messages", json_body=message_body(
            id=message_id, user_id=user, conversation_id=conversation, timestamp=ts,
            content=f"text of {message_id}"))
        assert reply.status == 201, reply.body
    elif kind == "delete":
        reply = await h.arequest("DELETE", f"/v1/messages/{op[1]}")
        assert reply.status in (204, 404), reply.body
    elif kind in ("move", "edit"):
        body = {"timestamp": op[2]} if kind == "move" else {"content": f"edit {op[2]}"}
        reply = await h.arequest("PATCH", f"/v1/messages/{op[1]}", json_body=body)
        assert reply.status in (200, 404), reply.body
    else:
        scope = "users" if kind == "erase-user" else "conversations"
        while True:
            reply = await h.arequest("DELETE", f"/v1/{scope}/{op[1]}/messages")
            assert reply.status == 200, reply.body
            if reply.json["remaining"] == 0:
                break


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds(), st.integers(0, 2**16))
def test_concurrent_writers_leave_every_list_as_the_model_says(
    plan: list[list[tuple[Any, ...]]], seed: int
) -> None:
    """Each round's writes run at once, interleaved between their KV operations; once they
    are all acknowledged every user's list is exactly the model's, without any settling."""
    h = AppHarness()
    h.app = h.service.bind(InterleavingKV(h.kv, seed), h.clock, h.deferred.append)
    model = Model()

    async def scenario() -> None:
        for ops in plan:
            await asyncio.gather(*(run_op(h, op, delay) for delay, op in enumerate(ops)))
            for op in ops:
                model.apply(op)
            for user in USERS:
                reply = await h.arequest("GET", f"/v1/users/{user}/conversations")
                assert reply.status == 200, reply.body
                got = [(c["id"], c["last_message_at"], c["message_count"],
                        c["last_message"]["id"], c["last_message"]["preview"])
                       for c in reply.json["conversations"]]
                assert got == model.sidebar(user), (user, ops)

    asyncio.run(scenario())


def test_cursor_payloads_are_opaque() -> None:
    h = AppHarness()
    for n in range(3):
        post(h, f"m{n}", "u1", f"c{n}", n)
    cursor = sidebar(h, "u1", "limit=1").json["next_cursor"]
    assert "user:conversations" not in base64.urlsafe_b64decode(cursor + "==").decode(
        "utf-8", "replace")
