"""Tests of the edge model of Workers KV itself (``edge_kv``), so simulations can trust it."""

from __future__ import annotations

from typing import Any

import pytest

from errors import KVRateLimited, KVTransientError, StorageUnavailable
from storage.kv import MAX_KEY_BYTES, MAX_LIST_LIMIT, MAX_METADATA_BYTES, KVStore
from support.aio import run
from support.clock import ManualClock
from support.edge_kv import REQUEST_TAG, EdgeWorld, LocationKV
from support.memory_kv import KVLimitError

TTL = 60_000


def world(clock: ManualClock, seed: int = 1, **options: Any) -> EdgeWorld:
    """A world whose timings are exact unless a test says otherwise: no propagation delay, no
    listing lag, no rate limit, so each test turns on only what it is about."""
    settings: dict[str, Any] = {"max_propagation_ms": 0, "max_list_lag_ms": 0,
                                "rate_limit_writes": False}
    settings.update(options)
    return EdgeWorld(seed, clock, **settings)


async def names(kv: LocationKV, prefix: str = "", limit: int = MAX_LIST_LIMIT) -> list[str]:
    found: list[str] = []
    cursor: str | None = None
    while True:
        page = await kv.list(prefix=prefix, limit=limit, cursor=cursor)
        assert len(page.keys) <= limit
        found += [k.name for k in page.keys]
        if page.list_complete:
            assert page.cursor is None
            return found
        cursor = page.cursor


def test_a_location_is_one_kv_store_per_name() -> None:
    w = world(ManualClock())
    store: KVStore = w.location("ams")  # mypy checks the protocol here
    assert store is w.location("ams") and store is not w.location("sin")
    assert list(w.locations) == ["ams", "sin"]


def test_values_and_metadata_round_trip() -> None:
    clock = ManualClock()
    ams = world(clock).location("ams")

    async def scenario() -> None:
        await ams.put("k", "v", metadata={"a": [1, "é"]})
        found = await ams.get_with_metadata("k")
        assert found is not None and found.value == "v" and found.metadata == {"a": [1, "é"]}
        assert await ams.get("k") == "v"
        await ams.delete("k")
        assert await ams.get("k") is None

    run(scenario())


def test_a_cached_miss_hides_a_later_write_for_the_ttl() -> None:
    clock = ManualClock()
    w = world(clock)
    ams, sin = w.location("ams"), w.location("sin")

    async def scenario() -> None:
        assert await sin.get("k") is None  # cached as absent at sin
        clock.advance(1)
        await ams.put("k", "v")
        assert await ams.get("k") == "v"  # visible at once where it was written
        clock.advance(TTL - 2)
        assert await sin.get("k") is None  # still the cached miss: 59.999 s old
        assert sin.cached("k")
        clock.advance(1)
        assert await sin.get("k") == "v"  # the entry expired: fetched again

    run(scenario())
    reads = [(r.location, r.cached, r.stale) for r in w.reads]
    assert reads == [("sin", False, False), ("ams", False, False), ("sin", True, True),
                     ("sin", False, False)]


def test_reads_hidden_by_the_cache_are_logged_as_stale() -> None:
    clock = ManualClock()
    w = world(clock)
    ams, sin = w.location("ams"), w.location("sin")

    async def scenario() -> None:
        await ams.put("k", "v1")
        await sin.get("k")
        await ams.put("k", "v2")
        await sin.get("k")

    run(scenario())
    assert [r.stale for r in w.reads] == [False, True]
    assert "STALE" in w.reads[-1].describe()


def test_a_cached_hit_hides_a_later_delete_and_update_elsewhere() -> None:
    clock = ManualClock()
    w = world(clock)
    ams, sin = w.location("ams"), w.location("sin")

    async def scenario() -> None:
        await ams.put("k", "v1")
        assert await sin.get("k") == "v1"
        await ams.delete("k")
        assert await sin.get("k") == "v1"
        clock.advance(TTL)
        assert await sin.get("k") is None

    run(scenario())


def test_a_location_sees_its_own_write_over_its_cache() -> None:
    clock = ManualClock()
    ams = world(clock).location("ams")

    async def scenario() -> None:
        assert await ams.get("k") is None  # a cached miss...
        await ams.put("k", "v")
        assert await ams.get("k") == "v"  # ...replaced by the location's own write
        await ams.delete("k")
        assert await ams.get("k") is None

    run(scenario())


