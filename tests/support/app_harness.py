"""Drive :class:`web.app.App` in-process, the way ``entry.py`` does inside the Workers runtime.

``AppHarness`` wires an ``App`` to a :class:`support.memory_kv.MemoryKV` and a
:class:`support.clock.ManualClock`.
Work the app hands to ``defer`` (``ctx.waitUntil`` in production) is collected and awaited after
the response has been produced, so index compaction runs where it would in a Worker: after the
request, before the next one. Every request then advances the clock by ``step_ms`` so that
consecutive requests happen in different milliseconds, as they would in real time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from config import Config
from index.object_cache import ObjectCache
from index.pacer import CompactionPacer
from index.sorted_index import IndexObjects
from support.clock import START_MS, ManualClock
from support.memory_kv import MemoryKV
from web.app import Service
from web.routing import Request

TOKEN = "t"
JOURNAL_PREFIX = "idx:log:"
_UNSET: Any = object()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.header("content-type") or ""


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


async def _no_sleep(seconds: float) -> None:
    return None


class AppHarness:
    def __init__(
        self,
        config: Config | None = None,
        *,
        kv: MemoryKV | None = None,
        settle_ms: int = 1_000,
        start_ms: int = START_MS,
        step_ms: int = 1,
    ) -> None:
        self.clock = ManualClock(start_ms)
        self.kv = kv if kv is not None else MemoryKV(clock=self.clock.seconds)
        self.config = config or Config(api_token=TOKEN, journal_settle_ms=settle_ms)
        self.deferred: list[Awaitable[object]] = []
        self.deferred_runs = 0
        self.step_ms = step_ms
        # One per harness, like the one per isolate in entry.py.
        self.index_objects: IndexObjects = ObjectCache()
        # Delayed compactions run when deferred work is drained, after each request.
        self.pacer = CompactionPacer(sleep=_no_sleep)
        self.serve()

    def serve(self, **per_isolate: Any) -> None:
        """Serve the following requests from a fresh ``Service`` (with this harness's caches
        and pacer, and the other per-isolate pieces ``entry.py`` passes in, e.g. ``access``)."""
        self.service = Service(self.config, index_objects=self.index_objects, pacer=self.pacer,
                               **per_isolate)
        self.app = self.service.bind(self.kv, self.clock, self.deferred.append)

    # -- raw requests -----------------------------------------------------------------------

    async def drain(self) -> None:
        """Run deferred work in the order it was handed over (as ``ctx.waitUntil`` would)."""
        while self.deferred:
            work = self.deferred.pop(0)
            await work
            self.deferred_runs += 1

    async def arequest(
        self,
        method: str,
        path: str,
        query: str = "",
        *,
        json_body: Any = _UNSET,
        body: bytes | None = None,
        token: str | None = TOKEN,
        authorization: str | None = None,
        content_type: str | None = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        all_headers: dict[str, str] = {}
        if authorization is not None:
            all_headers["Authorization"] = authorization
        elif token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        raw = b""
        if json_body is not _UNSET:
            raw = encode(json_body)
        elif body is not None:
            raw = body
        if (json_body is not _UNSET or body is not None) and content_type is not None:
            all_headers["Content-Type"] = content_type
        all_headers.update(headers or {})
        request = Request.build(method, path, query, all_headers, raw)
        response = await self.app.handle(request)
        await self.drain()
        self.clock.advance(self.step_ms)
        return Reply(response.status, response.headers, response.body)

    def request(self, method: str, path: str, query: str = "", **kwargs: Any) -> Reply:
        return asyncio.run(self.arequest(method, path, query, **kwargs))

    # -- conveniences (async for use inside one event loop, sync wrappers for plain tests) ---

    async def acreate(self, **fields: Any) -> dict[str, Any]:
        reply = await self.arequest("POST", "/v1/messages", json_body=message_body(**fields))
        assert reply.status == 201, reply.body
        message: dict[str, Any] = reply.json["message"]
        return message

    async def alist_all(self, scope: str, **params: Any) -> list[dict[str, Any]]:
        """Every message of ``scope`` (``"users/u1"``), following ``next_cursor`` to the end."""
        return [m for page in await self.apages(scope, **params) for m in page]

    async def apages(self, scope: str, **params: Any) -> list[list[dict[str, Any]]]:
        pages: list[list[dict[str, Any]]] = []
        cursor: str | None = params.pop("cursor", None)
        for _ in range(10_000):
            query = query_string(**params, **({"cursor": cursor} if cursor else {}))
            reply = await self.arequest("GET", f"/v1/{scope}/messages", query)
            assert reply.status == 200, reply.body
            data = reply.json
            assert set(data) == {"messages", "next_cursor"}
            pages.append(data["messages"])
            cursor = data["next_cursor"]
            if cursor is None:
                return pages
        raise AssertionError("pagination did not terminate")

    async def acount(self, scope: str, **params: Any) -> int:
        reply = await self.arequest("GET", f"/v1/{scope}/messages/count", query_string(**params))
        assert reply.status == 200, reply.body
        count: int = reply.json["count"]
        return count

    def create(self, **fields: Any) -> dict[str, Any]:
        return asyncio.run(self.acreate(**fields))

    def list_page(self, scope: str, **params: Any) -> Reply:
        return self.request("GET", f"/v1/{scope}/messages", query_string(**params))

    def list_all(self, scope: str, **params: Any) -> list[dict[str, Any]]:
        return asyncio.run(self.alist_all(scope, **params))

    def pages(self, scope: str, **params: Any) -> list[list[dict[str, Any]]]:
        return asyncio.run(self.apages(scope, **params))

    def count(self, scope: str, **params: Any) -> int:
        return asyncio.run(self.acount(scope, **params))

    def journal_keys(self, index: str) -> list[str]:
        prefix = f"{JOURNAL_PREFIX}{index}:"
        return [k for k in self.kv.snapshot() if k.startswith(prefix)]


def message_body(
    *,
    user_id: str = "u1",
    sender: Any = _UNSET,
    content: Any = "hello",
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": user_id,
        "sender": {"id": "s1", "name": "Sam", "role": "user"} if sender is _UNSET else sender,
        "content": content,
    }
    body.update(extra)
    return body


def query_string(**params: Any) -> str:
    return urlencode({k: str(v) for k, v in params.items() if v is not None})


def ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["id"] for m in messages]


def assert_replay_wrote_nothing_twice(
    kv: MemoryKV, before: Mapping[str, str], before_metadata: Mapping[str, Any]
) -> None:
    """What an identical replay may and may not write.

    Never: a message record (bytes or metadata) or an index's contents. Allowed: journal
    entries re-adding the replayed members at their scores (idempotent), because the first
    attempt may have saved the record and failed before its index writes, and the replay's 200
    must not acknowledge a message that no listing shows; and roots re-stamped by compaction.
    """
    after = kv.snapshot()
    assert kv.deletes == 0
    for key, value in before.items():
        if key.startswith("chat:"):
            assert after.get(key) == value, key
            assert kv.metadata_of(key) == before_metadata[key], key
        elif not key.startswith(JOURNAL_PREFIX):
            assert json.loads(after[key]) == json.loads(value), key  # roots, segments
    assert all(k.startswith(JOURNAL_PREFIX) for k in set(after) - set(before))


def record_metadata(kv: MemoryKV) -> dict[str, Any]:
    return {k: kv.metadata_of(k) for k in kv.snapshot() if k.startswith("chat:")}
