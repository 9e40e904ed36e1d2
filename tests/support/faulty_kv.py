"""A fault-injecting Workers KV wrapper for tests, driven by a seed.

``FaultyKV`` sits between the store and a :class:`memory_kv.MemoryKV` (any ``KVStore``) and
satisfies the same protocol. Every call is one numbered operation (0-based, in call order).
Faults, checked in this order when an operation is called:

- ``fail_at=k``: operation ``k`` raises :class:`errors.KVTransientError` without reaching the
  inner store. With ``crash=True`` (the default) the request "died" there: every later operation
  raises too, including operations that were already waiting out their latency.
- ``transient_rate``: any operation fails with ``KVTransientError`` with that probability
  (``random.Random(seed)``, so a seed replays the same faults for the same call sequence).
- ``same_key_window_ms``: a write (``put``, and ``delete`` unless ``rate_limit_deletes=False``)
  of a key whose last *accepted* write was less than the window ago answers
  :class:`errors.KVRateLimited`, like Workers KV's one write per second per key at the edge.
- ``latency_ms=(lo, hi)``: each operation first sleeps (``asyncio.sleep``) a seeded random
  duration in ``[lo, hi]`` milliseconds, so concurrent operations interleave; ``(0, 0)`` never
  yields to the event loop.

A faulted operation never changes the inner store. ``clock`` returns *milliseconds* (a test's
fake clock, or monotonic time by default) and only drives the same-key window.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from errors import KVRateLimited, KVTransientError
from storage.kv import MAX_LIST_LIMIT, KVStore, ListPage, Metadata, ValueWithMetadata

T = TypeVar("T")
Method = Literal["get", "get_with_metadata", "put", "delete", "list"]
Outcome = Literal["ok", "fail_at", "crashed", "transient", "rate_limited"]


def _monotonic_ms() -> float:
    return time.monotonic() * 1000


@dataclass(frozen=True)
class OpRecord:
    """One operation as the wrapper saw it; ``key`` is ``list:{prefix}`` for listings."""

    n: int
    method: Method
    key: str
    outcome: Outcome


class FaultyKV:
    """A :class:`kv.KVStore` that fails, rate-limits and delays its inner store on purpose."""

    def __init__(
        self,
        inner: KVStore,
        *,
        seed: int,
        fail_at: int | None = None,
        crash: bool = True,
        transient_rate: float = 0.0,
        same_key_window_ms: int | None = None,
        latency_ms: tuple[int, int] = (0, 0),
        clock: Callable[[], float] = _monotonic_ms,
        rate_limit_deletes: bool = True,
    ) -> None:
        if fail_at is not None and fail_at < 0:
            raise ValueError("fail_at counts operations from 0")
        if not 0.0 <= transient_rate <= 1.0:
            raise ValueError("transient_rate is a probability")
        if same_key_window_ms is not None and same_key_window_ms <= 0:
            raise ValueError("same_key_window_ms must be positive (or None for no limit)")
        lo, hi = latency_ms
        if not 0 <= lo <= hi:
            raise ValueError("latency_ms is (lo, hi) with 0 <= lo <= hi")
        self.inner = inner
        self.seed = seed
        self.fail_at = fail_at
        self.crash = crash
        self.transient_rate = transient_rate
        self.same_key_window_ms = same_key_window_ms
        self.latency_ms = latency_ms
        self.rate_limit_deletes = rate_limit_deletes
        self._clock = clock
        self._rng = random.Random(seed)
        self._last_write: dict[str, float] = {}
        self.ops = 0
        self.crashed = False
        self.log: list[OpRecord] = []
        self.delays_ms: list[float] = []

    # -- bookkeeping ------------------------------------------------------------------------

    def count(self, outcome: Outcome) -> int:
        return sum(1 for record in self.log if record.outcome == outcome)

    @property
    def faults(self) -> int:
        """Operations that raised instead of reaching the inner store."""
        return sum(1 for record in self.log if record.outcome != "ok")

    def _fail(self, n: int, method: Method, key: str, outcome: Outcome) -> None:
        self.log.append(OpRecord(n, method, key, outcome))
        if outcome == "rate_limited":
            raise KVRateLimited(retry_after=1, detail=f"KV 429 on op {n} ({method} {key})")
        raise KVTransientError(detail=f"injected KV fault ({outcome}) on op {n} ({method} {key})")

    def _is_write(self, method: Method) -> bool:
        return method == "put" or (method == "delete" and self.rate_limit_deletes)

    async def _op(self, method: Method, key: str, call: Callable[[], Awaitable[T]]) -> T:
        n = self.ops
        self.ops += 1
        if self.crashed:
            self._fail(n, method, key, "crashed")
        if n == self.fail_at:
            self.crashed = self.crash
            self._fail(n, method, key, "fail_at")
        if self.transient_rate and self._rng.random() < self.transient_rate:
            self._fail(n, method, key, "transient")
        if self.same_key_window_ms is not None and self._is_write(method):
            last = self._last_write.get(key)
            if last is not None and self._clock() - last < self.same_key_window_ms:
                self._fail(n, method, key, "rate_limited")
        lo, hi = self.latency_ms
        if hi > 0:
            delay = self._rng.uniform(lo, hi)
            self.delays_ms.append(delay)
            await asyncio.sleep(delay / 1000)
            if self.crashed:  # the request died while this call was on its way
                self._fail(n, method, key, "crashed")
        result = await call()
        if method in ("put", "delete"):
            self._last_write[key] = self._clock()
        self.log.append(OpRecord(n, method, key, "ok"))
        return result

    # -- the KVStore protocol ---------------------------------------------------------------

    async def get(self, key: str) -> str | None:
        return await self._op("get", key, lambda: self.inner.get(key))

    async def get_with_metadata(self, key: str) -> ValueWithMetadata | None:
        return await self._op(
            "get_with_metadata", key, lambda: self.inner.get_with_metadata(key)
        )

    async def put(
        self,
        key: str,
        value: str,
        *,
        metadata: Metadata | None = None,
        expiration: int | None = None,
    ) -> None:
        await self._op("put", key, lambda: self.inner.put(key, value, metadata=metadata,
                                                          expiration=expiration))

    async def delete(self, key: str) -> None:
        await self._op("delete", key, lambda: self.inner.delete(key))

    async def list(
        self, *, prefix: str = "", limit: int = MAX_LIST_LIMIT, cursor: str | None = None
    ) -> ListPage:
        return await self._op(
            "list", f"list:{prefix}",
            lambda: self.inner.list(prefix=prefix, limit=limit, cursor=cursor),
        )
