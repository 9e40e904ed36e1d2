"""Delete and erase plans: written ahead of the record deletes they describe, carried out,
finished after a crash, and settled before a re-create of an id they name."""

from __future__ import annotations

import asyncio
import json

from errors import StorageUnavailable
from jsonutil import dumps, is_int
from kvformat import CONVERSATION_INDEX_PREFIX, Op, participant_of, participants_key
from store.activity import NEWEST_CLEARED, Activity, Positions
from store.shared import Shared

# How long a delete may still be running: a create of the same id waits that long for it.
MAX_DELETE_MS = 30_000


class Plans:
    def __init__(self, shared: Shared, activity: Activity) -> None:
        self._shared = shared
        self._activity = activity

    async def delete_records(
        self, intent: str, members: list[str], ops: dict[str, list[Op]], owner: str = ""
    ) -> None:
        """Records first, then their index entries, with the plan written ahead.

        A crash after the records go leaves index entries pointing at nothing (readers skip
        them), never a live message that its indexes, and so an erase, cannot find. Once the
        records are gone nothing says which indexes held them, so the intent does: a retry
        (or the next erase of the scope) finishes it. The conversations whose messages go are
        refreshed last (``store.activity``).
        """
        plan: dict[str, object] = {
            "at": self._shared.clock_ms(),
            "owner": owner,
            "members": members,
            "ops": {i: [op.to_json() for op in o] for i, o in ops.items()},
        }
        await self._shared.kv.put(intent, dumps(plan))
        await self._carry_out(intent, members, ops)

    async def _carry_out(self, intent: str, members: list[str], ops: dict[str, list[Op]]) -> None:
        kv = self._shared.kv
        await asyncio.gather(*(kv.delete(m) for m in members))
        await self._shared.journal(ops)
        if len(members) == 1:
            # A re-create of the id may have come between the record delete and the removals,
            # which, journaled later, would win: if the record is back, so are its entries.
            # (One read; an erase's hundreds would break the request's KV budget, and an erase
            # leaves alone what it cannot see instead.)
            await self._shared.follow_record(members[0])
        await self._activity.refresh_all(_touched(ops))
        await kv.delete(intent)

    async def finish(self, intent: str) -> str | None:
        """Complete a plan left by a crashed delete or erase; returns whose it was, if any."""
        raw = await self._shared.kv.get(intent)
        if raw is None:
            return None
        plan = json.loads(raw)
        ops = {i: [Op.from_json(op) for op in o] for i, o in plan["ops"].items()}
        # The crash may have come before some of the record deletes: redo them all.
        await self._carry_out(intent, [str(m) for m in plan["members"]], ops)
        return str(plan["owner"])

    async def settle_delete(
        self, message_id: str, intent: str, raw_plan: str, now: int, *, finish: bool
    ) -> None:
        """Before re-creating ``message_id``: ask the client to come back once the delete (or
        erase) whose plan at ``intent`` names it is done; if that request is surely dead,
        finish a delete's plan. A dead erase's plan is left to the next erase of its scope:
        it names many records, some maybe re-created since, and a plan read from a stale cache
        (deleted when done, still cached elsewhere) must not delete them again. An erase that
        finishes it after this create is simply ordered after it."""
        started = json.loads(raw_plan).get("at")
        if is_int(started) and now - started < MAX_DELETE_MS:
            raise StorageUnavailable(
                detail=f"a delete of message {message_id!r} is still under way; retry shortly",
                retry_after=1,
            )
        if finish:
            await self.finish(intent)


def _touched(ops: dict[str, list[Op]]) -> dict[str, tuple[set[str], dict[str, Positions]]]:
    """Per conversation whose messages these removals take out: the users whose messages
    they are (who may have stopped writing in it) and the members a list may name."""
    touched = {}
    for index, removals in ops.items():
        if index.startswith(CONVERSATION_INDEX_PREFIX):
            conversation_id = index[len(CONVERSATION_INDEX_PREFIX):]
            writers = {participant_of(op.member)
                       for op in ops.get(participants_key(conversation_id), ())}
            touched[conversation_id] = (writers, _newest_removed(removals))
    return touched


def _newest_removed(removals: list[Op]) -> dict[str, Positions]:
    """The removed members that may be a conversation list's entry: only a conversation's
    newest message is listed, so the newest few removed are enough."""
    placed = [(op.prev, op) for op in removals if op.prev is not None]
    placed.sort(key=lambda pair: (pair[0], pair[1].member), reverse=True)
    return {op.member: (prev, *op.also) for prev, op in placed[:NEWEST_CLEARED]}
