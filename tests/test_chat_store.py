"""``ChatStore`` directly (no HTTP): replay semantics, patch and delete, erase across indexes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest

from chat_store import (
    MAX_ERASE_PER_REQUEST,
    ChatStore,
    EraseResult,
    MessageDraft,
    MessagePatch,
    RangeQuery,
    Scope,
)
from config import Config, ConfigError
from errors import Conflict, NotFound, StorageUnavailable
from index.pacer import CompactionPacer
from index.sorted_index import MIN_SETTLE_MS
from index.zset import MAX_SCORE, MIN_SCORE
from kvformat import intent_key, message_key
from support.aio import run
from support.app_harness import (
    JOURNAL_PREFIX,
    assert_replay_wrote_nothing_twice,
    record_metadata,
)
from support.clock import ManualClock
from support.memory_kv import MemoryKV

T = TypeVar("T")
SENDER = {"id": "s1", "name": "Sam"}


class Rig:
    """A store over MemoryKV whose deferred work runs when ``drain`` is called."""

    def __init__(self, settle_ms: int = 1_000, start_ms: int = 1_700_000_000_000) -> None:
        self.clock = ManualClock(start_ms)
        self.kv = MemoryKV(clock=self.clock.seconds)
        self.deferred: list[Awaitable[object]] = []
        self.store = ChatStore(self.kv, self.clock, self.deferred.append, settle_ms=settle_ms,
                               cursor_secret="secret")

    async def drain(self) -> None:
        while self.deferred:
            await self.deferred.pop(0)

    async def step(self, work: Awaitable[T], advance_ms: int = 1) -> T:
        """One request: the work, then its deferred work, then time moves on."""
        result = await work
        await self.drain()
        self.clock.advance(advance_ms)
        return result

    async def ids(self, kind: str, scope_id: str, **query: Any) -> list[str]:
        scope = Scope("user" if kind == "user" else "conversation", scope_id)
        found: list[str] = []
        cursor: str | None = None
        while True:
            page = await self.step(self.store.list_page(
                scope, RangeQuery(**{"order": "asc", "limit": 3, **query, "cursor": cursor})))
            found += [m["id"] for m in page.messages]
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    async def count(self, kind: str, scope_id: str, start: int = MIN_SCORE,
                    end: int = MAX_SCORE) -> int:
        scope = Scope("user" if kind == "user" else "conversation", scope_id)
        return await self.step(self.store.count(scope, start, end))

    def journal_writes(self, index: str) -> int:
        return sum(1 for k in self.kv.snapshot() if k.startswith(f"{JOURNAL_PREFIX}{index}:"))


def draft(id: str | None = "m1", **overrides: Any) -> MessageDraft:
    fields: dict[str, Any] = {"user_id": "u1", "sender": dict(SENDER), "content": "hi", "id": id}
    fields.update(overrides)
    return MessageDraft(**fields)


# --- create and replay --------------------------------------------------------------------------


def test_create_builds_the_message_and_its_kv_record() -> None:
    async def go() -> None:
        rig = Rig()
        now = rig.clock()
        message, created = await rig.step(rig.store.create(
            draft(conversation_id="c1", timestamp=5, metadata={"k": 1})))
        assert created
        assert message == {
            "id": "m1", "user_id": "u1", "conversation_id": "c1", "sender": SENDER,
            "content": "hi", "timestamp": 5, "metadata": {"k": 1}, "created_at": now,
        }
        assert json.loads(rig.kv.snapshot()["chat:m1"]) == message
        assert rig.kv.metadata_of("chat:m1") == {"u": "u1", "s": 5, "c": "c1"}

    run(go())


def test_create_defaults_id_and_timestamp_from_the_server() -> None:
    async def go() -> None:
        rig = Rig()
        now = rig.clock()
        message, created = await rig.step(rig.store.create(draft(id=None)))
        assert created
        assert len(message["id"]) == 26
        assert message["timestamp"] == message["created_at"] == now
        assert "conversation_id" not in message and "metadata" not in message
        assert rig.kv.metadata_of(message_key(message["id"])) == {"u": "u1", "s": now}

    run(go())


def test_a_create_with_a_server_made_id_reads_nothing_and_writes_journal_then_record() -> None:
    """No stored record can have a fresh ULID, so the request path is two puts (entries
    first); its compaction waits for the end of the pacer's interval, so that a reply
    written within it shares the pass."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go() -> None:
        rig = Rig()
        rig.store = ChatStore(rig.kv, rig.clock, rig.deferred.append, settle_ms=1_000,
                              cursor_secret="secret", pacer=CompactionPacer(1_000, sleep))
        rig.kv.reset_counters()
        message, _ = await rig.store.create(draft(id=None))
        assert (rig.kv.reads, rig.kv.lists, rig.kv.writes) == (0, 0, 2)
        journal = [k for k in rig.kv.snapshot() if k.startswith("idx:log:user:chat:u1:")]
        assert len(journal) == 1
        assert sorted(rig.kv.snapshot()) == sorted([message_key(message["id"]), *journal])
        rig.clock.advance(300)
        await rig.store.create(draft(id=None, timestamp=rig.clock() - 5))
        assert len(rig.deferred) == 1, "the reply shares the first write's pass"
        await rig.drain()
        assert slept == [1.0]
        assert len(json.loads(rig.kv.snapshot()["user:chat:u1"])) == 2

    run(go())


