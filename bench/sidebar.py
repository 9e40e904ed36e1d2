#!/usr/bin/env python3
"""Sidebar benchmark (issue 11): ``GET /v1/users/{u}/conversations?limit=20`` at 10, 1,000 and
10,000 conversations per user, under the local Workers runtime.

    .venv/bin/python bench/sidebar.py                      # 10,1000,10000 conversations
    .venv/bin/python bench/sidebar.py --sizes 10,1000 --samples 20
    .venv/bin/python bench/sidebar.py --out /tmp/sidebar   # results.md and results.json there

A fresh ``wrangler dev`` runs a snapshot of ``wrangler.toml`` and ``src/`` on empty KV with the
default configuration (only the token is set). Per size, one user gets that many conversations,
two messages each (the user's, then an assistant's reply, as a chat app writes them), through
``POST /v1/messages/batch`` (20 conversations per request, the batch limit). Nothing stored is
tidied by hand: then, like an application, the user's sidebar is read every 5 s or more until
the conversation list's journal is collected by the store's own rules (or ``--settle-timeout``),
and what is left is measured as it is. Then ``--warmup`` untimed and ``--samples`` timed
sequential reads of the first page (20 conversations, newest first) over one keep-alive
connection. Target: the median at each size within 1.3x of the median at the smallest size
whose first page is full (a user with 10 conversations gets a page of 10, half the work).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for _path in (REPO_ROOT / "tests", BENCH_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from load import own_worker  # noqa: E402
from stats import percentile  # noqa: E402

from support.worker_harness import LocalWorker  # noqa: E402

TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PER_BATCH = 20  # MAX_BATCH_CONVERSATIONS in src/validation.py
PAGE = 20
T0 = 1_600_000_000_000
TARGET = 1.3
SIZES = (10, 1_000, 10_000)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def user_of(size: int) -> str:
    return f"sidebar-{size}"


def seed(c: httpx.Client, size: int, concurrency: int) -> float:
    user = user_of(size)

    def batch(first: int) -> None:
        messages = []
        for n in range(first, min(first + PER_BATCH, size)):
            conversation = f"{user}-c{n:06d}"
            for k, (sender, text) in enumerate(((user, "a question"),
                                                ("assistant", "an answer " * 10))):
                messages.append({"id": f"{conversation}-m{k}", "user_id": user,
                                 "conversation_id": conversation,
                                 "sender": {"id": sender, "role": "user" if k == 0 else sender},
                                 "content": text, "timestamp": T0 + 2_000 * n + k})
        for attempt in range(5):
            reply = c.post("/v1/messages/batch", json={"messages": messages})
            if reply.status_code in (200, 201):
                return
            log(f"  retrying a batch after {reply.status_code}: {reply.text[:120]}")
            time.sleep(1 + attempt)
        raise RuntimeError(f"seeding {user} failed: {reply.status_code} {reply.text[:300]}")

    started = time.perf_counter()
    with cf.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(batch, range(0, size, PER_BATCH)))
    return time.perf_counter() - started


def journal_left(worker: LocalWorker, user: str) -> int:
    return len(worker.kv_list(f"idx:log:user:conversations:{user}:"))


def settle(worker: LocalWorker, c: httpx.Client, users: list[str], timeout_s: float
           ) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        start = time.monotonic()
        for user in users:
            c.get(f"/v1/users/{user}/conversations", params={"limit": PAGE})
        time.sleep(2)
        left = {u: journal_left(worker, u) for u in users}
        log(f"  conversation-list journal entries left: {left}")
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        time.sleep(max(0.0, 5.5 - (time.monotonic() - start)))


def measure(c: httpx.Client, size: int, warmup: int, samples: int) -> list[float]:
    user = user_of(size)
    newest = f"{user}-c{size - 1:06d}"

    def read() -> None:
        reply = c.get(f"/v1/users/{user}/conversations", params={"limit": PAGE})
        body = reply.json()
        if reply.status_code != 200 or len(body["conversations"]) != min(PAGE, size) \
                or body["conversations"][0]["id"] != newest:
            raise RuntimeError(f"wrong sidebar for {user}: {reply.status_code} {reply.text[:300]}")

    for _ in range(warmup):
        read()
    timings = []
    for _ in range(samples):
        t = time.perf_counter()
        read()
        timings.append((time.perf_counter() - t) * 1000)
    return timings


def report(rows: dict[int, list[float]], settled: dict[str, int]) -> str:
    """The table; each size against the smallest one whose first page is full (20), since a
    user with fewer conversations gets a shorter page."""
    full = [size for size in rows if size >= PAGE] or [min(rows)]
    base_size = min(full)
    base = statistics.median(rows[base_size])
    lines = [f"| sidebar: 20 conversations | median ms | p90 ms | vs {base_size:,} | target 1.3x |",
             "|---|---:|---:|---:|---|"]
    for size, samples in sorted(rows.items()):
        median = statistics.median(samples)
        ratio = median / base
        if size < PAGE:
            verdict = f"a page of {size}"
        else:
            verdict = "met" if ratio <= TARGET else f"missed by {ratio / TARGET:.2f}x"
        lines.append(f"| {size:,} conversations | {median:.1f} | {percentile(samples, 0.9):.1f} "
                     f"| {ratio:.2f}x | {verdict} |")
    left = ", ".join(f"{u}: {n}" for u, n in settled.items())
    lines.append("")
    lines.append(f"Conversation-list journal entries left when timing began: {left}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    p.add_argument("--samples", type=int, default=40)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--settle-timeout", type=float, default=400.0)
    p.add_argument("--out", type=Path, default=BENCH_DIR / "out" / "sidebar")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with own_worker(TOKEN, keep_state=False) as (worker, provenance), \
            httpx.Client(base_url=worker.base_url, headers=AUTH, timeout=120) as c:
        for size in sizes:
            log(f"seeding {size:,} conversations")
            log(f"  {seed(c, size, args.concurrency):.0f} s")
        settled = settle(worker, c, [user_of(s) for s in sizes], args.settle_timeout)
        rows: dict[int, list[float]] = {}
        for size in sizes:
            rows[size] = measure(c, size, args.warmup, args.samples)
            log(f"  {size:>6} conversations: median {statistics.median(rows[size]):.1f} ms")
    markdown = report(rows, settled)
    print(markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(markdown + "\n")
    (args.out / "results.json").write_text(json.dumps(
        {"provenance": provenance, "samples_ms": rows, "journal_left": settled}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
