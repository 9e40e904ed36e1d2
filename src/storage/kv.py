"""The storage protocol the store is written against.

The real Workers KV binding (adapted in ``entry.py``) and the in-memory fake used by the unit
tests both satisfy :class:`KVStore`, the way redis-py's commands are written against one
protocol whatever the connection is. Values are ``str`` (UTF-8 JSON); metadata is a small JSON
object that KV keeps beside the value and returns from ``list`` without a second read.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

# Workers KV limits (https://developers.cloudflare.com/kv/platform/limits/).
MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 25 * 1024 * 1024
MAX_METADATA_BYTES = 1024
MAX_LIST_LIMIT = 1000
MIN_EXPIRATION_TTL = 60

Metadata = dict[str, Any]


@dataclass(frozen=True)
class ValueWithMetadata:
    value: str
    metadata: Metadata | None


@dataclass(frozen=True)
class ListedKey:
    name: str
    metadata: Metadata | None = None
    expiration: int | None = None


@dataclass(frozen=True)
class ListPage:
    keys: list[ListedKey] = field(default_factory=list)
    list_complete: bool = True
    cursor: str | None = None


class KVStore(Protocol):
    """What the store needs from Workers KV. Every method is one KV operation."""

    async def get(self, key: str) -> str | None: ...

    async def get_with_metadata(self, key: str) -> ValueWithMetadata | None: ...

    async def put(
        self,
        key: str,
        value: str,
        *,
        metadata: Metadata | None = None,
        expiration: int | None = None,
    ) -> None:
        """``expiration``: Unix seconds after which KV deletes the key itself (at least 60 s
        ahead)."""

    async def delete(self, key: str) -> None: ...

    async def list(
        self, *, prefix: str = "", limit: int = MAX_LIST_LIMIT, cursor: str | None = None
    ) -> ListPage: ...


@runtime_checkable
class BatchReads(Protocol):
    """Optional: a store that can issue several reads in one call (still one KV operation per
    key). In Pyodide every awaited JS promise is a trip through the event loop, which costs more
    than the read itself in the local runtime; one call for a page's records avoids 50."""

    async def get_many_with_metadata(
        self, keys: Sequence[str]
    ) -> list[ValueWithMetadata | None]: ...


async def get_many_with_metadata(
    kv: KVStore, keys: Sequence[str]
) -> list[ValueWithMetadata | None]:
    """``get_with_metadata`` of every key, in order: batched where the store can, else at once."""
    if not keys:
        return []
    if _batches(type(kv)):
        return await cast(BatchReads, kv).get_many_with_metadata(keys)
    return list(await asyncio.gather(*(kv.get_with_metadata(key) for key in keys)))


@functools.cache
def _batches(kv_type: type) -> bool:
    """Whether a KV class reads in batches; asked once per class (a protocol ``isinstance``
    costs more than many a request's own work)."""
    return callable(getattr(kv_type, "get_many_with_metadata", None))
