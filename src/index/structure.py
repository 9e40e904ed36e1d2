"""An index's stored structure: its root, manifests and segments, read through the isolate's
cache of parsed immutable objects, and what this isolate knows its own roots show."""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from errors import StorageUnavailable
from index.object_cache import ObjectCache
from index.rules import FIRST_PAGE, HINT_MARGIN_MS, MIN_FIRST_PAGE, Timing
from index.zset import SortedSet
from jsonutil import dumps
from kvformat import (
    MANIFEST_PREFIX,
    Manifest,
    Op,
    Root,
    Segment,
    decode_root,
    parse_entries,
    parse_ops,
)
from storage.kv import MAX_LIST_LIMIT, KVStore

if TYPE_CHECKING:
    from index.view import IndexView

FOLDED_PREFIX = "folded:"  # per-isolate cache keys only, never stored in KV
_counter = itertools.count()


def new_version(now_ms: int) -> str:
    """A fresh object version: milliseconds first for time order, a per-isolate counter and
    random bits for unicity."""
    return f"{now_ms:013d}-{next(_counter) & 0xFFFFFF:06x}{secrets.token_hex(5)}"


@dataclass(frozen=True)
class Folded:
    """Journal entries (key -> write time) whose ops one root shows: a pass of this isolate
    wrote that root after seeing them, or found them all in place in it. Facts about an
    immutable root's content, so never stale; a root written by anyone else has another
    ``pass_id`` and is checked in full."""

    pass_id: str
    entries: dict[str, int]


@dataclass(frozen=True)
class ParsedHead:
    """A root's value as last read, parsed: the next read of the same text skips the parse
    (a root changes on every pass, but reads outnumber passes)."""

    text: str
    head: SortedSet


@dataclass(frozen=True)
class Stamps:
    """What this isolate last read of an index root's stamps. A read lists the journal while
    it gets the root, so it sizes that listing's first page by the root it will probably get
    (how far the walk goes is decided by the root it does get)."""

    at: int
    seen: int | None


# Also the parsed ops of journal pieces (uniquely named, never changed): a full pass lists the
# whole settle window again every few seconds, a whole import's ops after one.
# And how many journal keys this isolate's last walk of an index needed (see ``first_page``).
IndexObjects = ObjectCache[
    SortedSet | Manifest | Folded | ParsedHead | Stamps | tuple[Op, ...] | int
]
HEAD_PREFIX = "head:"  # per-isolate cache keys only, never stored in KV
WALKED_PREFIX = "walked:"  # likewise
STAMPS_PREFIX = "stamps:"  # likewise