def test_a_create_in_a_conversation_writes_its_record_while_it_refreshes_the_lists() -> None:
    """The record's put and the conversation-list refresh's reads are in flight together
    (here the put lands only once the refresh has begun reading), after the message's index
    entries: the user's list names the conversation when the create answers."""

    async def go() -> None:
        rig = Rig()
        order: list[str] = []
        refreshing = asyncio.Event()
        put, list_page = rig.kv.put, rig.kv.list

        async def noting_list(**options: Any) -> Any:
            order.append(f"list {options['prefix']}")
            refreshing.set()
            return await list_page(**options)

        async def record_once_refreshing(key: str, value: str, **options: Any) -> None:
            if key == message_key("m1"):
                order.append("record")
                await asyncio.wait_for(refreshing.wait(), timeout=1)
            elif key.startswith(JOURNAL_PREFIX):
                order.append(key.split(":")[2])
            await put(key, value, **options)

        rig.kv.list = noting_list  # type: ignore[method-assign]
        rig.kv.put = record_once_refreshing  # type: ignore[method-assign]
        await rig.step(rig.store.create(draft(conversation_id="c1")))
        first_read = next(n for n, step in enumerate(order) if step.startswith("list"))
        assert {"user", "conversation"} <= set(order[:first_read]), "entries come first"
        assert order.index("record") < first_read
        rig.kv.list, rig.kv.put = list_page, put  # type: ignore[method-assign]
        page = await rig.step(
            rig.store.list_conversations("u1", RangeQuery(order="desc", limit=10)))
        assert [c["id"] for c in page.conversations] == ["c1"]

    run(go())


def test_identical_replay_returns_the_stored_message_and_writes_it_once() -> None:
    async def go() -> None:
        rig = Rig()
        first, _ = await rig.step(rig.store.create(draft(conversation_id="c1")))
        rig.clock.advance(5_000)
        before, metadata = rig.kv.snapshot(), record_metadata(rig.kv)
        rig.kv.reset_counters()
        again, created = await rig.step(rig.store.create(draft(conversation_id="c1")))
        assert not created
        assert again == first  # including the original created_at and server timestamp
        assert_replay_wrote_nothing_twice(rig.kv, before, metadata)

    run(go())


def test_replay_with_the_server_chosen_timestamp_spelled_out_is_a_replay() -> None:
    async def go() -> None:
        rig = Rig()
        first, _ = await rig.step(rig.store.create(draft()))
        again, created = await rig.step(rig.store.create(draft(timestamp=first["timestamp"])))
        assert not created and again == first

    run(go())


