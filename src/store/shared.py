"""What every part of the store uses: the KV, the clock, the indexes and the cursor codec, and
the record and journal operations built on them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aio import gather_settled
from cursor import CursorCodec
from index.sorted_index import IndexStore, IndexView
from index.zset import MIN_SCORE
from jsonutil import dumps
from kvformat import Op, message_key, record_metadata
from storage.kv import MIN_EXPIRATION_TTL, KVStore, get_many_with_metadata
from store.model import (
    Message,
    Record,
    Scope,
    message_ops,
    record_from,
)


@dataclass(frozen=True)
class Shared:
    kv: KVStore
    clock_ms: Callable[[], int]
    indexes: IndexStore
    cursors: CursorCodec
    # How long a message is kept, from its timestamp (None: forever).
    retention_ms: int | None = None

    def floor(self) -> int:
        """The oldest timestamp retention keeps now: older messages are gone for every reader
        at once, whatever KV or the indexes still hold."""
        return MIN_SCORE if self.retention_ms is None else self.clock_ms() - self.retention_ms

    def kept(self, message: Message) -> bool:
        return bool(message["timestamp"] >= self.floor())

    def expiration(self, message: Message) -> int | None:
        """When KV may delete the record itself (Unix seconds): once retention has removed it,
        and never sooner than KV allows (60 s ahead)."""
        if self.retention_ms is None:
            return None
        aged_out = -(-(int(message["timestamp"]) + self.retention_ms) // 1000)
        return max(aged_out, self.clock_ms() // 1000 + MIN_EXPIRATION_TTL + 1)

    async def load(self, message_id: str) -> Record | None:
        found = await self.kv.get_with_metadata(message_key(message_id))
        return None if found is None else record_from(found)

    async def save(self, message: Message, earlier: tuple[int, ...] = ()) -> None:
        await self.kv.put(message_key(message["id"]), dumps(message),
                          metadata=record_metadata(message, earlier),
                          expiration=self.expiration(message))

    async def fetch(self, members: Iterable[str]) -> list[Record | None]:
        """The records of ``members`` (``chat:{id}`` keys), in one batched read."""
        found = await get_many_with_metadata(self.kv, list(members))
        return [None if f is None else record_from(f) for f in found]

    async def journal(self, ops_by_index: dict[str, list[Op]]) -> None:
        """Journal the ops of every index; when one fails, raises once all have finished, so
        that nothing this call writes can land after a correction that follows it."""
        done = await gather_settled(
            *(self.indexes.append(i, ops) for i, ops in ops_by_index.items())
        )
        for index, outcome in zip(ops_by_index, done, strict=True):
            if not isinstance(outcome, Exception):
                self.indexes.after_write(index)
        failure = next((e for e in done if isinstance(e, Exception)), None)
        if failure is not None:
            raise failure

    async def view(self, scope: Scope) -> IndexView:
        view = await self.indexes.read(scope.index)
        self.indexes.after_read(view)
        return view

    async def follow_record(self, member: str, unless_at: int | None = None) -> None:
        """Journal ``member``'s entries where its record says it is now, if it exists (and is
        not at ``unless_at``, where this request's own op already put it). The record's
        metadata names the positions an entry may still sit at."""
        found = await self.kv.get_with_metadata(member)
        if found is None:
            return
        now = record_from(found)
        score = now.message["timestamp"]
        if score != unless_at:
            here = Op.add(member, score, prev=unless_at, also=now.earlier)
            # Our own participants entry at ``unless_at`` goes too: the member names the time.
            was = (unless_at,) if unless_at is not None else ()
            await self.journal(message_ops(now.message, here, was + now.earlier))
