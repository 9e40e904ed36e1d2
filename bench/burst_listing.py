"""What a newest-50 read lists under a steady stream of appends (the benchmark's burst rows).

Runs the Worker's Python on CPython against the tests' in-memory KV, as ``cpu_profile.py`` does
(deferred passes as tasks, the pacer's delays slept out on the store's clock): a user with
5,000 messages, appends at ``--rate`` per second for ``--warm`` seconds (by default past the
journal's collection delay, as the benchmark waits), then a read every 0.2 s. Prints the KV
``list`` calls and listed keys per read, the reader's own, not its passes'.

    .venv/bin/python bench/burst_listing.py [--rate 1] [--warm 260] [--reads 50]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "bench")]

from cpu_profile import START_MS, TOKEN, served  # noqa: E402

from config import Config  # noqa: E402
from storage.kv import ListPage  # noqa: E402
from support.app_harness import message_body  # noqa: E402

STEP_MS = 200  # one read every 0.2 s, as the benchmark's burst rows


async def run(rate: float, warm_s: int, reads: int) -> None:
    h, background = served(Config(api_token=TOKEN, journal_settle_ms=120_000))
    for batch in range(50):
        messages = [message_body(id=f"s{batch}-{n}", user_id="u1",
                                 timestamp=START_MS + batch * 100 + n) for n in range(100)]
        reply = await h.arequest("POST", "/v1/messages/batch", json_body={"messages": messages})
        assert reply.status == 201, reply.body
        await background.settle()
    listed: list[int] = []  # keys per list call, while a read is being answered
    counting = False
    list_page = h.kv.list

    async def counted(**options: Any) -> ListPage:
        page = await list_page(**options)
        if counting:
            listed.append(len(page.keys))
        return page

    h.kv.list = counted  # type: ignore[method-assign]
    ids = itertools.count()
    write_every_ms, next_write_ms, now_ms = round(1000 / rate), 0, 0
    calls = keys = done = 0
    while done < reads:
        while next_write_ms <= now_ms:
            body = message_body(user_id="u1", id=f"w{next(ids)}")
            assert (await h.arequest("POST", "/v1/messages", json_body=body)).status == 201
            next_write_ms += write_every_ms
        measured = now_ms >= warm_s * 1000
        counting, listed[:] = measured, []
        reply = await h.arequest("GET", "/v1/users/u1/messages", "limit=50")
        counting = False
        assert reply.status == 200, reply.body
        if measured:
            calls, keys, done = calls + len(listed), keys + sum(listed), done + 1
        await background.settle()
        h.clock.advance(STEP_MS)
        now_ms += STEP_MS
    print(f"under {rate:g} appends/s: {calls / reads:.2f} list calls and {keys / reads:.1f} keys "
          f"listed per newest-50 read ({reads} reads after {warm_s} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--warm", type=int, default=260)
    parser.add_argument("--reads", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.warm, args.reads))


if __name__ == "__main__":
    main()
