"""Shared pieces of the fault-injection tests: an ``AppHarness`` whose KV can be swapped per
request, and readers of the raw KV layout (records, index roots and segments, journal ops).

``FaultHarness`` differs from ``AppHarness`` in two ways that matter under faults:

- deferred work is guarded as ``entry._guarded`` guards it in production (an exception in
  ``ctx.waitUntil`` work is logged, never returned to the client); the exceptions are kept in
  ``deferred_errors`` so a test can say which ones it tolerates;
- before and after deferred work runs, tasks the request left behind (``asyncio.gather``
  children still retrying after a sibling failed) are awaited, so that every write a request
  started has landed or failed before the next request, and before a test looks at KV;
- inside ``observing()``, requests only look: the deferred work they schedule (compaction,
  read-repair of index entries) is dropped, so that checking the store does not repair it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from chat_store import MAX_POSITION_HISTORY
from config import Config
from index.object_cache import ObjectCache
from index.pacer import CompactionPacer
from index.sorted_index import MAX_COMPACTION_MS
from kvformat import JOURNAL_PREFIX, MANIFEST_PREFIX, MESSAGE_PREFIX, SEGMENT_PREFIX
from storage.kv import KVStore
from support.app_harness import TOKEN, AppHarness, Reply
from support.clock import START_MS, ManualClock
from support.memory_kv import MemoryKV
from web.app import Service

Message = dict[str, Any]
Position = tuple[int, str]
SETTLE_MS = 1_000
# Tiny layout bounds, so that a few messages give indexes segments, a manifest and garbage.
TINY_CONFIG = Config(api_token=TOKEN, journal_settle_ms=SETTLE_MS, index_head_max=4,
                     index_head_keep=2, index_segment_max=3)


async def settle_background() -> None:
    """Await every other task of this event loop (results and exceptions are discarded)."""
    current = asyncio.current_task()
    while True:
        others = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if not others:
            return
        await asyncio.gather(*others, return_exceptions=True)


class FaultHarness(AppHarness):
    def __init__(
        self,
        config: Config | None = None,
        *,
        kv: MemoryKV | None = None,
        clock: ManualClock | None = None,
        settle_ms: int = 1_000,
        start_ms: int = START_MS,
        step_ms: int = 1,
    ) -> None:
        clock = clock or ManualClock(start_ms)
        kv = kv if kv is not None else MemoryKV(clock=clock.seconds)
        super().__init__(config, kv=kv, settle_ms=settle_ms, start_ms=start_ms, step_ms=step_ms)
        self.clock = clock
        self.memory = kv
        self.deferred_errors: list[Exception] = []
        self.run_deferred = True
        self.use(kv)

    @property
    def settle_ms(self) -> int:
        return self.config.journal_settle_ms

    def use(self, kv: KVStore) -> None:
        """Serve the following requests from ``kv`` (e.g. a ``FaultyKV`` over ``self.memory``)."""
        # Compactions after every write, and no cached index objects: every KV call a request
        # makes is one it makes in a fresh isolate, and so a crash point.
        # Deferred work that waits (a withdrawal retried after a pause) waits on this clock.
        service = Service(self.config, pacer=CompactionPacer(interval_ms=0, sleep=self._sleep),
                          index_objects=ObjectCache(max_weight=0))
        self.app = service.bind(kv, self.clock, self.deferred.append)

    async def _sleep(self, seconds: float) -> None:
        self.clock.advance(round(seconds * 1000))

    def heal(self) -> None:
        self.use(self.memory)

    @contextlib.contextmanager
    def observing(self) -> Iterator[None]:
        """Requests served healthy whose deferred work is dropped: reads without side effects."""
        app = self.app
        self.heal()
        self.run_deferred = False
        try:
            yield
        finally:
            self.run_deferred = True
            self.app = app

    async def drain(self) -> None:
        await settle_background()
        if not self.run_deferred:
            for work in self.deferred:
                if inspect.iscoroutine(work):
                    work.close()
            self.deferred.clear()
        while self.deferred:
            work = self.deferred.pop(0)
            try:
                await work
            except Exception as exc:  # as entry._guarded: logged in production, kept here
                self.deferred_errors.append(exc)
            self.deferred_runs += 1
        await settle_background()

    def advance_past_settle(self) -> None:
        self.clock.advance(self.settle_ms + 1)

    def advance_past_gc(self) -> None:
        """Far enough that folded journal entries and garbage are collectable (rules 3 and 4)."""
        self.clock.advance(2 * (self.settle_ms + MAX_COMPACTION_MS) + 1)

    async def areindex(self, kind: str, scope_id: str) -> Reply:
        field = "user_id" if kind == "user" else "conversation_id"
        return await self.arequest("POST", "/v1/admin/reindex", json_body={field: scope_id})


# -- reading the raw layout ------------------------------------------------------------------


def scope_segment(kind: str, scope_id: str) -> str:
    """A scope as a path segment: ``("user", "u1")`` -> ``"users/u1"``, as ``AppHarness``
    listing helpers take it (``kind`` is "user" or "conversation", as in index keys)."""
    return f"{'users' if kind == 'user' else 'conversations'}/{scope_id}"


def index_key(kind: str, scope_id: str) -> str:
    return f"{kind}:chat:{scope_id}"


def position(message: Message) -> Position:
    return (message["timestamp"], f"{MESSAGE_PREFIX}{message['id']}")


def scopes_of(message: Message) -> list[tuple[str, str]]:
    found = [("user", message["user_id"])]
    if message.get("conversation_id") is not None:
        found.append(("conversation", message["conversation_id"]))
    return found


def records(kv: MemoryKV) -> dict[str, Message]:
    """Every stored message by id, checking that its KV metadata matches it (reindex reads
    only the metadata)."""
    found: dict[str, Message] = {}
    for key, raw in kv.snapshot().items():
        if not key.startswith(MESSAGE_PREFIX):
            continue
        message: Message = json.loads(raw)
        assert key == f"{MESSAGE_PREFIX}{message['id']}", key
        meta = kv.metadata_of(key) or {}
        expected = {"u": message["user_id"], "s": message["timestamp"]}
        if message.get("conversation_id") is not None:
            expected["c"] = message["conversation_id"]
        # "p": earlier timestamps (newest first) a moved message may still be indexed at.
        history = meta.pop("p", [])
        assert (isinstance(history, list) and 0 < len(history) <= MAX_POSITION_HISTORY) or (
            "p" not in (kv.metadata_of(key) or {})
        ), (key, history)
        assert all(isinstance(s, int) and s != message["timestamp"] for s in history[:1]), (
            key, history, message)
        assert meta == expected, (key, meta, message)
        found[message["id"]] = message
    return found


def live_positions(found: Iterable[Message], kind: str, scope_id: str) -> list[Position]:
    field = "user_id" if kind == "user" else "conversation_id"
    return sorted(position(m) for m in found if m.get(field) == scope_id)


@dataclass(frozen=True)
class StoredIndex:
    head: list[Position]
    segments: list[list[Position]]

    @property
    def entries(self) -> list[Position]:
        return [e for segment in self.segments for e in segment] + self.head


def stored_index(kv: MemoryKV, index: str) -> StoredIndex:
    """The root array and, through its manifest, the segments of ``index``, as stored; asserts
    that every referenced object exists and that segments-then-head are in sorted-set order."""
    snapshot = kv.snapshot()

    def entries(raw: str) -> list[Position]:
        items = json.loads(raw)
        assert isinstance(items, list), raw
        return [(item["score"], item["member"]) for item in items]

    if index not in snapshot:
        return StoredIndex([], [])
    head = entries(snapshot[index])
    meta = kv.metadata_of(index) or {}
    segments: list[list[Position]] = []
    manifest_key = meta.get("m")
    if manifest_key is not None:
        assert manifest_key in snapshot, f"{index}: manifest {manifest_key} is missing"
        manifest = json.loads(snapshot[manifest_key])
        for segment in manifest["segments"]:
            assert segment[0] in snapshot, f"{index}: segment {segment[0]} is missing"
            part = entries(snapshot[segment[0]])
            assert len(part) == segment[3], (index, segment)
            segments.append(part)
    stored = StoredIndex(head, segments)
    flat = stored.entries
    assert flat == sorted(flat) and len(set(flat)) == len(flat), (index, stored)
    assert len({member for _, member in flat}) == len(flat), f"{index}: a member twice"
    return stored


def journal_ops(kv: MemoryKV, index: str) -> list[list[Any]]:
    """Every op journaled for ``index`` and not collected yet, oldest entry first."""
    prefix = f"{JOURNAL_PREFIX}{index}:"
    ops: list[list[Any]] = []
    for key, raw in kv.snapshot().items():
        if key.startswith(prefix):
            ops.extend(json.loads(raw))
    return ops


def layout_keys(kv: MemoryKV) -> dict[str, int]:
    """How many journal entries, segments and manifests are stored (leaks show up here)."""
    counts = {"journal": 0, "segment": 0, "manifest": 0}
    for key in kv.snapshot():
        for name, prefix in (("journal", JOURNAL_PREFIX), ("segment", SEGMENT_PREFIX),
                             ("manifest", MANIFEST_PREFIX)):
            if key.startswith(prefix):
                counts[name] += 1
    return counts


def client_fields(message: Message) -> dict[str, Any]:
    return {
        k: message.get(k)
        for k in ("id", "user_id", "conversation_id", "sender", "content", "timestamp",
                  "metadata")
    }
