"""Every crash point of every write: fail the Nth KV operation, repair, check the invariants.

For each operation (append, batch, edit, delete, erase) a counting run on the seeded store gives
its number of KV operations N, deferred compaction included (everything the harness runs for
the request). Then for every k in 0..N-1 the operation runs against ``FaultyKV(fail_at=k)``:
operation k and every later one fail, as if the request died there (no ``RetryingKV``, so the
crash is real). Before repair:

- a 2xx means the write happened: its record and journal entries are in KV, and listings show
  it at once;
- a failure is 503 ``storage_unavailable`` with ``Retry-After``, never a 500;
- no listing shows an entry whose record is missing, listings in both directions agree, counts
  agree with listings, and every message the crash could not have touched is still listed.

Repair is what an operator does: with a healthy KV, wait out the settle time, reindex every user
and conversation, let compactions run. Then every acknowledged message is listed and counted in
each of its indexes, no acknowledged deletion shows up anywhere, a message the crashed request
touched is either fully there or fully gone, and each stored index (root array plus segments)
is exactly the set of message records that exist.

A second matrix has the client retry the failed request (as ``Retry-After`` invites) instead of
waiting for an operator: the retry's 2xx must mean the same as a first-time 2xx.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from errors import KVTransientError
from kvformat import JOURNAL_PREFIX, MESSAGE_PREFIX, intent_key, message_key
from storage.kv import MAX_LIST_LIMIT, ListPage, Metadata, ValueWithMetadata
from support.aio import run
from support.app_harness import Reply, message_body
from support.clock import ManualClock
from support.fault_harness import (
    TINY_CONFIG,
    FaultHarness,
    Message,
    client_fields,
    index_key,
    journal_ops,
    live_positions,
    position,
    records,
    scope_segment,
    scopes_of,
    stored_index,
)
from support.faulty_kv import FaultyKV
from support.memory_kv import MemoryKV

CONFIG = TINY_CONFIG
USERS = ("u1", "u2", "u3")
CONVERSATIONS = ("c1", "c2", "c3")
SCOPES = [("user", u) for u in USERS] + [("conversation", c) for c in CONVERSATIONS]
Model = dict[str, Message]


# -- the seeded store -------------------------------------------------------------------------

SEED_MESSAGES: list[dict[str, Any]] = [
    {"id": "m01", "user_id": "u1", "conversation_id": "c1", "timestamp": 1_000},
    {"id": "m02", "user_id": "u1", "timestamp": 2_000},
    {"id": "m03", "user_id": "u1", "conversation_id": "c1", "timestamp": 3_000},
    {"id": "m04", "user_id": "u1", "conversation_id": "c2", "timestamp": 4_000},
    {"id": "m05", "user_id": "u1", "timestamp": 5_000},
    {"id": "m06", "user_id": "u1", "conversation_id": "c1", "timestamp": 5_000},
    {"id": "m07", "user_id": "u1", "conversation_id": "c1", "timestamp": 7_000},
    {"id": "m08", "user_id": "u2", "conversation_id": "c1", "timestamp": 1_500},
    {"id": "m09", "user_id": "u2", "conversation_id": "c2", "timestamp": 2_500},
    {"id": "m10", "user_id": "u2", "timestamp": 3_500},
]


async def touch_every_scope(h: FaultHarness) -> None:
    """A listing of every scope: each schedules the compaction its index wants."""
    for kind, scope_id in SCOPES:
        await h.alist_all(scope_segment(kind, scope_id), order="asc", limit=4)


async def seed() -> tuple[ManualClock, MemoryKV, Model]:
    """Acknowledged history with every layout feature present when the operation runs: folded
    segments, a manifest with garbage that is due, collectable journal entries, and unfolded
    journal entries on top of the roots."""
    h = FaultHarness(CONFIG)
    model: Model = {}
    for fields in SEED_MESSAGES:
        message = await h.acreate(**fields, content=f"content of {fields['id']}")
        model[message["id"]] = message
    h.advance_past_settle()
    await touch_every_scope(h)  # folds into heads that spill into segments
    for fields in ({"id": "m11", "user_id": "u1", "conversation_id": "c2", "timestamp": 6_000},):
        message = await h.acreate(**fields, content="content of m11")
        model[message["id"]] = message
    reply = await h.arequest("PATCH", "/v1/messages/m02", json_body={"timestamp": 2_600})
    assert reply.status == 200, reply.body
    model["m02"] = reply.json["message"]
    h.advance_past_settle()
    await touch_every_scope(h)  # rewrites segments: the old ones become garbage
    message = await h.acreate(id="m12", user_id="u1", conversation_id="c1", timestamp=8_000,
                              content="content of m12")
    model["m12"] = message  # unfolded on top of the roots
    h.advance_past_gc()  # garbage and folded journal entries are now due for collection
    assert h.deferred_errors == []
    return h.clock, h.memory, model


SEEDED = run(seed())


def fresh() -> tuple[FaultHarness, Model]:
    clock, memory, model = copy.deepcopy(SEEDED)
    return FaultHarness(CONFIG, kv=memory, clock=clock), model


# -- operations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    name: str
    kind: str  # create, patch, delete, erase
    method: str
    path: str
    body: Any = None
    ok: tuple[int, ...] = (200,)
    drafts: tuple[dict[str, Any], ...] = ()  # create: the bodies sent
    target: str = ""  # patch, delete: the message id
    changes: dict[str, Any] = field(default_factory=dict)  # patch
    scope: tuple[str, str] = ("", "")  # erase, truncate
    retryable: bool = True  # the same request may be sent again safely
    query: str = ""

    async def send(self, h: FaultHarness) -> Reply:
        kwargs: dict[str, Any] = {} if self.body is None else {"json_body": self.body}
        return await h.arequest(self.method, self.path, self.query, **kwargs)


def _create(name: str, *drafts: dict[str, Any], retryable: bool = True) -> Operation:
    bodies = tuple(message_body(**d) for d in drafts)
    if len(bodies) == 1:
        return Operation(name, "create", "POST", "/v1/messages", bodies[0], (201,), bodies,
                         retryable=retryable)
    return Operation(name, "create", "POST", "/v1/messages/batch", {"messages": list(bodies)},
                     (201,), bodies)


def _patch(name: str, target: str, changes: dict[str, Any]) -> Operation:
    return Operation(name, "patch", "PATCH", f"/v1/messages/{target}", changes, (200,),
                     target=target, changes=changes)


def _erase(name: str, kind: str, scope_id: str) -> Operation:
    return Operation(name, "erase", "DELETE", f"/v1/{scope_segment(kind, scope_id)}/messages",
                     ok=(200,), scope=(kind, scope_id))


OPERATIONS = [
    _create("append-no-conversation", {"user_id": "u1", "content": "plain"}, retryable=False),
    _create("append-conversation",
            {"id": "n1", "user_id": "u2", "conversation_id": "c1", "timestamp": 4_500,
             "content": "in c1"}),
    _create("batch",
            {"id": "n1", "user_id": "u1", "conversation_id": "c1", "timestamp": 2_200},
            {"id": "n2", "user_id": "u2", "conversation_id": "c2", "timestamp": 100},
            {"id": "n3", "user_id": "u3", "timestamp": 9_000},
            {"id": "n4", "user_id": "u2", "conversation_id": "c3", "timestamp": 5_000}),
    _patch("edit-content", "m05", {"content": "edited"}),
    _patch("edit-move", "m03", {"timestamp": 7_500}),
    _patch("edit-move-and-content", "m01", {"timestamp": 8_500, "content": "moved"}),
    Operation("delete", "delete", "DELETE", "/v1/messages/m06", ok=(204,), target="m06"),
    _erase("erase-user", "user", "u2"),
    _erase("erase-conversation", "conversation", "c1"),
    Operation("truncate", "truncate", "DELETE", "/v1/conversations/c1/messages", ok=(200,),
              target="m03", scope=("conversation", "c1"), query="after=m03"),
]
BY_NAME = {op.name: op for op in OPERATIONS}


def in_scope(message: Message, kind: str, scope_id: str) -> bool:
    return (kind, scope_id) in scopes_of(message)


def affected_ids(op: Operation, model: Model) -> set[str]:
    if op.kind in ("patch", "delete"):
        return {op.target}
    if op.kind == "erase":
        return {i for i, m in model.items() if in_scope(m, *op.scope)}
    if op.kind == "truncate":
        after = position(model[op.target])
        return {i for i, m in model.items() if in_scope(m, *op.scope) and position(m) > after}
    return set()


def draft_matches(draft: dict[str, Any], record: Message) -> bool:
    """Whether ``record`` is what ``draft`` creates (server-chosen fields aside)."""
    wanted = {k: draft.get(k) for k in ("user_id", "conversation_id", "sender", "content",
                                       "metadata")}
    got = {k: record.get(k) for k in wanted}
    return wanted == got and all(record[k] == draft[k] for k in ("id", "timestamp")
                                 if k in draft)


# -- expectations -----------------------------------------------------------------------------


@dataclass
class Expectation:
    """What may exist after the operation: ``certain`` messages exactly; each ``uncertain``
    message in one of its states (client fields, or None for gone); new records only if they
    match a draft of an unacknowledged create."""

    certain: Model
    uncertain: dict[str, list[dict[str, Any] | None]] = field(default_factory=dict)
    drafts: tuple[dict[str, Any], ...] = ()
    gone: set[str] = field(default_factory=set)

    def allows_new(self, record: Message) -> bool:
        return any(draft_matches(d, record) for d in self.drafts)


def acknowledged(op: Operation, model: Model, reply: Reply) -> Expectation:
    certain = dict(model)
    gone: set[str] = set()
    if op.kind == "create":
        messages = reply.json["messages"] if "messages" in reply.json else [reply.json["message"]]
        for draft, message in zip(op.drafts, messages, strict=True):
            assert draft_matches(draft, message), (draft, message)
            certain[message["id"]] = message
    elif op.kind == "patch":
        certain[op.target] = reply.json["message"]
    else:
        gone = affected_ids(op, model)
        for message_id in gone:
            del certain[message_id]
    return Expectation(certain, gone=gone)


def unacknowledged(op: Operation, model: Model) -> Expectation:
    expectation = Expectation(dict(model), drafts=op.drafts if op.kind == "create" else ())
    for message_id in affected_ids(op, model):
        before = client_fields(model[message_id])
        after = {**before, **op.changes} if op.kind == "patch" else None
        expectation.uncertain[message_id] = [before, after]
    return expectation


def assert_write_happened(op: Operation, model: Model, reply: Reply, h: FaultHarness) -> None:
    """A 2xx is only given for a write whose record and journal entries are in KV."""
    stored = records(h.memory)
    if op.kind == "create":
        messages = reply.json["messages"] if "messages" in reply.json else [reply.json["message"]]
        for message in messages:
            assert stored.get(message["id"]) == message
            for kind, scope_id in scopes_of(message):
                ops = journal_ops(h.memory, index_key(kind, scope_id))
                assert ["a", message["timestamp"], position(message)[1]] in ops, (kind, scope_id)
    elif op.kind == "patch":
        message = reply.json["message"]
        assert stored.get(op.target) == message
        old = model[op.target]["timestamp"]
        if message["timestamp"] != old:
            for kind, scope_id in scopes_of(message):
                ops = journal_ops(h.memory, index_key(kind, scope_id))
                assert ["a", message["timestamp"], position(message)[1], old] in ops
    else:
        gone = affected_ids(op, model)
        if op.kind in ("erase", "truncate"):
            assert reply.json == {"deleted": len(gone), "remaining": 0}
        for message_id in gone:
            assert message_id not in stored, f"{message_id} was acknowledged as deleted"
            message = model[message_id]
            for kind, scope_id in scopes_of(message):
                ops = journal_ops(h.memory, index_key(kind, scope_id))
                assert ["r", position(message)[1], message["timestamp"]] in ops, (kind, scope_id)


def assert_storage_unavailable(reply: Reply) -> None:
    assert reply.status == 503, (reply.status, reply.body)
    assert reply.json["code"] == "storage_unavailable"
    assert reply.header("retry-after") == "1"


# -- invariants -------------------------------------------------------------------------------


def assert_records(h: FaultHarness, expected: Expectation) -> dict[str, Message]:
    stored = records(h.memory)
    for message_id, message in expected.certain.items():
        if message_id in expected.uncertain:
            got = stored.get(message_id)
            state = None if got is None else client_fields(got)
            assert state in expected.uncertain[message_id], (message_id, got)
        else:
            assert stored.get(message_id) == message, f"acknowledged {message_id} changed"
    for message_id in expected.gone:
        assert message_id not in stored, f"{message_id} was acknowledged as deleted"
    for message_id in stored.keys() - expected.certain.keys():
        assert expected.allows_new(stored[message_id]), f"unexpected record {message_id}"
    return stored


async def assert_listings(h: FaultHarness, expected: Expectation, *, stage: str) -> None:
    """Listings and counts of every scope against the expectation and the records.

    ``stage`` is ``"crashed"`` (before repair: uncertain messages may be listed or not, and a
    crashed move may list a message at its old position), ``"acknowledged"`` (every write was
    acknowledged: listings and counts are exact at once, without repair) or ``"repaired"``
    (exact, and the stored index itself, root array plus segments, equals the records).
    The checking requests only look: the compactions and read-repairs they would schedule are
    dropped, so that what is checked is what the operation (and repair) left.
    """
    assert stage in ("crashed", "acknowledged", "repaired")
    with h.observing():
        await _assert_listings(h, expected, stage)


async def _assert_listings(h: FaultHarness, expected: Expectation, stage: str) -> None:
    stored = assert_records(h, expected)
    scopes = set(SCOPES) | {s for m in stored.values() for s in scopes_of(m)}
    for kind, scope_id in sorted(scopes):
        path = scope_segment(kind, scope_id)
        where = f"{stage} {path}"
        asc = await h.alist_all(path, order="asc", limit=2)
        desc = await h.alist_all(path, order="desc", limit=3)
        for message in asc + desc:
            # Readers skip index entries whose record is missing; what they show is the record.
            assert stored.get(message["id"]) == message, (where, message["id"])
            assert in_scope(message, kind, scope_id), (where, message["id"])
        assert not {m["id"] for m in asc + desc} & expected.gone, where
        certain_ids = {i for i in expected.certain if i not in expected.uncertain}
        certain = sorted(position(m) for i, m in expected.certain.items()
                         if i in certain_ids and in_scope(m, kind, scope_id))
        # Every acknowledged message is listed once, in order, in both directions.
        assert [position(m) for m in asc if m["id"] in certain_ids] == certain, where
        assert [position(m) for m in desc if m["id"] in certain_ids] == certain[::-1], where
        count = await h.acount(path)
        if stage == "crashed":
            # Also the unacknowledged op's targets: a delete that crashed after removing the
            # record, or a create that crashed after journaling its entries but before writing
            # the record, may still be counted (not listed) until its retry or a repair.
            maybe = {i for i, m in stored.items() if i not in certain_ids} | set(
                expected.uncertain
            )
            unwritten = [d for d in expected.drafts
                         if d.get("id") not in maybe and in_scope(d, kind, scope_id)]
            assert len(certain) <= count <= len(certain) + len(maybe) + len(unwritten), (
                where, count)
            stored_index(h.memory, index_key(kind, scope_id))  # referenced objects exist
            continue
        live = live_positions(stored.values(), kind, scope_id)
        assert [position(m) for m in asc] == live, where
        assert [position(m) for m in desc] == live[::-1], where
        assert count == len(live), (where, count)
        for low, high in ((live[len(live) // 2][0], None), (None, live[0][0])) if live else ():
            wanted = sum(1 for s, _ in live
                         if (low is None or s >= low) and (high is None or s <= high))
            assert await h.acount(path, start=low, end=high) == wanted, (where, low, high)
        if stage == "repaired":
            assert stored_index(h.memory, index_key(kind, scope_id)).entries == live, where
    if stage != "crashed":
        await _assert_conversation_lists(h, stored, stage)


async def _assert_conversation_lists(h: FaultHarness, stored: Model, stage: str) -> None:
    """Once every write is acknowledged (or repaired), each user's list shows exactly the
    conversations the user has a message in, once each, in activity order, each item read from
    the records as they are: no lost conversation, no deleted message's preview."""
    held: dict[str, list[Message]] = {}
    for message in stored.values():
        if "conversation_id" in message:
            held.setdefault(message["conversation_id"], []).append(message)
    for user in sorted({m["user_id"] for m in stored.values()} | set(USERS)):
        reply = await h.arequest("GET", f"/v1/users/{user}/conversations", "limit=100")
        assert reply.status == 200, reply.body
        listed = reply.json["conversations"]
        where = f"{stage} conversations of {user}"
        ids = [c["id"] for c in listed]
        assert len(ids) == len(set(ids)), where
        mine = {c for c, messages in held.items() if any(m["user_id"] == user for m in messages)}
        assert set(ids) == mine, (where, mine ^ set(ids))
        for item in listed:
            messages = held.get(item["id"], [])
            assert messages, (where, item["id"], "listed without a message")
            newest = max(messages, key=position)
            assert (item["last_message_at"], item["message_count"]) == (
                newest["timestamp"], len(messages)), (where, item)
            assert item["last_message"]["id"] == newest["id"], (where, item)
            assert item["last_message"]["preview"] == newest["content"][:200], (where, item)
        keys = [(c["last_message_at"], "chat:" + c["last_message"]["id"]) for c in listed]
        assert keys == sorted(keys, reverse=True), where