def test_own_write_delay_hides_a_write_from_its_own_location_for_a_while() -> None:
    clock = ManualClock()
    w = world(clock, own_write_delay_ms=500)
    ams = w.location("ams")

    async def scenario() -> None:
        await ams.put("k", "v")
        assert not w.reads_own_write("ams", "k")
        assert await ams.get("k") is None
        clock.advance(499)
        assert await ams.get("k") is None  # cached miss, and the write is not visible yet
        clock.advance(1)
        assert w.reads_own_write("ams", "k")
        assert await ams.get("k") == "v"  # visible now: it replaces the cached miss

    run(scenario())


def test_a_write_reaches_another_location_after_its_propagation_delay() -> None:
    clock = ManualClock()
    w = world(clock, min_propagation_ms=2_000, max_propagation_ms=2_000)
    ams, sin, iad = w.location("ams"), w.location("sin"), w.location("iad")

    async def scenario() -> None:
        await ams.put("k", "v")
        clock.advance(1_999)
        assert await ams.get("k") == "v"
        assert await names(sin) == []  # not there yet: nothing to list either
        clock.advance(1)
        assert await names(sin) == ["k"]
        assert await iad.get("k") == "v"  # never cached at iad: fetched fresh

    run(scenario())


def test_propagation_delays_are_drawn_per_write_and_location_and_fixed() -> None:
    clock = ManualClock()
    w = world(clock, max_propagation_ms=10_000)
    ams = w.location("ams")
    run(ams.put("k", "v"))
    write = w.history("k")[-1]
    delays = {loc: w.visible_from(write, loc) - write.at_ms for loc in ("sin", "iad", "gru")}
    assert all(0 <= d <= 10_000 for d in delays.values())
    assert len(set(delays.values())) > 1
    assert delays == {loc: w.visible_from(write, loc) - write.at_ms for loc in delays}
    assert w.visible_from(write, "ams") == write.at_ms


def test_listing_lag_hides_a_new_key_and_still_shows_a_deleted_one() -> None:
    clock = ManualClock()
    w = world(clock, min_list_lag_ms=30_000, max_list_lag_ms=30_000)
    ams = w.location("ams")

    async def scenario() -> None:
        await ams.put("old", "v", metadata={"n": 1})
        clock.advance(30_000)
        await ams.put("new", "v")
        await ams.delete("old")
        assert await ams.get("new") == "v"  # reads are fresh at the writing location...
        page = await ams.list()  # ...listings show the state of 30 s ago
        assert [(k.name, k.metadata) for k in page.keys] == [("old", {"n": 1})]
        clock.advance(29_999)
        assert await names(ams) == ["old"]
        clock.advance(1)
        assert await names(ams) == ["new"]

    run(scenario())


def test_listing_lag_varies_per_listing_within_its_bounds() -> None:
    clock = ManualClock()
    w = world(clock, max_list_lag_ms=10_000)
    ams = w.location("ams")

    async def scenario() -> list[bool]:
        await ams.put("k", "v")
        clock.advance(5_000)
        return [bool(await names(ams)) for _ in range(50)]

    seen = run(scenario())
    assert True in seen and False in seen


def test_a_second_write_within_a_second_is_rate_limited_world_wide() -> None:
    clock = ManualClock()
    w = world(clock, rate_limit_writes=True)
    ams, sin = w.location("ams"), w.location("sin")

    async def scenario() -> None:
        await ams.put("k", "v1")
        clock.advance(999)
        with pytest.raises(KVRateLimited) as caught:
            await sin.put("k", "v2")  # from another location too
        assert isinstance(caught.value, StorageUnavailable)  # so RetryingKV retries it
        with pytest.raises(KVRateLimited):
            await ams.delete("k")
        await ams.put("other", "x")  # other keys are not limited
        clock.advance(1)
        await sin.put("k", "v2")  # 1,000 ms after the last accepted write
        clock.advance(TTL)
        assert await ams.get("k") == "v2"
        assert sin.counters.rate_limited == 1 and ams.counters.rate_limited == 1
        assert w.rate_limited == {"k": 2} and w.rate_limited_deletes == {"k": 1}

    run(scenario())


