"""At most one index compaction per index per interval in an isolate, and none forgotten.

Every write is in the journal before it is acknowledged, so folding it into the root is only
housekeeping: it keeps the seed-format array fresh and the journal short. Doing it after every
write is wasteful in a burst (each compaction lists the journal and rewrites the root that the
next one rewrites again) and harmful at the edge, where KV takes about one write per second per
key. So a write's compaction waits for the end of the interval, and the writes that follow
share it: a chat turn (the user's message, then the assistant's) or a burst costs one pass,
not one per write. A read that finds work compacts at once from what it read (it has listed
the journal already), unless a compaction began within the interval or one is scheduled.

State is per isolate (``entry.py`` keeps one pacer). A request never waits on another's work:
the scheduled compaction is a task of the request that scheduled it, and others only look at
the set of scheduled indexes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

DEFAULT_INTERVAL_MS = 1_000
# Indexes remembered per isolate; older ones are forgotten (as if quiet).
MAX_TRACKED = 4_096


class CompactionPacer:
    def __init__(
        self, interval_ms: int = DEFAULT_INTERVAL_MS,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.interval_ms = interval_ms
        self._sleep = sleep
        self._started: dict[str, int] = {}  # index -> when its last compaction began
        self._scheduled: set[str] = set()

    def plan(self, index: str, now_ms: int, *, trailing: bool = False) -> int | None:
        """Milliseconds to wait before compacting ``index`` (0: now), or None: one is already
        scheduled and will fold this work too. Unless ``trailing``, an index that has not
        begun a compaction within the interval compacts now; with it, at the interval's end
        (a write: what follows it soon shares the pass). A plan of 0 counts as begun."""
        if index in self._scheduled:
            return None
        last = self._started.get(index)
        recent = last is not None and 0 <= now_ms - last < self.interval_ms
        delay = (last + self.interval_ms - now_ms if last is not None and recent
                 else self.interval_ms if trailing else 0)
        if delay <= 0:
            self.begin(index, now_ms)
            return 0
        self._scheduled.add(index)
        return delay

    async def wait(self, index: str, delay_ms: int, now_ms: Callable[[], int]) -> None:
        """Sleep out a planned delay, then mark the compaction begun."""
        try:
            if delay_ms > 0:
                await self._sleep(delay_ms / 1000)
        finally:
            self._scheduled.discard(index)
        self.begin(index, now_ms())

    def begin(self, index: str, now_ms: int) -> None:
        self._started.pop(index, None)  # re-insert: the dict stays in order of last use
        self._started[index] = now_ms
        if len(self._started) > MAX_TRACKED:
            del self._started[next(iter(self._started))]

    @property
    def sleep(self) -> Callable[[float], Awaitable[object]]:
        """How this isolate waits (``asyncio.sleep``; a fake clock's in tests)."""
        return self._sleep

    def is_scheduled(self, index: str) -> bool:
        return index in self._scheduled
