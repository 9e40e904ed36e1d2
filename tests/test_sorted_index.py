"""IndexStore over MemoryKV: no recorded write is ever lost, whatever the interleaving.

Concurrency is simulated deterministically. A "request" is split into the steps that matter,
``record`` (journal put), ``read`` (root + journal listing, giving a view) and ``compact(view)``,
and a test decides the order they run in and how far the millisecond clock moves in between.
A stale compactor is simply a view that is compacted late, after other views were read and
compacted. ``LaggingKV`` additionally holds journal puts back from listings for up to
``settle_ms``, the eventual consistency that the module's rules are written for.

The model is the plainest one possible: the journal ops of every visible record, applied in
record (= version) order to a dict. After every step the merged view must equal it, and a fresh
read + compaction (run on a copy of the store, so it does not disturb the schedule) must leave a
stored structure equal to it.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from errors import StorageUnavailable
from index.object_cache import ObjectCache
from index.rules import MAX_JOURNAL_ATTEMPTS, MIN_FIRST_PAGE
from index.sorted_index import (
    FIRST_PAGE,
    MAX_COMPACTION_MS,
    MAX_GC_DELETES,
    MAX_READ_ENTRIES,
    PAGE_GROWTH,
    IndexStore,
    IndexView,
    Layout,
)
from index.zset import Entry
from kvformat import JOURNAL_PREFIX, Op, journal_prefix
from storage.kv import ListPage, Metadata, ValueWithMetadata
from support.aio import run
from support.clock import START_MS, ManualClock
from support.memory_kv import MemoryKV

INDEX = "user:chat:alice"
DEFAULT_SETTLE_MS = 120_000  # Config.journal_settle_ms
SHORT_SETTLE_MS = 1_000  # shorter than MAX_COMPACTION_MS, as a test config might use
# Small enough that a few dozen entries spill the head into segments and split them.
TINY_LAYOUT = Layout(head_max=4, head_keep=2, segment_max=3)


# -- harness ---------------------------------------------------------------------------------------


@dataclass
class HeldPut:
    key: str
    value: str
    metadata: Metadata | None


class LaggingKV:
    """A KVStore over MemoryKV whose journal puts can be held back from every reader.

    Workers KV acknowledges a put before every listing shows it; ``settle_ms`` bounds the delay.
    While ``hold`` is set, a journal put is acknowledged but stays invisible until released.
    """

    def __init__(self, inner: MemoryKV) -> None:
        self.inner = inner
        self.hold = False
        self.held: list[HeldPut] = []

    async def get(self, key: str) -> str | None:
        return await self.inner.get(key)

    async def get_with_metadata(self, key: str) -> ValueWithMetadata | None:
        return await self.inner.get_with_metadata(key)

    async def put(
        self,
        key: str,
        value: str,
        *,
        metadata: Metadata | None = None,
        expiration: int | None = None,
    ) -> None:
        if self.hold and key.startswith(JOURNAL_PREFIX):
            self.held.append(HeldPut(key, value, metadata))
            return
        await self.inner.put(key, value, metadata=metadata, expiration=expiration)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def list(
        self, *, prefix: str = "", limit: int = 1000, cursor: str | None = None
    ) -> ListPage:
        return await self.inner.list(prefix=prefix, limit=limit, cursor=cursor)

    async def release(self, held: HeldPut) -> None:
        self.held.remove(held)
        await self.inner.put(held.key, held.value, metadata=held.metadata)


@dataclass
class Recorded:
    """One ``record`` call as the model sees it."""

    ops: list[Op]
    written_ms: int
    held: HeldPut | None = None  # not yet visible to any reader
    lagged: bool = False  # was held back at some point
    visible_ms: int | None = None  # since when it is listed (None: not yet)

    @property
    def visible(self) -> bool:
        return self.held is None


OpSpec = tuple[Literal["add", "rem"], str, int]


def apply(model: dict[str, int], ops: Sequence[Op]) -> None:
    for op in ops:
        if op.kind == "add":
            assert op.score is not None
            model[op.member] = op.score
        else:
            model.pop(op.member, None)


def as_entries(model: dict[str, int]) -> list[Entry]:
    return sorted(Entry(score, member) for member, score in model.items())


def parse_head(raw: str) -> list[Entry]:
    return [Entry(item["score"], item["member"]) for item in json.loads(raw)]


def stored_entries(kv: MemoryKV, index: str) -> list[Entry]:
    """Everything the stored structure (root head + manifest segments) holds, journal aside."""
    snapshot = kv.snapshot()
    if index not in snapshot:
        return []
    entries: list[Entry] = []
    manifest_key = (kv.metadata_of(index) or {}).get("m")
    if manifest_key is not None:
        for segment in json.loads(snapshot[manifest_key])["segments"]:
            entries += parse_head(snapshot[segment[0]])
    return entries + parse_head(snapshot[index])


class World:
    """One index in one KV namespace, a clock we move by hand, and the model of what was written."""

    def __init__(
        self, settle_ms: int = DEFAULT_SETTLE_MS, layout: Layout | None = None
    ) -> None:
        self.settle_ms = settle_ms
        self.layout = layout
        self.clock = ManualClock()
        self.kv = MemoryKV(clock=self.clock.seconds)
        self.lagging = LaggingKV(self.kv)
        self.store = IndexStore(self.lagging, self.clock, settle_ms, layout, ObjectCache())
        self.records: list[Recorded] = []

    # the model

    def latest(self) -> dict[str, int]:
        """Every recorded op applied, visible or not: what a writer believes the state is."""
        model: dict[str, int] = {}
        for record in self.records:
            apply(model, record.ops)
        return model

    def expected(self) -> list[Entry]:
        """What a reader must see: every visible record's ops, in record order."""
        model: dict[str, int] = {}
        for record in self.records:
            if record.visible:
                apply(model, record.ops)
        return as_entries(model)

    def ops(self, *specs: OpSpec) -> list[Op]:
        """Ops carrying ``prev`` (the member's score before the op) and ``also`` (its earlier
        scores, newest first, at most 4), as ChatStore sends them from a message record."""
        state: dict[str, int] = {}
        history: dict[str, list[int]] = {}

        def remember(op: Op) -> None:
            old = state.get(op.member)
            if old is not None and (op.kind == "rem" or op.score != old):
                history[op.member] = [old, *history.get(op.member, [])][:4]
            apply(state, [op])

        for record in self.records:
            for op in record.ops:
                remember(op)
        ops: list[Op] = []
        for kind, member, score in specs:
            prev = state.get(member)
            also = tuple(s for s in history.get(member, []) if s != prev)
            op = (Op.add(member, score, prev, also) if kind == "add"
                  else Op.rem(member, prev, also))
            remember(op)
            ops.append(op)
        return ops

    # the steps of a request

    async def record(self, ops: list[Op], *, lagged: bool = False) -> None:
        self.lagging.hold = lagged
        try:
            await self.store.append(INDEX, ops)
        finally:
            self.lagging.hold = False
        held = self.lagging.held[-1] if lagged else None
        self.records.append(Recorded(ops, self.clock.now_ms, held, lagged,
                                     None if lagged else self.clock.now_ms))

    async def record_adds(self, numbers: range) -> None:
        """One journal entry per number: member ``chat:m{n:05d}`` at score ``n``, 1 ms apart."""
        for n in numbers:
            await self.record(self.ops(("add", f"chat:m{n:05d}", n)))
            await self.advance(1)

    async def read(self) -> IndexView:
        return await self.store.read(INDEX)

    async def compact(self, view: IndexView) -> bool:
        return await self.store.compact(view)

    async def read_and_compact(self) -> bool:
        return await self.compact(await self.read())

    async def release(self, record: Recorded) -> None:
        assert record.held is not None
        await self.lagging.release(record.held)
        record.held = None
        record.visible_ms = self.clock.now_ms

    async def advance(self, ms: int) -> None:
        """Move the clock; a held journal put shows up before it is ``settle_ms`` old."""
        target = self.clock.now_ms + ms
        for record in self.records:
            if record.held is not None and record.written_ms + self.settle_ms <= target:
                await self.release(record)
                record.visible_ms = target  # after every read before this move of the clock
        self.clock.now_ms = target

    # observations

    async def live(self) -> list[Entry]:
        return await (await self.read()).zrange_by_score()

    def kv_written_ms(self, journal_key: str) -> int:
        """The clock reading a journal key's name carries (versions count down)."""
        digits = journal_key[len(journal_prefix(INDEX)):][:13]
        return 10**13 - 1 - int(digits)

    def journal_keys(self) -> list[str]:
        return [k for k in self.kv.snapshot() if k.startswith(journal_prefix(INDEX))]

    def head(self) -> list[Entry]:
        raw = self.kv.snapshot().get(INDEX)
        return [] if raw is None else parse_head(raw)

    def head_metadata(self) -> Metadata | None:
        return self.kv.metadata_of(INDEX) if INDEX in self.kv.snapshot() else None

    def head_stamp(self) -> Metadata:
        """The root's metadata without its pass id (random), which must be there."""
        stamp = dict(self.head_metadata() or {})
        pass_id = stamp.pop("i")
        assert isinstance(pass_id, str) and len(pass_id) == 8
        return stamp

    async def converged_structure(self) -> list[Entry]:
        """The stored structure after one more fresh full pass, on a copy of the store."""
        kv = copy.deepcopy(self.kv)
        store = IndexStore(kv, self.clock, self.settle_ms, self.layout)
        await store.compact(await store.read(INDEX, trust=False, cap=False))
        return stored_entries(kv, INDEX)

    def answers(self, view: IndexView) -> list[list[Entry]]:
        """What ``view`` may show: every visible record's ops, in record order, except that a
        view trusting its root (rule 5) may miss records listed only after the root's last
        full pass (any subset of them: they are few here)."""
        visible = [r for r in self.records if r.visible_ms is not None]
        uncertain = [r for r in visible
                     if view.trusted and r.visible_ms is not None and r.visible_ms > view.root.at]
        answers = []
        for n in range(len(uncertain) + 1):
            for missed in itertools.combinations(uncertain, n):
                model: dict[str, int] = {}
                for record in visible:
                    if all(record is not m for m in missed):
                        apply(model, record.ops)
                answers.append(as_entries(model))
        return answers

    async def check(self, *, counts: bool = True, converge: bool = True) -> None:
        """The invariant: nothing recorded (and visible) is missing, nothing else is there."""
        expected = self.expected()
        view = await self.read()
        merged = await view.zrange_by_score()
        answers = self.answers(view)
        assert merged in answers, "the merged view lost or invented data"
        assert await view.zrange_by_score(rev=True) == merged[::-1]
        if counts:
            assert await view.zcount() == len(merged)
        if converge:
            assert await self.converged_structure() == expected, (
                "a fresh compaction must converge")


