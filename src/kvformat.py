"""The KV format: every key, and how each stored value and its metadata are written and read.

Other systems read part of this layout (the message records and the index roots), so it changes
only together with the README's "KV layout" table. Why the index is shaped this way, and the
rules its passes follow, is in ``docs/design.md``; this module only says what is where.

=============================  ================================================================
``chat:{id}``                  a message record: the message as JSON; metadata ``u`` (user),
                               ``c`` (conversation), ``s`` (timestamp), ``p`` (earlier
                               timestamps an index entry may still sit at, newest first)
``idx:intent:{subject}``       a delete's (``chat:{id}``) or an erase's (``{index}``) plan
``user:conversations:{id}``    the user's conversation list, an index like the message indexes:
                               one entry per conversation, its newest message (``chat:{id}``)
                               at that message's timestamp
``conversation:users:{id}``    who writes in the conversation: an index with one entry per
                               message, ``user:{user id}:{timestamp, 16 digits}:chat:{id}`` at
                               score 0 (so grouped by user, oldest first): whose lists its
                               activity goes to
``conversation:meta:{id}``     a conversation's ``title`` and ``metadata`` (JSON), set by PATCH
``{index}``                    an index root (``user:chat:{id}``, ``conversation:chat:{id}``):
                               the newest entries as ``[{"score", "member"}]``, metadata
                               :meth:`Root.metadata`
``idx:seg:{index}:{version}``  a segment: entries like the root's, immutable
``idx:man:{index}:{version}``  a manifest: :class:`Manifest`, immutable
``idx:log:{index}:{version}``  a journal piece: ops (:class:`Op`) in the value and, when they
                               fit, in the metadata ``{"t": ms, "ops": [...]}``; versions count
                               down from the clock (:func:`journal_key`)
=============================  ================================================================
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

from index.zset import MIN_SCORE, Entry, SortedSet
from jsonutil import dumps, is_int
from storage.kv import MAX_METADATA_BYTES

MESSAGE_PREFIX = "chat:"
INTENT_PREFIX = "idx:intent:"
JOURNAL_PREFIX = "idx:log:"
SEGMENT_PREFIX = "idx:seg:"
MANIFEST_PREFIX = "idx:man:"
CONVERSATION_LIST_PREFIX = "user:conversations:"
PARTICIPANTS_PREFIX = "conversation:users:"
PARTICIPANT_MEMBER_PREFIX = "user:"
CONVERSATION_PREFIX = "conversation:meta:"
CONVERSATION_INDEX_PREFIX = "conversation:chat:"
USER_INDEX_PREFIX = "user:chat:"

METADATA_ROOM = MAX_METADATA_BYTES - 64  # leave room for the other metadata fields
# Journal versions count down from here, so a prefix listing is newest first. Versions below
# LEGACY_BELOW are clock readings of entries written before (they count up): until 2128, a
# count-down version stays above it and a clock reading below.
VERSION_CEILING = 10**13 - 1
LEGACY_BELOW = 5 * 10**12
# The lowest position of all: every real entry sorts after it.
BOTTOM = Entry(MIN_SCORE - 1, "")
# Collection lists the due part of the journal by version prefixes: buckets of at least this
# many milliseconds, and at most this many listings (wider buckets beyond).
VERSION_BUCKET_DIGITS = 4
VERSION_BUCKET = 10**VERSION_BUCKET_DIGITS
MAX_PREFIXES = 24

OpKind = Literal["add", "rem"]


@dataclass(frozen=True)
class Op:
    kind: OpKind
    member: str
    score: int | None = None
    prev: int | None = None  # the member's score before this op, when known
    # Older scores an index entry might still sit at (a move whose index write crashed).
    also: tuple[int, ...] = ()

    @staticmethod
    def add(member: str, score: int, prev: int | None = None, also: tuple[int, ...] = ()) -> Op:
        return Op("add", member, score, prev, also)

    @staticmethod
    def rem(member: str, prev: int | None = None, also: tuple[int, ...] = ()) -> Op:
        return Op("rem", member, None, prev, also)

    def to_json(self) -> list[object]:
        tail: list[object] = []
        if self.also:
            tail = [self.prev, list(self.also)]
        elif self.prev is not None:
            tail = [self.prev]
        if self.kind == "add":
            return ["a", self.score, self.member, *tail]
        return ["r", self.member, *tail]

    @staticmethod
    def from_json(raw: object) -> Op:
        if isinstance(raw, list) and raw and raw[0] == "a" and 3 <= len(raw) <= 5:
            score, member = raw[1], raw[2]
            prev, also = _hints(raw[3:])
            if is_int(score) and isinstance(member, str):
                return Op.add(member, score, prev, also)
        if isinstance(raw, list) and raw and raw[0] == "r" and 2 <= len(raw) <= 4:
            member = raw[1]
            prev, also = _hints(raw[2:])
            if isinstance(member, str):
                return Op.rem(member, prev, also)
        raise ValueError(f"not a journal op: {raw!r}")

    def positions(self) -> set[int]:
        """Scores at which this op says the member is or was."""
        return {s for s in (self.score, self.prev, *self.also) if s is not None}


def _hints(tail: list[object]) -> tuple[int | None, tuple[int, ...]]:
    prev = tail[0] if tail else None
    also = tail[1] if len(tail) > 1 else []
    if (prev is not None and not is_int(prev)) or not isinstance(also, list):
        raise ValueError("bad position hints")
    scores = tuple(s for s in also if is_int(s))
    if len(scores) != len(also):
        raise ValueError("bad position hints")
    return (prev if is_int(prev) else None), scores


@dataclass(frozen=True)
class JournalEntry:
    key: str
    written_ms: int
    ops: tuple[Op, ...] | None  # None: too big for metadata, read the value when needed
    # Written before versions counted down (their clock counts up, and they list before every
    # newer entry): a walk newest first cannot stop at them.
    legacy: bool = False


@dataclass(frozen=True)
class Segment:
    key: str
    lo: Entry  # inclusive lower bound of the positions it covers
    count: int
    min_score: int
    max_score: int
    # The oldest message timestamp its entries carry, for retention, where scores are not
    # timestamps (a participants index); None elsewhere.
    oldest: int | None = None

    def to_json(self) -> list[object]:
        fields: list[object] = [self.key, self.lo.score, self.lo.member, self.count,
                                self.min_score, self.max_score]
        return fields if self.oldest is None else [*fields, self.oldest]

    @staticmethod
    def from_json(raw: Any) -> Segment:
        key, lo_score, lo_member, count, min_score, max_score, *rest = raw
        oldest = rest[0] if rest and is_int(rest[0]) else None
        return Segment(str(key), Entry(int(lo_score), str(lo_member)), int(count),
                       int(min_score), int(max_score), oldest)


@dataclass(frozen=True)
class Manifest:
    segments: tuple[Segment, ...] = ()
    garbage: tuple[tuple[str, int], ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"segments": [s.to_json() for s in self.segments],
                "garbage": [list(g) for g in self.garbage]}

    @staticmethod
    def from_json(raw: Any) -> Manifest:
        return Manifest(tuple(Segment.from_json(s) for s in raw["segments"]),
                        tuple((str(k), int(t)) for k, t in raw["garbage"]))


@dataclass
class Root:
    head: SortedSet
    # Read time of the last *full* pass: every journal entry written at or before
    # ``at - settle_ms`` is folded (rule 1), wherever the reader is.
    at: int = 0
    manifest_key: str | None = None
    head_lo: Entry = BOTTOM
    # When the manifest's oldest garbage was retired (None: no garbage). Lets a compaction that
    # touches only the head skip reading the manifest unless there is garbage to collect.
    garbage_since: int | None = None
    # Rule 5: the entries written at or before ``seen`` that the passes listed are folded; a
    # reader trusts this only shortly after a full pass. None: a root from before rule 5.
    seen: int | None = None
    # Write time of the newest entry folded: entries in (at - settle_ms, newest] still wait for
    # a full pass to confirm them.
    newest: int = 0
    # Write time of the oldest journal entry left when last looked (None: the journal was
    # empty): lets a pass know when collection is due without listing the whole journal.
    oldest: int | None = 0
    # Names the pass that wrote this root, so that an isolate can remember which journal
    # entries it saw folded in it (``Folded``). None: written before pass ids.
    pass_id: str | None = None
    # When a pass last dropped what retention removed (None: never).
    swept: int | None = None
    # The read found no root (not stored: a fact about one read).
    absent: bool = False

    def metadata(self) -> dict[str, object]:
        """The root's KV metadata: ``at``, ``i``, ``v``, ``nf``, ``j``, then ``m``/``lo``/``g``
        once a manifest exists, and ``r`` once retention swept it."""
        metadata: dict[str, object] = {"at": self.at}
        if self.pass_id is not None:
            metadata["i"] = self.pass_id
        if self.seen is not None:
            metadata["v"] = self.seen
            metadata["nf"] = self.newest
            if self.oldest is not None:
                metadata["j"] = self.oldest
        if self.manifest_key is not None:
            metadata["m"] = self.manifest_key
            metadata["lo"] = [self.head_lo.score, self.head_lo.member]
            if self.garbage_since is not None:
                metadata["g"] = self.garbage_since
        if self.swept is not None:
            metadata["r"] = self.swept
        return metadata

    def unconfirmed(self, settle_ms: int) -> bool:
        """Folded entries newer than the confirmed horizon: only a full pass can vouch for them."""
        return self.newest > self.at - settle_ms


def journal_prefix(index: str) -> str:
    return f"{JOURNAL_PREFIX}{index}:"


def parse_entries(raw: str | None) -> list[Entry]:
    if raw is None:
        return []
    try:
        items = json.loads(raw)
    except (ValueError, RecursionError):
        items = None
    entries: list[Entry] = []
    for item in items if isinstance(items, list) else [None]:
        score: object = item.get("score") if isinstance(item, dict) else None
        member: object = item.get("member") if isinstance(item, dict) else None
        if not is_int(score) or not isinstance(member, str):
            # Damaged by someone else: the journal (and a reindex) still know the truth, so
            # serve what can be trusted rather than fail every read of this index.
            return []
        entries.append(Entry(score, member))
    return entries


def dump_entries(entries: Iterable[Entry]) -> str:
    """The seed-format array, exactly as ``dumps([e.to_json() ...])`` writes it, without a dict
    per entry (a spill writes a whole segment: thousands)."""
    quote = json.encoder.encode_basestring  # what dumps uses with ensure_ascii=False
    return "[" + ",".join([
        f'{{"score":{score:d},"member":{quote(member)}}}' for score, member in entries
    ]) + "]"


def with_lo(segment: Segment, lo: Entry) -> Segment:
    return replace(segment, lo=lo)


def int_field(metadata: dict[str, Any] | None, name: str) -> int:
    value = (metadata or {}).get(name)
    return value if is_int(value) else 0


def metadata_pieces(ops: list[list[object]]) -> list[list[list[object]]]:
    """``ops`` cut, in order, into pieces whose JSON fits in a journal key's metadata (a single
    op too big for it forms a piece of its own, journaled in the value only)."""
    pieces: list[list[list[object]]] = [[]]
    size = 2  # the brackets
    for op in ops:
        op_size = len(dumps(op).encode("utf-8")) + 1  # and a comma
        if pieces[-1] and size + op_size > METADATA_ROOM:
            pieces.append([])
            size = 2
        pieces[-1].append(op)
        size += op_size
    return pieces


def version_prefixes(low: int, high: int) -> list[str]:
    """Decimal prefixes of the 13-digit versions in ``[low, high]``, ascending: the fewest
    listings (at most ``MAX_PREFIXES``) that reach every key in the range, each rounded out to
    whole buckets of at least ``VERSION_BUCKET`` (the keys beyond the range they also list are
    the caller's to skip)."""
    width = 13
    bucket = VERSION_BUCKET
    while True:
        a, b = max(low, 0) // bucket, max(high, low, 0) // bucket
        digits = width - len(str(bucket)) + 1
        prefixes: list[str] = []
        while a <= b and len(prefixes) <= MAX_PREFIXES:
            size = 1  # the largest aligned block of buckets starting at a that fits
            while a % (size * 10) == 0 and a + size * 10 - 1 <= b and size * 10 <= 10**digits:
                size *= 10
            length = digits - len(str(size)) + 1
            prefixes.append(f"{a // size:0{length}d}" if length else "")
            a += size
        if len(prefixes) <= MAX_PREFIXES:
            return prefixes
        bucket *= 10


def parse_ops(raw: object) -> tuple[Op, ...] | None:
    if not isinstance(raw, list):
        return None
    try:
        return tuple(Op.from_json(item) for item in raw)
    except ValueError:
        return None


# -- message records and plans ---------------------------------------------------------------


def message_key(message_id: str) -> str:
    return f"{MESSAGE_PREFIX}{message_id}"


def conversation_list_key(user_id: str) -> str:
    """The index listing a user's conversations, each by its newest message."""
    return f"{CONVERSATION_LIST_PREFIX}{user_id}"


def participants_key(conversation_id: str) -> str:
    """The index of who writes in a conversation (``participation_member`` members)."""
    return f"{PARTICIPANTS_PREFIX}{conversation_id}"


# Timestamps are 0..2^53-1: 16 digits, zero-padded, so members sort by time within a user.
TIMESTAMP_DIGITS = 16


def participation_member(user_id: str, timestamp: int, message_member: str) -> str:
    """A message's entry in its conversation's participants index:
    ``user:{user}:{timestamp}:chat:{id}`` (the timestamp lets retention age it out)."""
    return f"{participant_since(user_id, timestamp)}{message_member}"


def participant_since(user_id: str, timestamp: int) -> str:
    """Where ``user_id``'s participants-index members of ``timestamp`` and later begin."""
    return f"{participant_prefix(user_id)}{timestamp:0{TIMESTAMP_DIGITS}d}:"


def participation_time(member: str) -> int | None:
    """The message timestamp a participants-index member carries (None: not one)."""
    parts = member[len(PARTICIPANT_MEMBER_PREFIX):].split(":", 2)
    if len(parts) < 3 or len(parts[1]) != TIMESTAMP_DIGITS or not parts[1].isdigit():
        return None
    return int(parts[1])


def participant_prefix(user_id: str) -> str:
    """What every participants-index member of ``user_id`` starts with (ids have no ``:``)."""
    return f"{PARTICIPANT_MEMBER_PREFIX}{user_id}:"


def participant_of(member: str) -> str:
    """The user of a participants-index member."""
    return member[len(PARTICIPANT_MEMBER_PREFIX):].split(":", 1)[0]


def score_is_time(index: str) -> bool:
    """Whether ``index`` scores its entries by a message timestamp (message indexes and
    conversation lists), which retention ages out by score."""
    return index.startswith((USER_INDEX_PREFIX, CONVERSATION_INDEX_PREFIX,
                             CONVERSATION_LIST_PREFIX))


def entry_time(index: str, entry: Entry) -> int | None:
    """The message timestamp an entry of ``index`` stands for, which retention ages it by
    (None: an entry retention keeps, e.g. of a participants member from before timestamps)."""
    if score_is_time(index):
        return entry.score
    if index.startswith(PARTICIPANTS_PREFIX):
        return participation_time(entry.member)
    return None


def conversation_key(conversation_id: str) -> str:
    """A conversation's own fields (title, metadata)."""
    return f"{CONVERSATION_PREFIX}{conversation_id}"


def message_id_of(member: str) -> str:
    """The message id of an index member (``chat:{id}``)."""
    return member[len(MESSAGE_PREFIX):]


def intent_key(subject: str) -> str:
    """Where a delete of ``chat:{id}`` (or an erase of an index) writes its plan ahead."""
    return f"{INTENT_PREFIX}{subject}"


def record_metadata(message: dict[str, Any], earlier: tuple[int, ...] = ()) -> dict[str, Any]:
    """A message record's metadata: owner, conversation and position, so that listings and
    deletes need not parse the record. Absent fields are omitted rather than null."""
    metadata: dict[str, Any] = {"u": message["user_id"], "s": message["timestamp"]}
    if message.get("conversation_id") is not None:
        metadata["c"] = message["conversation_id"]
    if earlier:
        metadata["p"] = list(earlier)
    return metadata


def earlier_positions(metadata: dict[str, Any] | None, keep: int) -> tuple[int, ...]:
    """The earlier positions a record's metadata names (at most ``keep``, newest first)."""
    raw = (metadata or {}).get("p")
    earlier = raw if isinstance(raw, list) else []
    return tuple(s for s in earlier if is_int(s))[:keep]


# -- the journal -----------------------------------------------------------------------------


def journal_key(index: str, now_ms: int, seq: int, suffix: str) -> str:
    """A journal piece's key: its version counts down from the clock (so a listing is newest
    first), then ``seq`` (a per-isolate counter, counting down too) and random ``suffix``."""
    return f"{journal_prefix(index)}{VERSION_CEILING - now_ms:013d}-{seq:06x}{suffix}"


def journal_key_time(key: str, prefix: str, metadata: dict[str, Any] | None) -> tuple[int, bool]:
    """When a listed journal piece was written, and whether its key is of the previous
    release's (ascending) format."""
    digits = key[len(prefix) : len(prefix) + 13]
    version = int(digits) if digits.isdigit() else VERSION_CEILING
    legacy = version < LEGACY_BELOW
    written = int_field(metadata, "t")
    if not written:  # fall back to the clock part of the version
        written = version if legacy else VERSION_CEILING - version
    return written, legacy


def decode_root(
    value: str | None, meta: dict[str, Any] | None, head: SortedSet | None = None
) -> Root:
    """A root as stored (``None``: no root yet, so nothing folded and nothing to collect);
    ``head``: ``value`` already parsed."""
    if value is None:
        return Root(SortedSet(), oldest=None, absent=True)
    meta = meta or {}
    if head is None:
        head = SortedSet.from_sorted(parse_entries(value))
    manifest_key = meta.get("m")
    lo = meta.get("lo")
    head_lo = BOTTOM
    if isinstance(lo, list) and len(lo) == 2 and is_int(lo[0]) and isinstance(lo[1], str):
        head_lo = Entry(lo[0], lo[1])
    garbage_since = meta.get("g")
    at = int_field(meta, "at")
    seen = meta.get("v")
    if not is_int(seen):
        # A root from before rule 5: nothing is trusted, everything may need collecting.
        return Root(head, at, manifest_key if isinstance(manifest_key, str) else None,
                    head_lo, garbage_since if is_int(garbage_since) else None,
                    seen=None, newest=at, oldest=0)
    oldest = meta.get("j")
    pass_id = meta.get("i")
    swept = meta.get("r")
    return Root(head, at, manifest_key if isinstance(manifest_key, str) else None, head_lo,
                garbage_since if is_int(garbage_since) else None, seen=seen,
                newest=int_field(meta, "nf"), oldest=oldest if is_int(oldest) else None,
                pass_id=pass_id if isinstance(pass_id, str) else None,
                swept=swept if is_int(swept) else None)