def test_replay_ignores_member_order_in_objects() -> None:
    async def go() -> None:
        rig = Rig()
        await rig.step(rig.store.create(draft(metadata={"a": 1, "b": [1, 2]})))
        _, created = await rig.step(rig.store.create(
            draft(sender={"name": "Sam", "id": "s1"}, metadata={"b": [1, 2], "a": 1})))
        assert not created

    run(go())


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param({"content": "other"}, id="content"),
        pytest.param({"content": ""}, id="content-emptied"),
        pytest.param({"sender": {"id": "s2"}}, id="sender-id"),
        pytest.param({"sender": {"id": "s1"}}, id="sender-name-dropped"),
        pytest.param({"user_id": "u2"}, id="user"),
        pytest.param({"conversation_id": "c2"}, id="conversation-changed"),
        pytest.param({"conversation_id": None}, id="conversation-dropped"),
        pytest.param({"timestamp": 6}, id="timestamp"),
        pytest.param({"metadata": {"k": 2}}, id="metadata-changed"),
        pytest.param({"metadata": None}, id="metadata-dropped"),
        pytest.param({"metadata": {}}, id="metadata-emptied"),
    ],
)
def test_same_id_with_different_fields_conflicts(changed: dict[str, Any]) -> None:
    async def go() -> None:
        rig = Rig()
        original: dict[str, Any] = {"conversation_id": "c1", "timestamp": 5, "metadata": {"k": 1}}
        await rig.step(rig.store.create(draft(**original)))
        before = rig.kv.snapshot()
        rig.kv.reset_counters()
        with pytest.raises(Conflict, match="m1"):
            await rig.store.create(draft(**{**original, **changed}))
        assert rig.kv.writes == 0 and rig.kv.deletes == 0
        assert rig.kv.snapshot() == before

    run(go())


def test_omitting_the_conversation_is_not_a_replay_of_one_that_had_it() -> None:
    async def go() -> None:
        rig = Rig()
        await rig.step(rig.store.create(draft()))
        with pytest.raises(Conflict):
            await rig.store.create(draft(conversation_id="c1"))

    run(go())


def test_batch_conflict_names_the_index_and_writes_nothing() -> None:
    async def go() -> None:
        rig = Rig()
        await rig.step(rig.store.create(draft(id="old")))
        before = rig.kv.snapshot()
        rig.kv.reset_counters()
        with pytest.raises(Conflict) as info:
            await rig.store.create_many(
                [draft(id="n0"), draft(id="n1"), draft(id="old", content="changed")])
        assert "messages[2]" in info.value.detail
        assert info.value.extensions == {"index": 2}
        assert rig.kv.writes == 0 and rig.kv.snapshot() == before
        assert rig.deferred == []

    run(go())


def test_batch_with_replayed_and_new_items_writes_only_the_new_ones() -> None:
    async def go() -> None:
        rig = Rig()
        old, _ = await rig.step(rig.store.create(draft(id="old", conversation_id="c1")))
        rig.kv.reset_counters()
        log_before = rig.journal_writes("user:chat:u1")
        messages, created = await rig.step(rig.store.create_many([
            draft(id="old", conversation_id="c1"), draft(id="new", conversation_id="c1"),
        ]))
        assert created == [False, True]
        assert messages[0] == old and messages[1]["id"] == "new"
        assert rig.journal_writes("user:chat:u1") == log_before + 1
        assert await rig.ids("user", "u1") == ["old", "new"]  # server timestamps, in order

    run(go())


def test_batch_writes_one_journal_entry_per_index() -> None:
    async def go() -> None:
        rig = Rig()
        drafts = [
            draft(id=f"m{i}", user_id=f"u{i % 2}", conversation_id=f"c{i % 3}", timestamp=i)
            for i in range(12)
        ]
        indexes = ["user:chat:u0", "user:chat:u1", "conversation:chat:c0",
                   "conversation:chat:c1", "conversation:chat:c2"]
        messages, created = await rig.store.create_many(drafts)
        assert all(created) and [m["id"] for m in messages] == [d.id for d in drafts]
        assert {i: rig.journal_writes(i) for i in indexes} == dict.fromkeys(indexes, 1)
        await rig.drain()
        assert await rig.ids("user", "u0") == ["m0", "m2", "m4", "m6", "m8", "m10"]
        assert await rig.ids("conversation", "c2") == ["m2", "m5", "m8", "m11"]

    run(go())