async def repair(h: FaultHarness) -> None:
    """The operator's repair, with a healthy KV: wait out the settle time (so the crashed
    request's journal entries are settled), reindex everything, let compactions fold."""
    h.heal()
    h.advance_past_settle()
    for kind, scope_id in SCOPES:
        reply = await h.areindex(kind, scope_id)
        assert reply.status == 200, reply.body
    h.advance_past_settle()
    await touch_every_scope(h)
    h.advance_past_gc()
    await touch_every_scope(h)


# -- the matrix -------------------------------------------------------------------------------


async def count_operations(op: Operation) -> int:
    h, _ = fresh()
    faulty = FaultyKV(h.memory, seed=0)
    h.use(faulty)
    reply = await op.send(h)
    assert reply.status in op.ok, (op.name, reply.status, reply.body)
    assert h.deferred_errors == [] and faulty.faults == 0
    return faulty.ops


OP_COUNTS = {op.name: run(count_operations(op)) for op in OPERATIONS}
CASES = [pytest.param(op.name, k, id=f"{op.name}-op{k}")
         for op in OPERATIONS for k in range(OP_COUNTS[op.name])]
RETRY_CASES = [pytest.param(op.name, k, id=f"{op.name}-op{k}")
               for op in OPERATIONS if op.retryable for k in range(OP_COUNTS[op.name])]


