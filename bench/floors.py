"""What an append and a newest-50 read cost in this runtime, floor by floor: runtime CPU per
request of the JS floor's append (two KV puts) and read (get, list of our read's journal prefix,
50 gets), the same KV calls from a Python Worker (``bench/python-floor``, made the way
``src/entry.py`` makes them), a hello-world Python request, and chat-store's append (server-made
id) and newest-50 read of a user with 1,000 messages, each over rounds of 3 warmups and 40
sequential requests, CPU counted until the runtime is idle again (deferred passes included),
and the latency of each request (the medians and the ratios that target 4 takes).

    .venv/bin/python bench/floors.py [--rounds 6] [--source DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from run import (
    AUTH,
    BENCH_DIR,
    CONTENT,
    FLOOR_CONFIG,
    HELLO_CONFIG,
    PAGE,
    TOKEN,
    FloorCalls,
    LocalWorker,
    check,
    floor_request,
    group_cpu,
    journal_prefix,
    message,
    ts,
    wait_idle,
    worker_from_tree,
    worker_pgid,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON_FLOOR_CONFIG = BENCH_DIR / "python-floor" / "wrangler.toml"
USER = "floors-u"
SEEDED = 1_000
SAMPLES = 40
CHAT_APPEND, CHAT_READ = "chat-store append", "chat-store newest-50 read"
JS_APPEND, PY_APPEND = "JS floor append (2 puts)", "Python floor append (the same 2 puts)"
JS_READ, PY_READ = "JS floor read (get, list, 50 gets)", "Python floor read (the same calls)"
GAPS = [(PY_APPEND, JS_APPEND), (CHAT_APPEND, PY_APPEND), (PY_READ, JS_READ), (CHAT_READ, PY_READ)]


def cpu_per_request(worker: LocalWorker, idle: list[LocalWorker], call: Callable[[], object],
                    latencies: list[float]) -> float:
    """Runtime CPU ms per request over SAMPLES calls, after 3 warmups and an idle runtime; each
    call's latency (ms) goes to ``latencies``."""
    for _ in range(3):
        call()
    wait_idle(idle)
    pgid = worker_pgid(worker)
    assert pgid is not None
    before = group_cpu(pgid)["runtime"]
    for _ in range(SAMPLES):
        started = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - started) * 1000)
    wait_idle(idle)
    return (group_cpu(pgid)["runtime"] - before) * 1000 / SAMPLES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--source", type=Path, default=REPO_ROOT,
                        help="a tree with src/ and wrangler.toml (default: this checkout)")
    args = parser.parse_args()
    chat = worker_from_tree(args.source, "floors-",
                            {"API_TOKEN": TOKEN, "AUTH_DISABLED": "false"})
    chat.start()
    others = [chat.sibling(config=c, vars={})
              for c in (FLOOR_CONFIG, PYTHON_FLOOR_CONFIG, HELLO_CONFIG)]
    for worker in others:
        worker.start()
    js_floor, py_floor, hello = others
    everyone = [chat, *others]
    try:
        c = httpx.Client(base_url=chat.base_url, headers=AUTH, timeout=60)
        for batch in range(SEEDED // 100):
            body = {"messages": [message(USER, batch * 100 + i, with_id=True)
                                 for i in range(100)]}
            check(c.post("/v1/messages/batch", json=body), 201)
        wait_idle(everyone)
        clients = {w: httpx.Client(base_url=w.base_url, timeout=60) for w in others}
        counter = [SEEDED]

        def append() -> None:
            body = {"user_id": USER, "sender": {"id": USER, "role": "user"},
                    "content": f"{CONTENT}#a", "timestamp": ts(counter[0])}
            counter[0] += 1
            check(c.post("/v1/messages", json=body), 201)

        floor_counters = {w: [SEEDED] for w in others}  # each floor's records numbered apart

        def floor_append(worker: LocalWorker) -> Callable[[], None]:
            def call() -> None:
                floor_counters[worker][0] += 1
                floor_request(clients[worker], "POST", "/append",
                              {"user": "floors", "n": floor_counters[worker][0]}, 201)
            return call

        for worker in (js_floor, py_floor):  # records for the floors' reads
            for _ in range(PAGE):
                floor_append(worker)()
        journal = journal_prefix(f"user:chat:{USER}")  # the prefix chat-store's read lists

        def read() -> None:
            page = check(c.get(f"/v1/users/{USER}/messages", params={"limit": PAGE})).json()
            assert len(page["messages"]) == PAGE, len(page["messages"])

        def floor_reads(worker: LocalWorker) -> Callable[[], None]:
            read_and_list = FloorCalls(clients[worker], "floors").read_lister(journal)
            return lambda: read_and_list(0)

        cells: dict[str, tuple[LocalWorker, Callable[[], object]]] = {
            CHAT_APPEND: (chat, append),
            JS_APPEND: (js_floor, floor_append(js_floor)),
            PY_APPEND: (py_floor, floor_append(py_floor)),
            CHAT_READ: (chat, read),
            JS_READ: (js_floor, floor_reads(js_floor)),
            PY_READ: (py_floor, floor_reads(py_floor)),
            "hello-world Python request": (hello, lambda: clients[hello].get("/health")),
        }
        figures: dict[str, list[float]] = {name: [] for name in cells}
        latencies: dict[str, list[float]] = {name: [] for name in cells}
        for n in range(args.rounds):
            for name, (worker, call) in cells.items():
                figures[name].append(cpu_per_request(worker, everyone, call, latencies[name]))
            print(f"round {n + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in figures.items()),
                  flush=True)
        print(f"\nruntime CPU per request, median of {args.rounds} rounds of {SAMPLES} (ms):")
        for name, values in figures.items():
            print(f"  {name:<40} {statistics.median(values):6.2f}")
        # The machine's load drifts between rounds more than the gaps: pair them by round.
        print("\ngaps, median of the per-round differences (ms):")
        for above, below in GAPS:
            gaps = [a - b for a, b in zip(figures[above], figures[below], strict=True)]
            print(f"  {above} - {below}: {statistics.median(gaps):+.2f} "
                  f"(rounds {min(gaps):+.1f} .. {max(gaps):+.1f})")
        print(f"\nlatency, median of all {args.rounds * SAMPLES} requests (ms), and the ratios "
              "target 4 takes (against the JS floor's same calls):")
        for name, values in latencies.items():
            print(f"  {name:<40} {statistics.median(values):6.2f}")
        for above, below in [*GAPS, (CHAT_APPEND, JS_APPEND), (CHAT_READ, JS_READ)]:
            ratio = statistics.median(latencies[above]) / statistics.median(latencies[below])
            print(f"  {above} / {below}: {ratio:.2f}x")
    finally:
        for worker in everyone:
            worker.stop()


if __name__ == "__main__":
    main()