# --- patch --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"content": "hi"}, id="same-content"),
        pytest.param({"sender": {"name": "Sam", "id": "s1"}}, id="same-sender-reordered"),
        pytest.param({"timestamp": 5}, id="same-timestamp"),
        pytest.param({"metadata": {"k": 1}}, id="same-metadata"),
        pytest.param({"content": "hi", "timestamp": 5, "metadata": {"k": 1}}, id="all-same"),
    ],
)
def test_patch_that_changes_nothing_writes_nothing_twice(changes: dict[str, Any]) -> None:
    """No record write, no edited_at, no index change. A patch naming the timestamp may journal
    the position again (idempotent): it may be the retry of a move whose index write failed."""

    async def go() -> None:
        rig = Rig()
        original, _ = await rig.step(rig.store.create(
            draft(conversation_id="c1", timestamp=5, metadata={"k": 1})))
        before, metadata = rig.kv.snapshot(), record_metadata(rig.kv)
        rig.kv.reset_counters()
        result = await rig.step(rig.store.patch("m1", MessagePatch(changes)))
        assert result == original and "edited_at" not in result
        assert_replay_wrote_nothing_twice(rig.kv, before, metadata)
        if "timestamp" not in changes:
            assert rig.kv.writes == 0 and rig.kv.snapshot() == before

    run(go())


def test_patch_without_timestamp_change_rewrites_only_the_record() -> None:
    async def go() -> None:
        rig = Rig()
        await rig.step(rig.store.create(draft(conversation_id="c1", timestamp=5)))
        rig.clock.advance(1_000)
        now = rig.clock()
        rig.kv.reset_counters()
        updated = await rig.store.patch("m1", MessagePatch({"content": "new"}))
        assert updated["content"] == "new" and updated["edited_at"] == now
        assert rig.kv.writes == 1  # chat:m1 only: no journal entry
        assert json.loads(rig.kv.snapshot()["chat:m1"]) == updated
        assert rig.kv.metadata_of("chat:m1") == {"u": "u1", "s": 5, "c": "c1"}

    run(go())


def test_patch_timestamp_moves_the_message_in_every_index() -> None:
    async def go() -> None:
        rig = Rig()
        for i, ts in enumerate([10, 20, 30]):
            await rig.step(rig.store.create(draft(id=f"m{i}", conversation_id="c1", timestamp=ts)))
        updated = await rig.step(rig.store.patch("m0", MessagePatch({"timestamp": 25})))
        assert updated["timestamp"] == 25
        # "p": where it was, so later ops find an entry a crashed move might leave behind.
        assert rig.kv.metadata_of("chat:m0") == {"u": "u1", "s": 25, "c": "c1", "p": [10]}
        assert await rig.ids("user", "u1") == ["m1", "m0", "m2"]
        assert await rig.ids("conversation", "c1") == ["m1", "m0", "m2"]
        assert await rig.count("user", "u1", 21, 29) == 1
        assert await rig.count("conversation", "c1", 0, 15) == 0

    run(go())


def test_patch_of_a_missing_message_is_not_found() -> None:
    async def go() -> None:
        rig = Rig()
        with pytest.raises(NotFound):
            await rig.store.patch("nope", MessagePatch({"content": "x"}))
        assert rig.kv.writes == 0

    run(go())


# --- delete -------------------------------------------------------------------------------------


def test_delete_removes_the_record_and_every_index_entry() -> None:
    async def go() -> None:
        rig = Rig()
        for i in range(3):
            await rig.step(rig.store.create(draft(id=f"m{i}", conversation_id="c1", timestamp=i)))
        await rig.step(rig.store.delete("m1"))
        assert "chat:m1" not in rig.kv.snapshot()
        assert await rig.ids("user", "u1") == ["m0", "m2"]
        assert await rig.ids("conversation", "c1") == ["m0", "m2"]
        assert await rig.count("user", "u1") == 2
        assert await rig.count("conversation", "c1") == 2
        with pytest.raises(NotFound):
            await rig.store.get("m1")
        with pytest.raises(NotFound):
            await rig.store.delete("m1")

    run(go())


# --- erase --------------------------------------------------------------------------------------


async def erase_fixture(rig: Rig) -> None:
    layout = [
        ("a1", "u1", "c1"), ("a2", "u1", "c2"), ("a3", "u1", None), ("a4", "u1", "c1"),
        ("b1", "u2", "c1"), ("b2", "u2", "c2"), ("b3", "u2", None),
    ]
    for n, (mid, user, conversation) in enumerate(layout):
        await rig.step(rig.store.create(
            draft(id=mid, user_id=user, conversation_id=conversation, timestamp=100 + n)))