async def crash(op: Operation, k: int) -> tuple[FaultHarness, Model, Reply, FaultyKV]:
    h, model = fresh()
    faulty = FaultyKV(h.memory, seed=k, fail_at=k, crash=True)
    h.use(faulty)
    reply = await op.send(h)
    assert faulty.count("fail_at") == 1, f"{op.name} made only {faulty.ops} KV operations"
    assert reply.status in op.ok or reply.status == 503, (reply.status, reply.body)
    if reply.status == 503:
        assert_storage_unavailable(reply)
    # Deferred work may only fail because KV failed (entry._guarded logs it in production).
    assert all(type(e).__name__ == "KVTransientError" for e in h.deferred_errors), \
        h.deferred_errors
    h.deferred_errors.clear()
    h.heal()
    return h, model, reply, faulty


def test_every_operation_was_counted() -> None:
    assert all(n >= 2 for n in OP_COUNTS.values()), OP_COUNTS
    assert len(CASES) == sum(OP_COUNTS.values())


@pytest.mark.parametrize("name", list(BY_NAME))
def test_a_fault_after_the_last_operation_changes_nothing(name: str) -> None:
    """The counting run is exact: failing operation N (which never comes) is a clean run."""
    op = BY_NAME[name]

    async def scenario() -> None:
        h, model = fresh()
        faulty = FaultyKV(h.memory, seed=0, fail_at=OP_COUNTS[name])
        h.use(faulty)
        reply = await op.send(h)
        assert reply.status in op.ok and faulty.faults == 0
        assert faulty.ops == OP_COUNTS[name]
        h.heal()
        assert_write_happened(op, model, reply, h)
        await assert_listings(h, acknowledged(op, model, reply), stage="acknowledged")

    run(scenario())


