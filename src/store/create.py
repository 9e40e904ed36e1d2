"""Creating messages: one or a batch, all or nothing, with identical replays recognised and
plans of deletes or erases still under way settled first."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aio import gather_settled
from errors import Conflict, RetentionExpired, StorageUnavailable
from ids import new_ulid
from index.sorted_index import Defer
from kvformat import Op, intent_key, message_key
from storage.kv import get_many_with_metadata
from store.activity import Activity, Positions
from store.model import (
    Message,
    MessageDraft,
    Record,
    merge_ops,
    message_ops,
    record_from,
    scope_indexes,
)
from store.plans import Plans
from store.shared import Shared

log = logging.getLogger("chat_store")

# A withdrawal that KV trouble cut short goes on after the response, after these pauses
# (seconds; within the 30 s ``waitUntil`` grants): the trouble that failed the create is
# often still there at once.
WITHDRAW_RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0)


def _client_fields(message: Message) -> dict[str, Any]:
    """What a client said about a message, for comparing a replayed create with the original."""
    return {
        k: message.get(k)
        for k in ("user_id", "conversation_id", "sender", "content", "parts", "timestamp",
                  "metadata")
    }


def _build(draft: MessageDraft, now: int) -> Message:
    message: Message = {"id": draft.id or new_ulid(now), "user_id": draft.user_id}
    if draft.conversation_id is not None:
        message["conversation_id"] = draft.conversation_id
    message["sender"] = draft.sender
    message["content"] = draft.content
    if draft.parts is not None:
        message["parts"] = draft.parts
    message["timestamp"] = draft.timestamp if draft.timestamp is not None else now
    if draft.metadata is not None:
        message["metadata"] = draft.metadata
    message["created_at"] = now
    return message


def _is_replay(draft: MessageDraft, stored: Message) -> bool:
    wanted = _client_fields(_build(draft, stored["timestamp"]))
    if draft.timestamp is None:  # the server chose it the first time; any is a match
        wanted["timestamp"] = stored["timestamp"]
    return wanted == _client_fields(stored)


def _resolve(
    drafts: Sequence[MessageDraft], by_id: dict[str, Record | None], now: int
) -> tuple[list[Message], list[bool], dict[str, tuple[int, ...]]]:
    """Each draft as a new message or an identical replay of its stored one (with that record's
    earlier positions); a conflict with any stored one raises before anything is written."""
    messages: list[Message] = []
    created: list[bool] = []
    earlier: dict[str, tuple[int, ...]] = {}
    for index, draft in enumerate(drafts):
        stored = None if draft.id is None else by_id[draft.id]
        if stored is None:
            messages.append(_build(draft, now))
            created.append(True)
        elif _is_replay(draft, stored.message):
            messages.append(stored.message)
            created.append(False)
            earlier[stored.message["id"]] = stored.earlier
        else:
            where = f"messages[{index}]: " if len(drafts) > 1 else ""
            raise Conflict(
                f"{where}message {draft.id!r} already exists with different fields",
                index=index,
            )
    return messages, created, earlier


def _add_ops(
    messages: list[Message], created: list[bool], earlier: dict[str, tuple[int, ...]]
) -> dict[str, list[Op]]:
    ops: dict[str, list[Op]] = {}
    for message, new in zip(messages, created, strict=True):
        score = message["timestamp"]
        positions = earlier.get(message["id"], ())
        add = Op.add(message_key(message["id"]), score, None if new else score, positions)
        ops = merge_ops(ops, message_ops(message, add, positions))
    return ops


def _conversations(messages: list[Message]) -> list[str]:
    # Sorted: the lists are refreshed in this order, and a run replays the same way.
    return sorted({m["conversation_id"] for m in messages if m.get("conversation_id") is not None})


class Creator:
    def __init__(
        self, shared: Shared, plans: Plans, activity: Activity, defer: Defer,
        sleep: Callable[[float], Awaitable[object]],
    ) -> None:
        self._shared = shared
        self._plans = plans
        self._activity = activity
        self._defer = defer
        self._sleep = sleep

    async def create_many(self, drafts: Sequence[MessageDraft]) -> tuple[list[Message], list[bool]]:
        """All-or-nothing: conflicts are found before anything is written."""
        now = self._shared.clock_ms()
        floor = self._shared.floor()
        for index, draft in enumerate(drafts):
            if draft.timestamp is not None and draft.timestamp < floor:
                where = f"messages[{index}]: " if len(drafts) > 1 else ""
                raise RetentionExpired(
                    f"{where}timestamp {draft.timestamp} is older than the retention period "
                    f"(the oldest kept now is {floor})", index=index)
        by_id = await self._existing(drafts, now)
        messages, created, earlier = _resolve(drafts, by_id, now)
        # Index entries first, then records: a request that dies in between leaves entries
        # without a record (skipped by readers, repaired), never a record that no index, and
        # so no listing or erase, can find. Replays are journaled again too: this 200 must not
        # acknowledge a message that no listing shows, and re-adding a member at its score
        # changes nothing otherwise.
        ops = _add_ops(messages, created, earlier)
        fresh = [m for m, new in zip(messages, created, strict=True) if new]
        try:
            await self._shared.journal(ops)
            # The records and the conversation lists at once: a list entry only names a
            # message whose index entries are journaled, and readers skip one whose record is
            # not there yet. Replays refresh too: the first attempt may have died before its
            # conversations' lists. Both finish before a failure is raised, so a withdrawal's
            # list removals are journaled after this refresh's adds.
            refresh: dict[str, tuple[set[str], dict[str, Positions]]] = {
                c: (set(), {}) for c in _conversations(messages)}
            done = await gather_settled(
                *(self._shared.save(m) for m in fresh),
                *([self._activity.refresh_all(refresh)] if refresh else []),
            )
            failure = next((e for e in done if isinstance(e, Exception)), None)
            if failure is not None:
                raise failure
        except StorageUnavailable:
            # A client that chose the ids sends them again (and so completes the message); a
            # server-made id is never seen again, so its entries are withdrawn, lest they be
            # counted until a repair (or, its record written, listed twice once the client
            # retries). Nobody else can be writing a fresh ULID.
            left = await self._withdraw([m for m, d in zip(messages, drafts, strict=True)
                                         if d.id is None])
            if left:
                self._defer(self._withdraw_later(left))
            raise
        return messages, created

    async def _existing(
        self, drafts: Sequence[MessageDraft], now: int
    ) -> dict[str, Record | None]:
        """The records of the client-chosen ids (None: none stored), read in one batch with the
        plans that may name them; a delete or erase of one of them still under way is waited
        for (a 503) or, a delete's, finished first."""
        ids = [d.id for d in drafts if d.id is not None]
        if not ids:
            return {}  # server-made ids: nothing stored can have one
        # With each record, the plan of a delete of that id and those of erases of its scopes,
        # if one is under way: a re-create must not journal its entries before the delete's
        # removals (those would win).
        erases = sorted({intent_key(index) for d in drafts if d.id is not None
                         for index in scope_indexes(d.user_id, d.conversation_id)})
        plans = [*(intent_key(message_key(i)) for i in ids), *erases]
        found = await get_many_with_metadata(
            self._shared.kv, [*(message_key(i) for i in ids), *plans]
        )
        records = found[: len(ids)]
        # A record retention removed is gone, whatever KV still holds until it expires there.
        by_id = {i: None if f is None or not self._shared.kept((r := record_from(f)).message)
                 else r for i, f in zip(ids, records, strict=True)}
        for intent, plan in zip(plans, found[len(ids):], strict=True):
            if plan is None:
                continue
            members = set(json.loads(plan.value).get("members", []))
            for message_id in ids:
                if by_id[message_id] is None and message_key(message_id) in members:
                    await self._plans.settle_delete(message_id, intent, plan.value, now,
                                                    finish=intent not in erases)
                    break
        return by_id

    async def _withdraw(self, messages: list[Message]) -> list[Message]:
        """After a failed create: delete each record that may have been written, then journal
        the removal of the entries whose record is surely gone and refresh their conversations'
        lists. An entry whose record could not be deleted stays, so that an erase still finds
        the record. Returns the messages not surely withdrawn (KV trouble), to try again."""

        async def delete(message: Message) -> bool:
            try:
                await self._shared.kv.delete(message_key(message["id"]))
            except StorageUnavailable:
                return False
            return True

        gone = await asyncio.gather(*(delete(m) for m in messages))
        withdrawn = [m for m, deleted in zip(messages, gone, strict=True) if deleted]
        left = [m for m, deleted in zip(messages, gone, strict=True) if not deleted]
        ops: dict[str, list[Op]] = {}
        for message in withdrawn:
            gone_op = Op.rem(message_key(message["id"]), message["timestamp"])
            ops = merge_ops(ops, message_ops(message, gone_op))
        try:
            await self._shared.journal(ops)
            await self._activity.refresh_all({
                c: ({m["user_id"] for m in withdrawn if m.get("conversation_id") == c},
                    {message_key(m["id"]): (m["timestamp"],) for m in withdrawn
                     if m.get("conversation_id") == c})
                for c in _conversations(withdrawn)})
        except StorageUnavailable:
            return messages  # all again: deleting a record twice, or journaling twice, is harmless
        return left

    async def _withdraw_later(self, messages: list[Message]) -> None:
        """Deferred work: :meth:`_withdraw` again, after pauses, until it is done."""
        for delay in WITHDRAW_RETRY_DELAYS_S:
            await self._sleep(delay)
            messages = await self._withdraw(messages)
            if not messages:
                return
        log.warning("withdrawing failed creates gave up; a reindex or an erase removes %s",
                    ", ".join(m["id"] for m in messages))
