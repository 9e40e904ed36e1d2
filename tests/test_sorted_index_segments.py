"""The segmented index behaves like one Redis sorted set, whatever its layout on KV.

A tiny ``Layout`` makes the head spill, segments split, empty out and get rewritten after a
handful of ops, so random programs exercise every structural path. The model is a dict.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from memory_kv import MemoryKV
from sorted_index import (
    JOURNAL_PREFIX,
    MANIFEST_PREFIX,
    MAX_COMPACTION_MS,
    SEGMENT_PREFIX,
    IndexStore,
    IndexView,
    Layout,
    Op,
)
from sortedset import Entry

INDEX = "user:chat:u1"
SETTLE_MS = 1_000
TINY = Layout(head_max=4, head_keep=2, segment_max=3)


@dataclass
class Clock:
    now_ms: int = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now_ms


@dataclass
class Harness:
    clock: Clock = field(default_factory=Clock)
    model: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kv = MemoryKV(clock=lambda: self.clock.now_ms / 1000)
        self.store = IndexStore(self.kv, self.clock, SETTLE_MS, TINY)

    async def apply(self, op: Op) -> None:
        await self.store.record(INDEX, [op])
        if op.kind == "add" and op.score is not None:
            self.model[op.member] = op.score
        else:
            self.model.pop(op.member, None)

    def expected(self, lo: int, hi: int, rev: bool) -> list[Entry]:
        entries = sorted(Entry(s, m) for m, s in self.model.items() if lo <= s <= hi)
        return entries[::-1] if rev else entries

    async def check(self, lo: int, hi: int, page: int) -> None:
        view = await self.store.read(INDEX)
        assert await view.zcount(lo, hi) == len(self.expected(lo, hi, False))
        for rev in (False, True):
            assert await view.zrange_by_score(lo, hi, rev=rev) == self.expected(lo, hi, rev)
            walked: list[Entry] = []
            after = None
            while True:
                got = await view.zrange_by_score(lo, hi, rev=rev, limit=page, after=after)
                if not got:
                    break
                walked += got
                after = got[-1]
            assert walked == self.expected(lo, hi, rev)


# A program: (op kind, member number, score, then: 0 nothing / 1 compact / 2 advance clock /
# 3 read a view now but compact it later / 4 compact the oldest such stale view now).
steps = st.lists(
    st.tuples(
        st.sampled_from(["add", "add", "add", "rem"]),
        st.integers(0, 11),
        st.integers(0, 9),
        st.sampled_from([0, 1, 1, 2, 3, 4, 4]),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(program=steps, lo=st.integers(0, 9), span=st.integers(0, 9), page=st.integers(1, 4))
def test_segmented_index_matches_a_sorted_set_model(
    program: list[tuple[str, int, int, int]], lo: int, span: int, page: int
) -> None:
    async def run() -> None:
        h = Harness()
        stale: list[IndexView] = []
        for kind, n, score, then in program:
            member = f"chat:m{n}"
            prev = h.model.get(member)
            op = Op.add(member, score, prev) if kind == "add" else Op.rem(member, prev)
            await h.apply(op)
            if then == 1:
                await h.store.compact(await h.store.read(INDEX))
            if then == 3:
                stale.append(await h.store.read(INDEX))
            if then == 4 and stale:
                # A slow request: its snapshot predates writes (and maybe newer roots).
                await h.store.compact(stale.pop(0))
            if then == 2:
                h.clock.now_ms += 3 * SETTLE_MS + MAX_COMPACTION_MS
            h.clock.now_ms += 7
            await h.check(lo, min(9, lo + span), page)
        # Converged: after the journal settles, a compaction leaves an exact, self-contained root.
        h.clock.now_ms += 3 * SETTLE_MS + MAX_COMPACTION_MS
        await h.store.compact(await h.store.read(INDEX))
        h.clock.now_ms += 3 * SETTLE_MS + MAX_COMPACTION_MS
        await h.store.compact(await h.store.read(INDEX))
        await h.check(0, 9, page)
        await assert_layout_is_tidy(h)

    asyncio.run(run())


async def assert_layout_is_tidy(h: Harness, hi: int = 9) -> None:
    """Stored structure alone (no journal) equals the model, within the layout's bounds."""
    snapshot = h.kv.snapshot()
    meta = h.kv.metadata_of(INDEX) if INDEX in snapshot else {}
    head = json.loads(snapshot.get(INDEX, "[]"))
    assert len(head) <= TINY.head_max
    stored: list[Entry] = []
    if meta and "m" in meta:
        manifest = json.loads(snapshot[meta["m"]])
        for key, *_rest, count, _lo, _hi in manifest["segments"]:
            segment = json.loads(snapshot[key])
            assert 0 < len(segment) <= TINY.segment_max
            assert len(segment) == count
            stored += [Entry(e["score"], e["member"]) for e in segment]
    stored += [Entry(e["score"], e["member"]) for e in head]
    assert stored == sorted(stored), "containers must be in order and not overlap"
    assert sorted(stored) == h.expected(0, hi, False)