@pytest.mark.parametrize(("name", "k"), CASES)
def test_crash_then_repair(name: str, k: int) -> None:
    op = BY_NAME[name]

    async def scenario() -> None:
        h, model, reply, _ = await crash(op, k)
        if reply.status in op.ok:
            assert_write_happened(op, model, reply, h)
            expected = acknowledged(op, model, reply)
        else:
            expected = unacknowledged(op, model)
        stage = "crashed" if reply.status == 503 else "acknowledged"
        await assert_listings(h, expected, stage=stage)  # before repair
        await repair(h)
        await assert_listings(h, expected, stage="repaired")
        assert h.deferred_errors == []

    run(scenario())


@pytest.mark.parametrize(("name", "k"), RETRY_CASES)
def test_crash_then_client_retry(name: str, k: int) -> None:
    """The client retries a failed request once KV is healthy: its 2xx must mean what a
    first-time 2xx means, before any repair."""
    op = BY_NAME[name]

    async def scenario() -> None:
        h, model, reply, _ = await crash(op, k)
        if reply.status == 503:
            reply = await op.send(h)
            assert reply.status in (*op.ok, 200), (reply.status, reply.body)
            if op.kind in ("erase", "truncate"):
                assert reply.json["remaining"] == 0
        expected = acknowledged(op, model, reply)
        await assert_listings(h, expected, stage="acknowledged")  # the retry was enough
        await repair(h)
        await assert_listings(h, expected, stage="repaired")

    run(scenario())


