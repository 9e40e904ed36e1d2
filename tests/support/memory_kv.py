"""In-memory fake of Cloudflare Workers KV, for unit tests and benchmarks.

The store is written against :class:`kv.KVStore`; this fake satisfies it without a Worker
runtime. It enforces the same limits as Workers KV (key, value, metadata, TTL, list limit),
lists keys in UTF-8 byte order with opaque cursors that survive writes between pages, hides
expired keys according to an injectable clock, and counts operations so tests can assert
how many KV calls a code path costs.
"""

from __future__ import annotations

import base64
import json
import time
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from dataclasses import dataclass

from storage.kv import (
    MAX_KEY_BYTES,
    MAX_LIST_LIMIT,
    MAX_METADATA_BYTES,
    MAX_VALUE_BYTES,
    MIN_EXPIRATION_TTL,
    ListedKey,
    ListPage,
    Metadata,
    ValueWithMetadata,
)


class KVLimitError(ValueError):
    """A call that real Workers KV would reject: a limit is exceeded or an argument is invalid."""


@dataclass
class _Entry:
    value: str
    metadata_json: str | None  # stored serialized, so neither the caller's dict nor ours leaks
    expiration: int | None  # absolute unix seconds


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise KVLimitError(f"{what} is not encodable as UTF-8 (lone surrogate?)") from exc


def checked_put(
    key: str, value: str, metadata: Metadata | None, expiration_ttl: int | None,
    expiration: int | None = None, now_s: float = 0.0,
) -> tuple[bytes, str | None]:
    """What Workers KV refuses in a put (``KVLimitError``); the key's bytes and the metadata
    serialized, for a fake that accepts it."""
    raw = _key_bytes(key)
    size = len(_utf8(value, "value"))
    if size > MAX_VALUE_BYTES:
        raise KVLimitError(f"value is {size} UTF-8 bytes; the limit is {MAX_VALUE_BYTES}")
    if expiration_ttl is not None and expiration_ttl < MIN_EXPIRATION_TTL:
        raise KVLimitError(
            f"expiration_ttl is {expiration_ttl}s; the minimum is {MIN_EXPIRATION_TTL}s"
        )
    if expiration is not None and expiration < now_s + MIN_EXPIRATION_TTL:
        raise KVLimitError(
            f"expiration {expiration} is less than {MIN_EXPIRATION_TTL}s in the future"
        )
    return raw, _dump_metadata(metadata)


def _key_bytes(key: str) -> bytes:
    raw = _utf8(key, "key")
    if not raw:
        raise KVLimitError("key must not be empty")
    if key in (".", ".."):
        raise KVLimitError(f"key must not be {key!r}")
    if len(raw) > MAX_KEY_BYTES:
        raise KVLimitError(f"key is {len(raw)} UTF-8 bytes; the limit is {MAX_KEY_BYTES}")
    return raw


def _dump_metadata(metadata: Metadata | None) -> str | None:
    if metadata is None:
        return None
    try:
        text = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise KVLimitError(f"metadata is not JSON-serializable: {exc}") from exc
    size = len(_utf8(text, "metadata"))
    if size > MAX_METADATA_BYTES:
        raise KVLimitError(f"metadata is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
    return text


def _load_metadata(text: str | None) -> Metadata | None:
    return None if text is None else json.loads(text)  # a fresh copy on every read


def _decode_cursor(cursor: str) -> bytes:
    try:
        return base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
    except ValueError as exc:  # binascii.Error and UnicodeEncodeError are both ValueErrors
        raise KVLimitError(f"invalid list cursor {cursor!r}") from exc


class MemoryKV:
    """A :class:`kv.KVStore` held in a dict. ``snapshot``/``metadata_of`` are not counted."""

    reads: int
    writes: int
    deletes: int
    lists: int

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._data: dict[bytes, _Entry] = {}  # keyed by UTF-8 name
        self._order: list[bytes] = []  # every key of _data, sorted (= UTF-8 byte order)
        self.reset_counters()

    @property
    def ops(self) -> int:
        """Total KV operations since construction or the last :meth:`reset_counters`."""
        return self.reads + self.writes + self.deletes + self.lists

    def reset_counters(self) -> None:
        self.reads = self.writes = self.deletes = self.lists = 0

    def _live(self, raw: bytes) -> _Entry | None:
        entry = self._data.get(raw)
        expiration = None if entry is None else entry.expiration
        if expiration is not None and self._clock() >= expiration:
            return None
        return entry

    async def get(self, key: str) -> str | None:
        entry = self._live(_key_bytes(key))
        self.reads += 1
        return None if entry is None else entry.value

    async def get_with_metadata(self, key: str) -> ValueWithMetadata | None:
        entry = self._live(_key_bytes(key))
        self.reads += 1
        if entry is None:
            return None
        return ValueWithMetadata(entry.value, _load_metadata(entry.metadata_json))

    async def put(
        self,
        key: str,
        value: str,
        *,
        metadata: Metadata | None = None,
        expiration_ttl: int | None = None,
        expiration: int | None = None,
    ) -> None:
        raw, metadata_json = checked_put(key, value, metadata, expiration_ttl, expiration,
                                         self._clock())
        if expiration_ttl is not None:
            expiration = int(self._clock() + expiration_ttl)
        self.writes += 1
        if raw not in self._data:
            insort(self._order, raw)
        self._data[raw] = _Entry(value, metadata_json, expiration)

    async def delete(self, key: str) -> None:
        raw = _key_bytes(key)
        self.deletes += 1
        if self._data.pop(raw, None) is not None:
            del self._order[bisect_left(self._order, raw)]

    async def list(
        self, *, prefix: str = "", limit: int = MAX_LIST_LIMIT, cursor: str | None = None
    ) -> ListPage:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise KVLimitError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
        wanted = _utf8(prefix, "prefix")
        start = bisect_left(self._order, wanted)
        if cursor is not None:  # the cursor is the last name returned: resume just after it
            start = max(start, bisect_right(self._order, _decode_cursor(cursor)))
        self.lists += 1
        keys: list[ListedKey] = []
        last = b""
        for index in range(start, len(self._order)):
            raw = self._order[index]
            if not raw.startswith(wanted):
                break
            entry = self._live(raw)
            if entry is None:
                continue
            if len(keys) == limit:  # another live match exists, so this page is not the last
                next_cursor = base64.urlsafe_b64encode(last).decode("ascii")
                return ListPage(keys, list_complete=False, cursor=next_cursor)
            meta = _load_metadata(entry.metadata_json)
            keys.append(ListedKey(raw.decode("utf-8"), meta, entry.expiration))
            last = raw
        return ListPage(keys, list_complete=True, cursor=None)

    def snapshot(self) -> dict[str, str]:
        """Every live key and its value, in listing order."""
        live = ((raw, self._live(raw)) for raw in self._order)
        return {raw.decode("utf-8"): entry.value for raw, entry in live if entry is not None}

    def metadata_of(self, key: str) -> Metadata | None:
        """The metadata of a live key (None if it has none); KeyError if the key is absent."""
        entry = self._live(_key_bytes(key))
        if entry is None:
            raise KeyError(key)
        return _load_metadata(entry.metadata_json)