def test_deletes_can_be_left_out_of_the_rate_limit() -> None:
    clock = ManualClock()
    w = world(clock, rate_limit_writes=True, rate_limit_deletes=False)
    ams = w.location("ams")

    async def scenario() -> None:
        await ams.put("k", "v")
        await ams.delete("k")
        with pytest.raises(KVRateLimited):
            await ams.put("k", "v")  # the delete was accepted: still a write of the key

    run(scenario())


def test_transient_failures_of_reads_and_lists() -> None:
    clock = ManualClock()
    w = world(clock, failure_rate=1.0)
    ams = w.location("ams")

    async def scenario() -> None:
        with pytest.raises(KVTransientError):
            await ams.get("k")
        with pytest.raises(KVTransientError):
            await ams.list()
        assert ams.counters.transient == 2 and ams.counters.gets == 1

    run(scenario())


def test_a_failed_write_may_or_may_not_have_happened() -> None:
    outcomes: set[bool] = set()
    for seed in range(20):
        clock = ManualClock()
        w = world(clock, seed=seed, failure_rate=1.0)

        async def scenario(w: EdgeWorld = w) -> None:
            with pytest.raises(KVTransientError):
                await w.location("ams").put("k", "v")

        run(scenario())
        outcomes.add("k" in w.settled_view())
    assert outcomes == {True, False}


def test_a_lost_acknowledgement_is_a_write_that_happened_and_failed() -> None:
    clock = ManualClock()
    w = world(clock, rate_limit_writes=True)
    ams = w.location("ams")
    w.lose_next_ack("chat:", location="ams")

    async def scenario() -> None:
        await ams.put("idx:x", "v")  # another prefix: untouched
        with pytest.raises(KVTransientError):
            await ams.delete("chat:m1")
        assert [x.value for x in w.history("chat:m1")] == [None]  # it happened
        with pytest.raises(KVRateLimited):  # and its retry meets the rate limit it set off
            await ams.delete("chat:m1")
        clock.advance(1_000)
        await ams.delete("chat:m1")  # only the next write lost its acknowledgement

    run(scenario())


def test_a_slow_write_is_accepted_only_when_its_call_ends() -> None:
    clock = ManualClock()

    async def sleep(seconds: float) -> None:  # a fake sleep: the clock moves, no real wait
        clock.advance(round(seconds * 1000))

    w = world(clock, sleep=sleep)
    ams = w.location("ams")
    w.delay_next_write("k", 1_000)

    async def scenario() -> None:
        started = clock()
        await ams.put("k", "v")
        assert clock() - started == 1_000
        assert w.history("k")[-1].at_ms == started + 1_000
        await ams.put("k", "v2")  # only the next write was slow
        assert clock() - started == 1_000

    run(scenario())


def test_pages_of_one_listing_show_one_moment() -> None:
    clock = ManualClock()
    w = world(clock)
    ams = w.location("ams")

    async def scenario() -> None:
        for key in ("a", "b", "c", "d"):
            await ams.put(key, "v")
        first = await ams.list(limit=2)
        assert [k.name for k in first.keys] == ["a", "b"] and not first.list_complete
        await ams.put("bb", "v")  # after the first page: later pages do not show it...
        await ams.delete("c")  # ...nor miss what was there when the listing began
        assert first.cursor is not None
        rest = await ams.list(limit=2, cursor=first.cursor)
        assert [k.name for k in rest.keys] == ["c", "d"] and rest.list_complete
        assert await names(ams) == ["a", "b", "bb", "d"]  # a new listing is a new moment

    run(scenario())


def test_listing_is_in_utf8_byte_order_with_prefix_and_limit() -> None:
    clock = ManualClock()
    ams = world(clock).location("ams")
    keys = ["p:é", "p:z", "p:a", "p:\U0001f600", "q", "p"]

    async def scenario() -> None:
        for key in keys:
            await ams.put(key, "v")
        expected = sorted((k for k in keys if k.startswith("p:")), key=lambda k: k.encode())
        assert await names(ams, prefix="p:", limit=1) == expected
        assert await names(ams, prefix="p:", limit=MAX_LIST_LIMIT) == expected
        assert await names(ams, prefix="zz") == []

    run(scenario())