# -- specific orderings -----------------------------------------------------------------------


def test_crash_between_index_and_record_write_leaves_no_record_an_erase_could_miss() -> None:
    """The store journals a new message's index entries before its record: a crash in between
    leaves entries whose record never came (listings skip them, a reindex drops them), never a
    record that no index knows, which listings, counts and erase could not find. The client's
    retry then writes the message."""

    async def scenario() -> None:
        h, _ = fresh()
        body = message_body(id="late", user_id="u3", conversation_id="c3", timestamp=42)
        # ops 0-3 look for an existing "late" and for a delete of it or an erase of its scopes
        # under way, ops 4-6 journal its three index entries (user, conversation, and the
        # conversation's participants), op 7 would write the record.
        faulty = FaultyKV(h.memory, seed=0, fail_at=7)
        h.use(faulty)
        reply = await h.arequest("POST", "/v1/messages", json_body=body)
        assert_storage_unavailable(reply)
        assert [r.method for r in faulty.log[:8]] == [
            *["get_with_metadata"] * 4, "put", "put", "put", "put"]
        assert {r.key for r in faulty.log[1:4]} == {
            intent_key(message_key("late")), intent_key("user:chat:u3"),
            intent_key("conversation:chat:c3")}
        assert all(r.key.startswith(JOURNAL_PREFIX) for r in faulty.log[4:7])
        assert faulty.log[7].key == f"{MESSAGE_PREFIX}late"
        h.heal()
        assert (await h.arequest("GET", "/v1/messages/late")).status == 404
        assert f"{MESSAGE_PREFIX}late" not in h.memory.snapshot()
        for path in ("users/u3", "conversations/c3"):
            assert await h.alist_all(path) == []
        h.advance_past_settle()  # the operator's repair: settle, then reindex
        for kind, scope_id in (("user", "u3"), ("conversation", "c3")):
            assert (await h.areindex(kind, scope_id)).json["entries"] == 0
        for path in ("users/u3", "conversations/c3"):
            assert await h.acount(path) == 0
        assert (await h.arequest("POST", "/v1/messages", json_body=body)).status == 201
        for path in ("users/u3", "conversations/c3"):
            assert [m["id"] for m in await h.alist_all(path)] == ["late"]
            assert await h.acount(path) == 1
        h.advance_past_settle()
        await touch_every_scope(h)
        assert stored_index(h.memory, "user:chat:u3").entries == [(42, "chat:late")]

    run(scenario())


