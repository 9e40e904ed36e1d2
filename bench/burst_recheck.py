"""One burst row again, alone and smaller: newest-50 reads quiet, then under N appends/s.

The full benchmark's burst rows take 40 reads each after a 20,000-message seed; when one looks
off, this reruns just that row in the runtime (``wrangler dev``, a snapshot of ``src/`` or of any
source tree given) on a 5,000-message history: 40 quiet reads, then appends at ``--rate`` for
``--warm`` seconds (260 s, as the benchmark waits, by default), then 40 reads under them.

    .venv/bin/python bench/burst_recheck.py [--rate 1] [--warm 260] [--source DIR]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path

import httpx
from run import AUTH, TOKEN, check, group_cpu, message, worker_from_tree, worker_pgid

REPO_ROOT = Path(__file__).resolve().parent.parent
USER = "recheck-u"
READS = 40
READ_EVERY_S = 0.2


def timed_reads(client: httpx.Client) -> tuple[float, float]:
    """Median and p90 latency (ms) of READS newest-50 reads, one every READ_EVERY_S."""
    samples = []
    for _ in range(READS):
        started = time.perf_counter()
        check(client.get(f"/v1/users/{USER}/messages", params={"limit": 50}))
        samples.append((time.perf_counter() - started) * 1000)
        time.sleep(READ_EVERY_S)
    samples.sort()
    return statistics.median(samples), samples[int(0.9 * len(samples))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--warm", type=float, default=260.0)
    parser.add_argument("--source", type=Path, default=REPO_ROOT,
                        help="a tree with src/ and wrangler.toml (default: this checkout)")
    args = parser.parse_args()
    worker = worker_from_tree(args.source, "burst-recheck-",
                              {"API_TOKEN": TOKEN, "AUTH_DISABLED": "false",
                               "JOURNAL_SETTLE_MS": "120000"})
    worker.start()
    stop = threading.Event()
    try:
        client = httpx.Client(base_url=worker.base_url, headers=AUTH, timeout=60)
        for batch in range(50):
            batch_body = [message(USER, batch * 100 + n, with_id=True) for n in range(100)]
            check(client.post("/v1/messages/batch", json={"messages": batch_body}), 201)
        time.sleep(5)
        quiet = timed_reads(client)

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
        burst = timed_reads(client)
        busy = ((group_cpu(pgid)["runtime"] - cpu_before) / (time.perf_counter() - started)
                if pgid else float("nan"))
        print(f"quiet: median {quiet[0]:.1f} ms, p90 {quiet[1]:.1f} ms")
        print(f"under {args.rate:g} appends/s: median {burst[0]:.1f} ms, p90 {burst[1]:.1f} ms "
              f"({burst[0] / quiet[0]:.2f}x / {burst[1] / quiet[1]:.2f}x of quiet; runtime "
              f"busy {busy:.2f} cores)")
    finally:
        stop.set()
        worker.stop()


if __name__ == "__main__":
    main()
