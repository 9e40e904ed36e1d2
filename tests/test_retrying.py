"""``RetryingKV``: bounded exponential backoff with full jitter, and what the client sees when
retries run out (503 ``storage_unavailable`` with ``Retry-After``, never a 500)."""

from __future__ import annotations

import random
import statistics
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import pytest

from errors import KVRateLimited, KVTransientError, StorageUnavailable
from storage.kv import (
    MAX_LIST_LIMIT,
    BatchReads,
    KVStore,
    ListPage,
    Metadata,
    ValueWithMetadata,
    get_many_with_metadata,
)
from storage.retrying import RetryingKV, RetryPolicy
from store.create import WITHDRAW_RETRY_DELAYS_S
from support.aio import run
from support.app_harness import TOKEN, Reply, message_body
from support.fault_harness import FaultHarness
from support.faulty_kv import FaultyKV
from support.memory_kv import KVLimitError, MemoryKV

T = TypeVar("T")


class Sleeps:
    """Stands in for ``asyncio.sleep``: records each requested delay, sleeps not at all."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class UpperBound(random.Random):
    """An rng whose ``uniform(a, b)`` is always ``b``: exposes the backoff's ceilings."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Scripted:
    """A KV whose every call first raises the scripted errors, then delegates to MemoryKV."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = list(errors)
        self.inner = MemoryKV()
        self.calls = 0

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return await call()

    async def get(self, key: str) -> str | None:
        return await self._call(lambda: self.inner.get(key))

    async def get_with_metadata(self, key: str) -> ValueWithMetadata | None:
        return await self._call(lambda: self.inner.get_with_metadata(key))

    async def put(
        self, key: str, value: str, *, metadata: Metadata | None = None,
        expiration_ttl: int | None = None, expiration: int | None = None,
    ) -> None:
        await self._call(lambda: self.inner.put(key, value, metadata=metadata,
                                                expiration_ttl=expiration_ttl,
                                                expiration=expiration))

    async def delete(self, key: str) -> None:
        await self._call(lambda: self.inner.delete(key))

    async def list(
        self, *, prefix: str = "", limit: int = MAX_LIST_LIMIT, cursor: str | None = None
    ) -> ListPage:
        return await self._call(lambda: self.inner.list(prefix=prefix, limit=limit,
                                                        cursor=cursor))


CALLS: dict[str, Callable[[KVStore], Coroutine[Any, Any, object]]] = {
    "get": lambda kv: kv.get("k"),
    "get_with_metadata": lambda kv: kv.get_with_metadata("k"),
    "put": lambda kv: kv.put("k", "v", metadata={"m": 1}),
    "delete": lambda kv: kv.delete("k"),
    "list": lambda kv: kv.list(prefix="k"),
}


# -- retrying ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(CALLS))
@pytest.mark.parametrize("error", [KVRateLimited, KVTransientError], ids=["429", "transient"])
def test_retries_429_and_transient_errors_on_every_method(
    method: str, error: type[StorageUnavailable]
) -> None:
    inner = Scripted([error(), error()])
    sleeps = Sleeps()
    kv = RetryingKV(inner, sleeps, rng=random.Random(0))
    run(CALLS[method](kv))
    assert inner.calls == 3
    assert len(sleeps.delays) == 2  # one wait before each retry
    if method == "put":
        assert inner.inner.metadata_of("k") == {"m": 1}  # the retried call carried everything


def test_a_retried_read_returns_the_value() -> None:
    inner = Scripted([KVRateLimited(), KVTransientError(), KVRateLimited()])
    run(inner.inner.put("k", "stored"))
    sleeps = Sleeps()
    kv = RetryingKV(inner, sleeps, rng=random.Random(0))
    assert run(kv.get("k")) == "stored"
    assert inner.calls == 4 and len(sleeps.delays) == 3


def test_a_success_first_time_never_sleeps() -> None:
    sleeps = Sleeps()
    kv = RetryingKV(Scripted([]), sleeps)
    run(kv.put("k", "v"))
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("policy", "ceilings"),
    [
        (RetryPolicy(attempts=4), [0.05, 0.1, 0.2]),
        (RetryPolicy(attempts=8, base_seconds=0.05, cap_seconds=1.0),
         [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]),
        (RetryPolicy(attempts=5, base_seconds=0.5, cap_seconds=2.0), [0.5, 1.0, 2.0, 2.0]),
    ],
    ids=["short", "long", "capped-early"],
)
def test_backoff_ceilings_double_up_to_the_cap_then_it_gives_up(
    policy: RetryPolicy, ceilings: list[float]
) -> None:
    inner = Scripted([KVTransientError() for _ in range(100)])
    sleeps = Sleeps()
    kv = RetryingKV(inner, sleeps, policy, rng=UpperBound())
    with pytest.raises(StorageUnavailable) as caught:
        run(kv.get("k"))
    assert inner.calls == policy.attempts  # bounded attempts...
    assert sleeps.delays == pytest.approx(ceilings)  # ...no sleep after the last one
    assert sum(sleeps.delays) <= policy.cap_seconds * (policy.attempts - 1)  # bounded total
    assert caught.value.retry_after == 1
    assert type(caught.value) is StorageUnavailable  # not the KV-level class it retried


def test_delays_are_fully_jittered_below_growing_ceilings() -> None:
    policy = RetryPolicy(attempts=6, base_seconds=0.05, cap_seconds=1.0)
    by_attempt: list[list[float]] = [[] for _ in range(policy.attempts - 1)]
    for seed in range(400):
        sleeps = Sleeps()
        kv = RetryingKV(Scripted([KVTransientError() for _ in range(10)]), sleeps, policy,
                        rng=random.Random(seed))
        with pytest.raises(StorageUnavailable):
            run(kv.put("k", "v"))
        assert len(sleeps.delays) == policy.attempts - 1
        for attempt, delay in enumerate(sleeps.delays):
            by_attempt[attempt].append(delay)
    means = []
    for attempt, delays in enumerate(by_attempt):
        ceiling = min(policy.cap_seconds, policy.base_seconds * 2**attempt)
        assert all(0 <= d <= ceiling for d in delays)  # bounded
        assert min(delays) < 0.1 * ceiling and max(delays) > 0.9 * ceiling  # full jitter
        assert len(set(delays)) == len(delays)  # no two isolates collide again
        assert statistics.mean(delays) == pytest.approx(ceiling / 2, rel=0.15)
        means.append(statistics.mean(delays))
    assert means == sorted(means)  # exponentially growing on average
    assert means[3] > 6 * means[0]


def test_the_jitter_comes_from_the_given_rng() -> None:
    def delays(seed: int) -> list[float]:
        sleeps = Sleeps()
        kv = RetryingKV(Scripted([KVTransientError()] * 3), sleeps, rng=random.Random(seed))
        run(kv.get("k"))
        return sleeps.delays

    assert delays(1) == delays(1)
    assert delays(1) != delays(2)


@pytest.mark.parametrize(
    "error", [KVLimitError("too big"), ValueError("bug"), RuntimeError("boom")]
)
def test_other_errors_are_not_retried(error: Exception) -> None:
    inner = Scripted([error])
    sleeps = Sleeps()
    kv = RetryingKV(inner, sleeps)
    with pytest.raises(type(error)):
        run(kv.put("k", "v"))
    assert inner.calls == 1 and sleeps.delays == []


def test_the_default_policy_is_bounded_and_jittered() -> None:
    policy = RetryPolicy()
    ceilings = [min(policy.cap_seconds, policy.base_seconds * 2**n)
                for n in range(policy.attempts - 1)]
    assert 2 <= policy.attempts <= 10
    assert ceilings == sorted(ceilings) and ceilings[-1] <= policy.cap_seconds
    assert sum(ceilings) < 5  # a request never hangs on one KV call
    sleeps = Sleeps()
    kv = RetryingKV(Scripted([KVTransientError() for _ in range(20)]), sleeps, rng=UpperBound())
    with pytest.raises(StorageUnavailable):
        run(kv.get("k"))
    assert sleeps.delays == pytest.approx(ceilings)


def test_a_429_waits_out_the_hot_key_second_before_its_first_retry() -> None:
    """KV takes about one write per second per key: full jitter alone could retry a 429 after
    a few milliseconds and draw another (a delete right after a put of the same key, as an
    intent's, is the common case), then another, until retries run out."""
    policy = RetryPolicy()
    for seed in range(50):
        sleeps = Sleeps()
        inner = Scripted([KVRateLimited(), KVRateLimited()])
        kv = RetryingKV(inner, sleeps, rng=random.Random(seed))
        run(kv.delete("k"))
        assert sleeps.delays[0] >= policy.hot_key_seconds
        assert sleeps.delays[1] <= min(policy.cap_seconds, policy.base_seconds * 2)
    sleeps = Sleeps()
    kv = RetryingKV(Scripted([KVRateLimited() for _ in range(20)]), sleeps, rng=UpperBound())
    with pytest.raises(StorageUnavailable):
        run(kv.get("k"))
    assert sum(sleeps.delays) < 5  # still bounded


def test_a_storage_unavailable_with_its_own_detail_is_retried_and_then_generic() -> None:
    attempts = RetryPolicy().attempts
    inner = Scripted([StorageUnavailable(retry_after=7, detail="index manifest is missing")
                      for _ in range(attempts)])
    kv = RetryingKV(inner, Sleeps())
    with pytest.raises(StorageUnavailable) as caught:
        run(kv.get("k"))
    assert inner.calls == attempts
    assert caught.value.retry_after == 1


# -- what the client sees ---------------------------------------------------------------------


def assert_storage_unavailable(reply: Reply) -> None:
    assert reply.status == 503, (reply.status, reply.body)
    assert reply.header("retry-after") == "1"
    assert reply.content_type.startswith("application/problem+json")
    problem = reply.json
    assert problem["code"] == "storage_unavailable"
    assert problem["status"] == 503
    assert "Traceback" not in reply.body.decode()


REQUESTS: list[tuple[str, str, str, Any]] = [
    ("POST", "/v1/messages", "", message_body(user_id="u1", id="new", conversation_id="c1")),
    ("POST", "/v1/messages/batch", "", {"messages": [message_body(user_id="u1")]}),
    ("GET", "/v1/messages/m1", "", None),
    ("PATCH", "/v1/messages/m1", "", {"content": "changed", "timestamp": 5}),
    ("DELETE", "/v1/messages/m1", "", None),
    ("GET", "/v1/users/u1/messages", "order=asc&limit=1", None),
    ("GET", "/v1/conversations/c1/messages", "", None),
    ("GET", "/v1/users/u1/messages/count", "", None),
    ("DELETE", "/v1/users/u1/messages", "", None),
    ("DELETE", "/v1/conversations/c1/messages", "", None),
    ("POST", "/v1/admin/reindex", "", {"user_id": "u1"}),
    ("POST", "/v1/admin/reindex", "", {"conversation_id": "c1"}),
]


def _seeded() -> FaultHarness:
    h = FaultHarness()
    run(h.acreate(user_id="u1", id="m1", conversation_id="c1", timestamp=1))
    return h


@pytest.mark.parametrize(
    ("method", "path", "query", "body"), REQUESTS, ids=[f"{r[0]} {r[1]}" for r in REQUESTS]
)
def test_when_retries_run_out_the_client_gets_503_with_retry_after(
    method: str, path: str, query: str, body: Any
) -> None:
    h = _seeded()
    sleeps = Sleeps()
    faulty = FaultyKV(h.memory, seed=0, transient_rate=1.0)
    h.use(RetryingKV(faulty, sleeps, rng=random.Random(0)))
    kwargs: dict[str, Any] = {} if body is None else {"json_body": body}
    reply = h.request(method, path, query, **kwargs)
    assert_storage_unavailable(reply)
    attempts = RetryPolicy().attempts  # all spent on the first KV call...
    # ...and, for a create with a server-made id, on the record delete that withdraws it; a
    # create with a client id reads at once its record, a delete's plan and the plans of
    # erases of its user and conversation.
    calls = 2 if path == "/v1/messages/batch" else 4 if path == "/v1/messages" else 1
    # The withdrawal goes on after the response, one record delete per pause, all failing.
    later = len(WITHDRAW_RETRY_DELAYS_S) if path == "/v1/messages/batch" else 0
    assert faulty.ops == (calls + later) * attempts
    retried_calls = 2 if path == "/v1/messages/batch" else 1  # two reads retry as one batch
    assert len(sleeps.delays) == (retried_calls + later) * (attempts - 1)
    assert h.deferred_errors == []


def test_429s_on_a_hot_key_end_in_503_never_500() -> None:
    h = _seeded()
    h.clock.advance(5_000)
    sleeps = Sleeps()
    faulty = FaultyKV(h.memory, seed=0, same_key_window_ms=1_000, clock=h.clock)
    h.use(RetryingKV(faulty, sleeps, rng=random.Random(0)))
    assert h.request("PATCH", "/v1/messages/m1", json_body={"content": "one"}).status == 200
    reply = h.request("PATCH", "/v1/messages/m1", json_body={"content": "two"})
    assert_storage_unavailable(reply)
    assert faulty.count("rate_limited") == RetryPolicy().attempts
    h.clock.advance(1_000)
    assert h.request("PATCH", "/v1/messages/m1", json_body={"content": "two"}).status == 200


def test_retries_hide_transient_faults_from_the_client() -> None:
    h = _seeded()
    sleeps = Sleeps()
    faulty = FaultyKV(h.memory, seed=3, fail_at=1, crash=False)
    h.use(RetryingKV(faulty, sleeps, rng=random.Random(0)))
    reply = h.request("POST", "/v1/messages",
                      json_body=message_body(user_id="u1", id="m2", timestamp=2))
    assert reply.status == 201
    assert len(sleeps.delays) == 1 and faulty.count("fail_at") == 1
    h.heal()
    assert [m["id"] for m in h.list_all("users/u1", order="asc")] == ["m1", "m2"]


@pytest.mark.parametrize("error", [KVRateLimited, KVTransientError], ids=["429", "transient"])
def test_a_kv_error_without_retrying_is_also_503(error: type[StorageUnavailable]) -> None:
    h = _seeded()

    class Broken(MemoryKV):
        async def get(self, key: str) -> str | None:
            raise error(retry_after=1)

        async def get_with_metadata(self, key: str) -> ValueWithMetadata | None:
            raise error(retry_after=1)

    h.use(Broken())
    reply = h.request("GET", "/v1/messages/m1", token=TOKEN)
    assert_storage_unavailable(reply)


class ScriptedBatches(Scripted):
    """``Scripted`` that also reads several keys in one call, like the Workers adapter."""

    async def get_many_with_metadata(
        self, keys: Sequence[str]
    ) -> list[ValueWithMetadata | None]:
        return await self._call(lambda: get_many_with_metadata(self.inner, keys))


@pytest.mark.parametrize("error", [KVRateLimited, KVTransientError], ids=["429", "transient"])
def test_a_batch_of_reads_is_retried_as_one_call(error: type[StorageUnavailable]) -> None:
    inner = ScriptedBatches([error(), error()])
    run(inner.inner.put("a", "A", metadata={"m": 1}))
    run(inner.inner.put("c", "C"))
    sleeps = Sleeps()
    kv = RetryingKV(inner, sleeps, rng=random.Random(0))
    found = run(get_many_with_metadata(kv, ["c", "b", "a"]))
    assert found == [ValueWithMetadata("C", None), None, ValueWithMetadata("A", {"m": 1})]
    assert inner.calls == 3
    assert len(sleeps.delays) == 2


def test_a_store_without_batches_gets_each_key_in_order() -> None:
    inner = MemoryKV()
    run(inner.put("x", "X"))
    assert not isinstance(inner, BatchReads)
    assert run(get_many_with_metadata(inner, ["y", "x"])) == [None, ValueWithMetadata("X", None)]
    assert inner.reads == 2, "still one KV operation per key"