@pytest.mark.parametrize("failing", ["record", "second journal"])
@pytest.mark.parametrize("with_id", [False, True], ids=["server-id", "client-id"])
def test_a_create_whose_write_fails_leaves_no_counted_entry_behind(
    with_id: bool, failing: str
) -> None:
    """The index entries go first, then the record; when one of those writes fails, a
    server-made id would never be sent again, so the create withdraws its entries before
    answering 503: counts stay equal to listings at once. A client id keeps them: its retry
    completes the message."""

    async def scenario() -> None:
        h, _ = fresh()
        fields: dict[str, Any] = {"user_id": "u3", "conversation_id": "c3", "timestamp": 42}
        if with_id:
            fields["id"] = "late"
        # (four reads for a client id: the record, a delete's plan and the plans of erases of
        # its two scopes,) three journal puts (user, conversation, participants), then the
        # record put: only one fails.
        at = (1 if failing == "second journal" else 3) + (4 if with_id else 0)
        faulty = FaultyKV(h.memory, seed=0, fail_at=at, crash=False)
        h.use(faulty)
        reply = await h.arequest("POST", "/v1/messages", json_body=message_body(**fields))
        assert_storage_unavailable(reply)
        expected_key = MESSAGE_PREFIX if failing == "record" else f"{JOURNAL_PREFIX}conversation:"
        assert faulty.log[at].key.startswith(expected_key)
        h.heal()
        for path in ("users/u3", "conversations/c3"):
            assert await h.alist_all(path) == []
            entries = 1 if with_id and (failing == "record" or path == "users/u3") else 0
            assert await h.acount(path) == entries
        if with_id:  # the retry the 503 asks for
            again = await h.arequest("POST", "/v1/messages", json_body=message_body(**fields))
            assert again.status == 201
            for path in ("users/u3", "conversations/c3"):
                assert [m["id"] for m in await h.alist_all(path)] == ["late"]
                assert await h.acount(path) == 1
        else:
            assert not [m for m in records(h.memory).values() if m["user_id"] == "u3"]

    run(scenario())