# -- round trips and the merge of head and journal -------------------------------------------------


def test_record_then_read_round_trip() -> None:
    async def scenario() -> None:
        w = World()
        assert await w.live() == []
        await w.record(w.ops(("add", "chat:b", 20), ("add", "chat:a", 10), ("add", "chat:c", 20)))
        assert await w.live() == [Entry(10, "chat:a"), Entry(20, "chat:b"), Entry(20, "chat:c")]
        view = await w.read()
        assert await view.zrange_by_score(15, 20, rev=True) == [
            Entry(20, "chat:c"),
            Entry(20, "chat:b"),
        ]
        assert await view.zcount(10, 19) == 1
        # Another index, even one whose name extends this one's, shares nothing with it.
        other = await w.store.read(INDEX + "x")
        assert await other.zrange_by_score() == []
        await w.check()

    run(scenario())


def test_view_merges_head_and_journal() -> None:
    async def scenario() -> None:
        w = World()
        await w.record(w.ops(("add", "chat:old", 1), ("add", "chat:moved", 2)))
        await w.advance(w.settle_ms)
        assert await w.read_and_compact()
        assert w.head() == [Entry(1, "chat:old"), Entry(2, "chat:moved")]
        await w.advance(5)
        await w.record(w.ops(("add", "chat:new", 3), ("add", "chat:moved", 0)))
        # The head still holds the old state; the view merges the unfolded journal over it.
        assert w.head() == [Entry(1, "chat:old"), Entry(2, "chat:moved")]
        view = await w.read()
        assert view.unfolded == 2
        assert await view.zrange_by_score() == [
            Entry(0, "chat:moved"),
            Entry(1, "chat:old"),
            Entry(3, "chat:new"),
        ]
        assert await view.zcount(2, 2) == 0  # the moved member is no longer counted at 2
        await w.check()

    run(scenario())


@pytest.mark.parametrize("same_batch", [False, True], ids=["two-records", "one-batch"])
def test_ops_apply_in_version_order(same_batch: bool) -> None:
    async def scenario() -> None:
        w = World()
        # The clock does not move: versions made in the same millisecond still keep call order.
        steps: list[list[OpSpec]] = [
            [("add", "chat:gone", 5), ("rem", "chat:gone", 0)],
            [("rem", "chat:back", 0), ("add", "chat:back", 7)],
            [("add", "chat:moved", 1), ("add", "chat:moved", 3), ("add", "chat:moved", 2)],
        ]
        for specs in steps:
            if same_batch:
                await w.record(w.ops(*specs))
            else:
                for spec in specs:
                    await w.record(w.ops(spec))
        assert await w.live() == [Entry(2, "chat:moved"), Entry(7, "chat:back")]
        await w.check()

    run(scenario())


def test_journal_ops_override_the_head_in_both_directions() -> None:
    async def scenario() -> None:
        w = World()
        await w.record(w.ops(("add", "chat:a", 1), ("add", "chat:b", 2)))
        await w.advance(w.settle_ms)
        await w.read_and_compact()
        await w.advance(w.settle_ms)
        await w.read_and_compact()  # both entries now folded into the head
        assert w.head() == [Entry(1, "chat:a"), Entry(2, "chat:b")]
        await w.record(w.ops(("rem", "chat:a", 0), ("rem", "chat:b", 0), ("add", "chat:b", 9)))
        assert await w.live() == [Entry(9, "chat:b")]
        await w.check()

    run(scenario())


# -- compaction output -----------------------------------------------------------------------------


