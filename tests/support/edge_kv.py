"""An in-memory model of Workers KV as the edge serves it: per-location caches, lagging
listings, slow propagation, 429s and transient failures, all driven by one seed.

``memory_kv.MemoryKV`` is one consistent store; real Workers KV is not. What Cloudflare documents,
and what :class:`EdgeWorld` models (``world.location(name)`` is one location's ``KVStore``):

- **Reads are cached per location, misses included.** A ``get`` answers from the location's cache
  while its entry is younger than ``cache_ttl_ms`` (60 s "or more" at the edge); otherwise it
  fetches the newest version visible at the location and caches that, absent or not.
- **Writes propagate.** A ``put``/``delete`` accepted at ``t`` is visible at another location from
  ``t + d``, ``d`` drawn once per write and location from ``[min_propagation_ms,
  max_propagation_ms]``; at its own location from ``t + own_write_delay_ms``. Once visible there,
  a location's own write replaces its cache entry (a location sees its own writes, if late);
  other locations' writes wait for the cache entry to expire.
- **Listings lag.** Each ``list`` shows the keys (and metadata) visible at the location at ``now -
  lag``, ``lag`` drawn per listing from ``[min_list_lag_ms, max_list_lag_ms]``: a new key may be
  missing, a deleted one still listed. Later pages of one listing (its cursor) keep its time, so
  pages are consistent with each other.
- **At most one write per second per key**, world-wide: a ``put`` or ``delete`` of a key whose
  last accepted write is less than 1,000 ms old raises :class:`errors.KVRateLimited` (HTTP 429).
- **Transient failures**: any call raises :class:`errors.KVTransientError` with probability
  ``failure_rate``; a failed write happened or not, half and half (the caller cannot tell).
- **Scripted trouble** (for scenarios): :meth:`EdgeWorld.delay_next_write` (a slow write),
  :meth:`EdgeWorld.fail_writes` (writes of some keys fail for a while, as in an outage),
  :meth:`EdgeWorld.lose_next_ack` (a write that happens but is reported failed) and
  :meth:`EdgeWorld.lag_lists` (one location's listings lag by a fixed time).
- Limits, UTF-8 byte order and cursors as ``memory_kv`` (its checks are reused here).

Checkers see through the model: :meth:`EdgeWorld.settled_view` is the authoritative state,
:meth:`EdgeWorld.history` every accepted write of a key (with the location and the request tag
of :data:`REQUEST_TAG` that made it), and :meth:`EdgeWorld.quiet_ms` how long nothing may be
written for every location to see everything (a "quiet period"). The clock is the caller's:
milliseconds, shared with the code under test; the model never advances it.
"""

from __future__ import annotations

import asyncio
import base64
import random
from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

from errors import KVRateLimited, KVTransientError
from storage.kv import (
    MAX_LIST_LIMIT,
    ListedKey,
    ListPage,
    Metadata,
    ValueWithMetadata,
)
from support.memory_kv import (
    KVLimitError,
    _decode_cursor,
    _key_bytes,
    _load_metadata,
    _utf8,
    checked_put,
)

RATE_LIMIT_WINDOW_MS = 1_000
# Who is calling: a simulation sets it per request, so the history says which request wrote what.
REQUEST_TAG: ContextVar[str] = ContextVar("edge_kv_request_tag", default="")

Sleep = Callable[[float], Awaitable[object]]


@dataclass(frozen=True)
class Write:
    """One accepted ``put`` (``value`` set) or ``delete`` (``value`` None) of ``key``."""

    seq: int  # world-wide order of acceptance: the newest visible write wins
    key: str
    value: str | None
    metadata_json: str | None
    expires_ms: int | None
    origin: str  # the location that wrote it
    at_ms: int
    salt: int  # seeds this write's propagation delays
    tag: str  # REQUEST_TAG of the writer

    def live(self, now_ms: int) -> bool:
        return self.value is not None and (self.expires_ms is None or now_ms < self.expires_ms)

    def describe(self, start_ms: int = 0) -> str:
        what = "delete" if self.value is None else f"put {_short(self.value)}"
        return (f"#{self.seq} +{(self.at_ms - start_ms) / 1000:.3f}s {self.origin} "
                f"[{self.tag or '-'}] {what}")