def test_erase_user_removes_their_messages_from_every_conversation() -> None:
    async def go() -> None:
        rig = Rig()
        await erase_fixture(rig)
        result = await rig.step(rig.store.erase(Scope("user", "u1")))
        assert (result.deleted, result.remaining) == (4, 0)
        assert await rig.ids("user", "u1") == []
        assert await rig.count("user", "u1") == 0
        assert await rig.ids("conversation", "c1") == ["b1"]
        assert await rig.ids("conversation", "c2") == ["b2"]
        assert await rig.count("conversation", "c1") == 1
        assert await rig.count("conversation", "c2") == 1
        assert await rig.ids("user", "u2") == ["b1", "b2", "b3"]
        assert not {"chat:a1", "chat:a2", "chat:a3", "chat:a4"} & set(rig.kv.snapshot())

    run(go())


def test_erase_conversation_removes_its_messages_from_every_user() -> None:
    async def go() -> None:
        rig = Rig()
        await erase_fixture(rig)
        result = await rig.step(rig.store.erase(Scope("conversation", "c1")))
        assert (result.deleted, result.remaining) == (3, 0)
        assert await rig.ids("conversation", "c1") == []
        assert await rig.ids("user", "u1") == ["a2", "a3"]
        assert await rig.ids("user", "u2") == ["b2", "b3"]
        assert await rig.count("user", "u1") == 2
        assert await rig.ids("conversation", "c2") == ["a2", "b2"]

    run(go())


def test_erase_of_an_empty_scope() -> None:
    async def go() -> None:
        rig = Rig()
        result = await rig.step(rig.store.erase(Scope("user", "nobody")))
        assert (result.deleted, result.remaining) == (0, 0)

    run(go())


def test_erase_does_not_count_entries_whose_message_is_already_gone() -> None:
    async def go() -> None:
        rig = Rig()
        await erase_fixture(rig)
        await rig.kv.delete("chat:a2")
        rig.clock.advance(1_501)  # settled (and a put's time): no create of a2 can be in flight
        result = await rig.step(rig.store.erase(Scope("user", "u1")))
        assert (result.deleted, result.remaining) == (3, 0)
        assert await rig.count("user", "u1") == 0

    run(go())


def test_an_erase_racing_a_create_leaves_it_in_every_index_or_in_none() -> None:
    """Issue 9, finding 4: a create has journaled its entries, its record write is slow; an
    erase of its user runs in between. Either outcome is allowed (erased everywhere, or listed
    everywhere), a mix is not. (Before the fix the erase removed the user entry and deleted the
    missing record; the record then landed, listed in its conversation and no user listing.)"""

    async def go() -> None:
        rig = Rig()
        await rig.step(rig.store.create(draft(id="old", conversation_id="c1", timestamp=1)))
        journaled, land = asyncio.Event(), asyncio.Event()
        real_put = rig.kv.put

        async def slow_record(key: str, value: str, **kw: Any) -> None:
            if key == "chat:m1":  # the create's entries are journaled by now
                journaled.set()
                await land.wait()
            await real_put(key, value, **kw)

        rig.kv.put = slow_record  # type: ignore[method-assign]
        create = asyncio.ensure_future(rig.store.create(draft(id="m1", conversation_id="c1",
                                                             timestamp=2)))
        await journaled.wait()
        result = await rig.step(rig.store.erase(Scope("user", "u1")))
        land.set()
        await create
        rig.kv.put = real_put  # type: ignore[method-assign]
        await rig.drain()
        assert result.deleted == 1  # "old" only
        in_user = "m1" in await rig.ids("user", "u1")
        in_conversation = "m1" in await rig.ids("conversation", "c1")
        assert in_user == in_conversation == ("chat:m1" in rig.kv.snapshot())
        assert await rig.count("user", "u1") == len(await rig.ids("user", "u1"))
        assert await rig.count("conversation", "c1") == len(await rig.ids("conversation", "c1"))

    run(go())


