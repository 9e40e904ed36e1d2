"""The async client against scripted mock servers: the same behaviour as the sync one."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from chat_store_client import AsyncChatStore, NotFound, RateLimited, RetryPolicy, TransportError

BASE_URL = "http://chat-store.test"
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def store(script: Any, sleeps: Any, **kwargs: Any) -> AsyncChatStore:
    return AsyncChatStore(BASE_URL, "tok", transport=httpx.MockTransport(script),
                          sleep=sleeps.asleep, rng=random.Random(3), **kwargs)


def ok(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


def test_create_retries_with_the_same_id(script: Any, sleeps: Any,
                                         make_problem: Callable[..., httpx.Response]) -> None:
    script.answers += [make_problem(503, "storage_unavailable", {"retry-after": "1"}),
                       lambda r: ok({"message": json.loads(r.content)}, 201)]

    async def go() -> str:
        async with store(script, sleeps) as client:
            made = await client.create_message(user_id="u", sender={"id": "u"}, content="x")
            return made["id"]

    made_id = run(go())
    assert [b["id"] for b in script.bodies()] == [made_id, made_id]
    assert sleeps == [1.0]
    assert script.requests[0].headers["authorization"] == "Bearer tok"


def test_errors_and_bounded_retries(script: Any, sleeps: Any,
                                    make_problem: Callable[..., httpx.Response]) -> None:
    script.answers += [make_problem(429, "rate_limited", {"retry-after": "2"})] * 2
    script.answers += [make_problem(404, "not_found"), httpx.ConnectError("refused")]

    async def go() -> None:
        client = store(script, sleeps, retry=RetryPolicy(max_attempts=2))
        with pytest.raises(RateLimited):
            await client.count_user_messages("u")
        with pytest.raises(NotFound):
            await client.get_conversation("c")
        with pytest.raises(TransportError):
            await store(script, sleeps, retry=RetryPolicy(max_attempts=1)).get_health()
        await client.aclose()

    run(go())
    assert sleeps == [2.0]


def test_async_iterators_follow_next_cursor(script: Any, sleeps: Any,
                                            make_message: Callable[..., Any]) -> None:
    script.answers += [ok({"messages": [make_message("m1")], "next_cursor": "a"}),
                       ok({"messages": [make_message("m2")], "next_cursor": None}),
                       ok({"messages": [make_message("m3")], "next_cursor": None}),
                       ok({"conversations": [{"id": "c1"}], "next_cursor": "b"}),
                       ok({"conversations": [{"id": "c2"}], "next_cursor": None})]

    async def collect(items: AsyncIterator[Any]) -> list[str]:
        return [item["id"] async for item in items]

    async def go() -> list[list[str]]:
        client = store(script, sleeps)
        return [await collect(client.iter_user_messages("u", order="asc", page_size=1)),
                await collect(client.iter_conversation_messages("c")),
                await collect(client.iter_user_conversations("u"))]

    assert run(go()) == [["m1", "m2"], ["m3"], ["c1", "c2"]]
    assert dict(script.requests[1].url.params) == {"order": "asc", "limit": "1", "cursor": "a"}


def test_async_export_to(tmp_path: Path, script: Any, sleeps: Any,
                         make_message: Callable[..., Any],
                         make_problem: Callable[..., httpx.Response]) -> None:
    lines = [json.dumps(make_message(f"m{n}")).encode() + b"\n" for n in range(3)]
    ndjson = {"content-type": "application/x-ndjson"}
    script.answers += [
        httpx.Response(200, content=lines[0] + lines[1],
                       headers={**ndjson, "chat-store-next-cursor": "k"}),
        make_problem(429, "rate_limited", {"retry-after": "0"}),
        httpx.Response(200, content=lines[2], headers=ndjson),
    ]
    target = tmp_path / "out.ndjson"

    async def go() -> int:
        return await store(script, sleeps).export_to(target, conversation_id="c")

    assert run(go()) == 3
    assert target.read_bytes() == b"".join(lines)
    assert sleeps == [0.0]


def test_async_erase_until_done_and_export_pages(script: Any, sleeps: Any,
                                                 make_message: Callable[..., Any]) -> None:
    script.answers += [ok({"deleted": 300, "remaining": 1}), ok({"deleted": 1, "remaining": 0}),
                       httpx.Response(200, content=json.dumps(make_message("m1")).encode() + b"\n",
                                      headers={"chat-store-next-cursor": "k"})]

    async def go() -> tuple[Any, Any]:
        client = store(script, sleeps)
        erased = await client.erase_conversation_messages("c", until_done=True)
        page = await client.export_user_messages("u", limit=1)
        return erased, page

    erased, page = run(go())
    assert erased == {"deleted": 301, "remaining": 0}
    assert page == {"messages": [make_message("m1")], "next_cursor": "k"}
