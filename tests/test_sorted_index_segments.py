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

from index.object_cache import ObjectCache
from index.sorted_index import MAX_COMPACTION_MS, IndexObjects, IndexStore, IndexView, Layout
from index.zset import Entry
from kvformat import JOURNAL_PREFIX, MANIFEST_PREFIX, SEGMENT_PREFIX, Op
from support.clock import ManualClock
from support.memory_kv import MemoryKV

INDEX = "user:chat:u1"
SETTLE_MS = 1_000
TINY = Layout(head_max=4, head_keep=2, segment_max=3)


@dataclass
class Harness:
    clock: ManualClock = field(default_factory=ManualClock)
    model: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kv = MemoryKV(clock=self.clock.seconds)
        self.store = IndexStore(self.kv, self.clock, SETTLE_MS, TINY)

    async def apply(self, op: Op) -> None:
        await self.store.append(INDEX, [op])
        if op.kind == "add" and op.score is not None:
            self.model[op.member] = op.score
        else:
            self.model.pop(op.member, None)

    def record_gets(self) -> list[str]:
        """From now on, the key of every ``get`` (segments, manifests, journal values)."""
        gets: list[str] = []
        original_get = self.kv.get

        async def counting_get(key: str) -> str | None:
            gets.append(key)
            return await original_get(key)

        self.kv.get = counting_get  # type: ignore[method-assign]
        return gets

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
    """Entries journaled before ops always rode in metadata (or an op too big for it) live only
    in the value: the read fetches them once, and the compaction of that view must reuse them
    rather than fetch them again."""

    async def run() -> None:
        h = Harness()
        ops = [Op.add(f"chat:m{n:03d}", n) for n in range(300)]
        journal_key = f"{JOURNAL_PREFIX}{INDEX}:{10**13 - 1 - h.clock.now_ms:013d}-000000legacy"
        await h.kv.put(journal_key, json.dumps([op.to_json() for op in ops]),
                       metadata={"t": h.clock.now_ms})  # value-only, as older versions wrote
        view = await h.store.read(INDEX)
        gets = h.record_gets()
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
        gets = h.record_gets()
        assert await h.store.compact(view)
        assert manifest_key not in gets
        assert (h.kv.metadata_of(INDEX) or {})["m"] == manifest_key
        await h.check(0, 12, 3)
        await assert_layout_is_tidy(h, hi=12)

    asyncio.run(run())


