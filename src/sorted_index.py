"""Sorted-set indexes in Workers KV that lose no write under concurrency.

KV has no atomic update, so a read-modify-write of the index array loses updates when requests
race. The index is therefore kept LSM-style, in two parts:

``{index}`` (e.g. ``user:chat:alice``), the *head*
    The layout other systems read: a JSON array of ``{"score", "member"}`` in sorted-set order.
    It is a compacted snapshot. Its KV metadata ``{"at": ms}`` records when the compaction that
    wrote it began reading, which says exactly which journal entries it has folded in.

``idx:log:{index}:{version}``, the *journal*
    One immutable, uniquely named key per mutation batch, written before the write is
    acknowledged. ``version`` starts with the writer's clock in zero-padded milliseconds, so a
    prefix listing returns entries in time order. The ops ride in KV metadata when they fit (a
    ``list`` returns them with no extra read) and always in the value.

The rules, with ``S`` = ``settle_ms`` (how long a put may take to show up in a listing, and how
stale a cached read may be; 60 s at the edge):

1. Entry ``j`` (written at ``t_j``) is *folded* into a head iff ``t_j + S <= head.at``.
   A compaction that read the head at ``at`` and then listed the journal saw every entry with
   ``t_j <= at - S``, and the head it read already held everything folded before, so the head it
   writes holds every entry it claims. Readers apply only unfolded entries, in version order, on
   top of the head: the latest op per member wins, so replaying an entry twice is harmless.
2. A compaction writes only if it finishes within ``MAX_COMPACTION_MS`` of its read, so a slow
   compactor cannot overwrite a newer head with a much older snapshot. A head may still regress
   by up to that much; the entries it then no longer folds are still in the journal, because:
3. Entry ``j`` is deleted only when it is folded into the head just read and that head's ``at``
   is older than ``now - (MAX_COMPACTION_MS + S)``. By then no compactor that could write a
   head not folding ``j`` is still running, and no cached read can return such a head.

Net effect: a write is durable once its journal put returns; every listing and count merges the
head with the pending journal, and the head converges to the exact live set as soon as one
compaction runs after a burst. Compactions run after writes and reads (deferred past the
response where the runtime allows), touch a bounded number of keys, and a failed or rate-limited
head write is harmless: the journal still holds everything.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from errors import StorageUnavailable
from jsonutil import dumps
from kv import MAX_METADATA_BYTES, KVStore
from sortedset import Entry, SortedSet

JOURNAL_PREFIX = "idx:log:"
MAX_COMPACTION_MS = 10_000
# Journal entries deleted per compaction: keeps each request far below KV's 1,000-op budget.
MAX_GC_DELETES = 32
_METADATA_ROOM = MAX_METADATA_BYTES - 64  # leave room for the other metadata fields

OpKind = Literal["add", "rem"]
_counter = itertools.count()


@dataclass(frozen=True)
class Op:
    kind: OpKind
    member: str
    score: int | None = None

    @staticmethod
    def add(member: str, score: int) -> Op:
        return Op("add", member, score)

    @staticmethod
    def rem(member: str) -> Op:
        return Op("rem", member)

    def to_json(self) -> list[object]:
        return ["a", self.score, self.member] if self.kind == "add" else ["r", self.member]

    @staticmethod
    def from_json(raw: object) -> Op:
        if isinstance(raw, list) and len(raw) == 3 and raw[0] == "a":
            score, member = raw[1], raw[2]
            if isinstance(score, int) and isinstance(member, str):
                return Op.add(member, score)
        if isinstance(raw, list) and len(raw) == 2 and raw[0] == "r" and isinstance(raw[1], str):
            return Op.rem(raw[1])
        raise ValueError(f"not a journal op: {raw!r}")


def apply_ops(zset: SortedSet, ops: Sequence[Op]) -> None:
    for op in ops:
        if op.kind == "add" and op.score is not None:
            zset.zadd(op.member, op.score)
        else:
            zset.zrem(op.member)


@dataclass(frozen=True)
class JournalEntry:
    key: str
    written_ms: int
    ops: tuple[Op, ...] | None  # None: too big for metadata, read the value when needed


@dataclass
class IndexView:
    """An index as one request sees it: the head merged with its unfolded journal."""

    index: str
    zset: SortedSet
    head_at: int
    head_entries: list[Entry]
    journal: list[JournalEntry] = field(default_factory=list)
    unfolded: int = 0
    read_ms: int = 0
    # Members named by unfolded journal entries: their records may be too new to be visible
    # everywhere yet, so repair leaves them alone.
    recent_members: frozenset[str] = frozenset()
    _head_cache: frozenset[Entry] | None = field(default=None, init=False, repr=False,
                                                 compare=False)

    def settled_member(self, entry: Entry) -> bool:
        """True if ``entry`` comes from the head alone, folded at least ``settle_ms`` ago."""
        return entry.member not in self.recent_members and entry in self._head_set()

    def _head_set(self) -> frozenset[Entry]:
        if self._head_cache is None:
            self._head_cache = frozenset(self.head_entries)
        return self._head_cache


def journal_prefix(index: str) -> str:
    return f"{JOURNAL_PREFIX}{index}:"


def parse_head(raw: str | None) -> list[Entry]:
    if raw is None:
        return []
    try:
        data = json.loads(raw)
        return [Entry(int(item["score"]), str(item["member"])) for item in data]
    except (ValueError, TypeError, KeyError):
        # A head someone else damaged is only a cache: start from the journal instead of failing.
        return []


def dump_head(entries: Sequence[Entry]) -> str:
    return dumps([e.to_json() for e in entries])


class IndexStore:
    """Reads, journals and compacts sorted-set indexes stored in KV."""

    def __init__(self, kv: KVStore, clock_ms: Callable[[], int], settle_ms: int) -> None:
        self._kv = kv
        self._clock_ms = clock_ms
        self._settle_ms = settle_ms

    def _new_version(self, now_ms: int) -> str:
        # Milliseconds first for time order; a per-isolate counter and random bits make it unique.
        return f"{now_ms:013d}-{next(_counter) & 0xFFFFFF:06x}{secrets.token_hex(5)}"

    async def record(self, index: str, ops: Sequence[Op]) -> None:
        """Durably journal ``ops`` for ``index``; after this returns the write is visible."""
        if not ops:
            return
        now = self._clock_ms()
        payload = [op.to_json() for op in ops]
        text = dumps(payload)
        metadata: dict[str, object] = {"t": now}
        if len(text.encode("utf-8")) <= _METADATA_ROOM:
            metadata["ops"] = payload
        await self._kv.put(f"{journal_prefix(index)}{self._new_version(now)}", text,
                           metadata=metadata)

    async def read(self, index: str) -> IndexView:
        read_ms = self._clock_ms()
        head = await self._kv.get_with_metadata(index)
        head_entries = parse_head(head.value if head else None)
        head_at = _int_field(head.metadata if head else None, "at")
        zset = SortedSet.from_sorted(head_entries)
        journal = await self._list_journal(index)
        unfolded = [j for j in journal if j.written_ms + self._settle_ms > head_at]
        recent: set[str] = set()
        for entry in unfolded:
            ops = entry.ops if entry.ops is not None else await self._load_ops(entry)
            apply_ops(zset, ops)
            recent.update(op.member for op in ops)
        return IndexView(index, zset, head_at, head_entries, journal, len(unfolded), read_ms,
                         frozenset(recent))

    async def rebuild(self, index: str, entries: list[Entry], scan_started_ms: int) -> bool:
        """Replace the head with a set rebuilt from message records (see ``ChatStore.reindex``).

        Stamped with the time the scan began: every journal entry settled before then is
        reflected in the records it read, later ones are replayed on top by readers. Like a
        compaction, a scan that took too long must not write (rule 2).
        """
        if self._clock_ms() - scan_started_ms > MAX_COMPACTION_MS:
            return False
        ordered = SortedSet(entries).entries()
        await self._kv.put(index, dump_head(ordered), metadata={"at": scan_started_ms})
        return True

    async def _list_journal(self, index: str) -> list[JournalEntry]:
        entries: list[JournalEntry] = []
        cursor: str | None = None
        prefix = journal_prefix(index)
        while True:
            page = await self._kv.list(prefix=prefix, cursor=cursor)
            for key in page.keys:
                written = _int_field(key.metadata, "t")
                if not written:  # fall back to the version's clock part
                    digits = key.name[len(prefix) : len(prefix) + 13]
                    written = int(digits) if digits.isdigit() else 0
                raw_ops = (key.metadata or {}).get("ops")
                ops = _parse_ops(raw_ops) if raw_ops is not None else None
                entries.append(JournalEntry(key.name, written, ops))
            if page.list_complete or not page.cursor:
                return entries
            cursor = page.cursor

    async def _load_ops(self, entry: JournalEntry) -> tuple[Op, ...]:
        raw = await self._kv.get(entry.key)
        if raw is None:  # deleted by a concurrent GC, so it is folded already
            return ()
        parsed = _parse_ops(json.loads(raw))
        return parsed if parsed is not None else ()

    async def compact(self, view: IndexView) -> bool:
        """Fold the view's journal into the head and delete what no reader can need any more.

        Returns True when a new head was written. Never raises for KV trouble: the journal keeps
        every write, so a skipped compaction only delays convergence.
        """
        wrote = False
        now = self._clock_ms()
        merged = view.zset.entries()
        # Re-stamp an unchanged head too once it would fold more entries, or they never get GC'd.
        newly_folded = any(
            view.head_at < j.written_ms + self._settle_ms <= view.read_ms for j in view.journal
        )
        changed = merged != view.head_entries or newly_folded
        if changed and now - view.read_ms <= MAX_COMPACTION_MS:
            try:
                await self._kv.put(view.index, dump_head(merged), metadata={"at": view.read_ms})
                wrote = True
            except StorageUnavailable:
                pass  # e.g. 429 for a hot key at the edge: a later compaction catches up
        safe_before = now - (MAX_COMPACTION_MS + self._settle_ms)
        if view.head_at <= safe_before:
            collectable = [
                j for j in view.journal if j.written_ms + self._settle_ms <= view.head_at
            ]
            for entry in collectable[:MAX_GC_DELETES]:
                try:
                    await self._kv.delete(entry.key)
                except StorageUnavailable:
                    break
        return wrote


def _int_field(metadata: dict[str, object] | None, name: str) -> int:
    value = (metadata or {}).get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _parse_ops(raw: object) -> tuple[Op, ...] | None:
    if not isinstance(raw, list):
        return None
    try:
        return tuple(Op.from_json(item) for item in raw)
    except ValueError:
        return None