def test_compact_writes_the_sorted_head_array_stamped_with_the_read_time() -> None:
    async def scenario() -> None:
        w = World()
        await w.record(w.ops(("add", "chat:z", 5), ("add", "chat:a", 5), ("add", "chat:m", 1)))
        await w.record(w.ops(("add", "chat:x", 3), ("rem", "chat:m", 0), ("add", "chat:b", 5)))
        await w.advance(3)
        view = await w.read()
        await w.advance(1_234)  # the compaction finishes later than it read
        assert await w.compact(view)
        raw = w.kv.snapshot()[INDEX]
        assert json.loads(raw) == [
            {"score": 3, "member": "chat:x"},
            {"score": 5, "member": "chat:a"},
            {"score": 5, "member": "chat:b"},
            {"score": 5, "member": "chat:z"},
        ]
        assert all(list(item) == ["score", "member"] for item in json.loads(raw))
        # A first pass is a full one: ``at`` is its read time, ``v`` what it saw (rule 5),
        # ``nf`` the newest entry folded, ``j`` the oldest journal entry left.
        assert w.head_stamp() == {"at": view.read_ms, "v": view.read_ms - w.store.put_ms,
                                     "nf": START_MS, "j": START_MS}
        assert w.head() == w.expected()  # the exact live set, nothing pending left out

    run(scenario())


def test_a_compaction_with_nothing_to_do_does_not_write() -> None:
    async def scenario() -> None:
        w = World()
        await w.record(w.ops(("add", "chat:a", 1)))
        await w.advance(w.settle_ms)
        assert await w.read_and_compact()
        assert not await w.read_and_compact()  # same content, nothing newly folded
        assert w.head_stamp() == {"at": START_MS + w.settle_ms,
                                     "v": START_MS + w.settle_ms - w.store.put_ms,
                                     "nf": START_MS, "j": START_MS}

    run(scenario())


def test_a_big_batch_is_journaled_in_metadata_sized_pieces_and_round_trips() -> None:
    async def scenario() -> None:
        w = World()
        specs: list[OpSpec] = [("add", f"chat:m{n:03d}", n % 7) for n in range(500)]
        specs += [("rem", f"chat:m{n:03d}", 0) for n in range(0, 500, 5)]
        specs += [("add", "chat:m001", 99)]
        await w.record(w.ops(*specs))
        keys = w.journal_keys()
        assert len(keys) > 1
        pieces = [(w.kv.metadata_of(key) or {}).get("ops") for key in keys]
        assert all(pieces), "every piece rides in metadata: no reader reads a journal value"
        assert sum(len(p) for p in pieces if p) == len(specs)
        w.kv.reset_counters()
        assert len(await w.live()) == 400
        assert w.kv.reads == 1  # the root; the ops came with the listing
        await w.check()
        view = await w.read()
        await w.compact(view)
        assert stored_entries(w.kv, INDEX) == w.expected()  # head and segments together

    run(scenario())


# -- damaged heads ---------------------------------------------------------------------------------