def test_the_head_spills_into_the_newest_segment_so_segments_stay_large() -> None:
    """Appends at the newest end must not leave one small segment per spill behind: the manifest
    (read by every range that leaves the head) would grow with history."""

    async def run() -> None:
        layout = Layout(head_max=8, head_keep=4, segment_max=16)
        h = Harness()
        h.store = IndexStore(h.kv, h.clock, SETTLE_MS, layout)
        for n in range(200):
            await h.apply(Op.add(f"chat:m{n:03d}", n))
            h.clock.now_ms += SETTLE_MS // 4  # fewer unsettled entries than the head keeps
            h.kv.reset_counters()
            # The read ChatStore's paced compaction makes (trusting unless a full pass is due).
            await h.store.compact(await h.store.read(INDEX, trust=None, cap=False))
            # root, journal listing, manifest, newest segment; root, two halves, manifest;
            # plus, on the rounds that collect the journal, the listing that finds what to delete
            collecting = 1 if h.kv.deletes else 0
            assert h.kv.reads + h.kv.lists <= 4 + collecting and h.kv.writes <= 4
        manifest = json.loads(h.kv.snapshot()[(h.kv.metadata_of(INDEX) or {})["m"]])
        counts = [s[3] for s in manifest["segments"]]
        assert sum(counts) + len(json.loads(h.kv.snapshot()[INDEX])) == 200
        assert all(layout.segment_max // 2 <= c <= layout.segment_max for c in counts[:-1])
        assert len(counts) <= 200 // (layout.segment_max // 2)
        await h.check(0, 199, 7)

    asyncio.run(run())


def test_a_newest_first_read_that_ends_in_the_head_reads_no_manifest() -> None:
    async def run() -> None:
        h = Harness()
        for n in range(12):
            await h.apply(Op.add(f"chat:m{n:02d}", n))
            await h.store.compact(await h.store.read(INDEX))
        h.clock.now_ms += 3 * SETTLE_MS
        await h.store.compact(await h.store.read(INDEX))  # every entry folded
        view = await h.store.read(INDEX)
        assert not view.overlay
        assert view.root.manifest_key is not None
        h.kv.reset_counters()
        newest = await view.zrange_by_score(rev=True, limit=2)
        assert newest == [Entry(11, "chat:m11"), Entry(10, "chat:m10")]
        assert h.kv.ops == 0, "the head alone answers it"
        assert len(await view.zrange_by_score(rev=True, limit=5)) == 5  # now it must go on
        assert h.kv.ops >= 1

    asyncio.run(run())


def test_compacting_the_same_unsettled_ops_again_rewrites_nothing() -> None:
    """Within the settle window every compaction sees the same unfolded ops: applying them
    again must not produce a new root, segment or manifest each time."""

    async def run() -> None:
        h = Harness()
        for n in range(10):  # with the tiny layout, most of these spill into segments
            await h.apply(Op.add(f"chat:m{n:02d}", n))
        assert await h.store.compact(await h.store.read(INDEX))
        h.kv.reset_counters()
        assert not await h.store.compact(await h.store.read(INDEX))
        assert h.kv.writes == 0
        await h.apply(Op.add("chat:m10", 10))
        h.kv.reset_counters()
        assert await h.store.compact(await h.store.read(INDEX))
        assert h.kv.writes == 1, "only the head changed"
        await h.check(0, 10, 3)

    asyncio.run(run())


def test_segments_and_manifests_are_read_from_kv_once_per_isolate() -> None:
    """They are immutable, so the isolate's cache may keep them; the head and the journal are
    read every time, since they change."""

    async def run() -> None:
        h = Harness()
        cache: IndexObjects = ObjectCache()
        h.store = IndexStore(h.kv, h.clock, SETTLE_MS, TINY, cache)
        for n in range(12):
            await h.apply(Op.add(f"chat:m{n:02d}", n))
            await h.store.compact(await h.store.read(INDEX))
        cold = IndexStore(h.kv, h.clock, SETTLE_MS, TINY, ObjectCache())
        h.kv.reset_counters()
        assert [e.score for e in await (await cold.read(INDEX)).zrange_by_score(0, 3)] == [
            0, 1, 2, 3]
        cold_reads = h.kv.reads
        h.kv.reset_counters()
        assert [e.score for e in await (await h.store.read(INDEX)).zrange_by_score(0, 3)] == [
            0, 1, 2, 3]
        assert (h.kv.reads, cold_reads) == (1, 1 + 1 + 2), "root; root, manifest, 2 segments"
        await h.check(0, 11, 5)

    asyncio.run(run())


def test_a_root_whose_text_is_unchanged_is_not_parsed_again() -> None:
    """The root is read every time (it changes with every pass), but the isolate keeps the last
    text it parsed (or wrote) per index, so the same text gives the same parsed head, and a
    changed text a fresh one."""

    async def run() -> None:
        h = Harness()
        cache: IndexObjects = ObjectCache()
        h.store = IndexStore(h.kv, h.clock, SETTLE_MS, TINY, cache)
        await h.apply(Op.add("chat:a", 1))
        await h.store.compact(await h.store.read(INDEX))
        first = (await h.store.read(INDEX)).root.head
        again = (await h.store.read(INDEX)).root.head
        assert again is first
        cold = IndexStore(h.kv, h.clock, SETTLE_MS, TINY, ObjectCache())
        assert (await cold.read(INDEX)).root.head is not first
        await h.apply(Op.add("chat:b", 2))
        await h.store.compact(await h.store.read(INDEX))
        changed = (await h.store.read(INDEX)).root.head
        assert changed is not first
        assert [e.member for e in changed.entries()] == ["chat:a", "chat:b"]
        assert [e.member for e in first.entries()] == ["chat:a"], "never modified"

    asyncio.run(run())


def test_a_full_pass_does_not_refold_an_import_already_in_place() -> None:
    """Within the settle time every full pass lists the same ops again. Members already at their
    final position in a segment must not be folded again: that cost grows with everything
    written in the window (a 20,000-message import made each full pass take over a second
    under the runtime, holding up the reads of its isolate)."""

    async def run() -> None:
        h = Harness()
        await h.store.append(INDEX, [Op.add(f"chat:m{n:03d}", n) for n in range(300)])
        h.model.update({f"chat:m{n:03d}": n for n in range(300)})
        assert await h.store.compact(await h.store.read(INDEX, trust=False, cap=False))
        h.clock.now_ms += h.store.full_pass_ms  # still inside the settle time: all listed again
        view = await h.store.read(INDEX, trust=False, cap=False)
        assert view.full and view.unfolded == 300
        assert await h.store.compactor._pending(view) == set()
        await h.store.append(INDEX, [Op.add("chat:m007", 1_000, prev=7)])  # one real move
        h.model["chat:m007"] = 1_000
        view = await h.store.read(INDEX, trust=False, cap=False)
        assert await h.store.compactor._pending(view) == {"chat:m007"}
        assert await h.store.compact(view)
        await h.check(0, 1_000, 40)

    asyncio.run(run())