def test_erase_works_in_chunks_and_reports_what_remains() -> None:
    async def go() -> None:
        rig = Rig()
        total = MAX_ERASE_PER_REQUEST + 30
        for start in range(0, total, 100):
            batch = [draft(id=f"m{i:04d}", conversation_id=f"c{i % 2}", timestamp=i)
                     for i in range(start, min(start + 100, total))]
            await rig.step(rig.store.create_many(batch))
        first = await rig.step(rig.store.erase(Scope("user", "u1")))
        assert (first.deleted, first.remaining) == (MAX_ERASE_PER_REQUEST, 30)
        assert await rig.count("user", "u1") == 30
        assert await rig.count("conversation", "c0") + await rig.count("conversation", "c1") == 30
        second = await rig.step(rig.store.erase(Scope("user", "u1")))
        assert (second.deleted, second.remaining) == (30, 0)
        assert await rig.count("conversation", "c0") == 0
        assert not [k for k in rig.kv.snapshot() if k.startswith("chat:")]

    run(go())


# --- index settling ----------------------------------------------------------------------------


def test_indexes_stay_exact_after_journal_collection() -> None:
    """Long pauses let compactions fold and garbage-collect the journal; nothing is lost."""

    async def go() -> None:
        rig = Rig(settle_ms=1_000)
        for i in range(6):
            await rig.step(rig.store.create(draft(id=f"m{i}", conversation_id="c1", timestamp=i)),
                           advance_ms=30_000)
        await rig.step(rig.store.delete("m2"), advance_ms=30_000)
        await rig.step(rig.store.patch("m0", MessagePatch({"timestamp": 9})), advance_ms=30_000)
        for _ in range(3):
            assert await rig.ids("user", "u1") == ["m1", "m3", "m4", "m5", "m0"]
            rig.clock.advance(60_000)
        assert rig.journal_writes("user:chat:u1") < 8  # some journal entries were collected
        head = json.loads(rig.kv.snapshot()["user:chat:u1"])
        assert [e["member"] for e in head] == ["chat:m1", "chat:m3", "chat:m4", "chat:m5",
                                               "chat:m0"]

    run(go())


@pytest.mark.parametrize("settle_ms", [MIN_SETTLE_MS, 1_000])
def test_writes_in_the_same_millisecond_are_all_indexed(settle_ms: int) -> None:
    """Two requests can land in one millisecond. A compaction that read the journal in that
    millisecond cannot have seen a write made after its listing, so the write must not be
    treated as folded into the root that compaction wrote (at the smallest allowed settle)."""

    async def go() -> None:
        rig = Rig(settle_ms=settle_ms)
        for i in range(3):
            await rig.step(rig.store.create(draft(id=f"m{i}", timestamp=i)), advance_ms=0)
        await rig.step(rig.store.create(draft(id="gone", timestamp=7)), advance_ms=0)
        await rig.step(rig.store.delete("gone"), advance_ms=0)
        await rig.step(rig.store.patch("m0", MessagePatch({"timestamp": 5})), advance_ms=0)
        assert await rig.ids("user", "u1") == ["m1", "m2", "m0"]
        assert await rig.count("user", "u1") == 3
        assert await rig.count("user", "u1", 5, 5) == 1

    run(go())


@pytest.mark.parametrize("settle_ms", [0, 1, MIN_SETTLE_MS - 1])
def test_a_settle_time_shorter_than_any_put_is_refused(settle_ms: int) -> None:
    """Rule 1 of sorted_index assumes a put shows in listings within the settle time; with 0 a
    write landing in the same millisecond as a compaction would count as folded and be lost."""
    with pytest.raises(ConfigError):
        Config.from_env({"JOURNAL_SETTLE_MS": str(settle_ms)})
    with pytest.raises(ValueError):
        Rig(settle_ms=settle_ms)


def test_journal_stays_bounded_under_steady_traffic() -> None:
    """One write every 2 s to one index (with S = 1 s, M = 10 s). Every write is followed by a
    compaction, so each journal entry is folded into a root seconds after it is written and
    is safe to delete once ``t_j + 2S + M`` has passed. The journal must therefore stay at
    roughly the last ~(2S + M) of writes, not grow with the index's whole history: every
    read lists it and every compaction walks it, and KV allows 1,000 operations per request."""

    async def go() -> None:
        rig = Rig(settle_ms=1_000)
        for i in range(200):
            await rig.step(rig.store.create(draft(id=f"m{i}", timestamp=i)), advance_ms=2_000)
        assert rig.journal_writes("user:chat:u1") <= 50
        assert await rig.count("user", "u1") == 200

    run(go())


