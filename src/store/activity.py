"""Conversation activity: every participant's conversation list names each conversation by its
newest message, whatever writes race.

A user's list (``user:conversations:{id}``) is an index like the message indexes, with one entry
per conversation: its newest message's member at that message's timestamp. So a conversation
moves up when a newer message arrives (Redis ``ZADD ... GT``: an older one arriving late changes
nothing) and back when its newest message is deleted or moved. Whoever changes a conversation's
messages calls :meth:`Activity.refresh` after its message index writes and before answering:

1. (with its message-index writes) each message's entry in the conversation's participants
   index (``conversation:users:{id}``: ``user:{user}:chat:{id}``), written or removed with it;
2. it reads who has a message in the conversation and its newest messages, and journals, into
   every such user's list, the newest one's entry and the removal of the others' (and of the
   entries its own write may have left: a deleted or moved message's); users whose messages it
   removed and who have none left get only removals;
3. it reads both again: if another write changed them meanwhile, it goes again.

Two writers each write one index and then read the other's (a message's participants entry and
conversation entry, then the participants and the newest; a list entry, then both again), so at
least one of them sees the other's write: once every writer is done, the last list entry
journaled for a conversation names its newest message in the list of everyone who writes in
it, and no one else's. Readers check
each entry against the conversation's message index anyway, so an entry a writer has not yet
corrected is skipped, never shown with a stale preview.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from index.sorted_index import IndexView
from index.zset import Entry
from kvformat import (
    Op,
    conversation_list_key,
    participant_of,
    participant_prefix,
    participant_since,
    participants_key,
    participation_time,
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
# Sorts after every member of a user in a participants index (``user:{id}:chat:...``; ids and
# message ids are ASCII), and before the next user's.
_PAST_EVERY_MEMBER = "\uffff"


class Activity:
    def __init__(self, shared: Shared) -> None:
        self._shared = shared

    async def newest(self, conversation_id: str, n: int = 1) -> list[Entry]:
        """The conversation's ``n`` newest index entries, newest first."""
        view = await self._shared.view(Scope("conversation", conversation_id))
        return await view.zrange_by_score(self._shared.floor(), rev=True, limit=n)

    async def _writers_view(self, conversation_id: str) -> IndexView:
        view = await self._shared.indexes.read(participants_key(conversation_id))
        self._shared.indexes.after_read(view)
        return view

    async def participants(self, conversation_id: str) -> set[str]:
        """The users with a message in the conversation: one step per user over its
        participants index, whose members are grouped by user."""
        view = await self._writers_view(conversation_id)
        floor = self._shared.floor()
        users: set[str] = set()
        after: Entry | None = None
        while batch := await view.zrange_by_score(0, 0, limit=1, after=after):
            user, time = participant_of(batch[0].member), participation_time(batch[0].member)
            if time is not None and time < floor:
                # Its oldest messages are gone: on to its first one retention keeps, if any.
                after = Entry(0, participant_since(user, floor))
                continue
            users.add(user)
            after = Entry(0, participant_prefix(user) + _PAST_EVERY_MEMBER)
        return users

    async def writes_in(self, conversation_id: str, user_id: str) -> bool:
        """Whether the user has a message in the conversation."""
        view = await self._writers_view(conversation_id)
        prefix = participant_prefix(user_id)
        # Members sort by time within a user: the first at or after the floor, if it is theirs.
        since = participant_since(user_id, max(self._shared.floor(), 0))
        first = await view.zrange_by_score(0, 0, limit=1, after=Entry(0, since))
        return bool(first) and first[0].member.startswith(prefix)

    async def refresh(
        self, conversation_id: str, *, leavers: Iterable[str] = (),
        stale: Mapping[str, Positions] | None = None,
    ) -> None:
        """Make the list of every user with a message in the conversation name its newest
        message, and take it off the lists of ``leavers`` (users whose messages this write
        removed) who have none left.

        ``stale``: members whose list entries this write may have made wrong (deleted or moved
        messages), with the positions those entries may sit at.
        """
        await self.refresh_all({conversation_id: (set(leavers), dict(stale or {}))})

    async def refresh_all(
        self, changes: Mapping[str, tuple[set[str], dict[str, Positions]]]
    ) -> None:
        """:meth:`refresh` for several conversations at once (``{conversation: (leavers,
        stale)}``): each round journals one entry per list, whatever the conversations."""
        if not changes:
            return
        pending = {c: _Refresh(set(lv), dict(s)) for c, (lv, s) in changes.items()}
        await asyncio.gather(*(self._read(c, r) for c, r in pending.items()))
        for _ in range(MAX_ROUNDS):
            ops: dict[str, list[Op]] = {}
            for r in pending.values():
                for list_key, list_ops in r.ops().items():
                    ops.setdefault(list_key, []).extend(list_ops)
            await self._shared.journal({k: v for k, v in ops.items() if v})
            # Step 3: a write that came meanwhile, or a user who joined or left meanwhile.
            changed = await asyncio.gather(*(self._reread(c, r) for c, r in pending.items()))
            pending = {c: r for (c, r), again in zip(pending.items(), changed, strict=True)
                       if again}
            if not pending:
                return

    async def _read(self, conversation_id: str, r: _Refresh) -> None:
        r.users, r.top = await asyncio.gather(
            self.participants(conversation_id), self.newest(conversation_id, NEWEST_CLEARED))

    async def _reread(self, conversation_id: str, r: _Refresh) -> bool:
        """Read again; whether another round is needed."""
        users, top = r.users, r.top
        await self._read(conversation_id, r)
        if r.top[:1] == top[:1] and r.users == users:
            return False
        if top:
            r.cleared[top[0].member] = (top[0].score, *r.cleared.get(top[0].member, ()))
        r.candidates |= users - r.users
        return True


@dataclass
class _Refresh:
    """One conversation's refresh: what was read, what its list entries must lose."""

    candidates: set[str]  # users who may have stopped writing in it
    cleared: dict[str, Positions]  # members whose list entries go, with their positions
    users: set[str] = field(default_factory=set)
    top: list[Entry] = field(default_factory=list)

    def ops(self) -> dict[str, list[Op]]:
        """The ops for every list concerned: the newest message's entry for each participant,
        only removals for those who left."""
        newest = self.top[0] if self.top else None
        for entry in self.top[1:]:
            self.cleared.setdefault(entry.member, (entry.score,))
        removals = [Op.rem(m, p[0], p[1:]) for m, p in self.cleared.items()
                    if newest is None or m != newest.member]
        gone = list(removals)
        if newest is not None:
            removals.append(_add(newest, self.cleared.get(newest.member, ())))
            gone.append(Op.rem(newest.member, newest.score))
        ops = {conversation_list_key(u): gone for u in sorted(self.candidates - self.users)}
        ops.update({conversation_list_key(u): removals for u in sorted(self.users)})
        return ops


def _add(newest: Entry, earlier: Positions) -> Op:
    others = tuple(p for p in earlier if p != newest.score)
    return Op.add(newest.member, newest.score, others[0] if others else newest.score,
                  others[1:])
