"""Where the CPU goes: cProfile of newest-50 reads and of appends into a conversation.

Runs the Worker's Python (``web.app`` down to the index) on CPython against the tests'
in-memory KV (``tests/support/memory_kv.py``, which parses metadata the way a KV response is
parsed), a first look before measuring in the runtime: Pyodide is slower, and the KV and FFI
costs there are the runtime's. A user with 1,000 messages in one conversation; requests 50 ms
apart on the store's clock (20 a second). Deferred work runs as ``ctx.waitUntil`` runs it, and
the compaction pacer's delays are slept out on the store's clock, so passes run as often as in
the runtime (one per index per second under a burst): their share of the CPU is in the figures.

    .venv/bin/python bench/cpu_profile.py [--requests 200] [--top 25]

With ``--sizes 1000,100000``: is a read's own work flat in history size? One quiet user per
size (seeded in batches of 100, then read past the journal's collection delay), then per size
the KV operations and CPython CPU of a newest-50 read, a mid-history range read, a count and
page 100 of 50, deferred work included: what the runtime's figures cost beyond the KV calls.
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


async def seed_user(h: AppHarness, background: Background, user: str, size: int,
                    conversation: str | None = None) -> None:
    """``size`` messages in batches of 100 (in ``conversation``, if any)."""
    for batch in range(size // 100):
        messages = [message_body(id=f"{user}-{batch}-{n}", user_id=user,
                                 timestamp=START_MS + batch * 100 + n,
                                 **({"conversation_id": conversation} if conversation else {}))
                    for n in range(100)]
        reply = await h.arequest("POST", "/v1/messages/batch", json_body={"messages": messages})
        assert reply.status == 201, reply.body
        await background.settle()


async def quiet_down(h: AppHarness, background: Background, users: list[str]) -> None:
    """Reads past the journal's collection delay: quiet indexes, as a reader meets them."""
    for _ in range(60):
        h.clock.advance(10_000)
        for user in users:
            await h.arequest("GET", f"/v1/users/{user}/messages", "limit=50")
        await background.settle()


async def seed(h: AppHarness, background: Background) -> None:
    await seed_user(h, background, "u1", 1000, conversation="c")
    await quiet_down(h, background, ["u1"])


async def read(h: AppHarness) -> None:
    reply = await h.arequest("GET", "/v1/users/u1/messages", "limit=50")
    assert reply.status == 200, reply.body


async def append(h: AppHarness) -> None:
    body = message_body(user_id="u1", conversation_id="c")
    reply = await h.arequest("POST", "/v1/messages", json_body=body)
    assert reply.status == 201, reply.body


async def measured(h: AppHarness, background: Background,
                   request: Callable[[AppHarness], Awaitable[None]], n: int) -> tuple[float, str]:
    """CPU ms per request and the KV operations per request, deferred passes included."""
    h.kv.reset_counters()
    started = time.process_time()
    for _ in range(n):
        await request(h)
        await background.settle()
    cpu_ms = (time.process_time() - started) * 1000 / n
    kv = h.kv
    return cpu_ms, (f"{kv.reads / n:.1f} gets, {kv.writes / n:.1f} puts, "
                    f"{kv.deletes / n:.1f} deletes, {kv.lists / n:.1f} lists")


async def profile(h: AppHarness, background: Background,
                  request: Callable[[AppHarness], Awaitable[None]], n: int, top: int) -> None:
    # Timed without the profiler, whose overhead is per call.
    cpu_ms, operations = await measured(h, background, request, n)
    print(f"== {request.__name__}: KV operations per request (deferred passes included): "
          f"{operations}")
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


async def page_cursor(h: AppHarness, user: str, page: int) -> str:
    """The cursor of page ``page`` of 50, newest first (walked once, untimed)."""
    cursor = ""
    for _ in range(page - 1):
        query = "limit=50" + (f"&cursor={cursor}" if cursor else "")
        cursor = (await h.arequest("GET", f"/v1/users/{user}/messages", query)).json[
            "next_cursor"]
    return cursor


async def by_size(sizes: list[int], requests: int) -> None:
    h, background = served(Config(api_token=TOKEN, journal_settle_ms=120_000))
    h.step_ms = 50
    for size in sizes:
        await seed_user(h, background, f"u{size}", size)
    await quiet_down(h, background, [f"u{size}" for size in sizes])
    print(f"{'history':>8}  {'request':<18} {'CPU ms':>7}  KV operations per request "
          f"(deferred passes included), {requests} requests")
    for size in sizes:
        messages = f"/v1/users/u{size}/messages"
        page = min(100, size // 50)
        deep = await page_cursor(h, f"u{size}", page)
        cells = (("newest-50", messages, "limit=50"),
                 ("range (50)", messages, f"limit=50&order=asc&start={START_MS + size // 2}"),
                 ("count", f"{messages}/count", ""),
                 (f"page {page} of 50", messages, f"limit=50&cursor={deep}"))
        for name, path, query in cells:
            async def get(h: AppHarness, path: str = path, query: str = query) -> None:
                reply = await h.arequest("GET", path, query)
                assert reply.status == 200, reply.body

            cpu_ms, operations = await measured(h, background, get, requests)
            print(f"{size:>8}  {name:<18} {cpu_ms:7.2f}  {operations}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sizes", help="history sizes, e.g. 1000,100000: KV operations and "
                                        "CPU of reads at each (no profile)")
    args = parser.parse_args()
    if args.sizes:
        asyncio.run(by_size([int(s) for s in args.sizes.split(",")], args.requests))
    else:
        asyncio.run(run(args.requests, args.top))


async def run(requests: int, top: int) -> None:
    h, background = served(Config(api_token=TOKEN, journal_settle_ms=120_000))
    h.step_ms = 50
    await seed(h, background)
    for request in (read, append):
        await profile(h, background, request, requests, top)


if __name__ == "__main__":
    main()