# --- compaction pacing --------------------------------------------------------------------------


def test_a_burst_of_appends_shares_one_delayed_compaction_that_folds_them_all() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def scenario() -> None:
        rig = Rig()
        pacer = CompactionPacer(1_000, sleep)
        rig.store = ChatStore(rig.kv, rig.clock, rig.deferred.append, settle_ms=1_000,
                              cursor_secret="secret", pacer=pacer)
        for n in range(5):
            await rig.store.create(draft(f"m{n}", timestamp=1_000 + n))
            rig.clock.advance(100)
        assert len(rig.deferred) == 1, "one compaction, at the end of the first write's second"
        await rig.drain()
        assert slept == [1.0]
        root = json.loads(rig.kv.snapshot()["user:chat:u1"])
        assert [e["member"] for e in root] == [f"chat:m{n}" for n in range(5)]
        assert await rig.ids("user", "u1") == [f"m{n}" for n in range(5)]

    run(scenario())


def test_reads_see_appends_whose_compaction_is_still_waiting() -> None:
    async def scenario() -> None:
        rig = Rig()
        pacer = CompactionPacer(1_000, asyncio.sleep)
        rig.store = ChatStore(rig.kv, rig.clock, rig.deferred.append, settle_ms=1_000,
                              cursor_secret="secret", pacer=pacer)
        for n in range(3):
            await rig.store.create(draft(f"m{n}", timestamp=1_000 + n))
        scope = Scope("user", "u1")
        page = await rig.store.list_page(scope, RangeQuery(order="desc", limit=10))
        assert [m["id"] for m in page.messages] == ["m2", "m1", "m0"]
        assert await rig.store.count(scope, MIN_SCORE, MAX_SCORE) == 3
        for work in rig.deferred:  # never run: the isolate went away
            if asyncio.iscoroutine(work):
                work.close()

    run(scenario())


def test_a_moved_message_is_never_listed_outside_the_range_asked_for() -> None:
    """Issue 9, finding 6: the record has moved (timestamp 50) while the index still has the
    entry at its old position (10): the move's index write is not visible yet. A listing of
    [0, 20] must not return a message whose timestamp is 50; [40, 60] finds it once the move
    is journaled."""

    async def go() -> None:
        rig = Rig()
        await rig.step(rig.store.create(draft(id="m1", timestamp=10)))
        moved = {**json.loads(rig.kv.snapshot()["chat:m1"]), "timestamp": 50}
        await rig.kv.put("chat:m1", json.dumps(moved), metadata={"u": "u1", "s": 50, "p": [10]})
        assert await rig.ids("user", "u1", start=0, end=20) == []
        assert await rig.ids("user", "u1") == ["m1"]  # inside the whole range: still listed
        await rig.step(rig.store.patch("m1", MessagePatch({"timestamp": 50})))
        assert await rig.ids("user", "u1", start=40, end=60) == ["m1"]
        assert await rig.ids("user", "u1", start=0, end=20) == []

    run(go())


def test_the_default_settle_time_covers_kvs_sixty_seconds_with_room() -> None:
    """Issue 9, finding 5: KV documents 60 s "or more" for its caches and listings; a settle
    time of exactly 60 s left no margin (compactions folding from listings that miss entries)."""
    assert Config().journal_settle_ms >= 2 * 60_000
    assert Config.from_env({}).journal_settle_ms == Config().journal_settle_ms


REMOVALS = {
    "delete": lambda store: store.delete("m1"),
    # An erase's plan is at its scope's key, not the message's.
    "erase of the user": lambda store: store.erase(Scope("user", "u1")),
    "erase of the conversation": lambda store: store.erase(Scope("conversation", "c1")),
}


