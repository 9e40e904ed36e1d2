"""What an append costs in this runtime, floor by floor: runtime CPU per request of the JS floor's
append (two KV puts), the same two puts from a Python Worker (``bench/python-floor``), a
hello-world Python request, and chat-store's append (server-made id, a user with 1,000
messages), each over rounds of 3 warmups and 40 sequential requests, CPU counted until the
runtime is idle again (deferred passes included).

    .venv/bin/python bench/append_floors.py [--rounds 6] [--source DIR]
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
    TOKEN,
    LocalWorker,
    check,
    group_cpu,
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


def cpu_per_request(worker: LocalWorker, idle: list[LocalWorker], call: Callable[[], object]
                    ) -> float:
    """Runtime CPU ms per request over SAMPLES calls, after 3 warmups and an idle runtime."""
    for _ in range(3):
        call()
    wait_idle(idle)
    pgid = worker_pgid(worker)
    assert pgid is not None
    before = group_cpu(pgid)["runtime"]
    for _ in range(SAMPLES):
        call()
    wait_idle(idle)
    return (group_cpu(pgid)["runtime"] - before) * 1000 / SAMPLES


def retried(client: httpx.Client, path: str, params: dict[str, str | int]) -> None:
    """The floors have no retrying KV wrapper: a transient simulator failure is retried here."""
    for _ in range(3):
        if client.post(path, params=params).status_code == 201:
            return
        time.sleep(0.2)
    raise AssertionError(f"{path} kept failing")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--source", type=Path, default=REPO_ROOT,
                        help="a tree with src/ and wrangler.toml (default: this checkout)")
    args = parser.parse_args()
    chat = worker_from_tree(args.source, "append-floors-",
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

        def floor_append(worker: LocalWorker) -> Callable[[], None]:
            def call() -> None:
                counter[0] += 1
                retried(clients[worker], "/append", {"user": "floors", "n": counter[0]})
            return call

        cells: dict[str, tuple[LocalWorker, Callable[[], object]]] = {
            "chat-store append": (chat, append),
            "JS floor append (2 puts)": (js_floor, floor_append(js_floor)),
            "Python floor append (the same 2 puts)": (py_floor, floor_append(py_floor)),
            "hello-world Python request": (hello, lambda: clients[hello].get("/health")),
        }
        figures: dict[str, list[float]] = {name: [] for name in cells}
        for n in range(args.rounds):
            for name, (worker, call) in cells.items():
                figures[name].append(cpu_per_request(worker, everyone, call))
            print(f"round {n + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in figures.items()),
                  flush=True)
        print(f"\nruntime CPU per request, median of {args.rounds} rounds of {SAMPLES} (ms):")
        for name, values in figures.items():
            print(f"  {name:<40} {statistics.median(values):6.2f}")
    finally:
        for worker in everyone:
            worker.stop()


if __name__ == "__main__":
    main()
