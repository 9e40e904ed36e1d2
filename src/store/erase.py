"""Erasing a scope: every message of a user or conversation, from every index it is in, a
bounded number per request, leaving alone what may be a create still in flight."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from errors import Forbidden
from index.sorted_index import IndexView
from index.zset import MAX_SCORE, Entry
from kvformat import Op, conversation_list_key, intent_key, message_key
from store.activity import Activity
from store.model import (
    EraseResult,
    Message,
    Record,
    Scope,
    indexes_of,
    merge_ops,
    participation,
)
from store.plans import Plans
from store.shared import Shared

# Half-finished erases of one scope completed per request (each is a few KV operations).
MAX_INTENTS = 8
# An erase deletes at most this many messages per request (2 KV ops each, plus index writes),
# of at most MAX_ERASE_CONVERSATIONS conversations (each refreshed: about ten KV ops and one per
# participant), keeping inside Workers' 1,000 KV operations per invocation; callers repeat.
MAX_ERASE_PER_REQUEST = 300
MAX_ERASE_CONVERSATIONS = 8
# Conversation-list entries an erase of a user clears per request once its messages are gone
# (conversations it took part in whose messages were deleted before).
MAX_LIST_LEFTOVERS = 32


class Eraser:
    def __init__(self, shared: Shared, plans: Plans, activity: Activity) -> None:
        self._shared = shared
        self._plans = plans
        self._activity = activity

    async def erase(self, scope: Scope) -> EraseResult:
        """Delete every message of a user or conversation, from every index they are in."""
        view = await self._fresh_view(scope)
        entries = await view.zrange_by_score(limit=MAX_ERASE_PER_REQUEST + 1)
        found = await self._shared.fetch(e.member for e in entries)
        kept = _within_conversation_budget(found[:MAX_ERASE_PER_REQUEST])
        more = len(entries) > kept
        deleted = await self._delete_chunk(scope, view, entries[:kept], found[:kept])
        remaining = await view.zcount() - kept if more else 0
        if scope.kind == "user" and not more:
            remaining += await self._leave_the_rest(scope.id)
        return EraseResult(deleted, remaining)

    async def truncate(
        self, scope: Scope, after: Message, allowed: Callable[[Message], bool] | None = None
    ) -> EraseResult:
        """Delete every message listed after ``after`` in the conversation (exclusive), a chunk
        per request, crash-safe like an erase (same plan, finished by a retry).

        ``allowed`` (a user's credential): every message to go must pass it, and the whole
        range is checked before anything is deleted, so it must fit in one chunk.
        """
        view = await self._fresh_view(scope)
        here = Entry(after["timestamp"], message_key(after["id"]))
        entries = await view.zrange_by_score(limit=MAX_ERASE_PER_REQUEST + 1, after=here)
        found = await self._shared.fetch(e.member for e in entries)
        more = len(entries) > MAX_ERASE_PER_REQUEST
        if allowed is not None:
            if more:
                raise Forbidden(f"a user token may truncate at most {MAX_ERASE_PER_REQUEST} "
                                "messages at once; ask the service to truncate more")
            refused = next((s.message["id"] for s in found
                            if s is not None and not allowed(s.message)), None)
            if refused is not None:
                raise Forbidden(f"message {refused!r} is another user's: nothing was deleted")
        chunk = MAX_ERASE_PER_REQUEST
        deleted = await self._delete_chunk(scope, view, entries[:chunk], found[:chunk])
        remaining = 0
        if more:
            ties = await view.zrange_by_score(here.score, here.score, after=here)
            remaining = await view.zcount(here.score + 1, MAX_SCORE) + len(ties) - chunk
        return EraseResult(deleted, remaining)

    async def _fresh_view(self, scope: Scope) -> IndexView:
        """The scope's index for an erase, after finishing the scope's earlier erase. Listed
        down to the confirmed horizon: every entry journaled within the settle time is known
        to be recent, so a create still in flight is recognised (``_removals``)."""
        await self._finish_earlier(scope)
        indexes = self._shared.indexes
        view = await indexes.read(scope.index, trust=False, cap=False)
        indexes.after_read(view)
        return view

    async def _delete_chunk(
        self, scope: Scope, view: IndexView, entries: Sequence[Entry],
        found: Sequence[Record | None],
    ) -> int:
        """Delete these messages under the scope's plan; returns how many records went."""
        doomed, ops = self._removals(scope, view, entries, found)
        if doomed:
            await self._plans.delete_records(intent_key(scope.index), doomed,
                                             {k: v for k, v in ops.items() if v})
        return sum(1 for s in found if s is not None)

    async def _leave_the_rest(self, user_id: str) -> int:
        """Once a user's messages are gone, take the conversations still in the user's list
        (ones the user took part in whose messages went before) off it, a bounded number per
        request; returns how many are left."""
        indexes = self._shared.indexes
        view = await indexes.read(conversation_list_key(user_id))
        indexes.after_read(view)
        entries = await view.zrange_by_score(limit=MAX_LIST_LEFTOVERS + 1)
        chunk = entries[:MAX_LIST_LEFTOVERS]
        found = await self._shared.fetch(e.member for e in chunk)
        leaving: dict[str, dict[str, tuple[int, ...]]] = {}
        orphans: list[Op] = []
        for entry, stored in zip(chunk, found, strict=True):
            conversation_id = None if stored is None else stored.message.get("conversation_id")
            if conversation_id is None:
                orphans.append(Op.rem(entry.member, entry.score))
            else:
                leaving.setdefault(conversation_id, {})[entry.member] = (entry.score,)
        if orphans:
            await self._shared.journal({conversation_list_key(user_id): orphans})
        await self._activity.refresh_all(
            {c: ({user_id}, stale) for c, stale in leaving.items()})
        return len(entries) - len(chunk)

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
            ops = merge_ops(ops, participation(stored.message, False, earlier))
        return doomed, ops


def _within_conversation_budget(found: Sequence[Record | None]) -> int:
    """How many of these messages (in erase order) one request deletes: all, unless they span
    more than ``MAX_ERASE_CONVERSATIONS`` conversations, each of which is refreshed."""
    seen: set[str] = set()
    for n, stored in enumerate(found):
        conversation_id = None if stored is None else stored.message.get("conversation_id")
        if conversation_id is not None and conversation_id not in seen:
            if len(seen) == MAX_ERASE_CONVERSATIONS:
                return n
            seen.add(conversation_id)
    return len(found)