@pytest.mark.parametrize("removal", list(REMOVALS))
def test_a_re_create_waits_for_a_removal_that_took_the_record(removal: str) -> None:
    """Linearizable delete (or erase) vs re-create: while a removal of m1 has deleted the record
    but not yet journaled the index removals, a create of m1 (a client sending it again) must
    not journal its entries (the removals, later, would win: a live message no index lists).
    It answers 503 (retry shortly); once the removal is done the retry creates m1, listed
    everywhere."""

    async def go() -> None:
        rig = Rig()
        await rig.step(rig.store.create(draft(id="m1", conversation_id="c1", timestamp=5)))
        record_gone, finish = asyncio.Event(), asyncio.Event()
        real_put = rig.kv.put

        async def slow_journal(key: str, value: str, **kw: Any) -> None:
            if key.startswith(JOURNAL_PREFIX) and '"r"' in value and not finish.is_set():
                record_gone.set()  # the record went first; the removals are on their way
                await finish.wait()
            await real_put(key, value, **kw)

        rig.kv.put = slow_journal  # type: ignore[method-assign]
        removing = asyncio.ensure_future(REMOVALS[removal](rig.store))
        await record_gone.wait()
        with pytest.raises(StorageUnavailable):
            await rig.store.create(draft(id="m1", conversation_id="c1", timestamp=6))
        finish.set()
        outcome = await removing
        if isinstance(outcome, EraseResult):
            assert outcome.deleted == 1
        rig.kv.put = real_put  # type: ignore[method-assign]
        await rig.drain()
        _, created = await rig.step(rig.store.create(draft(id="m1", conversation_id="c1",
                                                           timestamp=6)))
        assert created
        assert await rig.ids("user", "u1") == ["m1"]
        assert await rig.ids("conversation", "c1") == ["m1"]
        rig.clock.advance(5_000)
        assert await rig.ids("user", "u1") == ["m1"]  # the removals did not win
        assert await rig.ids("conversation", "c1") == ["m1"]

    run(go())


def test_a_re_create_leaves_a_dead_erase_to_the_next_erase() -> None:
    """A create does not carry out an erase's old plan (it may come from a stale cache, and name
    records re-created since): it creates, and the next erase of the scope finishes the plan,
    ordered after the create."""

    async def go() -> None:
        rig = Rig()
        await rig.step(rig.store.create(draft(id="m1", conversation_id="c1", timestamp=5)))
        plan = {"at": rig.clock(), "owner": "", "members": ["chat:m1"],
                "ops": {"user:chat:u1": [["r", "chat:m1", 5]],
                        "conversation:chat:c1": [["r", "chat:m1", 5]]}}
        await rig.kv.put(intent_key("user:chat:u1"), json.dumps(plan))
        await rig.kv.delete("chat:m1")  # the erase died after its record delete
        rig.clock.advance(60_000)
        await rig.step(rig.store.create(draft(id="m2", conversation_id="c1", timestamp=6)))
        _, created = await rig.step(rig.store.create(draft(id="m1", conversation_id="c1",
                                                           timestamp=7)))
        assert created
        assert intent_key("user:chat:u1") in rig.kv.snapshot()
        rig.clock.advance(5_000)
        assert await rig.ids("user", "u1") == ["m2", "m1"]
        assert await rig.ids("conversation", "c1") == ["m2", "m1"]
        await rig.step(rig.store.erase(Scope("user", "u1")))
        assert intent_key("user:chat:u1") not in rig.kv.snapshot()
        rig.clock.advance(5_000)
        assert await rig.ids("user", "u1") == []
        assert await rig.ids("conversation", "c1") == []
        assert "chat:m1" not in rig.kv.snapshot()

    run(go())


def test_a_re_create_finishes_a_delete_that_died_half_way() -> None:
    async def go() -> None:
        rig = Rig()
        await rig.step(rig.store.create(draft(id="m1", timestamp=5)))
        plan = {"at": rig.clock(), "owner": "u1", "members": ["chat:m1"],
                "ops": {"user:chat:u1": [["r", "chat:m1", 5]]}}
        await rig.kv.put(intent_key(message_key("m1")), json.dumps(plan))
        await rig.kv.delete("chat:m1")  # the delete died after its record went
        rig.clock.advance(60_000)  # long past any delete still running
        _, created = await rig.step(rig.store.create(draft(id="m1", timestamp=7)))
        assert created
        assert intent_key(message_key("m1")) not in rig.kv.snapshot()
        rig.clock.advance(5_000)
        assert await rig.ids("user", "u1") == ["m1"]
        assert await rig.count("user", "u1") == 1

    run(go())