class Structure:
    """Reads and writes roots, manifests and segments; ``cache`` (one per isolate) keeps parsed
    segments and manifests, which are immutable, and ``Folded`` facts about roots."""

    def __init__(self, kv: KVStore, timing: Timing, cache: IndexObjects | None = None) -> None:
        self._kv = kv
        self._timing = timing
        self._cache = cache

    async def root(self, index: str) -> Root:
        stored = await self._kv.get_with_metadata(index)
        if stored is None:
            return decode_root(None, None)
        cached = self._cache.get(HEAD_PREFIX + index) if self._cache is not None else None
        if isinstance(cached, ParsedHead) and cached.text == stored.value:
            root = decode_root(stored.value, stored.metadata, cached.head)
        else:
            root = decode_root(stored.value, stored.metadata)
            self.remember_head(index, stored.value, root.head)
        self.remember_stamps(index, root)
        return root

    def remember_stamps(self, index: str, root: Root) -> None:
        if self._cache is not None:
            self._cache.put(STAMPS_PREFIX + index, Stamps(root.at, root.seen), 1)

    def last_stamps(self, index: str) -> Stamps | None:
        """The stamps of the root of ``index`` this isolate read last, if it remembers one."""
        known = self._cache.get(STAMPS_PREFIX + index) if self._cache is not None else None
        return known if isinstance(known, Stamps) else None

    def remember_head(self, index: str, text: str, head: SortedSet) -> None:
        """``text`` (a root's value) parses to ``head``, which nobody modifies."""
        if self._cache is not None:
            self._cache.put(HEAD_PREFIX + index, ParsedHead(text, head), len(head))

    async def manifest(self, key: str | None) -> Manifest:
        if key is None:
            return Manifest()
        cached = self._cache.get(key) if self._cache is not None else None
        if isinstance(cached, Manifest):
            return cached
        raw = await self._kv.get(key)
        if raw is None:  # only a bug or a manual deletion gets here; retrying may help
            raise StorageUnavailable(detail="index manifest is missing; run a reindex")
        manifest = Manifest.from_json(json.loads(raw))
        self.remember(key, manifest)
        return manifest

    async def segment(self, key: str) -> SortedSet:
        """A segment, shared with other requests of this isolate: never modify it."""
        cached = self._cache.get(key) if self._cache is not None else None
        if isinstance(cached, SortedSet):
            return cached
        raw = await self._kv.get(key)
        if raw is None:
            raise StorageUnavailable(detail="index segment is missing; run a reindex")
        segment = SortedSet.from_sorted(parse_entries(raw))
        self.remember(key, segment)
        return segment

    def remember(self, key: str, value: SortedSet | Manifest | Folded | tuple[Op, ...]) -> None:
        if self._cache is not None:
            if isinstance(value, Manifest):
                weight = len(value.segments)
            elif isinstance(value, Folded):
                weight = len(value.entries)
            else:
                weight = len(value)
            self._cache.put(key, value, weight)

    def journal_ops(self, key: str, raw: object) -> tuple[Op, ...] | None:
        """The ops of the journal piece ``key`` (``raw``: its metadata's ops), parsed once per
        isolate."""
        cached = self._cache.get(key) if self._cache is not None else None
        if isinstance(cached, tuple):
            return cached
        ops = parse_ops(raw)
        if ops is not None:
            self.remember(key, ops)
        return ops

    def first_page(self, index: str, deep: bool) -> int:
        """How many journal keys a walk of ``index`` asks for first: what this isolate's last
        walk as ``deep`` (down to the confirmed horizon, or only past a trusted one) needed,
        plus half again (``MIN_FIRST_PAGE``). Only the cost depends on it: a walk goes on
        listing until it has what it needs."""
        walked = self._cache.get(_walked_key(index, deep)) if self._cache is not None else None
        if not isinstance(walked, int):
            return FIRST_PAGE
        return min(MAX_LIST_LIMIT, max(MIN_FIRST_PAGE, walked + walked // 2))

    def remember_walked(self, index: str, deep: bool, keys: int) -> None:
        if self._cache is not None:
            self._cache.put(_walked_key(index, deep), keys, 1)

    def folded_in(self, root: Root, index: str) -> dict[str, int]:
        """The journal entries this isolate knows ``root`` shows (see ``Folded``)."""
        if root.pass_id is None or self._cache is None:
            return {}
        known = self._cache.get(f"{FOLDED_PREFIX}{index}")
        return known.entries if isinstance(known, Folded) and known.pass_id == root.pass_id else {}

    def remember_folded(self, view: IndexView, root: Root) -> None:
        """``root`` (the view's, or the one a pass over it wrote) shows every listed entry, and
        what was known of the view's root. Entries below the confirmed horizon (and its hint
        margin) are no longer listed by any pass, so they are forgotten."""
        if root.pass_id is None:
            return
        floor = root.at - self._timing.settle_ms - HINT_MARGIN_MS
        entries = {k: t for k, t in self.folded_in(view.root, view.index).items() if t > floor}
        entries.update((j.key, j.written_ms) for j in view.journal if j.written_ms > floor)
        self.remember(f"{FOLDED_PREFIX}{view.index}", Folded(root.pass_id, entries))

    async def write_manifest(
        self, index: str, segments: list[Segment], garbage: list[tuple[str, int]], now: int
    ) -> str:
        key = f"{MANIFEST_PREFIX}{index}:{new_version(now)}"
        manifest = Manifest(tuple(segments), tuple(garbage))
        await self._kv.put(key, dumps(manifest.to_json()))
        self.remember(key, manifest)
        return key


def _walked_key(index: str, deep: bool) -> str:
    return f"{WALKED_PREFIX}{'deep' if deep else 'trusting'}:{index}"
