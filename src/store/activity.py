"""Conversation activity: every participant's conversation list names each conversation by its
newest message, whatever writes race.

A user's list (``user:conversations:{id}``) is an index like the message indexes, with one entry
per conversation: its newest message's member at that message's timestamp. So a conversation
moves up when a newer message arrives (Redis ``ZADD ... GT``: an older one arriving late changes
nothing) and back when its newest message is deleted or moved. Whoever changes a conversation's
messages calls :meth:`Activity.refresh` after its message index writes and before answering:

1. the writer's users join the participants (``conversation:users:{id}``) if not yet there;
2. it reads the conversation's newest messages and journals, into every participant's list, the
   newest one's entry and the removal of the others' (and of the entries its own write may have
   left: a deleted or moved message's);
3. it reads the newest message again: if another write changed it meanwhile, it goes again.

Two writers each write one index and then read the other's (a joining user's participant entry,
then the conversation; a message's conversation entry, then the participants; a journal entry,
then the newest again), so at least one of them sees the other's write: the last list entry
journaled for a conversation names its newest message once every writer is done. Readers check
each entry against the conversation's message index anyway, so an entry a writer has not yet
corrected is skipped, never shown with a stale preview.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from index.zset import Entry
from kvformat import (
    Op,
    conversation_list_key,
    participant_member,
    participant_of,
    participants_key,
)
from store.model import Scope
from store.shared import Shared

# The newest messages of a conversation whose list entries a refresh removes (besides the
# newest's): a message that was the newest until a moment ago is one of them.
NEWEST_CLEARED = 4
# Rounds of step 3 per refresh: a conversation written that often is being refreshed by its
# other writers too, and each of them checks its own.
MAX_ROUNDS = 3

Positions = tuple[int, ...]  # where an entry may sit, newest first


class Activity:
    def __init__(self, shared: Shared) -> None:
        self._shared = shared

    async def newest(self, conversation_id: str, n: int = 1) -> list[Entry]:
        """The conversation's ``n`` newest index entries, newest first."""
        view = await self._shared.view(Scope("conversation", conversation_id))
        return await view.zrange_by_score(rev=True, limit=n)

    async def participants(self, conversation_id: str) -> set[str]:
        view = await self._shared.indexes.read(participants_key(conversation_id))
        self._shared.indexes.after_read(view)
        return {participant_of(e.member) for e in await view.zrange_by_score()}

    async def refresh(
        self, conversation_id: str, *, joined: Iterable[str] = (), left: Iterable[str] = (),
        stale: Mapping[str, Positions] | None = None,
    ) -> None:
        """Make every participant's list name the conversation's newest message.

        ``joined``: users who now have a message in it; ``left``: users who must no longer list
        it (an erase of the user), whose entries are removed; ``stale``: members whose list
        entries this write may have made wrong (deleted or moved messages), with the positions
        those entries may sit at.
        """
        users = await self.participants(conversation_id)
        leaving = set(left)
        changes = [Op.add(participant_member(u), 0, 0) for u in sorted(set(joined) - users)]
        changes += [Op.rem(participant_member(u), 0) for u in sorted(leaving & users)]
        if changes:
            await self._shared.journal({participants_key(conversation_id): changes})
        users = (users | set(joined)) - leaving
        cleared: dict[str, Positions] = dict(stale or {})
        top = await self.newest(conversation_id, NEWEST_CLEARED)
        for _ in range(MAX_ROUNDS):
            newest = top[0] if top else None
            for entry in top[1:]:
                cleared.setdefault(entry.member, (entry.score,))
            removals = [Op.rem(m, p[0], p[1:]) for m, p in cleared.items()
                        if newest is None or m != newest.member]
            gone = list(removals)
            if newest is not None:
                removals.append(self._add(newest, cleared.get(newest.member, ())))
                gone.append(Op.rem(newest.member, newest.score))
            ops = {conversation_list_key(u): gone for u in sorted(leaving)}
            ops.update({conversation_list_key(u): removals for u in sorted(users)})
            await self._shared.journal({k: v for k, v in ops.items() if v})
            check = await self.newest(conversation_id, NEWEST_CLEARED)
            if (check[0] if check else None) == newest:
                return
            if newest is not None:
                cleared[newest.member] = (newest.score, *cleared.get(newest.member, ()))
            top = check

    @staticmethod
    def _add(newest: Entry, earlier: Positions) -> Op:
        others = tuple(p for p in earlier if p != newest.score)
        return Op.add(newest.member, newest.score, others[0] if others else newest.score,
                      others[1:])

    async def refresh_all(
        self, changes: Mapping[str, tuple[set[str], set[str], dict[str, Positions]]]
    ) -> None:
        """:meth:`refresh` for several conversations at once: ``{conversation: (joined,
        left, stale)}``."""
        await asyncio.gather(*(
            self.refresh(c, joined=j, left=lft, stale=s) for c, (j, lft, s) in changes.items()))
