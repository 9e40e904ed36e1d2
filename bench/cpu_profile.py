"""Where the CPU goes: cProfile of newest-50 reads and of appends into a conversation.

Runs the Worker's Python (``web.app`` down to the index) on CPython against the tests'
in-memory KV (``tests/support/memory_kv.py``, which parses metadata the way a KV response is
parsed), a first look before measuring in the runtime: Pyodide is slower, and the KV and FFI
costs there are the runtime's. A user with 1,000 messages in one conversation; requests 50 ms
apart on the store's clock (20 a second), each followed by the compactions it deferred, so an
append's share of the passes is in its figure.

    .venv/bin/python bench/cpu_profile.py [--requests 200] [--top 25]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from config import Config  # noqa: E402
from support.app_harness import TOKEN, AppHarness, message_body  # noqa: E402

START_MS = 1_700_000_000_000


async def seed(h: AppHarness) -> None:
    for batch in range(10):
        messages = [message_body(id=f"m{batch}-{n}", user_id="u1", conversation_id="c",
                                 timestamp=START_MS + batch * 100 + n) for n in range(100)]
        reply = await h.arequest("POST", "/v1/messages/batch", json_body={"messages": messages})
        assert reply.status == 201, reply.body
    h.clock.advance(600_000)  # past the journal's collection delay: a quiet index
    for _ in range(5):
        await h.arequest("GET", "/v1/users/u1/messages", "limit=50")
        h.clock.advance(10_000)


async def read(h: AppHarness) -> None:
    reply = await h.arequest("GET", "/v1/users/u1/messages", "limit=50")
    assert reply.status == 200, reply.body


async def append(h: AppHarness) -> None:
    body = message_body(user_id="u1", conversation_id="c")
    reply = await h.arequest("POST", "/v1/messages", json_body=body)
    assert reply.status == 201, reply.body


def profile(h: AppHarness, request: Callable[[AppHarness], Awaitable[None]], n: int,
            top: int) -> None:
    async def requests() -> None:
        for _ in range(n):
            await request(h)

    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(requests())
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = sorted(
        ((cumulative, f"{path.rsplit('/', 1)[-1]}:{func}", calls)
         for (path, _, func), (_, calls, _, cumulative, _) in stats.stats.items()  # type: ignore[attr-defined]
         if "asyncio" not in path and "contextvars" not in func and path != "~"),
        reverse=True,
    )
    print(f"== {request.__name__}: cumulative ms per request (calls in all), {n} requests")
    for cumulative, label, calls in rows[:top]:
        print(f"{cumulative * 1000 / n:8.2f}  {calls:8d}  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    h = AppHarness(Config(api_token=TOKEN, journal_settle_ms=120_000))
    h.step_ms = 50
    asyncio.run(seed(h))
    for request in (read, append):
        profile(h, request, args.requests, args.top)


if __name__ == "__main__":
    main()