class WritesOfKeysFail:
    """Over ``inner``: the next ``times`` puts and deletes of keys starting with ``prefix``
    fail as KV trouble does (503 after the retries); everything else passes through."""

    def __init__(self, inner: MemoryKV, prefix: str, times: int) -> None:
        self.inner, self.prefix, self.times = inner, prefix, times

    def _fail(self, key: str) -> None:
        if key.startswith(self.prefix) and self.times > 0:
            self.times -= 1
            raise KVTransientError()

    async def get(self, key: str) -> str | None:
        return await self.inner.get(key)

    async def get_with_metadata(self, key: str) -> ValueWithMetadata | None:
        return await self.inner.get_with_metadata(key)

    async def put(self, key: str, value: str, *, metadata: Metadata | None = None,
                  expiration: int | None = None) -> None:
        self._fail(key)
        await self.inner.put(key, value, metadata=metadata, expiration=expiration)

    async def delete(self, key: str) -> None:
        self._fail(key)
        await self.inner.delete(key)

    async def list(self, *, prefix: str = "", limit: int = MAX_LIST_LIMIT,
                   cursor: str | None = None) -> ListPage:
        return await self.inner.list(prefix=prefix, limit=limit, cursor=cursor)


@pytest.mark.parametrize("batch", [False, True], ids=["one", "batch"])
def test_a_withdrawal_that_kv_trouble_cuts_short_goes_on_after_the_response(
    batch: bool,
) -> None:
    """A create with a server-made id whose record write fails withdraws what it wrote; when
    the record delete of that withdrawal fails too, it goes on after the 503 (deferred work,
    after a pause), so neither an uncounted entry nor a second copy of the message (once the
    client sends it again, under a new id) is left."""

    async def scenario() -> None:
        h, _ = fresh()
        body = message_body(user_id="u3", conversation_id="c3", timestamp=42)  # no id
        # The record put, then the withdrawal's record delete, fail; the pause lets KV recover.
        h.use(WritesOfKeysFail(h.memory, MESSAGE_PREFIX, times=2))
        path, payload = (("/v1/messages/batch", {"messages": [body]}) if batch
                         else ("/v1/messages", body))
        assert_storage_unavailable(await h.arequest("POST", path, json_body=payload))
        h.heal()
        for scope in ("users/u3", "conversations/c3"):
            assert await h.alist_all(scope) == []
            assert await h.acount(scope) == 0
        assert not [m for m in records(h.memory).values() if m["user_id"] == "u3"]
        again = await h.arequest("POST", path, json_body=payload)  # the client's retry
        assert again.status == 201, again.body
        for scope in ("users/u3", "conversations/c3"):
            assert len(await h.alist_all(scope)) == 1
            assert await h.acount(scope) == 1
        listed = await h.arequest("GET", "/v1/users/u3/conversations")
        assert [c["id"] for c in listed.json["conversations"]] == ["c3"]

    run(scenario())


