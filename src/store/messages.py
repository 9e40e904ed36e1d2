"""One message at a time: get, patch (with its write order and earlier positions) and delete."""

from __future__ import annotations

from errors import NotFound, RetentionExpired
from kvformat import Op, intent_key, message_key
from store.activity import Activity
from store.model import (
    MAX_POSITION_HISTORY,
    Message,
    MessagePatch,
    Record,
    message_ops,
)
from store.plans import Plans
from store.shared import Shared


class Messages:
    def __init__(self, shared: Shared, plans: Plans, activity: Activity) -> None:
        self._shared = shared
        self._plans = plans
        self._activity = activity

    async def _stored(self, message_id: str, owner: str | None) -> Record:
        stored = await self._shared.load(message_id)
        if (stored is None or (owner is not None and stored.message["user_id"] != owner)
                or not self._shared.kept(stored.message)):
            raise NotFound(f"message {message_id!r} does not exist")
        return stored

    async def get(self, message_id: str, owner: str | None = None) -> Message:
        """The message; with ``owner``, another user's message is reported exactly as missing."""
        return (await self._stored(message_id, owner)).message

    async def patch(
        self, message_id: str, patch: MessagePatch, owner: str | None = None
    ) -> Message:
        stored = await self._stored(message_id, owner)
        message = stored.message
        updated = {**message, **patch.changes}
        if not self._shared.kept(updated):
            raise RetentionExpired(
                f"timestamp {updated['timestamp']} is older than the retention period")
        member = message_key(message_id)
        if updated == message:
            if "timestamp" in patch.changes:
                # Maybe the retry of a move whose index write failed: journal it again (an
                # add at the member's own score is idempotent). Nothing else is written.
                again = Op.add(member, message["timestamp"], message["timestamp"], stored.earlier)
                await self._shared.journal(message_ops(message, again, stored.earlier))
                await self._moved(message, stored.earlier)
            return message
        updated["edited_at"] = self._shared.clock_ms()
        old, new = message["timestamp"], updated["timestamp"]
        if new == old:
            await self._shared.save(updated, stored.earlier)
            return updated
        # Record first, remembering the old position: if the index write below never happens,
        # later ops (and read repair) still find the entry this move left behind.
        await self._shared.save(updated, (old, *stored.earlier)[:MAX_POSITION_HISTORY])
        move = Op.add(member, new, prev=old, also=stored.earlier)
        await self._shared.journal(message_ops(updated, move, (old, *stored.earlier)))
        # Two moves racing: the record keeps the last put, the indexes the last journal op,
        # and they may be different moves. Whoever sees a later put than its own journals that
        # put's position again, so the indexes end where the record is.
        await self._shared.follow_record(member, unless_at=new)
        await self._moved(updated, (old, *stored.earlier))
        return updated

    async def _moved(self, message: Message, earlier: tuple[int, ...]) -> None:
        """A message moved: its conversation's lists may name it where it was."""
        conversation_id = message.get("conversation_id")
        if conversation_id is not None:
            await self._activity.refresh(
                conversation_id, stale={message_key(message["id"]): earlier} if earlier else {})

    async def delete(self, message_id: str, owner: str | None = None) -> None:
        member = message_key(message_id)
        intent = intent_key(member)
        stored = await self._shared.load(message_id)
        if stored is None:
            # Maybe a retry: the record went before a crash; finish its index writes now.
            finished_for = await self._plans.finish(intent)
            if finished_for is not None and owner in (None, finished_for):
                return
            raise NotFound(f"message {message_id!r} does not exist")
        message = stored.message
        if (owner is not None and message["user_id"] != owner) or not self._shared.kept(message):
            raise NotFound(f"message {message_id!r} does not exist")
        gone = Op.rem(member, prev=message["timestamp"], also=stored.earlier)
        ops = message_ops(message, gone, stored.earlier)
        await self._plans.delete_records(intent, [member], ops, message["user_id"])
