"""Erasing a scope: every message of a user or conversation, from every index it is in, a
bounded number per request, leaving alone what may be a create still in flight."""

from __future__ import annotations

from collections.abc import Sequence

from index.sorted_index import IndexView
from index.zset import Entry
from kvformat import Op, intent_key
from store.model import EraseResult, Record, Scope, indexes_of
from store.plans import Plans
from store.shared import Shared

# Half-finished erases of one scope completed per request (each is a few KV operations).
MAX_INTENTS = 8
# An erase deletes at most this many messages per request (2 KV ops each, plus index writes),
# keeping well inside Workers' 1,000 KV operations per invocation; callers repeat until done.
MAX_ERASE_PER_REQUEST = 400


class Eraser:
    def __init__(self, shared: Shared, plans: Plans) -> None:
        self._shared = shared
        self._plans = plans

    async def erase(self, scope: Scope) -> EraseResult:
        """Delete every message of a user or conversation, from every index they are in."""
        await self._finish_earlier(scope)
        # Listed down to the confirmed horizon: every entry journaled within the settle time is
        # known to be recent, so a create still in flight is recognised below.
        indexes = self._shared.indexes
        view = await indexes.read(scope.index, trust=False, cap=False)
        indexes.after_read(view)
        entries = await view.zrange_by_score(limit=MAX_ERASE_PER_REQUEST + 1)
        more = len(entries) > MAX_ERASE_PER_REQUEST
        entries = entries[:MAX_ERASE_PER_REQUEST]
        found = await self._shared.fetch(e.member for e in entries)
        doomed, ops = self._removals(scope, view, entries, found)
        if doomed:
            await self._plans.delete_records(intent_key(scope.index), doomed,
                                             {k: v for k, v in ops.items() if v})
        deleted = sum(1 for s in found if s is not None)
        remaining = await view.zcount() - len(entries) if more else 0
        return EraseResult(deleted, remaining)

    async def _finish_earlier(self, scope: Scope) -> None:
        # An earlier erase of this scope that died half-way (or answered 503): its plan is at a
        # key this erase can read, since a listing may lag behind even its own location's
        # writes; plans of older releases carry an id, and only a listing finds them.
        await self._plans.finish(intent_key(scope.index))
        pending = await self._shared.kv.list(prefix=intent_key(scope.index) + ":",
                                             limit=MAX_INTENTS)
        for key in pending.keys:
            await self._plans.finish(key.name)

    def _removals(
        self, scope: Scope, view: IndexView, entries: Sequence[Entry],
        found: Sequence[Record | None],
    ) -> tuple[list[str], dict[str, list[Op]]]:
        """The members to delete and the removals of their entries, by index."""
        indexes = self._shared.indexes
        ops: dict[str, list[Op]] = {scope.index: []}
        doomed: list[str] = []
        # Folded within the settle time (and a put's time): a miss of such an entry's record may
        # be a cached one, or its create may still be in flight.
        settled = view.read_ms - indexes.settle_ms - indexes.put_ms
        root_recent = view.root.newest > settled
        # A listing behind its root may show an old op of a member the root holds from a newer
        # one (a re-create): its ops cannot say the member is long gone either.
        lagging = indexes.lags_behind_root(view)
        for entry, stored in zip(entries, found, strict=True):
            if stored is None and (view.is_recent(entry.member) or lagging
                                   or (root_recent and entry.member not in view.overlay)):
                # Entries journaled, record not seen: a create in flight (whose other index
                # this erase cannot know) or a record this location does not see yet. Left
                # alone, in every index: ordered after this erase (a later erase takes it), or,
                # had its create crashed, removed by the first erase once it has settled.
                continue
            doomed.append(entry.member)
            earlier = stored.earlier if stored is not None else ()
            ops[scope.index].append(Op.rem(entry.member, entry.score, earlier))
            if stored is None:
                continue  # long gone: only this index can still name it
            for index_key in indexes_of(stored.message):
                if index_key != scope.index:
                    ops.setdefault(index_key, []).append(
                        Op.rem(entry.member, stored.message["timestamp"], earlier)
                    )
        return doomed, ops
