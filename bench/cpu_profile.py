"""Where the CPU goes: cProfile of newest-50 reads and of appends into a conversation.

Runs the Worker's Python (``web.app`` down to the index) on CPython against the tests'
in-memory KV (``tests/support/memory_kv.py``, which parses metadata the way a KV response is
parsed), a first look before measuring in the runtime: Pyodide is slower, and the KV and FFI
costs there are the runtime's. A user with 1,000 messages in one conversation; requests 50 ms
apart on the store's clock (20 a second). Deferred work runs as ``ctx.waitUntil`` runs it, and
the compaction pacer's delays are slept out on the store's clock, so passes run as often as in
the runtime (one per index per second under a burst): their share of the CPU is in the figures.

    .venv/bin/python bench/cpu_profile.py [--requests 200] [--top 25]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import heapq
import itertools
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from config import Config  # noqa: E402
from index.pacer import CompactionPacer  # noqa: E402
from support.app_harness import TOKEN, AppHarness, message_body  # noqa: E402
from support.clock import ManualClock  # noqa: E402

START_MS = 1_700_000_000_000


class Background:
    """Deferred work as tasks (``ctx.waitUntil``), and a sleep that ends when the store's
    clock reaches its end: the pacer's delayed passes run when their time comes."""

    def __init__(self, clock: ManualClock) -> None:
        self._clock = clock
        self._tasks: set[asyncio.Task[object]] = set()
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def defer(self, work: Awaitable[object]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sleep(self, seconds: float) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        due = self._clock.now_ms + round(seconds * 1000)
        heapq.heappush(self._sleepers, (due, next(self._order), done))
        await done

    async def settle(self) -> None:
        """Wake the sleepers that are due, then run until every task is done or asleep."""
        while self._sleepers and self._sleepers[0][0] <= self._clock.now_ms:
            heapq.heappop(self._sleepers)[2].set_result(None)
        while len(self._tasks) > len(self._sleepers):
            await asyncio.sleep(0)


def served(config: Config) -> tuple[AppHarness, Background]:
    h = AppHarness(config)
    background = Background(h.clock)
    h.pacer = CompactionPacer(sleep=background.sleep)
    h.serve()
    h.app = h.service.bind(h.kv, h.clock, background.defer)
    return h, background


async def seed(h: AppHarness, background: Background) -> None:
    for batch in range(10):
        messages = [message_body(id=f"m{batch}-{n}", user_id="u1", conversation_id="c",
                                 timestamp=START_MS + batch * 100 + n) for n in range(100)]
        reply = await h.arequest("POST", "/v1/messages/batch", json_body={"messages": messages})
        assert reply.status == 201, reply.body
        await background.settle()
    for _ in range(60):  # past the journal's collection delay: a quiet index
        h.clock.advance(10_000)
        await h.arequest("GET", "/v1/users/u1/messages", "limit=50")
        await background.settle()


async def read(h: AppHarness) -> None:
    reply = await h.arequest("GET", "/v1/users/u1/messages", "limit=50")
    assert reply.status == 200, reply.body


async def append(h: AppHarness) -> None:
    body = message_body(user_id="u1", conversation_id="c")
    reply = await h.arequest("POST", "/v1/messages", json_body=body)
    assert reply.status == 201, reply.body


async def profile(h: AppHarness, background: Background,
                  request: Callable[[AppHarness], Awaitable[None]], n: int, top: int) -> None:
    h.kv.reset_counters()
    started = time.process_time()
    for _ in range(n):  # timed without the profiler, whose overhead is per call
        await request(h)
        await background.settle()
    cpu_ms = (time.process_time() - started) * 1000 / n
    kv = h.kv
    print(f"== {request.__name__}: KV operations per request (deferred passes included): "
          f"{kv.reads / n:.1f} gets, {kv.writes / n:.1f} puts, {kv.deletes / n:.1f} deletes, "
          f"{kv.lists / n:.1f} lists")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        await request(h)
        await background.settle()
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = sorted(
        ((cumulative, f"{path.rsplit('/', 1)[-1]}:{func}", calls)
         for (path, _, func), (_, calls, _, cumulative, _) in stats.stats.items()  # type: ignore[attr-defined]
         if "asyncio" not in path and "contextvars" not in func and path != "~"),
        reverse=True,
    )
    print(f"== {request.__name__}: {cpu_ms:.2f} ms of CPU per request without the profiler "
          f"(deferred passes included); under cProfile, cumulative ms per request (calls in "
          f"all), {n} requests")
    for cumulative, label, calls in rows[:top]:
        print(f"{cumulative * 1000 / n:8.2f}  {calls:8d}  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.top))


async def run(requests: int, top: int) -> None:
    h, background = served(Config(api_token=TOKEN, journal_settle_ms=120_000))
    h.step_ms = 50
    await seed(h, background)
    for request in (read, append):
        await profile(h, background, request, requests, top)


if __name__ == "__main__":
    main()