@pytest.mark.parametrize("crash_at", range(1, 5))
def test_an_erase_after_a_crashed_create_leaves_none_of_its_records(crash_at: int) -> None:
    """Whatever KV operation a create dies at, the erases of its user and its conversation
    that follow leave no record of theirs behind: a message the indexes cannot find would
    survive them (and come back with the next reindex)."""

    async def scenario() -> None:
        h, _ = fresh()
        body = message_body(id="late", user_id="u3", conversation_id="c3", timestamp=42)
        h.use(FaultyKV(h.memory, seed=0, fail_at=crash_at))
        reply = await h.arequest("POST", "/v1/messages", json_body=body)
        assert reply.status in (201, 503), reply.body
        h.heal()
        for scope in ("users/u3", "conversations/c3"):
            erased = await h.arequest("DELETE", f"/v1/{scope}/messages")
            assert erased.status == 200 and erased.json["remaining"] == 0, erased.body
        left = [m["id"] for m in records(h.memory).values()
                if m["user_id"] == "u3" or m.get("conversation_id") == "c3"]
        assert left == []

    run(scenario())


@pytest.mark.parametrize("name", ["delete", "erase-user", "erase-conversation"])
def test_a_reindex_soon_after_a_crashed_delete_keeps_the_surviving_records(name: str) -> None:
    """A delete journals the index removal, then deletes the record. If the request dies in
    between, the record survives; a reindex must then list it again, however soon the operator
    runs it (the repair in ``repair`` waits out the settle time first; this one does not)."""
    op = BY_NAME[name]

    async def scenario() -> None:
        n = OP_COUNTS[name]
        h, model = fresh()
        probe = FaultyKV(h.memory, seed=0)
        h.use(probe)
        await op.send(h)
        first_record_delete = next(r.n for r in probe.log
                                   if r.method == "delete" and r.key.startswith(MESSAGE_PREFIX))
        assert first_record_delete < n
        h, model, reply, _ = await crash(op, first_record_delete)
        assert_storage_unavailable(reply)
        survivors = affected_ids(op, model)
        assert survivors <= set(records(h.memory))  # the crash came before any record went
        for kind, scope_id in SCOPES:  # at once, within the settle time
            assert (await h.areindex(kind, scope_id)).status == 200
        h.advance_past_settle()
        await touch_every_scope(h)
        h.advance_past_gc()
        await touch_every_scope(h)
        await assert_listings(h, Expectation(model), stage="repaired")

    run(scenario())


async def count_every_scope(h: FaultHarness) -> None:
    """A count of every scope: schedules compaction like a listing, but no read-repair."""
    for kind, scope_id in SCOPES:
        await h.acount(scope_segment(kind, scope_id))


@pytest.mark.parametrize("then", ["move", "delete"])
def test_a_write_after_a_crashed_move_leaves_no_stale_index_entry(then: str) -> None:
    """A PATCH that moves a message dies between its record write and its journal write (in
    whichever order the store does them), so an index holds the message at a timestamp its
    record does not have. Once that is folded and the journal that said so collected (no
    listing came by to read-repair it), a later acknowledged PATCH or DELETE journals its op
    with ``prev`` = the record's timestamp: compaction must still not keep the other entry (a
    message listed twice after a move; a deleted message still counted)."""

    async def scenario() -> None:
        h, model = fresh()
        h.advance_past_settle()
        await count_every_scope(h)
        h.advance_past_gc()
        await count_every_scope(h)
        u1 = stored_index(h.memory, "user:chat:u1")
        # m03 sits in the first segment; 4_500 falls in the second one, 9_000 in the head.
        assert (3_000, "chat:m03") in u1.segments[0] and u1.segments[1][0][0] < 4_500
        assert u1.head[0][0] > 4_500 and journal_ops(h.memory, "user:chat:u1") == []
        h.use(FaultyKV(h.memory, seed=0, fail_at=2))  # get m03, one write, [the other]
        reply = await h.arequest("PATCH", "/v1/messages/m03", json_body={"timestamp": 4_500})
        assert_storage_unavailable(reply)
        h.heal()
        h.advance_past_settle()
        await count_every_scope(h)  # folds whatever was journaled
        h.advance_past_gc()
        await count_every_scope(h)  # and collects the journal
        if then == "move":
            reply = await h.arequest("PATCH", "/v1/messages/m03",
                                     json_body={"timestamp": 9_000})
            assert reply.status == 200, reply.body
            model["m03"] = reply.json["message"]
        else:
            reply = await h.arequest("DELETE", "/v1/messages/m03")
            assert reply.status == 204, reply.body
            del model["m03"]
        h.advance_past_settle()
        await count_every_scope(h)  # compactions fold the acknowledged write
        await assert_listings(h, Expectation(model), stage="acknowledged")

    run(scenario())