DAMAGED_HEADS = {
    "not-json": "not json",
    "empty-string": "",
    "truncated": '[{"score": 1, "member": "chat:a"}',
    "object": '{"score": 1, "member": "chat:a"}',
    "null": "null",
    "number": "42",
    "string": '"chat:a"',
    "list-of-numbers": "[1, 2]",
    "list-of-null": "[null]",
    "list-of-lists": '[[1, "chat:a"]]',
    "missing-member": '[{"score": 1}]',
    "missing-score": '[{"member": "chat:a"}]',
    "text-score": '[{"score": "soon", "member": "chat:a"}]',
    "nan-score": '[{"score": NaN, "member": "chat:a"}]',
    "infinite-score": '[{"score": Infinity, "member": "chat:a"}]',
    "null-member": '[{"score": 1, "member": null}]',
    "numeric-member": '[{"score": 1, "member": 7}]',
    "fractional-score": '[{"score": 1.5, "member": "chat:a"}]',
    "deeply-nested": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("raw", list(DAMAGED_HEADS.values()), ids=list(DAMAGED_HEADS))
def test_a_damaged_head_is_treated_as_empty_and_rebuilt_from_the_journal(raw: str) -> None:
    async def scenario() -> None:
        w = World()
        await w.record(w.ops(("add", "chat:b", 2), ("add", "chat:c", 3)))
        await w.record(w.ops(("rem", "chat:c", 0)))
        # Someone else overwrote the head (no "at": nothing claims to be folded into it).
        await w.kv.put(INDEX, raw)
        assert await w.live() == [Entry(2, "chat:b")]
        assert await w.read_and_compact()
        assert w.head() == [Entry(2, "chat:b")]

    run(scenario())


# -- stale compactions -----------------------------------------------------------------------------


def test_a_compaction_that_read_too_long_ago_does_not_write() -> None:
    async def scenario() -> None:
        w = World()
        await w.record(w.ops(("add", "chat:a", 1)))
        stale = await w.read()
        await w.advance(10)
        await w.record(w.ops(("add", "chat:b", 2)))
        assert await w.read_and_compact()
        head_before = (w.kv.snapshot()[INDEX], w.head_metadata())
        await w.advance(MAX_COMPACTION_MS)  # 10 ms more than MAX_COMPACTION_MS since `stale`
        assert not await w.compact(stale)
        assert (w.kv.snapshot()[INDEX], w.head_metadata()) == head_before
        await w.check()

    run(scenario())


def test_a_compaction_exactly_at_the_limit_still_writes() -> None:
    async def scenario() -> None:
        w = World()
        await w.record(w.ops(("add", "chat:a", 1)))
        view = await w.read()
        await w.advance(MAX_COMPACTION_MS)
        assert await w.compact(view)
        assert w.head_stamp() == {"at": view.read_ms, "v": view.read_ms - w.store.put_ms,
                                     "nf": START_MS, "j": START_MS}

    run(scenario())


WRITERS = 6
ORDERS = {
    "reverse": list(range(WRITERS))[::-1],
    "forward": list(range(WRITERS)),
    "outside-in": [0, 5, 1, 4, 2, 3],
    "newest-then-oldest": [5, 0, 4, 1, 3, 2],
}


@pytest.mark.parametrize("reads_first", [False, True], ids=["record-then-read", "read-first"])
@pytest.mark.parametrize("order", list(ORDERS.values()), ids=list(ORDERS))
def test_concurrent_writers_with_stale_compactors_lose_nothing(
    order: list[int], reads_first: bool
) -> None:
    """N requests each record one message and compact; their compactions land out of order.

    Compacting in reverse order of reading makes every compaction after the first a stale one
    (read early, write late, still within MAX_COMPACTION_MS) that overwrites a newer head.
    """

    async def scenario() -> None:
        w = World()
        await w.record(w.ops(("add", "chat:seed", 0)))
        await w.advance(w.settle_ms + 1)
        await w.read_and_compact()
        # Unfolded in every view below, so that each of them has a head to write.
        await w.record(w.ops(("add", "chat:pending", 1)))
        views: list[IndexView] = []
        if reads_first:  # every view predates every write
            for _ in range(WRITERS):
                views.append(await w.read())
                await w.advance(7)
        for n in range(WRITERS):
            await w.record(w.ops(("add", f"chat:w{n}", 100 + n)))
            await w.check()
            await w.advance(3)
            if not reads_first:  # each view sees the writes before it
                views.append(await w.read())
            await w.advance(11)
        overwrites_of_a_newer_head = 0
        for n in order:
            await w.advance(1_000)  # all within MAX_COMPACTION_MS of the first read
            head_seen = (w.head_metadata() or {}).get("v", 0)
            assert await w.compact(views[n])
            if views[n].read_ms - w.store.put_ms < head_seen:
                overwrites_of_a_newer_head += 1
            await w.check()
        if order != sorted(order):
            assert overwrites_of_a_newer_head > 0, "the schedule did not exercise a stale write"
        # Long after, with compactions running, the head converges and the journal is collected.
        await drain(w)

    run(scenario())


async def drain(w: World, *, rounds: int | None = None) -> None:
    """Quiet period: every held put shows up, then compactions run far apart in time.

    The GC rule needs a root that folds the entries, read at least 2 * settle_ms +
    MAX_COMPACTION_MS after they were written; MAX_GC_DELETES per compaction. Enough rounds to
    collect everything.
    """
    await w.advance(w.settle_ms)
    for record in w.records:
        if record.held is not None:
            await w.release(record)
    limit = rounds if rounds is not None else 3 + len(w.journal_keys()) // MAX_GC_DELETES
    for _ in range(limit):
        await w.advance(w.settle_ms + MAX_COMPACTION_MS + 1)
        await w.read_and_compact()
        await w.check()
        if not w.journal_keys():
            break
    assert w.journal_keys() == [], "settled journal entries must be garbage-collected"
    assert stored_entries(w.kv, INDEX) == w.expected()
    # The head is the newest entries, in the seed's format.
    assert w.head() == w.expected()[len(w.expected()) - len(w.head()):]


def test_the_journal_is_collected_after_a_quiet_period() -> None:
    async def scenario() -> None:
        w = World()
        for n in range(100):
            await w.record(w.ops(("add", f"chat:m{n}", n)))
            await w.advance(50)
        await w.read_and_compact()
        assert len(w.journal_keys()) == 100
        await drain(w, rounds=3 + 100 // MAX_GC_DELETES)

    run(scenario())


def test_entries_journaled_before_versions_counted_down_are_still_read() -> None:
    """An index written by the previous release keeps ascending journal keys until they are
    collected; they list before every newer entry, so a newest-first walk must not stop there."""

    async def scenario() -> None:
        w = World()
        old = Op.add("chat:old", 1)
        await w.kv.put(f"{journal_prefix(INDEX)}{START_MS:013d}-000000abcdef0123",
                       json.dumps([old.to_json()]),
                       metadata={"t": START_MS, "ops": [old.to_json()]})
        w.records.append(Recorded([old], START_MS, visible_ms=START_MS))
        await w.advance(w.settle_ms * 3)
        await w.read_and_compact()  # a root from now on; the old entry is long confirmed
        await w.record(w.ops(("add", "chat:new", 2)))
        await w.check()
        assert [e.member for e in await w.live()] == ["chat:old", "chat:new"]
        await drain(w)

    run(scenario())


# -- slow journal puts (rule 5's put_ms) -----------------------------------------------------------


class SlowJournalKV(LaggingKV):
    """Journal puts that land, and return, only when the test opens ``gate``; or that each take
    ``put_delay_ms`` of the clock."""

    def __init__(self, inner: MemoryKV, clock: ManualClock) -> None:
        super().__init__(inner)
        self.clock = clock
        self.gate: asyncio.Event | None = None
        self.put_delay_ms = 0
        self.journal_puts = 0

    async def put(
        self, key: str, value: str, *, metadata: Metadata | None = None,
        expiration: int | None = None,
    ) -> None:
        if key.startswith(JOURNAL_PREFIX):
            self.journal_puts += 1
            self.clock.advance(self.put_delay_ms)
            if self.gate is not None:
                await self.gate.wait()
        await self.inner.put(key, value, metadata=metadata, expiration=expiration)


def test_a_journal_put_slower_than_put_ms_is_written_again_where_passes_list() -> None:
    """CI, two isolates on two busy cores: a create's journal put took 1.7 s (put_ms was 1 s).
    A pass that read meanwhile vouched for the entry's time without listing it, and a trusting
    reader missed the acknowledged message until the next full pass. The writer sees its put
    was slow and journals the ops again under a fresh key, which the pass has not vouched for."""

    async def scenario() -> None:
        clock = ManualClock()
        kv = SlowJournalKV(MemoryKV(clock=clock.seconds), clock)
        store = IndexStore(kv, clock, DEFAULT_SETTLE_MS, None, ObjectCache())
        await store.append(INDEX, [Op.add("chat:early", 1)])
        clock.advance(store.put_ms)
        assert await store.compact(await store.read(INDEX, trust=None, cap=False))
        await store.append(INDEX, [Op.add("chat:other", 3)])  # gives the next pass work

        kv.gate = asyncio.Event()
        appending = asyncio.ensure_future(store.append(INDEX, [Op.add("chat:late", 2)]))
        await asyncio.sleep(0)  # the put is under way, not yet listed
        clock.advance(store.put_ms + 1)
        view = await store.read(INDEX, trust=None, cap=False)  # a pass: it vouches for the put
        assert "chat:late" not in [e.member for e in await view.zrange_by_score()]
        assert await store.compact(view)
        kv.gate.set()
        await appending

        trusting = await store.read(INDEX)
        assert trusting.trusted
        assert [e.member for e in await trusting.zrange_by_score()] == [
            "chat:early", "chat:late", "chat:other"]
        assert kv.journal_puts == 4  # the late entry's slow put and its replay

    run(scenario())


def test_journal_puts_that_stay_slow_fail_the_write_before_it_is_acknowledged() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        kv = SlowJournalKV(MemoryKV(clock=clock.seconds), clock)
        store = IndexStore(kv, clock, SHORT_SETTLE_MS, None, ObjectCache())
        kv.put_delay_ms = store.put_ms + 1
        with pytest.raises(StorageUnavailable, match="longer than"):
            await store.append(INDEX, [Op.add("chat:a", 1)])
        assert kv.journal_puts == MAX_JOURNAL_ATTEMPTS
        kv.put_delay_ms = store.put_ms  # as slow as a put may be: written once
        await store.append(INDEX, [Op.add("chat:b", 2)])
        assert kv.journal_puts == MAX_JOURNAL_ATTEMPTS + 1

    run(scenario())


# -- KV operation costs ----------------------------------------------------------------------------


@pytest.mark.parametrize("journal_size", [1, 50, 500])
def test_kv_operation_counts_are_small_and_do_not_grow(journal_size: int) -> None:
    async def scenario() -> None:
        w = World(layout=Layout(head_max=1024, head_keep=256))  # no spill: that is tested below
        for n in range(journal_size):
            w.kv.reset_counters()
            await w.record(w.ops(("add", f"chat:m{n}", n)))
            assert (w.kv.writes, w.kv.ops) == (1, 1)  # one journal put
        await w.advance(w.store.put_ms)  # a pass vouches only for puts that long ago (rule 5)
        w.kv.reset_counters()
        view = await w.read()
        # The root and the listing, newest first: a small first page, then growing pages.
        pages = len(list_pages(journal_size))
        assert (w.kv.reads, w.kv.lists, w.kv.ops) == (1, pages, 1 + pages)
        w.kv.reset_counters()
        assert await w.compact(view)
        # The new head, once a read of its key shows that no root appeared meanwhile (this is
        # the index's first root; a pass over a view with a root writes without that read).
        assert (w.kv.writes, w.kv.reads, w.kv.ops) == (1, 1, 2)
        w.kv.reset_counters()
        await w.read()
        assert w.kv.ops == 2  # a big head, and a journal already folded, cost nothing more

    run(scenario())


def list_pages(keys: int, needed: int | None = None) -> list[int]:
    """The page sizes a walk lists over a journal of ``keys`` keys (the last page may be
    partial), stopping once it holds its ``needed``-th key."""
    pages: list[int] = []
    limit = FIRST_PAGE
    while True:
        pages.append(min(keys, limit))
        keys -= limit
        if keys <= 0 or (needed is not None and sum(pages) >= needed):
            return pages  # KV says the listing is complete on a page that is not full
        limit = min(1_000, limit * PAGE_GROWTH)


def count_listed(kv: MemoryKV) -> list[int]:
    """The number of keys of every listing page ``kv`` answers from now on."""
    listed: list[int] = []
    list_page = kv.list

    async def counting(**options: Any) -> ListPage:
        page = await list_page(**options)
        listed.append(len(page.keys))
        return page

    kv.list = counting  # type: ignore[method-assign]
    return listed


def test_a_read_gets_the_root_while_it_lists_the_journal() -> None:
    """One round trip, not two: the root's get and the journal's first page are in flight
    together (here the get answers only once the listing has begun), and the view is the
    same as a read one after the other gives."""

    async def scenario() -> None:
        w = World()
        await w.record(w.ops(("add", "chat:a", 1)))
        await w.advance(w.store.put_ms)
        assert await w.read_and_compact()
        await w.record(w.ops(("add", "chat:b", 2)))
        listing = asyncio.Event()
        get_root, list_page = w.lagging.get_with_metadata, w.lagging.list

        async def noting_the_listing(**options: Any) -> ListPage:
            listing.set()
            return await list_page(**options)

        async def root_once_listing(key: str) -> ValueWithMetadata | None:
            await asyncio.wait_for(listing.wait(), timeout=1)
            return await get_root(key)

        w.lagging.list = noting_the_listing  # type: ignore[method-assign]
        w.lagging.get_with_metadata = root_once_listing  # type: ignore[method-assign]
        view = await w.read()
        assert [e.member for e in await view.zrange_by_score(0)] == ["chat:a", "chat:b"]
        assert view.root.at > 0 and [j.ops for j in view.journal] == [tuple(w.records[1].ops)]

    run(scenario())


def test_a_pass_due_to_list_deep_asks_first_for_what_the_last_deep_walk_needed() -> None:
    """The first page is listed before the root arrives, so its size follows the root this
    isolate read last: a pass that the last root says must list down to the confirmed
    horizon (a full pass) starts with the last full walk's size, a reader that may trust the
    root with its own (small) one. Only the cost depends on the guess."""

    async def scenario() -> None:
        w = World()
        await w.record_adds(range(300))
        await w.advance(w.store.put_ms)
        assert await w.compact(await w.store.read(INDEX, trust=False, cap=False))
        listed = count_listed(w.kv)
        await w.read()  # trusting: the folded entries below the root's vouched time end it
        assert listed == [FIRST_PAGE]
        listed.clear()
        await w.read()
        assert listed == [MIN_FIRST_PAGE]
        await w.advance(w.store.full_pass_ms)  # the next pass of this index is a full one
        listed.clear()
        view = await w.store.read(INDEX, trust=None, cap=False)
        assert view.full
        assert len(listed) == 1 and listed[0] == 300, "one page, sized by the last full walk"

    run(scenario())


def test_a_reader_one_page_short_lists_a_few_hundred_keys_not_a_thousand() -> None:
    """A busy journal (written faster than passes collect it) holds thousands of entries; a
    reader that needs a few more than the first page held must not pull KV's largest page of
    keys (each with its ops) to get them."""

    async def scenario() -> None:
        w = World()
        await w.record_adds(range(1_900))
        await w.advance(w.store.put_ms)  # a pass vouches only for puts that long ago (rule 5)
        assert await w.read_and_compact()
        # Written after the pass: a trusting reader needs them.
        await w.record_adds(range(1_900, 2_000))
        listed = count_listed(w.kv)
        view = await w.read()
        assert len(view.journal) > FIRST_PAGE  # the first page was short
        assert listed == list_pages(2_000, needed=len(view.journal) + 1)  # the 101st ends it
        assert max(listed) < 1_000
        assert sorted(e.member for e in await view.zrange_by_score(0)) == sorted(
            f"chat:m{n:05d}" for n in range(2_000))

    run(scenario())


def test_a_reader_asks_first_for_what_its_last_walk_of_the_index_needed() -> None:
    """The first page's size follows the index: under a steady burst one listing holds what a
    reader needs; on a quiet index (a journal of folded entries waiting for collection) a
    reader lists a handful of keys, not a page of ops it will not apply."""

    async def scenario() -> None:
        w = World()
        await w.record_adds(range(600))
        await w.advance(w.store.put_ms)
        assert await w.read_and_compact()
        await w.record_adds(range(600, 700))
        listed = count_listed(w.kv)
        assert len((await w.read()).journal) == 100
        assert listed == list_pages(700, needed=101)
        listed.clear()
        view = await w.read()  # the same walk again: one page of what it took, and half again
        assert listed == [101 + 50]
        assert len(view.journal) == 100
        await w.advance(w.store.put_ms)
        assert await w.compact(await w.store.read(INDEX, trust=False, cap=False))  # full pass
        listed.clear()
        assert (await w.read()).journal == []  # only the first key, a folded one, is needed
        assert listed == [151]
        listed.clear()
        quiet = await w.read()
        assert listed == [MIN_FIRST_PAGE]  # of a journal still 700 keys long
        assert quiet.journal == []
        assert len(await quiet.zrange_by_score(0)) == 700

    run(scenario())


def count_lookups(monkeypatch: pytest.MonkeyPatch) -> list[Entry]:
    """Every position a view looks up the container of, from now on."""
    seen: list[Entry] = []
    container_of = IndexView.container_of

    async def counting(view: IndexView, position: Entry) -> Any:
        seen.append(position)
        return await container_of(view, position)

    monkeypatch.setattr(IndexView, "container_of", counting)
    return seen


def test_a_full_pass_does_not_recheck_what_this_isolate_folded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After an import, every full pass of the next settle time lists the import again. The
    isolate that wrote the root knows those entries are in it (pass id ``i``): it looks up
    only the members of entries it has not seen folded."""

    async def scenario() -> None:
        w = World(layout=Layout(head_max=64, head_keep=32, segment_max=256))
        await w.record([Op.add(f"chat:m{n:04d}", n) for n in range(2_000)])
        await w.advance(w.store.put_ms)
        assert await w.read_and_compact()
        await w.advance(w.store.full_pass_ms)
        await w.record([Op.add("chat:late", 5_000)])
        lookups = count_lookups(monkeypatch)
        view = await w.store.read(INDEX, trust=False, cap=False)
        assert view.full and view.unfolded == 2_001
        assert await w.compact(view)
        assert {p.member for p in lookups} == {"chat:late"}
        await w.check()

    run(scenario())


def test_a_root_written_elsewhere_is_checked_in_full() -> None:
    """What an isolate knows is about the root its pass wrote: once another writer replaces
    that root (here a stale compactor whose root lacks a member), the next pass checks
    every listed member again and folds the missing one back."""

    async def scenario() -> None:
        w = World()
        await w.record(w.ops(("add", "chat:a", 1), ("add", "chat:b", 2)))
        await w.advance(w.store.put_ms)
        assert await w.read_and_compact()
        stamp = dict(w.head_metadata() or {})
        stamp["i"] = "0ther0ne"
        await w.kv.put(INDEX, json.dumps([{"score": 2, "member": "chat:b"}]), metadata=stamp)
        await w.advance(w.store.full_pass_ms)
        assert await w.read_and_compact()
        assert w.head() == [Entry(1, "chat:a"), Entry(2, "chat:b")]

    run(scenario())


def test_a_read_after_a_burst_lists_only_what_the_last_pass_did_not_see() -> None:
    """Rule 5: once a pass has folded a burst, a reader lists one small page, however many
    journal entries the burst left (they stay until collected, 2 * settle_ms later)."""

    async def scenario() -> None:
        w = World()
        for n in range(3_000):
            await w.record(w.ops(("add", f"chat:m{n}", n)))
        await w.advance(w.store.put_ms)  # a pass vouches only for puts that long ago
        assert await w.read_and_compact()
        await w.advance(1)
        await w.record(w.ops(("add", "chat:new", 5)))
        w.kv.reset_counters()
        view = await w.read()
        assert (w.kv.reads, w.kv.lists) == (1, 1)
        assert view.unfolded == 1 and view.trusted
        assert await view.zcount() == 3_001
        await w.check()

    run(scenario())


def test_a_reader_applies_at_most_max_read_entries_and_says_so() -> None:
    async def scenario() -> None:
        w = World()
        for n in range(MAX_READ_ENTRIES + 5):
            await w.record(w.ops(("add", f"chat:m{n}", n)))
        view = await w.read()
        assert view.truncated and view.unfolded == MAX_READ_ENTRIES
        # The newest ones, which a newest-first page shows.
        assert (await view.zrange_by_score(rev=True, limit=1))[0].member == (
            f"chat:m{MAX_READ_ENTRIES + 4}")
        # A compaction does not trust a capped view: it folds everything.
        assert await w.compact(view)
        await w.check()

    run(scenario())


def test_kv_operation_counts_for_a_big_batch_and_for_garbage_collection() -> None:
    async def scenario() -> None:
        w = World()
        w.kv.reset_counters()
        await w.record(w.ops(*(("add", f"chat:m{n:03d}", n) for n in range(500))))
        pieces = w.kv.ops
        assert pieces == len(w.journal_keys()) > 1  # metadata-sized pieces, written at once
        w.kv.reset_counters()
        view = await w.read()
        assert (w.kv.reads, w.kv.lists, w.kv.ops) == (1, 1, 2)  # no journal value read
        assert view.unfolded == 500
        for n in range(MAX_GC_DELETES + 100):
            await w.record(w.ops(("add", f"chat:s{n}", n)))
        await w.advance(w.settle_ms + 1)
        await w.compact(await w.read())
        await w.advance(w.store.collection_delay_ms + 1)
        view = await w.read()
        w.kv.reset_counters()
        await w.compact(view)  # a full pass whose root folds everything: a collection round
        assert w.kv.deletes == MAX_GC_DELETES
        assert w.kv.ops <= 2 + 2 + 1 + MAX_GC_DELETES  # root + listings + head + deletes

    run(scenario())


def test_the_journal_stays_bounded_under_sustained_writes() -> None:
    """A busy index: one write per second for 20 minutes, each followed by its compaction.

    Entries older than 2 * settle_ms + MAX_COMPACTION_MS can no longer be needed by anyone, so
    the journal should stay around that many seconds of writes (plus GC batching slack), and a
    read should stay one root read plus one listing. (50 members moving around keep the head
    small, so the test is fast; the journal still gets one entry per write.)
    """

    async def scenario() -> None:
        w = World()
        for n in range(1_200):
            await w.advance(1_000)
            await w.record(w.ops(("add", f"chat:m{n % 50}", n)))
            await w.read_and_compact()
        window = w.store.collection_delay_ms // 1_000
        assert len(w.journal_keys()) <= window + MAX_GC_DELETES, (
            f"{len(w.journal_keys())} journal keys after an hour of writes: never collected"
        )
        w.kv.reset_counters()
        await w.read()
        assert w.kv.ops == 2

    run(scenario())


def test_a_busy_journal_is_collected_by_listing_only_its_due_part() -> None:
    """At 10 writes/s the journal holds ``collection_delay_ms`` of writes (over 2,500 keys).
    Collection lists the versions of the due few seconds, not the whole journal, and still
    deletes every settled entry, also one whose put was listed late (older than the oldest
    entry a previous collection found)."""

    async def scenario() -> None:
        w = World()
        listed_by_prefix: list[int] = []
        listing = w.kv.list

        async def counting_list(**kwargs: Any) -> ListPage:
            page = await listing(**kwargs)
            if len(kwargs.get("prefix", "")) > len(journal_prefix(INDEX)):
                listed_by_prefix.append(len(page.keys))  # only collection lists a sub-prefix
            return page

        w.kv.list = counting_list  # type: ignore[method-assign]
        lagged_at = 150_000
        for n in range(4_000):
            await w.advance(100)
            # New members only (no prev to look up): w.ops would replay every record each time.
            await w.record([Op.add(f"chat:m{n}", n)], lagged=n * 100 == lagged_at)
            if n % 10 == 0:
                await w.read_and_compact()
            if n % 500 == 0:
                await w.check(converge=False)
        assert listed_by_prefix, "a busy index is collected by version prefixes"
        journal = len(w.journal_keys())
        assert journal >= w.store.collection_delay_ms // 100  # a long journal...
        assert max(listed_by_prefix) <= 2 * 10_000 // 100  # ...of which a round lists ~10 s
        await drain(w)
        # Collection found the journal empty, so a quiet index wants no more passes.
        await w.advance(w.store.collection_delay_ms)
        await w.read_and_compact()
        assert "j" not in (w.kv.metadata_of(INDEX) or {})
        assert not w.store.wants_compaction(await w.read())

    run(scenario())


# -- prev is a hint --------------------------------------------------------------------------------


def test_zcount_agrees_with_zrange_when_prev_is_unknown() -> None:
    # Op.prev is documented as known only sometimes; a remove without it must still be counted.
    # (Fails on 28a1853, where zcount subtracted only at the ops' own positions.)
    async def scenario() -> None:
        w = World()
        await w.record([Op.add("chat:a", 5)])
        await w.advance(w.settle_ms + 1)
        await w.read_and_compact()
        await w.record([Op.rem("chat:a")])  # prev unknown
        view = await w.read()
        assert await view.zrange_by_score() == []
        assert await view.zcount() == 0

    run(scenario())


def test_zcount_agrees_with_zrange_when_two_writers_send_the_same_stale_prev() -> None:
    """Two concurrent moves of one message that lives in a segment, both computed from the
    message as it was (prev=10): the first gets folded into a segment, the second is listed
    late. While the second is unfolded, nothing tells zcount where the first one put the
    member (its own position, 11, is neither the second op's prev nor in the head).
    """

    async def scenario() -> None:
        w = World(DEFAULT_SETTLE_MS, TINY_LAYOUT)
        for n in range(10):
            await w.record(w.ops(("add", f"chat:m{n}", 10 * n)))
        await w.advance(w.settle_ms + 1)
        await w.read_and_compact()
        assert Entry(10, "chat:m1") not in w.head(), "chat:m1 must live in a segment"
        await w.record([Op.add("chat:m1", 11, prev=10)])
        await w.advance(1)
        await w.record([Op.add("chat:m1", 12, prev=10)], lagged=True)  # the same, stale, prev
        await w.advance(w.settle_ms - 1)
        await w.read_and_compact()  # folds the first move into the segment: chat:m1 at 11
        await w.advance(1)  # the second move shows up, unfolded
        # Listed down to the confirmed horizon (a reader trusting the fresh root may show the
        # first move only, until the next full pass: rule 5; it then counts that state).
        trusting = await w.read()
        assert await trusting.zcount() == len(await trusting.zrange_by_score()) == 10
        view = await w.store.read(INDEX, trust=False)
        live = await view.zrange_by_score()
        assert Entry(12, "chat:m1") in live and len(live) == 10
        assert await view.zcount(11, 12) == 1
        assert await view.zcount() == 10

    run(scenario())


# -- regression scenarios: lost writes through journal GC ------------------------------------------
#
# Both were found by the random schedules below against 28a1853, whose rule 3 deleted a journal
# entry once the root *read* was older than now - (MAX_COMPACTION_MS + settle_ms). They pass
# since 5b626f5 (rule 3 measured from the entry's age and the view's read time).


def test_gc_by_a_stale_view_does_not_lose_a_lagging_write() -> None:
    """Default settle_ms, and a compaction whose view is older than MAX_COMPACTION_MS.

    1. x is journaled and folded into a first root; m is journaled but its put is not listed
       yet (< settle_ms).
    2. Request A reads (sees x, not m).
    3. m shows up; B reads and compacts: head {x, m}, at = B's read, folding m.
    4. C reads that head; its compaction will be late.
    5. A compacts within MAX_COMPACTION_MS of its read: head {x}, at = A's read (m unfolded,
       still served from the journal, fine so far).
    6. C compacts more than MAX_COMPACTION_MS after its read: it must not write, and it must not
       delete m's entry either: the head it read (folding m) is no longer the head.
    """

    async def scenario() -> None:
        w = World(DEFAULT_SETTLE_MS)
        await w.record(w.ops(("add", "chat:x", 1)))
        # A first root: a pass over "no root" would not overwrite B's below (it re-reads first).
        assert await w.read_and_compact()
        await w.advance(100)
        await w.record(w.ops(("add", "chat:m", 2)), lagged=True)
        await w.advance(w.settle_ms - 100)
        a = await w.read()  # does not list m yet: within settle_ms of its write
        await w.advance(100)  # m is now settle_ms old, so it shows up
        b = await w.read()
        assert await w.compact(b)
        await w.advance(10)
        c = await w.read()
        await w.advance(MAX_COMPACTION_MS - 120)
        assert await w.compact(a)  # on time: overwrites B's newer head with an older one
        await w.check()
        await w.advance(w.settle_ms + MAX_COMPACTION_MS)
        assert not await w.compact(c)  # too late to write: may it still garbage-collect?
        await w.check()

    run(scenario())


def test_settle_shorter_than_max_compaction_keeps_writes_with_timely_compactions() -> None:
    """settle_ms < MAX_COMPACTION_MS, every compaction on time, every put listed at once.

    A (read before m) overwrites the head folding m with an older one; C, which read the newer
    head, compacts on time once that head is MAX_COMPACTION_MS + settle_ms old: it must not
    delete m's entry, which the current head does not hold.
    """

    async def scenario() -> None:
        w = World(SHORT_SETTLE_MS)
        await w.record(w.ops(("add", "chat:x", 1)))
        # A first root: a pass over "no root" would not overwrite the newer one below. A reads
        # once that root is past its trust window, so its view is a full one.
        assert await w.read_and_compact()
        await w.advance(w.store.trust_ms + 100)
        a = await w.read()  # before m exists
        await w.advance(300)
        await w.record(w.ops(("add", "chat:m", 2)))
        await w.advance(1_500)
        assert await w.read_and_compact()  # head {x, m}, folding m
        await w.advance(8_000)
        c = await w.read()
        await w.advance(50)
        assert await w.compact(a)  # within MAX_COMPACTION_MS: head {x}, m unfolded again
        await w.check()
        await w.advance(3_000)
        await w.compact(c)  # within MAX_COMPACTION_MS too, and its head's "at" is old
        await w.check()

    run(scenario())


# -- random concurrent requests --------------------------------------------------------------------
#
# Overlapping requests: each records a batch (or records nothing and only reads), reads the index
# and compacts what it read, each phase after a random delay. A compaction scheduled long after
# its read is a stale compactor; delays around settle_ms and MAX_COMPACTION_MS probe the rules'
# boundaries, and "huge" gaps let garbage collection act. A lagging record's put is listed only
# when released, at most settle_ms after it was written.

Delay = tuple[Literal["now", "tick", "settle", "late", "max", "huge"], int]


@dataclass(frozen=True)
class Request:
    gap: Delay  # after the previous request started
    specs: tuple[OpSpec, ...]  # empty: a request that only reads (and compacts)
    lagged: bool
    read_delay: Delay  # after its record
    compact_delay: Delay  # after its read


def delays(*scales: str) -> st.SearchStrategy[Delay]:
    return st.tuples(st.sampled_from(scales), st.integers(0, 1_000))


op_specs = st.tuples(
    st.sampled_from(["add", "add", "rem"]),
    st.sampled_from([f"chat:m{n}" for n in range(6)]),
    st.integers(0, 3),  # few scores: ties everywhere
)


def requests(compact_scales: tuple[str, ...]) -> st.SearchStrategy[list[Request]]:
    return st.lists(
        st.builds(
            Request,
            delays("now", "tick", "tick", "settle", "max", "huge"),
            st.lists(op_specs, max_size=2).map(tuple),
            st.integers(0, 3).map(lambda n: n == 0),
            delays("now", "tick", "tick", "settle"),
            delays(*compact_scales),
        ),
        min_size=1,
        max_size=12,
    )


def delay_ms(delay: Delay, settle_ms: int) -> int:
    scale, n = delay
    if scale == "now":
        return 0
    if scale == "tick":
        return n
    if scale == "settle":  # around the settle_ms boundary
        return max(0, settle_ms - 500 + n)
    if scale == "late":  # close to MAX_COMPACTION_MS, never past it
        return MAX_COMPACTION_MS - n
    if scale == "max":  # around the MAX_COMPACTION_MS boundary
        return MAX_COMPACTION_MS - 500 + n
    return settle_ms + MAX_COMPACTION_MS + 1 + 37 * n  # far enough for GC to act


async def compact_and_check_rules(w: World, view: IndexView) -> None:
    """Compact ``view`` now, and check that the module's rules 2 and 3 held while doing so."""
    now = w.clock.now_ms
    head_before = (w.kv.snapshot().get(INDEX), w.head_metadata())
    journal_before = set(w.journal_keys())
    merged = await view.zrange_by_score()
    wrote = await w.compact(view)
    stale = now - view.read_ms > MAX_COMPACTION_MS
    note(f"+{now - START_MS} ms: compact the view read at +{view.read_ms - START_MS} "
         f"(its head's at: +{view.root.at - START_MS}): wrote={wrote}, stale={stale}")
    if stale:  # rule 2: a compaction that read too long ago must not write
        event("a stale compaction")
        assert not wrote
        assert (w.kv.snapshot().get(INDEX), w.head_metadata()) == head_before
    if wrote:
        # A pass claims what it listed up to its read time less put_ms (rule 5); the view may
        # have been read again as a full pass, now.
        seen = (w.head_metadata() or {}).get("v")
        assert seen in (view.read_ms - w.store.put_ms, now - w.store.put_ms)
        if w.layout is None and view.full:
            assert w.head() == merged
    deleted = journal_before - set(w.journal_keys())
    if deleted:  # rule 3: only entries folded into the root read, once they are old enough
        event("journal entries garbage-collected during the schedule")
        assert len(deleted) <= MAX_GC_DELETES
        root_at = max(view.root.at, (head_before[1] or {}).get("at", 0))
        for key in deleted:
            written = w.kv_written_ms(key)
            assert written + w.settle_ms <= root_at
            assert written <= now - w.store.collection_delay_ms


async def run_requests(batch: list[Request], settle_ms: int, layout: Layout | None) -> None:
    w = World(settle_ms, layout)
    # (time, request, phase): a request's phases keep their order; ties go to earlier requests.
    events: list[tuple[int, int, int]] = []
    start = w.clock.now_ms
    for i, request in enumerate(batch):
        start += delay_ms(request.gap, settle_ms)
        read_at = start + delay_ms(request.read_delay, settle_ms)
        compact_at = read_at + delay_ms(request.compact_delay, settle_ms)
        events += [(start, i, 0), (read_at, i, 1), (compact_at, i, 2)]
    views: dict[int, IndexView] = {}
    for at, i, phase in sorted(events):
        await w.advance(at - w.clock.now_ms)
        request = batch[i]
        if phase == 0 and request.specs:
            note(f"+{at - START_MS} ms: request {i} records {request.specs}"
                 f"{' (lagging)' if request.lagged else ''}")
            await w.record(w.ops(*request.specs), lagged=request.lagged)
        elif phase == 1:
            note(f"+{at - START_MS} ms: request {i} reads")
            views[i] = await w.read()
        elif phase == 2:
            await compact_and_check_rules(w, views.pop(i))
        # zcount relies on the ops' prev hints, which concurrent writers can send stale
        # (test_zcount_agrees_with_zrange_when_two_writers_send_the_same_stale_prev), and World
        # computes prev from all records, visible or not: so counts are checked without lag.
        # For the same reason the stored structure can only converge once the write whose prev
        # names the member's stored position is visible (a later op's prev names the position
        # that write moved it to): until then the merged view hides the stale copy, and once
        # everything is visible, ``drain`` requires convergence.
        await w.check(counts=not any(r.lagged for r in w.records),
                      converge=all(r.held is None for r in w.records))
    await drain(w)


SETTLES = pytest.mark.parametrize(
    "settle_ms", [SHORT_SETTLE_MS, DEFAULT_SETTLE_MS], ids=["settle-1s", "settle-120s"]
)
LAYOUTS = pytest.mark.parametrize("layout", [None, TINY_LAYOUT], ids=["one-head", "segmented"])


@SETTLES
@LAYOUTS
@settings(max_examples=400, deadline=None)
@given(batch=requests(("now", "tick", "max", "huge")))
def test_random_concurrent_requests_never_lose_a_write(
    batch: list[Request], settle_ms: int, layout: Layout | None
) -> None:
    """Any overlap of requests, stale compactors included, must keep every write visible."""
    run(run_requests(batch, settle_ms, layout))


@LAYOUTS
@settings(max_examples=400, deadline=None)
@given(batch=requests(("now", "tick", "tick", "late")))
def test_random_concurrent_requests_with_timely_compactions_never_lose_a_write(
    batch: list[Request], layout: Layout | None
) -> None:
    """The same with every compaction within MAX_COMPACTION_MS of its read and the default
    settle_ms (longer than MAX_COMPACTION_MS): the plainest case the module's argument covers,
    so a failure here and not above points away from stale compactors.
    """
    run(run_requests(batch, DEFAULT_SETTLE_MS, layout))


class MissingRootKV(LaggingKV):
    """Answers the next read of the index root as if there were none (a cached miss at the
    edge; the local simulator's get racing an overwrite from another process)."""

    def __init__(self, inner: MemoryKV) -> None:
        super().__init__(inner)
        self.miss_next_root = False

    async def get_with_metadata(self, key: str) -> ValueWithMetadata | None:
        if key == INDEX and self.miss_next_root:
            self.miss_next_root = False
            return None
        return await self.inner.get_with_metadata(key)


def test_a_pass_that_missed_an_existing_root_does_not_replace_it() -> None:
    """Entries folded long ago are no longer in the journal: a pass that read "no root" folds
    the journal alone, and writing that would drop them all."""

    async def scenario() -> None:
        w = World(settle_ms=SHORT_SETTLE_MS)
        kv = MissingRootKV(w.kv)
        w.lagging = kv
        w.store = IndexStore(kv, w.clock, SHORT_SETTLE_MS, None, ObjectCache())
        await w.record(w.ops(("add", "chat:old1", 1), ("add", "chat:old2", 2)))
        for _ in range(4):  # fold, confirm, then collect the journal (rule 3)
            await w.advance(w.store.collection_delay_ms)
            await w.read_and_compact()
        assert w.journal_keys() == [] and [e.member for e in w.head()] == ["chat:old1",
                                                                           "chat:old2"]
        await w.record(w.ops(("add", "chat:new", 3)))
        kv.miss_next_root = True
        view = await w.read()
        assert view.root.absent and [e.member for e in await view.zrange_by_score()] == [
            "chat:new"]
        assert not await w.compact(view)
        assert [e.member for e in w.head()] == ["chat:old1", "chat:old2"]
        await w.advance(SHORT_SETTLE_MS)
        await w.read_and_compact()
        assert [e.member for e in await w.live()] == ["chat:old1", "chat:old2", "chat:new"]
        await w.check()

    run(scenario())
