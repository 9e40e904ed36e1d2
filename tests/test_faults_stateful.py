"""The whole store under KV faults, against a model, with hypothesis.

Every request goes through ``App.handle`` with the service token, over
``RetryingKV(FaultyKV(...))``: seeded transient failures, 429s for a key written less than a
second ago, and retry sleeps that advance the fake clock instead of sleeping. A request that
still fails must be a 503 ``storage_unavailable`` with ``Retry-After``, never a 500.

The model tracks, per message id, the record states it may be in (exactly one once the outcome
is known) and whether its index entries certainly agree with its record. A failed request makes
what it touched uncertain: the record may or may not have been written, and the indexes may
miss the message or list it at an old timestamp until a repair (``reindex``). Acknowledged
outcomes are certain: a 2xx create/edit/delete/erase is what every later read sees.

After every step, observed through a healthy KV: every record is in a state the model allows;
every listing (ascending and descending, paginated) shows each *solid* message (certain record,
certain index) once and in order, shows only messages whose record exists, as stored; counts lie
between the solid messages and the solid plus doubtful ones. The ``repair`` rule (settle, reindex
everything, compact) resolves every doubt: the indexes, as stored, must then equal the records.

A 2xx create, first time or replayed, means listed. Deliberately lenient: an edit that keeps the
timestamp (it journals nothing) does not make a doubtful index certain again, and an erase does
not make a doubtful message's entries in other scopes certain. Deliberately strict: an
acknowledged erase removes the record of every message of the scope, doubtful or not.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from errors import StorageUnavailable
from storage.retrying import RetryingKV, RetryPolicy
from support.app_harness import Reply, message_body
from support.fault_harness import (
    TINY_CONFIG,
    FaultHarness,
    Message,
    client_fields,
    index_key,
    live_positions,
    position,
    records,
    scope_segment,
    stored_index,
)
from support.faulty_kv import FaultyKV

T = TypeVar("T")
CONFIG = TINY_CONFIG
USERS = ("u1", "u2")
CONVERSATIONS = ("c1", "c2")
SCOPES = [("user", u) for u in USERS] + [("conversation", c) for c in CONVERSATIONS]
TIMESTAMPS = st.sampled_from([1_000, 2_000, 2_000, 3_000, 4_000, 5_000])
State = dict[str, Any] | None  # a record's client fields, or None for no record


@dataclass
class Tracked:
    user_id: str
    conversation_id: str | None
    states: list[State]  # what the record may be; one state once it is known
    indexed: bool  # the indexes certainly agree with the record
    # A delete of it failed: the store may hold its plan (an intent), which the next DELETE
    # finishes with a 204 even though the record is already gone.
    delete_pending: bool = False

    @property
    def solid(self) -> bool:
        return self.indexed and len(self.states) == 1

    def scopes(self) -> list[tuple[str, str]]:
        found = [("user", self.user_id)]
        if self.conversation_id is not None:
            found.append(("conversation", self.conversation_id))
        return found

    def doubt(self, *extra: State) -> None:
        """A request that may have changed this message failed."""
        self.states = _unique([*self.states, *extra])
        self.indexed = False


def _unique(states: list[State]) -> list[State]:
    out: list[State] = []
    for state in states:
        if state not in out:
            out.append(state)
    return out


@dataclass
class Pending:
    """A failed create, which the client may send again."""

    body: dict[str, Any]
    path: str = "/v1/messages"


class FaultyStore(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.h = FaultHarness(CONFIG)
        self.tracked: dict[str, Tracked] = {}
        self.pending: list[Pending] = []
        self.next_id = 0
        self.faulty: FaultyKV | None = None
        self.kv: RetryingKV | None = None

    def teardown(self) -> None:
        self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    # -- plumbing ---------------------------------------------------------------------------

    @initialize(
        seed=st.integers(0, 2**32 - 1),
        rate=st.sampled_from([0.05, 0.1, 0.2]),
        attempts=st.sampled_from([2, 3, 4]),
    )
    def setup(self, seed: int, rate: float, attempts: int) -> None:
        clock = self.h.clock

        async def sleep(seconds: float) -> None:  # retries pass fake time, not real time
            clock.advance(round(seconds * 1000))

        self.faulty = FaultyKV(self.h.memory, seed=seed, transient_rate=rate,
                               same_key_window_ms=1_000, clock=clock)
        self.kv = RetryingKV(self.faulty, sleep, RetryPolicy(attempts=attempts),
                             rng=random.Random(seed))
        self.h.use(self.kv)

    def send(self, method: str, path: str, body: Any = None, query: str = "") -> Reply:
        assert self.kv is not None
        self.h.use(self.kv)
        kwargs: dict[str, Any] = {} if body is None else {"json_body": body}
        reply = self.run(self.h.arequest(method, path, query, **kwargs))
        assert reply.status != 500, reply.body
        if reply.status == 503:
            assert reply.json["code"] == "storage_unavailable", reply.body
            assert reply.header("retry-after") == "1"
            event(f"503 on {method} /v1/{path.split('/')[2]}")  # --hypothesis-show-statistics
        # Deferred work may fail only because KV did (entry._guarded logs it in production).
        assert all(isinstance(e, StorageUnavailable) for e in self.h.deferred_errors), \
            self.h.deferred_errors
        self.h.deferred_errors.clear()
        return reply

    def healthy(self, method: str, path: str, body: Any = None, query: str = "") -> Reply:
        """A request over the healthy KV, deferred work included (repair)."""
        self.h.heal()
        kwargs: dict[str, Any] = {} if body is None else {"json_body": body}
        reply = self.run(self.h.arequest(method, path, query, **kwargs))
        assert self.h.deferred_errors == []
        return reply

    def look(self, path: str, query: str = "") -> Reply:
        """A read over the healthy KV whose deferred work (compaction, read-repair) is dropped:
        checking the store must not repair it."""
        with self.h.observing():
            return self.run(self.h.arequest("GET", path, query))

    def fresh_id(self) -> str:
        self.next_id += 1
        return f"m{self.next_id:03d}"

    def in_scope(self, kind: str, scope_id: str) -> list[str]:
        return [i for i, t in self.tracked.items() if (kind, scope_id) in t.scopes()]

    def draft(self, user: str, conversation: str | None, timestamp: int) -> dict[str, Any]:
        fields: dict[str, Any] = {"id": self.fresh_id(), "user_id": user,
                                  "timestamp": timestamp, "content": f"c{self.next_id}"}
        if conversation is not None:
            fields["conversation_id"] = conversation
        return message_body(**fields)

    def created(self, body: dict[str, Any], reply_message: Message | None, ok: bool) -> None:
        """The outcome of a create of ``body`` (first time or again)."""
        state = client_fields({**body, "metadata": body.get("metadata")})
        known = self.tracked.get(body["id"])
        if known is None:
            known = self.tracked[body["id"]] = Tracked(body["user_id"],
                                                       body.get("conversation_id"), [None],
                                                       indexed=True)
        if not ok:
            known.doubt(state)
            return
        assert reply_message is not None and client_fields(reply_message) == state
        known.states = [state]

    # -- writes -----------------------------------------------------------------------------

    @rule(user=st.sampled_from(USERS), conversation=st.sampled_from([*CONVERSATIONS, None]),
          timestamp=TIMESTAMPS)
    def create(self, user: str, conversation: str | None, timestamp: int) -> None:
        body = self.draft(user, conversation, timestamp)
        reply = self.send("POST", "/v1/messages", body)
        assert reply.status in (201, 503), reply.body
        if reply.status == 201:
            self.created(body, reply.json["message"], ok=True)
            self.tracked[body["id"]].indexed = True
        else:
            self.created(body, None, ok=False)
            self.pending.append(Pending(body))

    @rule(items=st.lists(st.tuples(st.sampled_from(USERS),
                                   st.sampled_from([*CONVERSATIONS, None]), TIMESTAMPS),
                         min_size=1, max_size=3))
    def batch(self, items: list[tuple[str, str | None, int]]) -> None:
        bodies = [self.draft(*item) for item in items]
        reply = self.send("POST", "/v1/messages/batch", {"messages": bodies})
        assert reply.status in (201, 503), reply.body
        for n, body in enumerate(bodies):
            if reply.status == 201:
                self.created(body, reply.json["messages"][n], ok=True)
                self.tracked[body["id"]].indexed = True
            else:
                self.created(body, None, ok=False)
        if reply.status == 503:
            self.pending.append(Pending({"messages": bodies}, "/v1/messages/batch"))

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def retry_create(self, data: st.DataObject) -> None:
        """The client sends a failed create again, as Retry-After invites."""
        pending = data.draw(st.sampled_from(self.pending))
        reply = self.send("POST", pending.path, pending.body)
        assert reply.status in (200, 201, 409, 503), reply.body
        bodies = pending.body.get("messages", [pending.body])
        if reply.status == 503:
            for body in bodies:
                self.created(body, None, ok=False)
            return
        self.pending.remove(pending)
        if reply.status == 409:  # edited since: the replay differs, and nothing was written
            assert any(
                any(s is not None and s != client_fields({**b, "metadata": None})
                    for s in self.tracked[b["id"]].states)
                for b in bodies
            ), reply.body
            return
        messages = reply.json["messages"] if "messages" in reply.json else [reply.json["message"]]
        for body, message in zip(bodies, messages, strict=True):
            self.created(body, message, ok=True)
            # A 2xx means listed: created now, or replayed (a replay journals its entries
            # again, since the first attempt may have died between its record and its index).
            self.tracked[body["id"]].indexed = True

    @precondition(lambda self: bool(self.tracked))
    @rule(data=st.data(), content=st.booleans(), timestamp=st.none() | TIMESTAMPS)
    def patch(self, data: st.DataObject, content: bool, timestamp: int | None) -> None:
        message_id = data.draw(st.sampled_from(sorted(self.tracked)))
        known = self.tracked[message_id]
        changes: dict[str, Any] = {}
        if content:
            changes["content"] = f"edited {self.h.clock.now_ms}"
        if timestamp is not None or not changes:
            changes["timestamp"] = timestamp if timestamp is not None else 1_500
        reply = self.send("PATCH", f"/v1/messages/{message_id}", changes)
        assert reply.status in (200, 404, 503), reply.body
        if reply.status == 200:
            new = client_fields(reply.json["message"])
            for key, value in changes.items():
                assert new[key] == value
            assert any(s is not None and {**s, **changes} == new for s in known.states)
            moved_from_all = all(s is None or s["timestamp"] != new["timestamp"]
                                 for s in known.states)
            known.states = [new]
            if moved_from_all:
                known.indexed = True  # the move was journaled to every index
        elif reply.status == 404:
            assert None in known.states, f"{message_id} is acknowledged but 404"
            known.states = [None]
        else:
            known.doubt(*(None if s is None else {**s, **changes} for s in known.states))

    @precondition(lambda self: bool(self.tracked))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        message_id = data.draw(st.sampled_from(sorted(self.tracked)))
        known = self.tracked[message_id]
        reply = self.send("DELETE", f"/v1/messages/{message_id}")
        assert reply.status in (204, 404, 503), reply.body
        if reply.status == 204:
            assert known.states != [None] or known.delete_pending, (
                f"{message_id} is acknowledged as gone but 204")
            known.states, known.indexed, known.delete_pending = [None], True, False
        elif reply.status == 404:
            assert None in known.states, f"{message_id} is acknowledged but 404"
            known.states = [None]
        else:
            known.doubt(None)
            known.delete_pending = True

    @rule(scope=st.sampled_from(SCOPES))
    def erase(self, scope: tuple[str, str]) -> None:
        reply = self.send("DELETE", f"/v1/{scope_segment(*scope)}/messages")
        assert reply.status in (200, 503), reply.body
        members = self.in_scope(*scope)
        if reply.status == 200:
            assert reply.json["remaining"] == 0
            assert reply.json["deleted"] <= sum(1 for i in members
                                                if self.tracked[i].states != [None])
            for message_id in members:  # erased: every message of the scope, from everywhere
                known = self.tracked[message_id]
                # Its record is gone for sure. Its entries in *other* scopes are certain only if
                # the erase found the record to learn them: one that a crashed request had
                # already removed (or never wrote) may be counted there until a retry of that
                # request or a repair, like any crashed delete.
                known.indexed = known.solid
                known.states = [None]
        else:
            for message_id in members:
                self.tracked[message_id].doubt(None)

    # -- reads and maintenance --------------------------------------------------------------

    @rule(scope=st.sampled_from(SCOPES), order=st.sampled_from(["asc", "desc"]),
          limit=st.integers(1, 4))
    def list_under_faults(self, scope: tuple[str, str], order: str, limit: int) -> None:
        shown: list[Message] = []
        cursor: str | None = None
        for _ in range(50):
            query = f"order={order}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            reply = self.send("GET", f"/v1/{scope_segment(*scope)}/messages", query=query)
            if reply.status == 503:
                break
            assert reply.status == 200, reply.body
            shown += reply.json["messages"]
            cursor = reply.json["next_cursor"]
            if cursor is None:
                self.check_listing(scope, shown, order, complete=True)
                return
        self.check_listing(scope, shown, order, complete=False)

    @rule(scope=st.sampled_from(SCOPES))
    def count_under_faults(self, scope: tuple[str, str]) -> None:
        reply = self.send("GET", f"/v1/{scope_segment(*scope)}/messages/count")
        if reply.status == 200:
            self.check_count(scope, reply.json["count"])

    @rule(scope=st.sampled_from(SCOPES))
    def reindex(self, scope: tuple[str, str]) -> None:
        kind, scope_id = scope
        field_name = "user_id" if kind == "user" else "conversation_id"
        reply = self.send("POST", "/v1/admin/reindex", {field_name: scope_id})
        assert reply.status in (200, 503), reply.body

    @rule(ms=st.sampled_from([1, 300, 1_001, 5_000, 25_000]))
    def advance_clock(self, ms: int) -> None:
        self.h.clock.advance(ms)

    @rule()
    def repair(self) -> None:
        """Settle, reindex everything with a healthy KV, compact: every doubt is resolved."""
        self.h.advance_past_settle()
        for kind, scope_id in SCOPES:
            field_name = "user_id" if kind == "user" else "conversation_id"
            reply = self.healthy("POST", "/v1/admin/reindex", {field_name: scope_id})
            assert reply.status == 200, reply.body
        self.h.advance_past_settle()
        self.touch_all()
        stored = records(self.h.memory)
        for message_id, known in self.tracked.items():
            record = stored.get(message_id)
            state = None if record is None else client_fields(record)
            assert state in known.states, (message_id, state, known.states)
            known.states, known.indexed = [state], True
        for kind, scope_id in SCOPES:
            live = live_positions(stored.values(), kind, scope_id)
            assert stored_index(self.h.memory, index_key(kind, scope_id)).entries == live

    def touch_all(self) -> None:
        for kind, scope_id in SCOPES:
            self.run(self.h.alist_all(scope_segment(kind, scope_id), order="asc", limit=4))

    # -- invariants -------------------------------------------------------------------------

    def check_listing(self, scope: tuple[str, str], shown: list[Message], order: str,
                      *, complete: bool) -> None:
        stored = records(self.h.memory)
        members = set(self.in_scope(*scope))
        for message in shown:
            message_id = message["id"]
            assert message_id in members, (scope, message_id)
            # A listed message's record exists, and the listing shows it as stored.
            assert stored.get(message_id) == message, (scope, message_id)
            assert client_fields(message) in self.tracked[message_id].states, message_id
        solid = sorted(position(stored[i]) for i in members
                       if self.tracked[i].solid and self.tracked[i].states != [None])
        seen = [position(m) for m in shown if self.tracked[m["id"]].solid]
        expected = solid if order == "asc" else solid[::-1]
        if complete:
            assert seen == expected, (scope, order, seen, expected)
        else:
            assert seen == expected[: len(seen)], (scope, order, seen, expected)
        if complete and all(self.tracked[i].solid for i in members):
            assert [position(m) for m in shown] == expected, (scope, order)

    def check_count(self, scope: tuple[str, str], count: int) -> None:
        members = self.in_scope(*scope)
        solid = sum(1 for i in members
                    if self.tracked[i].solid and self.tracked[i].states != [None])
        doubtful = sum(1 for i in members if not self.tracked[i].solid)
        assert solid <= count <= solid + doubtful, (scope, count, solid, doubtful)

    @invariant()
    def store_matches_the_model(self) -> None:
        self.check_records()
        self.check_listings()

    def check_records(self) -> None:
        stored = records(self.h.memory)
        assert set(stored) <= set(self.tracked), set(stored) - set(self.tracked)
        for message_id, known in self.tracked.items():
            record = stored.get(message_id)
            state = None if record is None else client_fields(record)
            assert state in known.states, (message_id, state, known.states)

    def check_listings(self) -> None:
        for scope in SCOPES:
            path = f"/v1/{scope_segment(*scope)}/messages"
            for order, limit in (("asc", 3), ("desc", 4)):  # page by page, through the cursors
                shown: list[Message] = []
                cursor: str | None = None
                for _ in range(100):
                    query = f"order={order}&limit={limit}" + (f"&cursor={cursor}" if cursor
                                                              else "")
                    reply = self.look(path, query)
                    assert reply.status == 200, reply.body
                    assert len(reply.json["messages"]) <= limit
                    shown += reply.json["messages"]
                    cursor = reply.json["next_cursor"]
                    if cursor is None:
                        break
                self.check_listing(scope, shown, order, complete=True)
            reply = self.look(f"{path}/count")
            assert reply.status == 200, reply.body
            self.check_count(scope, reply.json["count"])


FaultyStore.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    # Every step replays requests: explaining a failure would cost minutes, shrinking enough.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_store_under_faults = FaultyStore.TestCase
