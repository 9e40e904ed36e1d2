"""Segments and manifests: rewriting the segments a pass touched, spilling an overgrown head,
splitting big segments, and deleting replaced objects once no root can reference them (rule 4)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from index.rules import MAX_GC_DELETES, Layout, Timing
from index.structure import Structure, new_version
from index.view import IndexView
from index.zset import Entry, SortedSet
from kvformat import (
    BOTTOM,
    SEGMENT_PREFIX,
    Root,
    Segment,
    dump_entries,
    entry_time,
    score_is_time,
    with_lo,
)
from storage.kv import KVStore


class Reshaper:
    """Rewrites segments and manifests for a pass; deletes replaced ones when due."""

    def __init__(
        self, kv: KVStore, clock_ms: Callable[[], int], timing: Timing, layout: Layout,
        structure: Structure,
    ) -> None:
        self._kv = kv
        self._clock_ms = clock_ms
        self._timing = timing
        self.layout = layout
        self._structure = structure

    async def reshape(
        self, view: IndexView, touched: dict[str | None, SortedSet], root: Root
    ) -> Root:
        """Rewrite touched segments, spill an overgrown head, collect due garbage: everything
        that changes the manifest. ``root`` comes in with the folded head, goes out complete.
        (One function, a little over the usual length: the three steps share the segment list
        and garbage list of the one manifest they write.)"""
        manifest = await view.manifest()
        head = root.head
        segments: list[Segment] = []
        replaced: list[str] = []
        new_segments: dict[str, list[Entry]] = {}
        for segment in manifest.segments:
            if segment.key not in touched:
                segments.append(segment)
                continue
            # Segments are immutable: a changed one is written anew (split if it grew too big)
            # and the old one becomes garbage. An emptied one simply disappears: its range
            # falls to the segment before it.
            replaced.append(segment.key)
            entries = touched[segment.key].entries()
            if entries:
                for part, part_entries in self.split(entries, segment.lo, view.index):
                    segments.append(part)
                    new_segments[part.key] = part_entries
        head_lo = view.root.head_lo
        if len(head) > self.layout.head_max:
            entries = head.entries()
            spill, keep = entries[: -self.layout.head_keep], entries[-self.layout.head_keep :]
            spill_lo = head_lo
            if segments:
                # Into the newest segment rather than a new small one: segments stay between
                # half and all of segment_max, so the manifest stays short at any history size.
                last = segments.pop()
                if last.key in new_segments:
                    older = new_segments.pop(last.key)
                else:
                    older = (await view.segment(last)).entries()
                    replaced.append(last.key)
                spill, spill_lo = older + spill, last.lo
            for part, part_entries in self.split(spill, spill_lo, view.index):
                segments.append(part)
                new_segments[part.key] = part_entries
            head, head_lo = SortedSet.from_sorted(keep), keep[0]
        segments.sort(key=lambda s: s.lo)
        if segments:
            segments[0] = with_lo(segments[0], BOTTOM)  # the first segment covers the bottom
        elif head_lo != BOTTOM:
            head_lo = BOTTOM  # no segments left: the head covers everything again
        now = self._clock_ms()
        garbage = await self._collect_garbage(
            [*manifest.garbage, *((k, now) for k in replaced)], view.read_ms
        )
        await asyncio.gather(*(self._kv.put(k, dump_entries(v)) for k, v in new_segments.items()))
        for key, entries in new_segments.items():  # the next read of this history wants them
            self._structure.remember(key, SortedSet.from_sorted(entries))
        manifest_key = view.root.manifest_key
        if new_segments or garbage != list(manifest.garbage):
            if manifest_key is not None:  # replaced by the one written below
                garbage.append((manifest_key, now))
            manifest_key = None
            if segments or garbage:
                manifest_key = await self._structure.write_manifest(view.index, segments, garbage,
                                                          view.read_ms)
        garbage_since = min((since for _, since in garbage), default=None)
        return replace(root, head=head, manifest_key=manifest_key, head_lo=head_lo,
                       garbage_since=garbage_since)

    def garbage_due(self, since: int | None, read_ms: int) -> bool:
        return since is not None and since <= read_ms - self._timing.garbage_delay_ms

    def split(
        self, entries: list[Entry], lo: Entry, index: str
    ) -> list[tuple[Segment, list[Entry]]]:
        """Cut ``entries`` into segments of at most ``segment_max``, the first starting at lo."""
        size = self.layout.segment_max
        pieces = max(1, -(-len(entries) // size))
        step = -(-len(entries) // pieces)
        parts: list[tuple[Segment, list[Entry]]] = []
        for n in range(pieces):
            chunk = entries[n * step : (n + 1) * step]
            key = f"{SEGMENT_PREFIX}{index}:{new_version(self._clock_ms())}"
            start = lo if n == 0 else chunk[0]
            parts.append((Segment(key, start, len(chunk), chunk[0].score, chunk[-1].score,
                                  _oldest(index, chunk)), chunk))
        return parts

    async def _collect_garbage(
        self, garbage: list[tuple[str, int]], read_ms: int
    ) -> list[tuple[str, int]]:
        """Delete replaced objects once no root that references them can be read (rule 4)."""
        cutoff = read_ms - self._timing.garbage_delay_ms
        due = [g for g in garbage if g[1] <= cutoff][:MAX_GC_DELETES]
        await asyncio.gather(*(self._kv.delete(key) for key, _ in due))
        return [g for g in garbage if g not in due]


def _oldest(index: str, entries: list[Entry]) -> int | None:
    """For retention, where scores are not message timestamps: the oldest one the entries
    carry (None where scores are, or no entry carries one)."""
    if score_is_time(index):
        return None
    return min((t for e in entries if (t := entry_time(index, e)) is not None), default=None)