def _short(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass(frozen=True)
class Read:
    """One ``get`` answered: which write it returned (None: absent), and whether from the
    location's cache while a newer write was already accepted (``stale``)."""

    at_ms: int
    location: str
    key: str
    seq: int | None
    cached: bool
    stale: bool
    tag: str
    upto_seq: int = 0  # writes accepted (world-wide) when it was answered

    def describe(self, start_ms: int = 0) -> str:
        what = "absent" if self.seq is None else f"#{self.seq}"
        how = "cache" if self.cached else "fetch"
        return (f"+{(self.at_ms - start_ms) / 1000:.3f}s {self.location} [{self.tag or '-'}] "
                f"get -> {what} ({how}{', STALE' if self.stale else ''})")


@dataclass
class Counters:
    """Calls made at one location (failed ones included) and how many failed."""

    gets: int = 0
    puts: int = 0
    deletes: int = 0
    lists: int = 0
    rate_limited: int = 0
    transient: int = 0

    @property
    def ops(self) -> int:
        return self.gets + self.puts + self.deletes + self.lists


@dataclass
class _Cached:
    write: Write | None  # None: cached as absent (nothing visible yet)
    filled_ms: int
    filled_seq: int  # writes accepted up to then; a later own write replaces the entry


@dataclass(frozen=True)
class _Timing:
    cache_ttl_ms: int
    min_propagation_ms: int
    max_propagation_ms: int
    min_list_lag_ms: int
    max_list_lag_ms: int
    own_write_delay_ms: int


class EdgeWorld:
    """The authoritative KV (every write ever accepted) and the locations that serve it."""

    def __init__(
        self,
        seed: int,
        clock: Callable[[], int],
        *,
        cache_ttl_ms: int = 60_000,
        max_propagation_ms: int = 1_000,
        max_list_lag_ms: int = 60_000,
        own_write_delay_ms: int = 0,
        rate_limit_writes: bool = True,
        failure_rate: float = 0.0,
        min_propagation_ms: int = 0,
        min_list_lag_ms: int = 0,
        rate_limit_deletes: bool = True,
        latency_ms: tuple[int, int] = (0, 0),
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not 0 <= min_propagation_ms <= max_propagation_ms:
            raise ValueError("propagation is 0 <= min <= max")
        if not 0 <= min_list_lag_ms <= max_list_lag_ms:
            raise ValueError("list lag is 0 <= min <= max")
        if cache_ttl_ms < 0 or own_write_delay_ms < 0:
            raise ValueError("cache TTL and own write delay are >= 0")
        if not 0 <= latency_ms[0] <= latency_ms[1]:
            raise ValueError("latency_ms is (lo, hi) with 0 <= lo <= hi")
        self.seed = seed
        self.clock = clock
        self.timing = _Timing(cache_ttl_ms, min_propagation_ms, max_propagation_ms,
                              min_list_lag_ms, max_list_lag_ms, own_write_delay_ms)
        self.rate_limit_writes = rate_limit_writes
        self.rate_limit_deletes = rate_limit_deletes
        self.failure_rate = failure_rate  # mutable: a simulation heals the world for its checks
        self.latency_ms = latency_ms
        self.sleep = sleep
        self.rng = random.Random(seed)
        self.locations: dict[str, LocationKV] = {}
        self.rate_limited: Counter[str] = Counter()  # 429s per key
        self.rate_limited_deletes: Counter[str] = Counter()  # ...of which deletes
        self.reads: list[Read] = []  # every get answered, for traces
        self._history: dict[str, list[Write]] = {}
        self._order: list[bytes] = []  # every key ever written, in UTF-8 byte order
        self._last_accepted: dict[str, int] = {}
        self._slow: dict[str, int] = {}
        self._failing: list[tuple[str, str | None, int]] = []  # (prefix, location, until_ms)
        self._lost_acks: list[tuple[str, str | None]] = []  # (prefix, location)
        self._list_lag: dict[str, int] = {}
        self._delays: dict[tuple[int, str], int] = {}
        self._seq = 0

    def location(self, name: str) -> LocationKV:
        """The KV as seen from location ``name`` (made on first use; one per name)."""
        if name not in self.locations:
            self.locations[name] = LocationKV(self, name)
        return self.locations[name]

    # -- visibility -------------------------------------------------------------------------

    def visible_from(self, write: Write, location: str) -> int:
        """When ``write`` becomes visible at ``location`` (fixed per write and location, and
        independent of the order in which locations ask)."""
        if write.origin == location:
            return write.at_ms + self.timing.own_write_delay_ms
        cached = self._delays.get((write.seq, location))
        if cached is None:
            lo, hi = self.timing.min_propagation_ms, self.timing.max_propagation_ms
            cached = random.Random(f"{write.salt}/{location}").randint(lo, hi)
            self._delays[(write.seq, location)] = cached
        return write.at_ms + cached

    def version_at(
        self, key: str, location: str, at_ms: int, upto_seq: int | None = None
    ) -> Write | None:
        """The newest write of ``key`` visible at ``location`` at ``at_ms`` (None: none yet),
        among the writes accepted up to ``upto_seq`` if given."""
        for write in reversed(self._history.get(key, ())):
            if upto_seq is not None and write.seq > upto_seq:
                continue
            if self.visible_from(write, location) <= at_ms:
                return write
        return None

    def own_write(self, location: str, key: str, now_ms: int) -> Write | None:
        """The newest write ``location`` itself made of ``key`` that it can see by now."""
        for write in reversed(self._history.get(key, ())):
            if write.origin == location and self.visible_from(write, location) <= now_ms:
                return write
        return None

    def reads_own_write(self, location: str, key: str) -> bool:
        """Whether a ``get`` of ``key`` at ``location`` now must return the newest write of it:
        the newest write is ``location``'s own and visible there (it replaced the cache)."""
        writes = self._history.get(key)
        if not writes:
            return False
        newest = writes[-1]
        return newest.origin == location and self.visible_from(newest, location) <= self.clock()

    @property
    def worst_staleness_ms(self) -> int:
        """How long after a write a read or listing may still miss it, at worst."""
        t = self.timing
        reach = max(t.own_write_delay_ms, t.max_propagation_ms)
        return reach + max(t.cache_ttl_ms, t.max_list_lag_ms)

    def quiet_ms(self) -> int:
        """Wait this long without writing and every location reads and lists everything."""
        return self.worst_staleness_ms + 1

    # -- writes -----------------------------------------------------------------------------

    def delay_next_write(self, key: str, ms: int) -> None:
        """Make the next ``put``/``delete`` of ``key`` (from anywhere) take ``ms`` before it is
        accepted: the call is slow, and the write is seen nowhere until then."""
        self._slow[key] = ms

    def fail_writes(self, prefix: str, until_ms: int, location: str | None = None) -> None:
        """Make every ``put``/``delete`` of a key under ``prefix`` (made at ``location``, or
        anywhere) fail, not happening, until the clock reaches ``until_ms``: a KV outage of one
        kind of key, long enough to outlast the caller's retries."""
        self._failing.append((prefix, location, until_ms))

    def lose_next_ack(self, prefix: str, location: str | None = None) -> None:
        """Make the next accepted ``put``/``delete`` of a key under ``prefix`` (made at
        ``location``, or anywhere) fail all the same: it happened, and the caller is told it
        did not (a transient failure that happened, on cue). Its retries meet the rate limit."""
        self._lost_acks.append((prefix, location))

    def _ack_lost(self, location: str, key: str) -> bool:
        for n, (prefix, where) in enumerate(self._lost_acks):
            if key.startswith(prefix) and where in (None, location):
                del self._lost_acks[n]
                return True
        return False

    def lag_lists(self, location: str, lag_ms: int | None) -> None:
        """Make every listing at ``location`` lag exactly ``lag_ms`` (None: drawn again from
        the world's range): one location behind the others."""
        if lag_ms is None:
            self._list_lag.pop(location, None)
        else:
            self._list_lag[location] = lag_ms

    def _failing_write(self, location: str, key: str) -> bool:
        now = self.clock()
        return any(key.startswith(prefix) and where in (None, location) and now < until
                   for prefix, where, until in self._failing)

    def _accept(
        self, location: LocationKV, key: str, value: str | None, metadata_json: str | None,
        expires_ms: int | None,
    ) -> Write:
        now = self.clock()
        limited = self.rate_limit_writes and (value is not None or self.rate_limit_deletes)
        last = self._last_accepted.get(key)
        if limited and last is not None and now - last < RATE_LIMIT_WINDOW_MS:
            location.counters.rate_limited += 1
            self.rate_limited[key] += 1
            if value is None:
                self.rate_limited_deletes[key] += 1
            raise KVRateLimited(retry_after=1, detail=f"KV 429: {key} written {now - last} ms ago")
        self._seq += 1
        write = Write(self._seq, key, value, metadata_json, expires_ms, location.name, now,
                      self.rng.getrandbits(64), REQUEST_TAG.get())
        if key not in self._history:
            self._history[key] = []
            insort(self._order, key.encode("utf-8"))
        self._history[key].append(write)
        self._last_accepted[key] = now
        return write

    async def _write(
        self, location: LocationKV, key: str, value: str | None, metadata_json: str | None,
        expires_ms: int | None,
    ) -> None:
        await self._delay(self._slow.pop(key, 0))
        if self._failing_write(location.name, key):
            self._transient(location, "write", key, "outage: did not happen")
        failed = self._fails()
        happened = failed and self.rng.random() < 0.5
        if failed and not happened:
            self._transient(location, "write", key, "did not happen")
        self._accept(location, key, value, metadata_json, expires_ms)
        if failed or self._ack_lost(location.name, key):
            self._transient(location, "write", key, "happened")

    # -- faults and latency -----------------------------------------------------------------

    def _fails(self) -> bool:
        return bool(self.failure_rate) and self.rng.random() < self.failure_rate

    def _transient(self, location: LocationKV, method: str, key: str, note: str = "") -> None:
        location.counters.transient += 1
        detail = f"injected KV failure: {method} {key} at {location.name}"
        raise KVTransientError(detail=f"{detail} ({note})" if note else detail)

    async def _delay(self, extra_ms: int = 0) -> None:
        lo, hi = self.latency_ms
        ms = (self.rng.randint(lo, hi) if hi else 0) + extra_ms
        if ms:
            await self.sleep(ms / 1000)

    def _log_read(self, location: str, key: str, found: Write | None, cached: bool) -> None:
        writes = self._history.get(key, [])
        newest = writes[-1] if writes else None
        now = self.clock()
        live = newest if newest is not None and newest.live(now) else None
        stale = (None if found is None else found.seq) != (None if live is None else live.seq)
        self.reads.append(Read(now, location, key, None if found is None else found.seq,
                               cached, stale, REQUEST_TAG.get(), self._seq))

    # -- for checkers -----------------------------------------------------------------------

    def history(self, key: str) -> list[Write]:
        """Every accepted write of ``key``, oldest first."""
        return list(self._history.get(key, ()))

    def keys_with_prefix(self, prefix: str) -> list[str]:
        """Every key ever written under ``prefix`` (deleted ones too), in listing order."""
        wanted = prefix.encode("utf-8")
        start = bisect_left(self._order, wanted)
        found: list[str] = []
        for raw in self._order[start:]:
            if not raw.startswith(wanted):
                break
            found.append(raw.decode("utf-8"))
        return found

    def settled_view(self) -> dict[str, tuple[str, Metadata | None]]:
        """The authoritative state: every live key's value and metadata, in listing order."""
        now = self.clock()
        view: dict[str, tuple[str, Metadata | None]] = {}
        for raw in self._order:
            newest = self._history[raw.decode("utf-8")][-1]
            if newest.live(now) and newest.value is not None:
                view[newest.key] = (newest.value, _load_metadata(newest.metadata_json))
        return view


@dataclass(frozen=True)
class _Moment:
    """What one listing shows: the location's view at ``as_of_ms`` of the writes accepted up to
    ``upto_seq`` (so that a write made between two pages in the same millisecond stays out)."""

    as_of_ms: int
    upto_seq: int


def _encode_cursor(moment: _Moment, last: bytes) -> str:
    head = f"{moment.as_of_ms}:{moment.upto_seq}\n".encode("ascii")
    return base64.urlsafe_b64encode(head + last).decode("ascii")


def _parse_cursor(cursor: str) -> tuple[_Moment, bytes]:
    head, sep, last = _decode_cursor(cursor).partition(b"\n")
    as_of, colon, upto = head.partition(b":")
    if not (sep and colon and as_of.isdigit() and upto.isdigit()):
        raise KVLimitError(f"invalid list cursor {cursor!r}")
    return _Moment(int(as_of), int(upto)), last


@dataclass
class LocationKV:
    """Workers KV as one location serves it: a :class:`kv.KVStore`. Isolates of a location
    share it (and its cache)."""

    world: EdgeWorld
    name: str
    counters: Counters = field(default_factory=Counters)
    _cache: dict[str, _Cached] = field(default_factory=dict)

    async def _read(self, key: str) -> Write | None:
        _key_bytes(key)
        self.counters.gets += 1
        await self.world._delay()
        if self.world._fails():
            self.world._transient(self, "get", key)
        now = self.world.clock()
        entry = self._cache.get(key)
        own = self.world.own_write(self.name, key, now)
        if entry is not None and own is not None:
            # The location's own write replaces the entry once visible here, if it came later.
            visible = self.world.visible_from(own, self.name)
            if (visible, own.seq) > (entry.filled_ms, entry.filled_seq):
                entry = self._cache[key] = _Cached(own, visible, own.seq)
        cached = entry is not None and now - entry.filled_ms < self.world.timing.cache_ttl_ms
        if entry is None or not cached:
            entry = _Cached(self.world.version_at(key, self.name, now), now, self.world._seq)
            self._cache[key] = entry
        found = entry.write if entry.write is not None and entry.write.live(now) else None
        self.world._log_read(self.name, key, found, cached)
        return found

    def cached(self, key: str) -> bool:
        """Whether a ``get`` of ``key`` here would now be answered from the cache."""
        entry = self._cache.get(key)
        ttl = self.world.timing.cache_ttl_ms
        return entry is not None and self.world.clock() - entry.filled_ms < ttl

    async def get(self, key: str) -> str | None:
        found = await self._read(key)
        return None if found is None else found.value

    async def get_with_metadata(self, key: str) -> ValueWithMetadata | None:
        found = await self._read(key)
        if found is None or found.value is None:
            return None
        return ValueWithMetadata(found.value, _load_metadata(found.metadata_json))

    async def put(
        self, key: str, value: str, *, metadata: Metadata | None = None,
        expiration_ttl: int | None = None, expiration: int | None = None,
    ) -> None:
        _, metadata_json = checked_put(key, value, metadata, expiration_ttl, expiration,
                                       self.world.clock() / 1000)
        expires_ms = (None if expiration_ttl is None
                      else self.world.clock() + expiration_ttl * 1000)
        if expiration is not None:
            expires_ms = expiration * 1000
        self.counters.puts += 1
        await self.world._delay()
        await self.world._write(self, key, value, metadata_json, expires_ms)

    async def delete(self, key: str) -> None:
        _key_bytes(key)
        self.counters.deletes += 1
        await self.world._delay()
        await self.world._write(self, key, None, None, None)

    async def list(
        self, *, prefix: str = "", limit: int = MAX_LIST_LIMIT, cursor: str | None = None
    ) -> ListPage:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise KVLimitError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
        wanted = _utf8(prefix, "prefix")
        resumed = _parse_cursor(cursor) if cursor is not None else None
        self.counters.lists += 1
        await self.world._delay()
        if self.world._fails():
            self.world._transient(self, "list", f"{prefix}*")
        if resumed is not None:  # a later page of one listing: the same moment, past its last key
            return self._page(wanted, limit, *resumed)
        t = self.world.timing
        lag = self.world._list_lag.get(self.name)
        if lag is None:
            lag = self.world.rng.randint(t.min_list_lag_ms, t.max_list_lag_ms)
        return self._page(wanted, limit, _Moment(self.world.clock() - lag, self.world._seq), None)

    def _page(self, wanted: bytes, limit: int, moment: _Moment, after: bytes | None) -> ListPage:
        order = self.world._order
        start = bisect_left(order, wanted)
        if after is not None:  # resume just after the last name returned
            start = max(start, bisect_right(order, after))
        keys: list[ListedKey] = []
        last = b""
        for raw in order[start:]:
            if not raw.startswith(wanted):
                break
            write = self.world.version_at(raw.decode("utf-8"), self.name, moment.as_of_ms,
                                          moment.upto_seq)
            if write is None or not write.live(moment.as_of_ms):
                continue
            if len(keys) == limit:  # another match exists, so this page is not the last
                return ListPage(keys, list_complete=False, cursor=_encode_cursor(moment, last))
            expiration = None if write.expires_ms is None else write.expires_ms // 1000
            keys.append(ListedKey(write.key, _load_metadata(write.metadata_json), expiration))
            last = raw
        return ListPage(keys, list_complete=True, cursor=None)
