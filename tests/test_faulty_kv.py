"""The fault-injecting KV wrapper itself: numbering, crashes, seeded faults, 429s, latency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from errors import KVRateLimited, KVTransientError, StorageUnavailable
from storage.kv import KVStore, ValueWithMetadata
from storage.retrying import RetryingKV, RetryPolicy
from support.aio import run
from support.clock import ManualClock
from support.faulty_kv import FaultyKV
from support.memory_kv import MemoryKV


def make(**options: Any) -> tuple[FaultyKV, MemoryKV, ManualClock]:
    clock = ManualClock(0)
    inner = MemoryKV(clock=clock.seconds)
    options.setdefault("seed", 0)
    return FaultyKV(inner, clock=clock, **options), inner, clock


async def one_of_each(kv: KVStore) -> None:
    await kv.put("a", "1", metadata={"x": 1})
    await kv.get("a")
    await kv.get_with_metadata("a")
    await kv.list(prefix="a")
    await kv.delete("a")


def test_satisfies_the_protocol_and_passes_everything_through() -> None:
    faulty, inner, _ = make()
    kv: KVStore = faulty  # type-checks against the protocol

    async def scenario() -> None:
        await kv.put("k1", "v1", metadata={"m": 1})
        await kv.put("k2", "v2")
        assert await kv.get("k1") == "v1"
        assert await kv.get("missing") is None
        assert await kv.get_with_metadata("k1") == ValueWithMetadata("v1", {"m": 1})
        page = await kv.list(prefix="k", limit=1)
        assert [k.name for k in page.keys] == ["k1"] and not page.list_complete
        rest = await kv.list(prefix="k", cursor=page.cursor)
        assert [k.name for k in rest.keys] == ["k2"]
        await kv.delete("k1")

    run(scenario())
    assert inner.snapshot() == {"k2": "v2"}
    assert faulty.ops == inner.ops == 8
    assert [r.n for r in faulty.log] == list(range(8))
    assert faulty.faults == 0
    assert [r.method for r in faulty.log[:3]] == ["put", "put", "get"]
    assert faulty.log[5].key == "list:k"


@pytest.mark.parametrize("fail_at", range(5))
def test_fail_at_with_crash_kills_that_operation_and_every_later_one(fail_at: int) -> None:
    faulty, inner, _ = make(fail_at=fail_at)

    async def scenario() -> list[str]:
        outcomes: list[str] = []
        for n in range(8):
            try:
                await faulty.put(f"k{n}", str(n))
                outcomes.append("ok")
            except KVTransientError:
                outcomes.append("fail")
        return outcomes

    assert run(scenario()) == ["ok"] * fail_at + ["fail"] * (8 - fail_at)
    assert set(inner.snapshot()) == {f"k{n}" for n in range(fail_at)}  # nothing after it landed
    assert faulty.crashed
    assert [r.outcome for r in faulty.log[fail_at:]] == ["fail_at"] + ["crashed"] * (7 - fail_at)
    assert faulty.ops == 8


def test_fail_at_without_crash_fails_only_that_operation() -> None:
    faulty, inner, _ = make(fail_at=2, crash=False)

    async def scenario() -> None:
        await faulty.put("a", "1")
        await faulty.get("a")
        with pytest.raises(KVTransientError):
            await faulty.put("b", "2")
        await faulty.put("c", "3")
        assert await faulty.get("b") is None

    run(scenario())
    assert inner.snapshot() == {"a": "1", "c": "3"}
    assert not faulty.crashed
    assert faulty.count("fail_at") == 1 and faulty.faults == 1


@pytest.mark.parametrize("method", ["get", "get_with_metadata", "put", "delete", "list"])
def test_every_method_is_an_operation_that_can_fail(method: str) -> None:
    faulty, inner, _ = make(fail_at=0)
    run(inner.put("k", "v"))
    calls: dict[str, Callable[[], Coroutine[Any, Any, object]]] = {
        "get": lambda: faulty.get("k"),
        "get_with_metadata": lambda: faulty.get_with_metadata("k"),
        "put": lambda: faulty.put("k", "new"),
        "delete": lambda: faulty.delete("k"),
        "list": lambda: faulty.list(prefix="k"),
    }
    with pytest.raises(KVTransientError) as caught:
        run(calls[method]())
    assert isinstance(caught.value, StorageUnavailable)  # so RetryingKV retries it
    assert inner.snapshot() == {"k": "v"}
    assert faulty.log[0].method == method


def test_transient_faults_are_seeded_and_never_reach_the_store() -> None:
    def pattern(seed: int) -> tuple[list[bool], dict[str, str]]:
        faulty, inner, _ = make(seed=seed, transient_rate=0.1)

        async def scenario() -> list[bool]:
            failed: list[bool] = []
            for n in range(1_000):
                try:
                    await faulty.put(f"k{n:04d}", "v")
                    failed.append(False)
                except KVTransientError:
                    failed.append(True)
            return failed

        return run(scenario()), inner.snapshot()

    first, stored = pattern(7)
    again, _ = pattern(7)
    other, _ = pattern(8)
    assert first == again  # same seed, same faults
    assert first != other
    assert 50 <= sum(first) <= 150  # about 10 %
    assert set(stored) == {f"k{n:04d}" for n, bad in enumerate(first) if not bad}


@pytest.mark.parametrize(("rate", "expected"), [(0.0, 0), (1.0, 20)])
def test_transient_rate_extremes(rate: float, expected: int) -> None:
    faulty, _, _ = make(transient_rate=rate)

    async def scenario() -> int:
        failures = 0
        for _ in range(20):
            try:
                await faulty.get("k")
            except KVTransientError:
                failures += 1
        return failures

    assert run(scenario()) == expected
    assert faulty.count("transient") == expected


def test_same_key_writes_inside_the_window_get_429() -> None:
    faulty, inner, clock = make(same_key_window_ms=1_000)

    async def scenario() -> None:
        await faulty.put("k", "1")
        clock.advance(999)
        with pytest.raises(KVRateLimited) as caught:
            await faulty.put("k", "2")
        assert caught.value.retry_after == 1
        assert isinstance(caught.value, StorageUnavailable)
        await faulty.put("other", "x")  # another key is not limited
        assert await faulty.get("k") == "1"  # nor are reads
        await faulty.list(prefix="k")
        clock.advance(1)
        await faulty.put("k", "3")  # a full window after the last accepted write
        clock.advance(500)
        with pytest.raises(KVRateLimited):
            await faulty.delete("k")  # a delete is a write too
        clock.advance(400)
        with pytest.raises(KVRateLimited):
            await faulty.put("k", "4")  # a refused write does not restart the window...
        clock.advance(100)
        await faulty.put("k", "5")  # ...so 1,000 ms after "3" it is accepted

    run(scenario())
    assert inner.snapshot() == {"k": "5", "other": "x"}
    assert faulty.count("rate_limited") == 3


def test_deletes_can_be_exempt_from_the_window() -> None:
    faulty, inner, _ = make(same_key_window_ms=1_000, rate_limit_deletes=False)

    async def scenario() -> None:
        await faulty.put("k", "1")
        await faulty.delete("k")
        with pytest.raises(KVRateLimited):
            await faulty.put("k", "2")  # the delete was still a write of the key

    run(scenario())
    assert inner.snapshot() == {}


def test_latency_is_seeded_sleeps_within_bounds() -> None:
    def delays(seed: int) -> list[float]:
        faulty, _, _ = make(seed=seed, latency_ms=(1, 3))
        started = time.monotonic()
        run(one_of_each(faulty))
        assert time.monotonic() - started >= 5 * 0.001
        return faulty.delays_ms

    first = delays(3)
    assert len(first) == 5 and all(1 <= d <= 3 for d in first)
    assert delays(3) == first
    assert delays(4) != first


def test_latency_lets_concurrent_operations_interleave() -> None:
    faulty, inner, _ = make(seed=1, latency_ms=(0, 4))
    finished: list[int] = []

    async def put(n: int) -> None:
        await faulty.put(f"k{n}", "v")
        finished.append(n)

    async def scenario() -> None:
        await asyncio.gather(*(put(n) for n in range(12)))

    run(scenario())
    assert len(inner.snapshot()) == 12
    assert finished != sorted(finished)  # completion order follows the drawn latencies


def test_a_crash_also_kills_operations_still_in_flight() -> None:
    faulty, inner, _ = make(seed=0, fail_at=1, latency_ms=(5, 5))

    async def scenario() -> list[BaseException | None]:
        async def fail_soon() -> None:
            await asyncio.sleep(0)  # op 0 is already sleeping when op 1 is called
            await faulty.put("b", "2")

        return list(await asyncio.gather(faulty.put("a", "1"), fail_soon(),
                                         return_exceptions=True))

    first, second = run(scenario())
    assert isinstance(second, KVTransientError)  # op 1: fail_at, before any latency
    assert isinstance(first, KVTransientError)  # op 0 was on its way when the request died
    assert inner.snapshot() == {}
    assert [r.outcome for r in sorted(faulty.log, key=lambda r: r.n)] == ["crashed", "fail_at"]


def test_retrying_kv_rides_out_seeded_transient_faults() -> None:
    faulty, inner, _ = make(seed=11, transient_rate=0.3)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    kv = RetryingKV(faulty, sleep, RetryPolicy(attempts=10))

    async def scenario() -> None:
        for n in range(50):
            await kv.put(f"k{n}", str(n))
        for n in range(50):
            assert await kv.get(f"k{n}") == str(n)

    run(scenario())
    assert len(inner.snapshot()) == 50
    assert faulty.count("transient") == len(sleeps) > 0  # each one waited out, then retried


@pytest.mark.parametrize(
    "options",
    [{"fail_at": -1}, {"transient_rate": 1.5}, {"transient_rate": -0.1},
     {"same_key_window_ms": 0}, {"latency_ms": (3, 1)}, {"latency_ms": (-1, 1)}],
)
def test_rejects_nonsense_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FaultyKV(MemoryKV(), seed=0, **options)
