"""Retries for KV operations that failed transiently, behind the same ``KVStore`` protocol.

Workers KV answers 429 to more than one write per second per key and occasionally fails a call
outright. Every write this store makes is idempotent (message records are rewritten whole,
journal keys are unique, deletes of a missing key succeed), so retrying is always safe. Backoff
is exponential with full jitter (so retrying isolates spread out instead of colliding again) and
bounded in attempts and total sleep, so a request never hangs; when retries run out the error
propagates as ``StorageUnavailable`` and the client gets 503 with ``Retry-After``.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from errors import KVRateLimited, StorageUnavailable
from storage.kv import (
    MAX_LIST_LIMIT,
    KVStore,
    ListPage,
    Metadata,
    ValueWithMetadata,
    get_many_with_metadata,
)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # waits of at most 0.05+0.1+0.2+0.4+0.8 s: rides out a 1 s hot-key limit
    base_seconds: float = 0.05
    cap_seconds: float = 1.0

    # KV takes about one write per second per key: after a first 429 on a key, a retry sooner
    # than that (full jitter may draw one) would only be refused again.
    hot_key_seconds: float = 1.0

    def delay(self, attempt: int, rng: random.Random, first_429: bool = False) -> float:
        """The wait before retry ``attempt + 1``; ``first_429``: this call's first 429, which
        may follow an attempt that failed to answer but went through (and set off the limit)."""
        jittered = rng.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))
        return max(jittered, self.hot_key_seconds) if first_429 else jittered


class RetryingKV:
    def __init__(
        self, inner: KVStore, sleep: Sleep, policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._inner = inner
        self._sleep = sleep
        self._policy = policy or RetryPolicy()
        self._rng = rng or random.Random()

    async def _retry(self, call: Callable[[], Awaitable[T]]) -> T:
        rate_limited = False
        for attempt in range(self._policy.attempts):
            try:
                return await call()
            except StorageUnavailable as exc:
                if attempt == self._policy.attempts - 1:
                    raise StorageUnavailable(retry_after=1) from None
                first_429 = isinstance(exc, KVRateLimited) and not rate_limited
                rate_limited = rate_limited or first_429
                await self._sleep(self._policy.delay(attempt, self._rng, first_429))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def get(self, key: str) -> str | None:
        return await self._retry(lambda: self._inner.get(key))

    async def get_with_metadata(self, key: str) -> ValueWithMetadata | None:
        return await self._retry(lambda: self._inner.get_with_metadata(key))

    async def get_many_with_metadata(
        self, keys: Sequence[str]
    ) -> list[ValueWithMetadata | None]:
        return await self._retry(lambda: get_many_with_metadata(self._inner, keys))

    async def put(
        self, key: str, value: str, *, metadata: Metadata | None = None,
        expiration: int | None = None,
    ) -> None:
        await self._retry(lambda: self._inner.put(key, value, metadata=metadata,
                                                  expiration=expiration))

    async def delete(self, key: str) -> None:
        await self._retry(lambda: self._inner.delete(key))

    async def list(
        self, *, prefix: str = "", limit: int = MAX_LIST_LIMIT, cursor: str | None = None
    ) -> ListPage:
        return await self._retry(
            lambda: self._inner.list(prefix=prefix, limit=limit, cursor=cursor)
        )
