"""An append, floor by floor, in the same minutes: the JS floor's two puts, the same two puts from
a Python Worker (``bench/python-floor``), and chat-store's append (server-made id), each in
blocks of 40 taken in turns that each start one cell later (``Timer.interleaved``), each block
once the runtimes are idle, in a fresh namespace. Prints, per repetition, each cell's median
latency and runtime CPU per request (deferred passes included) and the ratios between them: how
much of target 4's 1.5x a Python Worker spends before any request work of ours.

    .venv/bin/python bench/append_floors.py [--turns 6] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import httpx
from run import (
    AUTH,
    FLOOR_CONFIG,
    TOKEN,
    Cell,
    FloorCalls,
    LocalWorker,
    Timer,
    appender,
    worker_from_tree,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON_FLOOR_CONFIG = REPO_ROOT / "bench" / "python-floor" / "wrangler.toml"
BLOCK = 40


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=6, help="blocks of 40 per cell")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    chat = worker_from_tree(REPO_ROOT, "append-floors-",
                            {"API_TOKEN": TOKEN, "AUTH_DISABLED": "false"})
    chat.start()
    workers: list[LocalWorker] = [chat]
    try:
        python_floor = chat.sibling(config=PYTHON_FLOOR_CONFIG, vars={})
        workers.append(python_floor)
        python_floor.start()
        js_floor = chat.sibling(config=FLOOR_CONFIG, vars={})
        workers.append(js_floor)
        js_floor.start()
        with httpx.Client(base_url=js_floor.base_url, timeout=60) as js, \
                httpx.Client(base_url=python_floor.base_url, timeout=60) as py, \
                httpx.Client(base_url=chat.base_url, headers=AUTH, timeout=60) as c:
            cells = [Cell("JS floor", 0, js_floor, FloorCalls(js, "j").append),
                     Cell("Python floor", 0, python_floor, FloorCalls(py, "p").append),
                     Cell("chat-store", 0, chat, appender(c, "append-floors-u", [0]))]
            timer = Timer(warmup=3, samples=BLOCK)
            timer.workers = workers
            for repeat in range(args.repeats):
                results = timer.interleaved(cells, args.turns, samples=args.turns * BLOCK,
                                            rotate=True)
                median = {r.op: statistics.median(r.samples_ms) for r in results}
                print(f"repeat {repeat + 1}, {args.turns * BLOCK} appends per cell:")
                for r in results:
                    print(f"  {r.op:<13} median {median[r.op]:5.2f} ms, runtime CPU "
                          f"{r.cpu_ms_per_req.get('runtime', float('nan')):5.2f} ms/req")
                js_ms, py_ms, ours = (median[name] for name in
                                      ("JS floor", "Python floor", "chat-store"))
                print(f"  Python floor / JS floor {py_ms / js_ms:.2f}x, chat-store / Python "
                      f"floor {ours / py_ms:.2f}x, chat-store / JS floor {ours / js_ms:.2f}x",
                      flush=True)
    finally:
        for worker in workers:
            worker.stop()


if __name__ == "__main__":
    main()
