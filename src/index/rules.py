"""The index's timing rules and size bounds; the argument for each is in ``docs/design.md``."""

from __future__ import annotations

from dataclasses import dataclass

MAX_COMPACTION_MS = 10_000
# Rule 1 assumes a put shows in listings within settle_ms of its clock reading: never 0.
MIN_SETTLE_MS = 100
# Rule 5: how long after its clock reading a journal put is taken to be listed where it was
# made (retries included), how often a busy index gets a full pass, and for how long after a
# full pass readers trust what the passes saw. Capped at fractions of the settle time so that
# tests with a tiny settle time keep the same proportions.
MAX_PUT_MS = 2_000
# Journal puts slower than put_ms are written again under a fresh key, this many times in all.
MAX_JOURNAL_ATTEMPTS = 3
FULL_PASS_MS = 5_000
# Deletes per journal collection (and per garbage round): inside KV's 1,000-op budget.
MAX_GC_DELETES = 256
# Journal entries a *reader* applies at most (one listing page): a read's work and memory stay
# bounded whatever the write volume. Compactions are not capped (see ``IndexStore.read``).
MAX_READ_ENTRIES = 1_000
# The first listing page is small: a reader of a freshly compacted index needs only a few
# entries, and a page carries every op of its keys across the FFI. Each further page is
# PAGE_GROWTH times larger (up to KV's 1,000): a reader that needs a few more entries than the
# first page held (a pass running late under a burst) fetches a few hundred keys, not 1,000,
# while a long walk (a full pass, a collection) still takes few round trips.
FIRST_PAGE = 64
PAGE_GROWTH = 4
# Once an isolate has walked an index's journal, its next walk of the same depth starts with a
# page of what the last one needed plus half again (at least MIN_FIRST_PAGE): one round trip
# under a steady burst, and a handful of keys on a quiet index, whose journal is often hundreds
# of folded keys waiting 2S for collection.
MIN_FIRST_PAGE = 4
# How far below its horizon a full listing still reads ops, as position hints only: two racing
# moves of one message (one request apart) may both name the same stale ``prev``, and only the
# first one's op says where it put the member.
HINT_MARGIN_MS = MAX_COMPACTION_MS
# Collection probes at most this many version buckets for the oldest entry it leaves.
MAX_PROBES = 64
# Value-only journal entries (written before ops always fit in metadata) a reader reads.
MAX_HINT_READS = 16
# Retention sweeps an index at most this often (an eighth of the retention, within bounds): an
# aged-out entry stays stored that much longer, hidden from every read by the floor.
MIN_SWEEP_MS = 1_000
MAX_SWEEP_MS = 3_600_000
# Segments whose scores are not timestamps that one pass sweeps (reads, filters, rewrites);
# passes go on sweeping until none is left.
MAX_SWEPT_SEGMENTS = 16


@dataclass(frozen=True)
class Layout:
    """Size bounds (chosen by measurement; see the README's benchmark section)."""

    head_max: int = 128  # the head spills into the newest segment beyond this many entries
    head_keep: int = 64  # ...keeping this many newest entries
    segment_max: int = 2048  # a segment splits in two beyond this many entries


@dataclass(frozen=True)
class Timing:
    """The durations of rules 1-5 for one settle time ``S`` (``settle_ms``)."""

    settle_ms: int

    def __post_init__(self) -> None:
        if self.settle_ms < MIN_SETTLE_MS:
            raise ValueError(f"settle_ms must be at least {MIN_SETTLE_MS} (slower than any put)")

    @property
    def put_ms(self) -> int:
        """P: how long after its clock reading a put is listed where it was made (rule 5)."""
        return min(MAX_PUT_MS, self.settle_ms // 2)

    @property
    def full_pass_ms(self) -> int:
        """F: how often a busy index gets a full pass (rule 5)."""
        return min(FULL_PASS_MS, self.settle_ms // 2)

    @property
    def trust_ms(self) -> int:
        """How long after a full pass readers trust ``root.seen`` (rule 5)."""
        return 2 * self.full_pass_ms

    @property
    def collection_delay_ms(self) -> int:
        """Rule 3, with rule 5's passes: how long a folded journal entry may still be needed."""
        return 2 * self.settle_ms + MAX_COMPACTION_MS + self.full_pass_ms

    @property
    def garbage_delay_ms(self) -> int:
        """Rule 4: how long a replaced segment or manifest stays readable by some root."""
        return 2 * (self.settle_ms + MAX_COMPACTION_MS)


@dataclass(frozen=True)
class Retention:
    """How long entries stay: one whose message timestamp (``kvformat.entry_time``: the score,
    or read from the member) is more than ``retention_ms`` before now is removed by the next
    sweep of its index, and hidden from every read before that by the floor."""

    retention_ms: int

    def floor(self, now_ms: int) -> int:
        return now_ms - self.retention_ms

    @property
    def sweep_every_ms(self) -> int:
        return min(max(self.retention_ms // 8, MIN_SWEEP_MS), MAX_SWEEP_MS)