def test_limits_are_those_of_workers_kv() -> None:
    clock = ManualClock()
    ams = world(clock).location("ams")

    async def scenario() -> None:
        await ams.put("k" * MAX_KEY_BYTES, "v")
        with pytest.raises(KVLimitError):
            await ams.put("k" * (MAX_KEY_BYTES + 1), "v")
        with pytest.raises(KVLimitError):
            await ams.get("é" * (MAX_KEY_BYTES // 2 + 1))
        with pytest.raises(KVLimitError):
            await ams.put("m", "v", metadata={"x": "y" * MAX_METADATA_BYTES})
        with pytest.raises(KVLimitError):
            await ams.list(limit=MAX_LIST_LIMIT + 1)
        with pytest.raises(KVLimitError):
            await ams.list(limit=0)
        with pytest.raises(KVLimitError):
            await ams.list(cursor="not a cursor")
        with pytest.raises(KVLimitError):
            await ams.put("t", "v", expiration_ttl=59)

    run(scenario())


def test_expiring_keys_disappear_when_their_ttl_is_over() -> None:
    clock = ManualClock()
    ams = world(clock).location("ams")

    async def scenario() -> None:
        await ams.put("t", "v", expiration_ttl=60)
        clock.advance(59_999)
        assert await ams.get("t") == "v"
        assert [k.name for k in (await ams.list()).keys] == ["t"]
        clock.advance(1)
        assert await ams.get("t") is None
        assert await names(ams) == []

    run(scenario())


def test_counters_count_calls_per_location() -> None:
    clock = ManualClock()
    w = world(clock)
    ams, sin = w.location("ams"), w.location("sin")

    async def scenario() -> None:
        await ams.put("a", "v")
        await ams.get("a")
        await ams.get_with_metadata("a")
        await ams.delete("a")
        await sin.list()

    run(scenario())
    assert (ams.counters.puts, ams.counters.gets, ams.counters.deletes, ams.counters.lists) == (
        1, 2, 1, 0)
    assert sin.counters.ops == sin.counters.lists == 1


def test_history_and_settled_view_are_the_authoritative_state() -> None:
    clock = ManualClock()
    w = world(clock, max_propagation_ms=5_000)
    ams, sin = w.location("ams"), w.location("sin")

    async def scenario() -> None:
        token = REQUEST_TAG.set("r1")
        try:
            await ams.put("a", "1", metadata={"m": 1})
            await ams.put("b", "2")
        finally:
            REQUEST_TAG.reset(token)
        await sin.delete("b")

    run(scenario())
    assert w.settled_view() == {"a": ("1", {"m": 1})}
    assert [(x.origin, x.tag, x.value) for x in w.history("b")] == [("ams", "r1", "2"),
                                                                   ("sin", "", None)]
    assert w.keys_with_prefix("") == ["a", "b"]


def test_after_a_quiet_period_every_location_sees_everything() -> None:
    clock = ManualClock()
    w = EdgeWorld(7, clock, own_write_delay_ms=300)  # the documented timings, all random
    locations = [w.location(n) for n in ("ams", "sin", "iad")]

    async def scenario() -> None:
        for n, kv in enumerate(locations):
            assert await kv.get("k") is None  # cached misses everywhere
            await kv.put(f"k{n}", "v")
            clock.advance(1_000)
        await locations[0].put("k", "final")
        await locations[1].delete("k0")
        clock.advance(w.quiet_ms())
        for kv in locations:
            assert await kv.get("k") == "final"
            assert await kv.get("k0") is None
            assert await names(kv) == ["k", "k1", "k2"]

    run(scenario())
    assert w.worst_staleness_ms == 61_000 and w.quiet_ms() > w.worst_staleness_ms


def test_a_seed_replays_the_same_edge() -> None:
    def trace(seed: int) -> list[object]:
        clock = ManualClock()
        w = EdgeWorld(seed, clock, failure_rate=0.3, max_list_lag_ms=5_000,
                      max_propagation_ms=3_000)
        kvs = [w.location(n) for n in ("ams", "sin")]
        seen: list[object] = []

        async def scenario() -> None:
            for step in range(40):
                kv = kvs[step % 2]
                clock.advance(700)
                try:
                    if step % 3 == 0:
                        await kv.put(f"k{step % 5}", str(step))
                    elif step % 3 == 1:
                        seen.append(await kv.get(f"k{(step + 1) % 5}"))
                    else:
                        seen.append([k.name for k in (await kv.list()).keys])
                except StorageUnavailable as exc:
                    seen.append(type(exc).__name__)

        run(scenario())
        return seen

    assert trace(3) == trace(3)
    assert trace(3) != trace(4)