def test_head_keeps_the_newest_entries_in_the_seed_format() -> None:
    async def run() -> None:
        h = Harness()
        for n in range(10):
            await h.apply(Op.add(f"chat:m{n}", 100 + n))
            await h.store.compact(await h.store.read(INDEX))
        head = json.loads(h.kv.snapshot()[INDEX])
        assert [e["member"] for e in head] == [f"chat:m{n}" for n in range(8, 10)] or len(
            head
        ) <= TINY.head_max
        assert head == sorted(head, key=lambda e: (e["score"], e["member"]))
        assert head[-1] == {"score": 109, "member": "chat:m9"}

    asyncio.run(run())


def test_old_objects_are_garbage_collected_eventually() -> None:
    async def run() -> None:
        h = Harness()
        for round_ in range(6):
            for n in range(8):
                await h.apply(Op.add(f"chat:r{round_}m{n}", round_ * 10 + n))
            h.clock.now_ms += 3 * SETTLE_MS + MAX_COMPACTION_MS
            await h.store.compact(await h.store.read(INDEX))
        for _ in range(4):
            h.clock.now_ms += 3 * SETTLE_MS + MAX_COMPACTION_MS
            await h.apply(Op.add("chat:tick", 999))
            await h.store.compact(await h.store.read(INDEX))
        snapshot = h.kv.snapshot()
        meta = h.kv.metadata_of(INDEX) or {}
        manifest = json.loads(snapshot[meta["m"]])
        live = {s[0] for s in manifest["segments"]} | {meta["m"]}
        stored = {k for k in snapshot if k.startswith((SEGMENT_PREFIX, MANIFEST_PREFIX))}
        pending = {g[0] for g in manifest["garbage"]}
        assert stored - live <= pending, "every unreferenced object is scheduled for deletion"
        assert len(stored - live) <= 8, "garbage does not pile up"
        journal = [k for k in snapshot if k.startswith(JOURNAL_PREFIX)]
        assert len(journal) <= 2, "settled journal entries are deleted"
        await h.check(0, 999, 3)

    asyncio.run(run())


def test_a_compaction_reads_no_journal_value_its_view_already_read() -> None:
    """Ops too big for KV metadata live only in the value: the read fetches them once, and the
    compaction of that view must reuse them rather than fetch them again."""

    async def run() -> None:
        h = Harness()
        await h.store.record(INDEX, [Op.add(f"chat:m{n:03d}", n) for n in range(300)])
        journal_key = next(k for k in h.kv.snapshot() if k.startswith(JOURNAL_PREFIX))
        assert "ops" not in (h.kv.metadata_of(journal_key) or {})  # value-only entry
        view = await h.store.read(INDEX)
        gets: list[str] = []
        original_get = h.kv.get

        async def counting_get(key: str) -> str | None:
            gets.append(key)
            return await original_get(key)

        h.kv.get = counting_get  # type: ignore[method-assign]
        assert await h.store.compact(view)
        assert journal_key not in gets
        h.model.update({f"chat:m{n:03d}": n for n in range(300)})
        await h.check(0, 299, 50)

    asyncio.run(run())


def test_a_head_only_compaction_does_not_read_the_manifest() -> None:
    """Appends at the newest end change only the head: the compaction that folds them must not
    pay a manifest read (it grows with history), yet the layout stays exact."""

    async def run() -> None:
        h = Harness()
        for n in range(12):  # enough to spill into segments with the tiny layout
            await h.apply(Op.add(f"chat:m{n:02d}", n))
            await h.store.compact(await h.store.read(INDEX))
        for _ in range(3):  # let every journal entry fold and every replaced object retire
            h.clock.now_ms += 3 * SETTLE_MS + 2 * MAX_COMPACTION_MS
            await h.store.compact(await h.store.read(INDEX))
        # This fold collects the garbage that is due by now (so it does read the manifest)...
        await h.apply(Op.add("chat:m12", 12))
        await h.store.compact(await h.store.read(INDEX))
        manifest_key = (h.kv.metadata_of(INDEX) or {})["m"]
        # ...and this one changes only the head, with no garbage due and no room needed.
        await h.apply(Op.rem("chat:m12", 12))
        view = await h.store.read(INDEX)
        gets: list[str] = []
        original_get = h.kv.get

        async def counting_get(key: str) -> str | None:
            gets.append(key)
            return await original_get(key)

        h.kv.get = counting_get  # type: ignore[method-assign]
        assert await h.store.compact(view)
        assert manifest_key not in gets
        assert (h.kv.metadata_of(INDEX) or {})["m"] == manifest_key
        await h.check(0, 12, 3)
        await assert_layout_is_tidy(h, hi=12)

    asyncio.run(run())
