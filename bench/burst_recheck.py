"""One burst row again, alone and smaller: newest-50 reads quiet, then under N appends/s.

The full benchmark's burst rows take 40 reads each after a 20,000-message seed; when one looks
off, this reruns just that row in the runtime (``wrangler dev``, a snapshot of ``src/`` or of any
source tree given) on a 5,000-message history: 40 quiet reads, then appends at ``--rate`` for
``--warm`` seconds (260 s, as the benchmark waits, by default), then 40 reads under them.

With ``--floor``, a control: the JS floor (bench/floor-worker, its own runtime process on the
same KV files) is read too, each chat-store read followed by a floor read of 50 records with
one list of the same journal prefix, quiet and under the same appends. The floor shares the
machine and the KV simulator with the appends but not chat-store's isolate, so its slowdown is
what the machine and the simulator alone make of the burst.

    .venv/bin/python bench/burst_recheck.py [--rate 1] [--warm 260] [--source DIR] [--floor]
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import httpx
from run import (
    AUTH,
    FLOOR_CONFIG,
    TOKEN,
    FloorCalls,
    LocalWorker,
    check,
    floor_request,
    group_cpu,
    journal_prefix,
    message,
    paced_reads,
    summary,
    worker_from_tree,
    worker_pgid,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
USER = "recheck-u"
READS = 40
READ_EVERY_S = 0.2
JOURNAL = journal_prefix(f"user:chat:{USER}")  # what chat-store's read lists


def timed_reads(client: httpx.Client, floor: httpx.Client | None
                ) -> dict[str, dict[str, float]]:
    """READS newest-50 reads, one starting every READ_EVERY_S (each followed by a floor read,
    if any): median and p90 in ms by reader."""
    read_and_list = None if floor is None else FloorCalls(floor, USER).read_lister(JOURNAL)
    control = None if read_and_list is None else (lambda: read_and_list(0))
    paced = paced_reads(client, USER, READS, READ_EVERY_S, control=control)
    return {reader: summary(values)
            for reader, values in (("chat-store", paced.reads_ms), ("JS floor", paced.controls_ms))
            if values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--warm", type=float, default=260.0)
    parser.add_argument("--source", type=Path, default=REPO_ROOT,
                        help="a tree with src/ and wrangler.toml (default: this checkout)")
    parser.add_argument("--floor", action="store_true",
                        help="also read the JS floor, quiet and under the appends (a control)")
    args = parser.parse_args()
    worker = worker_from_tree(args.source, "burst-recheck-",
                              {"API_TOKEN": TOKEN, "AUTH_DISABLED": "false",
                               "JOURNAL_SETTLE_MS": "120000"})
    worker.start()
    floor_worker: LocalWorker | None = None
    floor: httpx.Client | None = None
    stop = threading.Event()
    try:
        if args.floor:
            floor_worker = worker.sibling(config=FLOOR_CONFIG, vars={})
            floor_worker.start()
            floor = httpx.Client(base_url=floor_worker.base_url, timeout=60)
            for n in range(50):
                floor_request(floor, "POST", "/append", {"user": USER, "n": n}, 201)
        client = httpx.Client(base_url=worker.base_url, headers=AUTH, timeout=60)
        for batch in range(50):
            batch_body = [message(USER, batch * 100 + n, with_id=True) for n in range(100)]
            check(client.post("/v1/messages/batch", json={"messages": batch_body}), 201)
        time.sleep(5)
        quiet = timed_reads(client, floor)

        def append_steadily() -> None:
            with httpx.Client(base_url=worker.base_url, headers=AUTH, timeout=60) as writer:
                n = 1_000_000
                while not stop.is_set():
                    started = time.perf_counter()
                    check(writer.post("/v1/messages", json=message(USER, n, with_id=True)), 201)
                    n += 1
                    stop.wait(max(0.0, 1 / args.rate - (time.perf_counter() - started)))

        threading.Thread(target=append_steadily, daemon=True).start()
        time.sleep(args.warm)
        pgid = worker_pgid(worker)
        cpu_before = group_cpu(pgid)["runtime"] if pgid else 0.0
        started = time.perf_counter()
        burst = timed_reads(client, floor)
        busy = ((group_cpu(pgid)["runtime"] - cpu_before) / (time.perf_counter() - started)
                if pgid else float("nan"))
        print(f"chat-store's runtime busy {busy:.2f} cores under {args.rate:g} appends/s")
        for reader, b in burst.items():
            q = quiet[reader]
            print(f"{reader}: quiet median {q['median_ms']:.1f} ms, p90 {q['p90_ms']:.1f} ms; "
                  f"under {args.rate:g} appends/s median {b['median_ms']:.1f} ms, p90 "
                  f"{b['p90_ms']:.1f} ms ({b['median_ms'] / q['median_ms']:.2f}x / "
                  f"{b['p90_ms'] / q['p90_ms']:.2f}x of quiet)")
    finally:
        stop.set()
        worker.stop()
        if floor_worker is not None:
            floor_worker.stop()


if __name__ == "__main__":
    main()
