"""The chat store: messages in KV, listed through sorted-set indexes.

Messages are records at ``chat:{id}``, listed through the sorted-set indexes of their user and
conversation (``index``); the keys and codecs are in ``kvformat``, the argument for the write
order below in ``docs/design.md``.

Write order keeps every crash point harmless (a crash leaves extra or stale index entries, never
a live message that no index can find), nothing is corrected on the word of a read, and races
are settled where they happen (``docs/design.md`` §3 has the argument). Index compaction is
handed to ``defer`` so it runs after the response.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from config import Config
from cursor import CursorCodec, CursorScope
from errors import Conflict, NotFound, StorageUnavailable
from ids import new_ulid
from index.pacer import CompactionPacer
from index.sorted_index import Defer, IndexObjects, IndexStore, IndexView, Layout
from index.sortedset import Entry
from jsonutil import dumps, is_int
from kvformat import (
    MESSAGE_PREFIX,
    Op,
    intent_key,
    message_key,
    record_history,
    record_metadata,
)
from storage.kv import KVStore, ValueWithMetadata, get_many_with_metadata
from validation import MessageDraft, MessagePatch, RangeQuery

# Half-finished erases of one scope completed per request (each is a few KV operations).
MAX_INTENTS = 8
# An erase deletes at most this many messages per request (2 KV ops each, plus index writes),
# keeping well inside Workers' 1,000 KV operations per invocation; callers repeat until done.
MAX_ERASE_PER_REQUEST = 400
# How long a delete may still be running: a create of the same id waits that long for it.
MAX_DELETE_MS = 30_000
# Earlier positions a record remembers: enough for several crashed moves in a row, and read
# repair or a reindex covers anything older.
MAX_POSITION_HISTORY = 4
# 900 list calls scan 900,000 message keys and still leave room in the 1,000-op budget.
MAX_REINDEX_PAGES = 900

Message = dict[str, Any]
ScopeKind = Literal["user", "conversation"]


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    id: str

    @property
    def index(self) -> str:
        return f"{self.kind}:chat:{self.id}"


@dataclass(frozen=True)
class Page:
    messages: list[Message]
    next_cursor: str | None


@dataclass(frozen=True)
class Stored:
    """A message record with its position history: earlier timestamps (newest first) at which
    an index entry may survive a move whose index write never happened. Kept in KV metadata."""

    message: Message
    history: tuple[int, ...] = ()


@dataclass(frozen=True)
class ReindexResult:
    index: str
    entries: int
    scanned: int


@dataclass(frozen=True)
class EraseResult:
    deleted: int
    remaining: int


def indexes_of(message: Message) -> list[str]:
    indexes = [Scope("user", message["user_id"]).index]
    if message.get("conversation_id") is not None:
        indexes.append(Scope("conversation", message["conversation_id"]).index)
    return indexes


def _client_fields(message: Message) -> dict[str, Any]:
    """What a client said about a message, for comparing a replayed create with the original."""
    return {
        k: message.get(k)
        for k in ("user_id", "conversation_id", "sender", "content", "timestamp", "metadata")
    }


class ChatStore:
    def __init__(
        self,
        kv: KVStore,
        config: Config,
        clock_ms: Callable[[], int],
        defer: Defer,
        cursor_secret: str,
        index_objects: IndexObjects | None = None,
        pacer: CompactionPacer | None = None,
    ) -> None:
        self._kv = kv
        self._clock_ms = clock_ms
        layout = Layout(config.index_head_max, config.index_head_keep, config.index_segment_max)
        self._indexes = IndexStore(kv, clock_ms, config.journal_settle_ms, layout, index_objects,
                                   defer=defer, pacer=pacer)
        self._cursors = CursorCodec(cursor_secret)

    # -- messages ---------------------------------------------------------------------------

    def _build(self, draft: MessageDraft, now: int) -> Message:
        message: Message = {"id": draft.id or new_ulid(now), "user_id": draft.user_id}
        if draft.conversation_id is not None:
            message["conversation_id"] = draft.conversation_id
        message["sender"] = draft.sender
        message["content"] = draft.content
        message["timestamp"] = draft.timestamp if draft.timestamp is not None else now
        if draft.metadata is not None:
            message["metadata"] = draft.metadata
        message["created_at"] = now
        return message

    async def _load(self, message_id: str) -> Stored | None:
        found = await self._kv.get_with_metadata(message_key(message_id))
        return None if found is None else _stored(found)

    async def _save(self, message: Message, history: tuple[int, ...] = ()) -> None:
        await self._kv.put(message_key(message["id"]), dumps(message),
                           metadata=record_metadata(message, history))

    def _is_replay(self, draft: MessageDraft, stored: Message) -> bool:
        wanted = _client_fields(self._build(draft, stored["timestamp"]))
        if draft.timestamp is None:  # the server chose it the first time; any is a match
            wanted["timestamp"] = stored["timestamp"]
        return wanted == _client_fields(stored)

    async def _journal(self, ops_by_index: dict[str, list[Op]]) -> None:
        await asyncio.gather(*(self._indexes.record(i, ops) for i, ops in ops_by_index.items()))
        for index in ops_by_index:
            self._indexes.after_write(index)

    async def create(self, draft: MessageDraft) -> tuple[Message, bool]:
        """Store a message; returns it and whether it was new (False: an identical replay)."""
        messages, created = await self.create_many([draft])
        return messages[0], created[0]

    async def create_many(self, drafts: Sequence[MessageDraft]) -> tuple[list[Message], list[bool]]:
        """All-or-nothing: conflicts are found before anything is written."""
        now = self._clock_ms()
        ids = [d.id for d in drafts if d.id is not None]
        # With each record, the plan of a delete of that id and those of erases of its scopes,
        # if one is under way: a re-create must not journal its entries before the delete's
        # removals (those would win).
        erases = sorted({intent_key(index) for d in drafts if d.id is not None
                         for index in indexes_of({"user_id": d.user_id,
                                                  "conversation_id": d.conversation_id})})
        plans = [*(intent_key(message_key(i)) for i in ids), *erases]
        found = await get_many_with_metadata(
            self._kv, [*(message_key(i) for i in ids), *plans]
        )
        records = found[: len(ids)]
        by_id = {i: None if f is None else _stored(f) for i, f in zip(ids, records, strict=True)}
        for intent, plan in zip(plans, found[len(ids):], strict=True):
            if plan is None:
                continue
            members = set(json.loads(plan.value).get("members", []))
            for message_id in ids:
                if by_id[message_id] is None and message_key(message_id) in members:
                    await self._settle_delete(message_id, intent, plan.value, now,
                                              finish=intent not in erases)
                    break
        existing = [None if d.id is None else by_id[d.id] for d in drafts]
        messages: list[Message] = []
        created: list[bool] = []
        history: dict[str, tuple[int, ...]] = {}
        for index, (draft, stored) in enumerate(zip(drafts, existing, strict=True)):
            if stored is None:
                messages.append(self._build(draft, now))
                created.append(True)
            elif self._is_replay(draft, stored.message):
                messages.append(stored.message)
                created.append(False)
                history[stored.message["id"]] = stored.history
            else:
                where = f"messages[{index}]: " if len(drafts) > 1 else ""
                raise Conflict(
                    f"{where}message {draft.id!r} already exists with different fields",
                    index=index,
                )
        # Index entries first, then records: a request that dies in between leaves entries
        # without a record (skipped by readers, repaired), never a record that no index, and
        # so no listing or erase, can find. Replays are journaled again too: this 200 must not
        # acknowledge a message that no listing shows, and re-adding a member at its score
        # changes nothing otherwise.
        ops: dict[str, list[Op]] = {}
        for message, new in zip(messages, created, strict=True):
            score = message["timestamp"]
            add = Op.add(message_key(message["id"]), score, None if new else score,
                         history.get(message["id"], ()))
            for index_key in indexes_of(message):
                ops.setdefault(index_key, []).append(add)
        fresh = [m for m, new in zip(messages, created, strict=True) if new]
        try:
            await self._journal(ops)
            saved = await asyncio.gather(*(self._save(m) for m in fresh),
                                         return_exceptions=True)
            failure = next((e for e in saved if isinstance(e, BaseException)), None)
            if failure is not None:
                raise failure
        except StorageUnavailable:
            # A client that chose the ids sends them again (and so completes the message); a
            # server-made id is never seen again, so its entries are withdrawn, lest they be
            # counted until a repair. Nobody else can be writing a fresh ULID.
            await self._withdraw([m for m, d in zip(messages, drafts, strict=True)
                                  if d.id is None])
            raise
        return messages, created

    async def _settle_delete(
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
            await self._finish_intent(intent)

    async def _withdraw(self, messages: list[Message]) -> None:
        """Best effort, after a failed create: delete each record that may have been written,
        then journal the removal of the entries whose record is surely gone. An entry whose
        record could not be deleted stays, so that an erase still finds the record."""

        async def delete(message: Message) -> bool:
            try:
                await self._kv.delete(message_key(message["id"]))
            except StorageUnavailable:
                return False
            return True

        gone = await asyncio.gather(*(delete(m) for m in messages))
        ops: dict[str, list[Op]] = {}
        for message, deleted in zip(messages, gone, strict=True):
            for index_key in indexes_of(message) if deleted else []:
                ops.setdefault(index_key, []).append(
                    Op.rem(message_key(message["id"]), message["timestamp"]))
        with contextlib.suppress(StorageUnavailable):
            await self._journal(ops)

    async def _stored(self, message_id: str, owner: str | None) -> Stored:
        stored = await self._load(message_id)
        if stored is None or (owner is not None and stored.message["user_id"] != owner):
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
        member = message_key(message_id)
        if updated == message:
            if "timestamp" in patch.changes:
                # Maybe the retry of a move whose index write failed: journal it again (an
                # add at the member's own score is idempotent). Nothing else is written.
                again = Op.add(member, message["timestamp"], message["timestamp"], stored.history)
                await self._journal({i: [again] for i in indexes_of(message)})
            return message
        updated["edited_at"] = self._clock_ms()
        old, new = message["timestamp"], updated["timestamp"]
        if new == old:
            await self._save(updated, stored.history)
            return updated
        # Record first, remembering the old position: if the index write below never happens,
        # later ops (and read repair) still find the entry this move left behind.
        await self._save(updated, (old, *stored.history)[:MAX_POSITION_HISTORY])
        move = Op.add(member, new, prev=old, also=stored.history)
        await self._journal({i: [move] for i in indexes_of(updated)})
        # Two moves racing: the record keeps the last put, the indexes the last journal op,
        # and they may be different moves. Whoever sees a later put than its own journals that
        # put's position again, so the indexes end where the record is.
        await self._follow_record(member, unless_at=new)
        return updated

    async def delete(self, message_id: str, owner: str | None = None) -> None:
        member = message_key(message_id)
        intent = intent_key(member)
        stored = await self._load(message_id)
        if stored is None:
            # Maybe a retry: the record went before a crash; finish its index writes now.
            finished_for = await self._finish_intent(intent)
            if finished_for is not None and owner in (None, finished_for):
                return
            raise NotFound(f"message {message_id!r} does not exist")
        message = stored.message
        if owner is not None and message["user_id"] != owner:
            raise NotFound(f"message {message_id!r} does not exist")
        gone = Op.rem(member, prev=message["timestamp"], also=stored.history)
        ops = {i: [gone] for i in indexes_of(message)}
        await self._delete_records(intent, [member], ops, message["user_id"])

    async def _delete_records(
        self, intent: str, members: list[str], ops: dict[str, list[Op]], owner: str = ""
    ) -> None:
        """Records first, then their index entries, with the plan written ahead.

        A crash after the records go leaves index entries pointing at nothing (readers skip
        them), never a live message that its indexes, and so an erase, cannot find. Once the
        records are gone nothing says which indexes held them, so the intent does: a retry
        (or the next erase of the scope) finishes it.
        """
        plan = {
            "at": self._clock_ms(),
            "owner": owner,
            "members": members,
            "ops": {i: [op.to_json() for op in o] for i, o in ops.items()},
        }
        await self._kv.put(intent, dumps(plan))
        await self._carry_out(intent, members, ops)

    async def _carry_out(self, intent: str, members: list[str], ops: dict[str, list[Op]]) -> None:
        await asyncio.gather(*(self._kv.delete(m) for m in members))
        await self._journal(ops)
        if len(members) == 1:
            # A re-create of the id may have come between the record delete and the removals,
            # which, journaled later, would win: if the record is back, so are its entries.
            # (One read; an erase's hundreds would break the request's KV budget, and an erase
            # leaves alone what it cannot see instead.)
            await self._follow_record(members[0])
        await self._kv.delete(intent)

    async def _follow_record(self, member: str, unless_at: int | None = None) -> None:
        """Journal ``member``'s entries where its record says it is now, if it exists (and is
        not at ``unless_at``, where this request's own op already put it). The record's
        metadata names the positions an entry may still sit at."""
        found = await self._kv.get_with_metadata(member)
        if found is None:
            return
        now = _stored(found)
        score = now.message["timestamp"]
        if score != unless_at:
            here = Op.add(member, score, prev=unless_at, also=now.history)
            await self._journal({i: [here] for i in indexes_of(now.message)})

    async def _finish_intent(self, intent: str) -> str | None:
        """Complete a plan left by a crashed delete or erase; returns whose it was, if any."""
        raw = await self._kv.get(intent)
        if raw is None:
            return None
        plan = json.loads(raw)
        ops = {i: [Op.from_json(op) for op in o] for i, o in plan["ops"].items()}
        # The crash may have come before some of the record deletes: redo them all.
        await self._carry_out(intent, [str(m) for m in plan["members"]], ops)
        return str(plan["owner"])

    # -- indexes ----------------------------------------------------------------------------

    async def _view(self, scope: Scope) -> IndexView:
        view = await self._indexes.read(scope.index)
        self._indexes.after_read(view)
        return view

    async def _fetch(self, members: Iterable[str]) -> list[Stored | None]:
        """The records of ``members`` (``chat:{id}`` keys), in one batched read."""
        keys = list(members)
        found = await get_many_with_metadata(self._kv, keys) if keys else []
        return [None if f is None else _stored(f) for f in found]

    async def list_page(self, scope: Scope, query: RangeQuery) -> Page:
        view = await self._view(scope)
        cursor_scope = CursorScope(scope.index, query.order, query.start, query.end)
        position = self._cursors.decode(query.cursor, cursor_scope) if query.cursor else None
        rev = query.order == "desc"
        found: list[Message] = []
        last: Entry | None = position
        # Skipping index entries whose message is gone may need another round to fill the page.
        while len(found) < query.limit:
            want = query.limit - len(found)
            batch = await view.zrange_by_score(
                query.start, query.end, rev=rev, limit=want, after=last
            )
            if not batch:
                break
            fetched = await self._fetch(e.member for e in batch)
            # Nothing is repaired on a read's word: at the edge a record read may be a stale
            # or a cached miss, and a correction journaled from it could outlive a delete or a
            # re-create made elsewhere. An entry whose record is gone is skipped (a retry, an
            # erase or a reindex removes it); one whose record has moved meanwhile (its move
            # not yet folded, or two moves racing) is shown only inside the range asked for.
            found += [
                stored.message for stored in fetched
                if stored is not None
                and query.start <= stored.message["timestamp"] <= query.end
            ]
            last = batch[-1]
        more = last is not None and bool(
            await view.zrange_by_score(query.start, query.end, rev=rev, limit=1, after=last)
        )
        next_cursor = self._cursors.encode(cursor_scope, last) if more and last else None
        return Page(found, next_cursor)

    async def reindex(self, scope: Scope) -> ReindexResult:
        """Rebuild an index from the message records' KV metadata: one ``list`` per 1,000
        messages in the namespace, no value reads."""
        started = self._clock_ms()
        field_name = "u" if scope.kind == "user" else "c"
        entries: list[Entry] = []
        scanned = 0
        cursor: str | None = None
        for _ in range(MAX_REINDEX_PAGES):
            page = await self._kv.list(prefix=MESSAGE_PREFIX, cursor=cursor)
            scanned += len(page.keys)
            for key in page.keys:
                meta = key.metadata or {}
                score = meta.get("s")
                if meta.get(field_name) == scope.id and isinstance(score, int):
                    entries.append(Entry(score, key.name))
            if page.list_complete or not page.cursor:
                break
            cursor = page.cursor
        else:
            raise StorageUnavailable(detail="too many messages to reindex in one request")
        if not await self._indexes.rebuild(scope.index, entries, started):
            raise StorageUnavailable(detail="the reindex scan took too long; retry")
        return ReindexResult(scope.index, len(entries), scanned)

    async def count(self, scope: Scope, start: int, end: int) -> int:
        return await (await self._view(scope)).zcount(start, end)

    async def erase(self, scope: Scope) -> EraseResult:
        """Delete every message of a user or conversation, from every index they are in."""
        # An earlier erase of this scope that died half-way (or answered 503): its plan is at a
        # key this erase can read, since a listing may lag behind even its own location's
        # writes; plans of older releases carry an id, and only a listing finds them.
        await self._finish_intent(intent_key(scope.index))
        pending = await self._kv.list(prefix=intent_key(scope.index) + ":", limit=MAX_INTENTS)
        for key in pending.keys:
            await self._finish_intent(key.name)
        # Listed down to the confirmed horizon: every entry journaled within the settle time is
        # known to be recent, so a create still in flight is recognised below.
        view = await self._indexes.read(scope.index, trust=False, cap=False)
        self._indexes.after_read(view)
        entries = await view.zrange_by_score(limit=MAX_ERASE_PER_REQUEST + 1)
        more = len(entries) > MAX_ERASE_PER_REQUEST
        entries = entries[:MAX_ERASE_PER_REQUEST]
        found = await self._fetch(e.member for e in entries)
        ops: dict[str, list[Op]] = {scope.index: []}
        doomed: list[str] = []
        # Folded within the settle time (and a put's time): a miss of such an entry's record may
        # be a cached one, or its create may still be in flight.
        settled = view.read_ms - self._indexes.settle_ms - self._indexes.put_ms
        root_recent = view.root.newest > settled
        # A listing behind its root may show an old op of a member the root holds from a newer
        # one (a re-create): its ops cannot say the member is long gone either.
        lagging = self._indexes.lags_behind_root(view)
        for entry, stored in zip(entries, found, strict=True):
            if stored is None and (view.is_recent(entry.member) or lagging
                                   or (root_recent and entry.member not in view.overlay)):
                # Entries journaled, record not seen: a create in flight (whose other index
                # this erase cannot know) or a record this location does not see yet. Left
                # alone, in every index: ordered after this erase (a later erase takes it), or,
                # had its create crashed, removed by the first erase once it has settled.
                continue
            doomed.append(entry.member)
            history = stored.history if stored is not None else ()
            ops[scope.index].append(Op.rem(entry.member, entry.score, history))
            if stored is None:
                continue  # long gone: only this index can still name it
            for index_key in indexes_of(stored.message):
                if index_key != scope.index:
                    ops.setdefault(index_key, []).append(
                        Op.rem(entry.member, stored.message["timestamp"], history)
                    )
        if doomed:
            await self._delete_records(intent_key(scope.index), doomed,
                                       {k: v for k, v in ops.items() if v})
        deleted = sum(1 for s in found if s is not None)
        remaining = await view.zcount() - len(entries) if more else 0
        return EraseResult(deleted, remaining)


def _stored(found: ValueWithMetadata) -> Stored:
    return Stored(json.loads(found.value),
                  record_history(found.metadata, MAX_POSITION_HISTORY))
