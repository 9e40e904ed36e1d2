#!/usr/bin/env python3
"""Benchmark chat-store under the local Workers runtime (issue 3).

    .venv/bin/python bench/run.py                 # full run: sizes 10,1000,10000,100000
    .venv/bin/python bench/run.py --quick         # smoke run: sizes 10,1000, fewer samples
    .venv/bin/python bench/run.py --publish       # also copy the figures to docs/bench/

What it does, in order (every Worker is a ``wrangler dev`` started by tests/worker_harness.py):

1. **Snapshot.** ``wrangler.toml`` and ``src/`` are copied to a temporary folder and the Worker
   runs from there, so an edit to ``src/`` during the run cannot hot-reload the Worker under
   the benchmark. The snapshot's hash and the git commit are recorded.
2. **Seed.** One user per history size, written with ``POST /v1/messages/batch`` (100 messages
   per request, client-supplied ids, increasing timestamps, ``--concurrency`` requests in
   flight). Seeding runs with ``JOURNAL_SETTLE_MS=--seed-settle-ms`` (default 1000): local KV
   is strongly consistent, so a short settle window is safe here, while the production 60 s
   window would leave a minute of seed batches (up to hundreds of 100-op journal entries)
   unfolded, replayed by every read and re-folded by every compaction.
3. **Settle.** Reads make the store fold the last batches and collect its journal, in rounds,
   until every user's journal is empty or ``--settle-timeout``; every count is then checked.
   What is still in the journal (entries already folded into the root) is removed with
   ``wrangler kv bulk delete`` while no Worker runs (``--journal fastforward``, the default), so
   that the sizes differ only in history, not in how recently a burst of writes happened; the
   counts are checked again afterwards, so an entry that was not folded cannot go missing
   silently. ``--journal keep`` measures with whatever the import left instead.
4. **Measure.** chat-store restarts with ``JOURNAL_SETTLE_MS=--settle-ms`` (default 60000, the
   production value); that restart and the floor worker's start are the cold-start samples.
   Per size, sequential requests over one keep-alive connection, ``--warmup`` discarded then
   ``--samples`` timed: newest-50, mid-history range, count, page 100 of 50, then append and
   batch append (writes last, so the reads see exactly the seeded history). The floor worker
   (bench/floor-worker, plain JS doing only the KV calls an append and a read need) is measured
   in each size's round too. CPU time of the runtime processes is read from /proc around each
   operation's samples.
5. **Report.** A markdown table on stdout and in ``bench/out/results.md``, raw samples in
   ``bench/out/results.json``, a plot in ``bench/out/latency.png``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

from worker_harness import WRANGLER, LocalWorker, _wrangler_env  # noqa: E402

FLOOR_CONFIG = BENCH_DIR / "floor-worker" / "wrangler.toml"
OUT_DIR = BENCH_DIR / "out"
DOCS_DIR = REPO_ROOT / "docs" / "bench"
TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BATCH = 100  # MAX_BATCH in src/validation.py
PAGE = 50
DEEP_PAGE = 100
T0 = 1_600_000_000_000  # timestamp of every user's first seeded message (ms)
STEP_MS = 1_000  # seeded messages are one second apart
CONTENT = "benchmark message body " * 6  # ~140 bytes: a stored record is ~300 bytes of JSON
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

OPS = ["append", "batch_append", "newest50", "range_mid", "count", "deep_page"]
OP_LABELS = {
    "append": "append (1 message)",
    "batch_append": "batch append (100)",
    "newest50": "newest-50 read",
    "range_mid": "mid-history range read (50)",
    "count": "count",
    "deep_page": "page 100 of 50",
    "floor_append": "JS floor: append",
    "floor_read": "JS floor: newest-50 read",
    "floor_read10": "JS floor: newest-10 read",
    "floor_list": "JS floor: one KV list (journal prefix)",
}
FLOOR_OF = {"append": "floor_append", "newest50": "floor_read"}
FLOOR_OPS = ("floor_append", "floor_read", "floor_read10", "floor_list")
READS = {"newest50", "range_mid", "count", "deep_page"}
TARGET_SCALE = 1.3
TARGET_FLOOR = {"append": 3.0, "newest50": 2.0}


def log(msg: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


# -- statistics -------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    data = sorted(values)
    pos = (len(data) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary(samples_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(samples_ms),
        "median_ms": statistics.median(samples_ms) if samples_ms else float("nan"),
        "p95_ms": percentile(samples_ms, 0.95),
        "min_ms": min(samples_ms) if samples_ms else float("nan"),
        "max_ms": max(samples_ms) if samples_ms else float("nan"),
    }


# -- CPU accounting (Linux /proc) -----------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def group_cpu(pgid: int) -> dict[str, float]:
    """CPU seconds used so far by the processes of one wrangler process group, by role.

    ``runtime``: the workerd that runs the Worker (and the KV simulator); ``proxy``: wrangler's
    second workerd (the proxy in front of it); ``node``: wrangler itself.
    """
    out = {"runtime": 0.0, "proxy": 0.0, "node": 0.0, "other": 0.0}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) != pgid:  # fields[2] is pgrp (field 5 of stat)
            continue
        cpu = (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
        if "workerd" in cmd:
            role = "runtime" if "--inspector-addr" in cmd else "proxy"
        elif "node" in cmd:
            role = "node"
        else:
            role = "other"
        out[role] += cpu
    return out


def worker_pgid(worker: LocalWorker) -> int | None:
    proc = worker._proc  # the harness starts wrangler as the leader of its own process group
    return proc.pid if proc is not None else None


# -- the Workers ------------------------------------------------------------------------------


def snapshot_app(dest: Path) -> dict[str, str]:
    """Copy wrangler.toml and src/ to ``dest``; returns provenance (git commit, hashes)."""
    dest.mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "wrangler.toml", dest / "wrangler.toml")
    shutil.copytree(REPO_ROOT / "src", dest / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    digest = hashlib.sha256()
    for path in sorted((dest / "src").rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(dest).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    info = {"src_sha256": digest.hexdigest()[:16]}

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True,
                                  text=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip()

    info["git_commit"] = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src", "wrangler.toml")
    info["src_dirty"] = "yes" if dirty else "no"
    return info


def first_health_ms(worker: LocalWorker, wait_s: float = 3.0) -> float | None:
    """Server-side duration of the first answered /health (the runtime's first request)."""
    deadline = time.monotonic() + wait_s
    while True:  # wrangler may write the line a moment after the response
        try:
            text = _ANSI.sub("", worker.log_path.read_text(errors="replace"))
        except OSError:
            text = ""
        m = re.search(r"GET /health \d+ [^(\n]*\((\d+)ms\)", text)
        if m:
            return float(m.group(1))
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)


@dataclass
class ColdStart:
    worker: str
    ready_s: float  # process start until the first 200 from /health (0.3 s polling)
    first_health_ms: float | None  # the runtime's own timing of that first request
    first_request_ms: float | None  # the first real request after ready (newest-50)


def start_timed(worker: LocalWorker) -> float:
    t = time.perf_counter()
    worker.start()
    return time.perf_counter() - t


# -- chat-store client helpers -------------------------------------------------------------


def user_id(size: int) -> str:
    return f"bench-u{size}"


def ts(i: int) -> int:
    return T0 + i * STEP_MS


def message(user: str, i: int, *, with_id: bool) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "user_id": user,
        "sender": {"id": user, "role": "user"},
        "content": f"{CONTENT}#{i}",
        "timestamp": ts(i),
    }
    if with_id:
        msg["id"] = f"{user}-{i:07d}"
    return msg


def check(response: httpx.Response, *ok: int) -> httpx.Response:
    if response.status_code not in (ok or (200,)):
        raise RuntimeError(f"{response.request.method} {response.request.url} -> "
                           f"{response.status_code}: {response.text[:300]}")
    return response


def with_retries(call: Callable[[], httpx.Response], *ok: int, attempts: int = 5) -> httpx.Response:
    """Seeding only: every seed request is idempotent (client ids), so retrying is safe."""
    for attempt in range(attempts):
        try:
            response = call()
            if response.status_code in ok:
                return response
            if response.status_code < 500 and response.status_code != 429:
                return check(response, *ok)
            why = f"{response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            why = f"{type(exc).__name__}: {exc}"
        if attempt == attempts - 1:
            raise RuntimeError(f"giving up after {attempts} attempts ({why})")
        log(f"  retrying after {why}")
        time.sleep(1 + attempt)
    raise AssertionError("unreachable")


# -- seeding ------------------------------------------------------------------------------------


@dataclass
class SeedReport:
    sizes: list[int]
    batches: int = 0
    seconds: float = 0.0
    batch_ms: list[float] = field(default_factory=list)
    per_user_s: dict[int, float] = field(default_factory=dict)
    journal_left: dict[int, int] = field(default_factory=dict)
    journal_deleted: dict[int, int] = field(default_factory=dict)
    layout: dict[int, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)


def seed(worker: LocalWorker, sizes: list[int], concurrency: int) -> SeedReport:
    report = SeedReport(sizes)
    jobs: list[tuple[int, int]] = []  # (size, first message number), interleaved across users
    per_user = {size: list(range(0, size, BATCH)) for size in sizes}
    for b in range(max(len(v) for v in per_user.values())):
        for size in sizes:
            if b < len(per_user[size]):
                jobs.append((size, per_user[size][b]))
    remaining = {size: len(v) for size, v in per_user.items()}
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=worker.base_url, headers=AUTH, timeout=120, limits=limits) as c:

        def run(job: tuple[int, int]) -> tuple[int, float]:
            size, first = job
            user = user_id(size)
            body = {"messages": [message(user, i, with_id=True)
                                 for i in range(first, min(first + BATCH, size))]}
            t = time.perf_counter()
            with_retries(lambda: c.post("/v1/messages/batch", json=body), 200, 201)
            return size, (time.perf_counter() - t) * 1000

        done = 0
        with cf.ThreadPoolExecutor(concurrency) as pool:
            for size, ms in pool.map(run, jobs):
                report.batch_ms.append(ms)
                done += 1
                remaining[size] -= 1
                if remaining[size] == 0:
                    report.per_user_s[size] = time.perf_counter() - started
                if done % 100 == 0 or done == len(jobs):
                    rate = done / (time.perf_counter() - started)
                    log(f"  seeded {done}/{len(jobs)} batches ({rate:.1f}/s, "
                        f"last {ms:.0f} ms, load {loadavg():.1f})")
    report.batches = len(jobs)
    report.seconds = time.perf_counter() - started
    return report


def settle(worker: LocalWorker, sizes: list[int], timeout_s: float) -> dict[int, int]:
    """Let the store fold and collect what the import left in the journal; entries left.

    Reads make the store fold the last seed batches (and, where the store's rules allow, collect
    settled journal entries). Rounds go on until every journal is empty or ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=worker.base_url, headers=AUTH, timeout=120) as c:
        while True:
            for size in sizes:
                with_retries(lambda s=size: c.get(f"/v1/users/{user_id(s)}/messages",
                                                  params={"limit": PAGE}), 200)
            time.sleep(2)  # the compactions those reads deferred
            left = {s: len(worker.kv_list(f"idx:log:user:chat:{user_id(s)}:")) for s in sizes}
            log(f"  journal entries left: {left}")
            if not any(left.values()) or time.monotonic() > deadline:
                return left
            time.sleep(3)


def counts(worker: LocalWorker, sizes: list[int]) -> dict[int, int]:
    with httpx.Client(base_url=worker.base_url, headers=AUTH, timeout=120) as c:
        return {size: int(check(c.get(f"/v1/users/{user_id(size)}/messages/count")).json()
                          ["count"]) for size in sizes}


def kv_bulk_delete(worker: LocalWorker, keys: list[str], scratch: Path) -> None:
    """Delete keys from the local KV files (worker stopped) with `wrangler kv bulk delete`."""
    for start in range(0, len(keys), 5000):
        file = scratch / "bulk-delete.json"
        file.write_text(json.dumps(keys[start : start + 5000]))
        done = subprocess.run(
            [str(WRANGLER), "kv", "bulk", "delete", str(file), "--binding", "CHAT_KV",
             "--local", "--force", "--persist-to", str(worker.persist_dir),
             "--config", str(worker.config)],
            cwd=REPO_ROOT, env=_wrangler_env(worker.registry_dir), capture_output=True,
            timeout=300, check=False, stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise RuntimeError(f"wrangler kv bulk delete failed: {done.stderr.decode()[-500:]}")


def _wrangler_kv(worker: LocalWorker, *args: str) -> bytes:
    done = subprocess.run(
        [str(WRANGLER), "kv", "key", *args, "--binding", "CHAT_KV", "--local",
         "--persist-to", str(worker.persist_dir), "--config", str(worker.config)],
        cwd=REPO_ROOT, env=_wrangler_env(worker.registry_dir), capture_output=True,
        timeout=120, check=False, stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrangler kv key {args[0]} failed: {done.stderr.decode()[-500:]}")
    return done.stdout


def index_layout(worker: LocalWorker, size: int) -> dict[str, Any]:
    """How the user's index is stored: head entries, segments, manifest (from the KV files)."""
    index = f"user:chat:{user_id(size)}"
    listed = json.loads(_wrangler_kv(worker, "list", "--prefix", index))
    root_meta = next((k.get("metadata") or {} for k in listed if k["name"] == index), {})
    head_raw = worker.kv_get(index) or "[]"
    layout: dict[str, Any] = {"head_entries": len(json.loads(head_raw)),
                              "head_bytes": len(head_raw.encode()), "segments": 0}
    manifest_key = root_meta.get("m")
    if manifest_key:
        raw = worker.kv_get(manifest_key) or "{}"
        manifest = json.loads(raw)
        counts_ = sorted(int(seg[3]) for seg in manifest.get("segments", []))
        layout.update({
            "segments": len(counts_),
            "segment_entries_min": counts_[0] if counts_ else 0,
            "segment_entries_median": statistics.median(counts_) if counts_ else 0,
            "segment_entries_max": counts_[-1] if counts_ else 0,
            "manifest_bytes": len(raw.encode()),
            "manifest_garbage": len(manifest.get("garbage", [])),
        })
    return layout


# -- measuring ----------------------------------------------------------------------------------


@dataclass
class OpResult:
    op: str
    size: int
    samples_ms: list[float]
    cpu_ms_per_req: dict[str, float]
    load: float
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"op": self.op, "size": self.size, **summary(self.samples_ms),
                "cpu_ms_per_req": self.cpu_ms_per_req, "load_1min": self.load,
                "note": self.note, "samples_ms": [round(s, 3) for s in self.samples_ms]}


def runtime_cpu(worker: LocalWorker) -> float | None:
    pgid = worker_pgid(worker)
    return group_cpu(pgid)["runtime"] if pgid else None


def wait_idle(workers: list[LocalWorker], timeout_s: float = 180.0, step_s: float = 0.5) -> float:
    """Wait until no runtime is busy (deferred compactions done); returns the seconds waited.

    Idle: under 15 ms of CPU per half second, twice in a row. Both Workers share the KV files,
    so background writes of one would also make the other's writes wait on SQLite.
    """
    start = time.monotonic()
    last = [runtime_cpu(w) for w in workers]
    quiet = 0
    while time.monotonic() - start < timeout_s:
        time.sleep(step_s)
        now = [runtime_cpu(w) for w in workers]
        busy = any(a is not None and b is not None and b - a > 0.015
                   for a, b in zip(last, now, strict=True))
        quiet = 0 if busy else quiet + 1
        last = now
        if quiet >= 2:
            break
    else:
        log(f"  warning: runtimes still busy after {timeout_s:.0f} s")
    return time.monotonic() - start


class Timer:
    """Times ``warmup + samples`` sequential calls and the runtime CPU they cost.

    Timing starts once every runtime is idle, so no deferred work of an earlier operation
    competes with it; CPU is counted until the measured runtime is idle again, so it includes
    the work the samples deferred past their responses.
    """

    def __init__(self, warmup: int, samples: int) -> None:
        self.warmup = warmup
        self.samples = samples
        self.workers: list[LocalWorker] = []

    def run(self, op: str, size: int, worker: LocalWorker, call: Callable[[int], Any],
            note: str = "") -> OpResult:
        for i in range(self.warmup):
            call(i)
        wait_idle(self.workers or [worker])
        pgid = worker_pgid(worker)
        load = loadavg()
        before = group_cpu(pgid) if pgid else None
        samples: list[float] = []
        t_all = time.perf_counter()
        for i in range(self.samples):
            t = time.perf_counter()
            call(self.warmup + i)
            samples.append((time.perf_counter() - t) * 1000)
        timed_s = time.perf_counter() - t_all
        drain_s = wait_idle([worker])  # the samples' deferred work, counted in the CPU figure
        cpu: dict[str, float] = {}
        if before is not None and pgid:
            after = group_cpu(pgid)
            cpu = {k: round((after[k] - before[k]) * 1000 / self.samples, 2) for k in after}
            cpu["wall_ms_per_req"] = round(timed_s * 1000 / self.samples, 2)
            cpu["drain_s"] = round(drain_s, 2)
        result = OpResult(op, size, samples, cpu, load, note)
        s = summary(samples)
        log(f"  {op:<13} size {size:>6}: median {s['median_ms']:7.1f} ms  "
            f"p95 {s['p95_ms']:7.1f} ms  runtime cpu {cpu.get('runtime', float('nan')):6.1f}"
            f" ms/req  load {load:.1f}{'  (' + note + ')' if note else ''}")
        return result


def deep_cursor(c: httpx.Client, user: str) -> tuple[str | None, int]:
    """The cursor of page DEEP_PAGE (or of the deepest page there is) and that page's number."""
    cursor: str | None = None
    page = 1
    while page < DEEP_PAGE:
        params: dict[str, Any] = {"limit": PAGE}
        if cursor:
            params["cursor"] = cursor
        nxt = check(c.get(f"/v1/users/{user}/messages", params=params)).json()["next_cursor"]
        if not nxt:
            break
        cursor, page = nxt, page + 1
    return cursor, page


def measure_size(chat: LocalWorker, floor: LocalWorker, size: int, timer: Timer,
                 newest: dict[int, int]) -> list[OpResult]:
    user = user_id(size)
    results: list[OpResult] = []
    with httpx.Client(base_url=chat.base_url, headers=AUTH, timeout=120) as c, \
            httpx.Client(base_url=floor.base_url, timeout=120) as f:
        # The floor, in the same round so that both see the same machine load.
        floor_user = f"floor-{size}"
        n0 = 1_000_000
        retries = [0]

        def floor_call(method: str, path: str, params: dict[str, Any], ok: int) -> Any:
            # The floor has no retrying KV wrapper (chat-store has one): a KV call that fails
            # transiently in the simulator is retried here, and counted in the table's note.
            for attempt in range(3):
                response = f.request(method, path, params=params)
                if response.status_code == ok or attempt == 2:
                    return check(response, ok).json()
                retries[0] += 1
                time.sleep(0.2)
            raise AssertionError("unreachable")

        def floor_append(i: int) -> None:
            floor_call("POST", "/append", {"user": floor_user, "n": n0 + i}, 201)

        def floor_read(i: int) -> None:
            body = floor_call("GET", "/read", {"user": floor_user}, 200)
            assert len(body["messages"]) == PAGE, body

        wait_idle([chat, floor])
        for i in range(PAGE):  # records for the floor's read to fetch
            floor_call("POST", "/append", {"user": floor_user, "n": n0 - PAGE + i}, 201)

        def floor_list(i: int) -> None:  # what our journal listing costs the KV simulator
            floor_call("GET", "/list", {"prefix": f"idx:log:user:chat:{user}:"}, 200)

        def floor_read10(i: int) -> None:  # what a 10-message history's read fetches
            body = floor_call("GET", "/read", {"user": floor_user, "limit": 10}, 200)
            assert len(body["messages"]) == 10, body

        for fop, call in (("floor_append", floor_append), ("floor_read", floor_read),
                          ("floor_read10", floor_read10), ("floor_list", floor_list)):
            retries[0] = 0
            result = timer.run(fop, size, floor, call)
            if retries[0]:
                result.note = f"{retries[0]} request(s) retried after a KV error"
            results.append(result)

        # Reads first: they see exactly the seeded history.
        def newest50(i: int) -> None:
            body = check(c.get(f"/v1/users/{user}/messages", params={"limit": PAGE})).json()
            assert len(body["messages"]) == min(PAGE, size), len(body["messages"])

        mid = size // 2
        lo, hi = max(0, mid - PAGE // 2), min(size - 1, mid + PAGE // 2 - 1)
        range_params = {"limit": PAGE, "start": ts(lo), "end": ts(hi)}

        def range_mid(i: int) -> None:
            body = check(c.get(f"/v1/users/{user}/messages", params=range_params)).json()
            assert len(body["messages"]) == hi - lo + 1, len(body["messages"])

        def count(i: int) -> None:
            body = check(c.get(f"/v1/users/{user}/messages/count")).json()
            assert body["count"] == size, body

        cursor, page = deep_cursor(c, user)
        deep_params: dict[str, Any] = {"limit": PAGE}
        if cursor:
            deep_params["cursor"] = cursor
        want_deep = min(PAGE, size - (page - 1) * PAGE)

        def deep(i: int) -> None:
            body = check(c.get(f"/v1/users/{user}/messages", params=deep_params)).json()
            assert len(body["messages"]) == want_deep, len(body["messages"])

        results.append(timer.run("newest50", size, chat, newest50))
        results.append(timer.run("range_mid", size, chat, range_mid,
                                 note=f"messages {lo}..{hi} of {size}"))
        results.append(timer.run("count", size, chat, count))
        deep_note = ("page 100" if page == DEEP_PAGE
                     else f"only {page} page{'s' if page > 1 else ''}: timed page {page}")
        results.append(timer.run("deep_page", size, chat, deep, note=deep_note))

        # Writes last. Each appends after the newest message (server-assigned ids).
        next_i = [newest[size] + 1]

        def append(i: int) -> None:
            body = {"user_id": user, "sender": {"id": user, "role": "user"},
                    "content": f"{CONTENT}#a{i}", "timestamp": ts(next_i[0])}
            next_i[0] += 1
            check(c.post("/v1/messages", json=body), 201)

        def batch_append(i: int) -> None:
            first = next_i[0]
            next_i[0] += BATCH
            body = {"messages": [message(user, first + k, with_id=False) for k in range(BATCH)]}
            check(c.post("/v1/messages/batch", json=body), 201)

        grown = timer.warmup + timer.samples
        results.append(timer.run("append", size, chat, append,
                                 note=f"history grows by {grown}"))
        results.append(timer.run("batch_append", size, chat, batch_append,
                                 note=f"history grows by {grown * BATCH}"))
        newest[size] = next_i[0] - 1
    return results


def cold_start(chat: LocalWorker, floor: LocalWorker, read_size: int) -> list[ColdStart]:
    """Start each Worker fresh (one at a time) and time its first requests."""
    out: list[ColdStart] = []
    for name, worker in (("chat-store", chat), ("js-floor", floor)):
        ready = start_timed(worker)
        try:
            with httpx.Client(base_url=worker.base_url, timeout=120,
                              headers=AUTH if name == "chat-store" else {}) as c:
                t = time.perf_counter()
                if name == "chat-store":
                    check(c.get(f"/v1/users/{user_id(read_size)}/messages",
                                params={"limit": PAGE}))
                else:
                    check(c.get("/read", params={"user": f"floor-{read_size}"}))
                first = (time.perf_counter() - t) * 1000
        finally:
            worker.stop()
        out.append(ColdStart(name, ready, first_health_ms(worker), first))
        log(f"  cold start {name}: ready after {ready:.2f} s, first /health "
            f"{out[-1].first_health_ms} ms, first read {first:.1f} ms")
    return out


# -- report -----------------------------------------------------------------------------------


def fmt(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def build_report(data: dict[str, Any]) -> str:
    res = data["results"]
    sizes = data["config"]["sizes"]
    base_size = sizes[0]
    by = {(r["op"], r["size"]): r for r in res}
    floor_pooled = data["floor_pooled"]
    lines: list[str] = []
    env = data["environment"]
    cfg = data["config"]
    lines.append("# chat-store benchmark")
    lines.append("")
    lines.append(
        f"Run {data['started']} on {env['cpus']} CPUs (load {env['load_start']:.1f} at start, "
        f"{env['load_end']:.1f} at end), wrangler {env['wrangler']}, src "
        f"{data['provenance']['git_commit']} (src sha256 {data['provenance']['src_sha256']}, "
        f"uncommitted changes in src: {data['provenance']['src_dirty']}). "
        f"{cfg['samples']} samples per cell after {cfg['warmup']} warmups, sequential, one "
        f"keep-alive connection; `JOURNAL_SETTLE_MS={cfg['settle_ms']}` while measuring; "
        f"journal after seeding: {cfg['journal']}."
    )
    lines.append("")
    ref = next((s for s in sizes if s >= 1000 and s != base_size), None)
    lines.append(f"Ratios are medians: *vs {base_size}* divides by the same operation at "
                 f"{base_size:,} messages; *vs floor* divides by the JS floor's median (all its "
                 "rounds pooled).")
    if ref is not None and base_size < PAGE:
        lines.append(f"With {base_size} messages a read returns only {base_size} of them (one "
                     f"page, {base_size} message gets instead of {PAGE}), so for reads *vs "
                     f"{ref:,}* (the smallest history here with full pages) isolates the effect "
                     "of history size better.")
    lines.append("")
    ref_head = f" vs {ref:,} |" if ref is not None else ""
    lines.append(f"| operation | history | median ms | p95 ms | vs {base_size} | p95 vs "
                 f"{base_size} |{ref_head} vs floor | runtime CPU ms/req | note |")
    lines.append("|---|---:|---:|---:|---:|---:|" + ("---:|" if ref is not None else "")
                 + "---:|---:|---|")
    for op in OPS:
        for size in sizes:
            r = by.get((op, size))
            if r is None:
                continue
            base = by.get((op, base_size))
            ratio = r["median_ms"] / base["median_ms"] if base else None
            p95_ratio = r["p95_ms"] / base["p95_ms"] if base else None
            floor_ratio = None
            if op in FLOOR_OF and not (op == "newest50" and size < PAGE):
                floor_ratio = r["median_ms"] / floor_pooled[FLOOR_OF[op]]["median_ms"]
            ref_cell = ""
            if ref is not None:
                rr = by.get((op, ref))
                ref_cell = (f" {fmt(r['median_ms'] / rr['median_ms'], 2)}x |"
                            if rr and size >= ref else " |")
            lines.append(
                f"| {OP_LABELS[op]} | {size:,} | {fmt(r['median_ms'])} | {fmt(r['p95_ms'])} | "
                f"{fmt(ratio, 2)}x | {fmt(p95_ratio, 2)}x |{ref_cell} "
                f"{fmt(floor_ratio, 2) + 'x' if floor_ratio else ''} | "
                f"{fmt(r['cpu_ms_per_req'].get('runtime'))} | {r['note']} |"
            )
    for fop in FLOOR_OPS:
        if fop not in floor_pooled:
            continue
        p = floor_pooled[fop]
        lines.append(f"| {OP_LABELS[fop]} | (all rounds) | {fmt(p['median_ms'])} | "
                     f"{fmt(p['p95_ms'])} | | |{' |' if ref is not None else ''} "
                     f"{'' if fop == 'floor_list' else '1.00x'} | "
                     f"{fmt(p['runtime_cpu_ms'])} | {p['n']} samples |")
    lines.append("")
    lines.append("## Targets")
    lines.append("")
    for line in data["targets"]:
        lines.append(f"- {line}")
    lines.append("")
    layout = data["seed"].get("layout") or {}
    if layout:
        lines.append("## Index layout when measured")
        lines.append("")
        lines.append("| history | head entries | head KiB | segments | entries per segment "
                     "(min / median / max) | manifest KiB |")
        lines.append("|---:|---:|---:|---:|---|---:|")
        for size, lay in layout.items():
            seg = (f"{lay.get('segment_entries_min')} / {lay.get('segment_entries_median')} / "
                   f"{lay.get('segment_entries_max')}" if lay.get("segments") else "")
            man = fmt(lay["manifest_bytes"] / 1024) if "manifest_bytes" in lay else ""
            lines.append(f"| {int(size):,} | {lay['head_entries']} | "
                         f"{fmt(lay['head_bytes'] / 1024)} | {lay['segments']} | {seg} | {man} |")
        lines.append("")
        lines.append("Every request parses the head (the root value); requests that go past it "
                     "also parse the manifest and the segments their range overlaps.")
        lines.append("")
    lines.append("## Cold start")
    lines.append("")
    lines.append("| worker | ready after (s) | first request, runtime's timing (ms) | "
                 "first real request (ms) |")
    lines.append("|---|---:|---:|---:|")
    for c in data["cold_starts"]:
        lines.append(f"| {c['worker']} | {fmt(c['ready_s'], 2)} | {fmt(c['first_health_ms'], 0)}"
                     f" | {fmt(c['first_request_ms'])} |")
    lines.append("")
    lines.append("*Ready after*: from spawning `wrangler dev` until `/health` first answers 200 "
                 "(polled every 0.3 s). *First request*: the runtime's own duration of that "
                 "first `/health` (wrangler's log line), which for chat-store includes loading "
                 "Pyodide and the Python modules. *First real request*: a newest-50 read (floor: "
                 "`/read`) right after.")
    lines.append("")
    lines.append("## CPU")
    lines.append("")
    for line in data["cpu_notes"]:
        lines.append(f"- {line}")
    lines.append("")
    lines.append("## Seeding")
    lines.append("")
    s = data["seed"]
    lines.append(
        f"{s['batches']} batches of up to {BATCH} messages in {s['seconds']:.0f} s "
        f"({s['batches'] / max(s['seconds'], 1e-9):.1f} batches/s, {cfg['concurrency']} in "
        f"flight, `JOURNAL_SETTLE_MS={cfg['seed_settle_ms']}`); batch latency median "
        f"{fmt(s['batch_median_ms'], 0)} ms, p95 {fmt(s['batch_p95_ms'], 0)} ms. Journal "
        f"entries still there after the store's own collection, per history size: "
        + ", ".join(f"{k}: {v}" for k, v in s["journal_left"].items())
        + f" ({cfg['journal']}). KV keys after seeding: "
        + ", ".join(f"{k} {v}" for k, v in s["keys"].items()) + "."
    )
    lines.append("")
    lines.append(f"Total benchmark time: {data['total_seconds'] / 60:.1f} min.")
    lines.append("")
    return "\n".join(lines)


def evaluate(data: dict[str, Any]) -> list[str]:
    res = {(r["op"], r["size"]): r for r in data["results"]}
    sizes = data["config"]["sizes"]
    small, big = sizes[0], sizes[-1]
    out: list[str] = []
    for op in OPS:
        if (op, small) not in res or (op, big) not in res:
            continue
        ratio = res[(op, big)]["median_ms"] / res[(op, small)]["median_ms"]
        ok = ratio <= TARGET_SCALE
        verdict = "met" if ok else f"MISSED by {ratio / TARGET_SCALE:.2f}x"
        line = (f"{OP_LABELS[op]} at {big:,} vs {small:,}: {ratio:.2f}x "
                f"(target <= {TARGET_SCALE}x) — {verdict}")
        ref = next((s for s in sizes if s >= 1000 and s not in (small, big)), None)
        if ref is not None and small < PAGE and op in READS and (op, ref) in res:
            line += (f"; vs {ref:,} (full pages): "
                     f"{res[(op, big)]['median_ms'] / res[(op, ref)]['median_ms']:.2f}x")
        floor10 = data["floor_pooled"].get("floor_read10")
        if floor10 is not None and small < PAGE and op in READS - {"count"}:
            floor50 = data["floor_pooled"]["floor_read"]["median_ms"]
            line += (f"; the JS floor itself goes from {floor10['median_ms']:.1f} ms for 10 "
                     f"records to {floor50:.1f} ms for 50 ({floor50 / floor10['median_ms']:.2f}x)")
        out.append(line)
    for op, target in TARGET_FLOOR.items():
        floor = data["floor_pooled"][FLOOR_OF[op]]["median_ms"]
        for size in sizes:
            if (op, size) not in res or (op == "newest50" and size < PAGE):
                continue  # a read of fewer than 50 messages is not the floor's 50 gets
            ratio = res[(op, size)]["median_ms"] / floor
            ok = ratio <= target
            verdict = "met" if ok else f"MISSED by {ratio / target:.2f}x"
            line = (f"{OP_LABELS[op]} at {size:,} vs JS floor: {ratio:.2f}x "
                    f"(target <= {target}x) — {verdict}")
            lst = data["floor_pooled"].get("floor_list")
            if lst is not None and op == "newest50":
                line += (f"; vs floor read + one KV list "
                         f"({floor + lst['median_ms']:.1f} ms): "
                         f"{res[(op, size)]['median_ms'] / (floor + lst['median_ms']):.2f}x")
            out.append(line)
    return out


def cpu_notes(data: dict[str, Any]) -> list[str]:
    res = {(r["op"], r["size"]): r for r in data["results"]}
    floor = data["floor_pooled"]
    notes = [
        "Measured from /proc: CPU time of the `wrangler dev` process group around each "
        "operation's timed samples, until the runtime is idle again (so the compactions "
        "deferred past the responses are included), divided by the number of samples; 10 ms "
        "clock ticks over all samples. Timing starts only when both runtimes are idle. The "
        "*runtime* column is the workerd process that runs the Worker, which also runs the KV "
        "simulator (SQLite + files): so it is Python plus KV work. The floor Worker's CPU for "
        "the same KV calls is that KV work without Python; the difference estimates the Python "
        "share (Pyodide, FFI, our code, deferred compaction).",
    ]
    list_cpu = floor.get("floor_list", {}).get("runtime_cpu_ms")
    if list_cpu is not None and not math.isnan(list_cpu):
        notes.append(
            f"One KV list of a journal prefix costs the local simulator {list_cpu:.1f} ms CPU "
            f"({floor['floor_list']['median_ms']:.1f} ms median latency): miniflare lists with "
            "`WHERE substr(key, 1, length(prefix)) = prefix AND key > start ORDER BY key`, which "
            "walks the namespace from its first key, so the cost grows with every key in the "
            "namespace (all users' messages), not with this user's history. Every chat-store "
            "read lists the journal once; the floor never lists. The read estimates below "
            "subtract one list. Appends list only in their compaction, which is paced to one "
            "per index per second, so most back-to-back appends here run none; nothing is "
            "subtracted for them. At the edge a list is a network round trip instead."
        )
    else:
        list_cpu = 0.0
    for op in ("append", "newest50"):
        fop = FLOOR_OF[op]
        lists = 1 if op == "newest50" else 0
        for size in data["config"]["sizes"]:
            r = res.get((op, size))
            if r is None or "runtime" not in r["cpu_ms_per_req"]:
                continue
            if op == "newest50" and size < PAGE:
                continue  # fetches fewer records than the floor's 50: not comparable
            ours, base = r["cpu_ms_per_req"]["runtime"], floor[fop]["runtime_cpu_ms"]
            python_ms = max(ours - base - lists * list_cpu, 0.0)
            share = python_ms / r["median_ms"] if r["median_ms"] else float("nan")
            notes.append(
                f"{OP_LABELS[op]} at {size:,}: runtime CPU {ours:.1f} ms/req; the floor's KV "
                f"calls {base:.1f}{f' + one list {list_cpu:.1f}' if lists else ''} → "
                f"~{python_ms:.1f} "
                f"ms/req of Python = ~{share:.0%} of the {r['median_ms']:.1f} ms median latency."
            )
    return notes


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = {(r["op"], r["size"]): r for r in data["results"]}
    sizes = data["config"]["sizes"]
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    for op in OPS:
        xs = [s for s in sizes if (op, s) in res]
        if not xs:
            continue
        med = [res[(op, s)]["median_ms"] for s in xs]
        p95 = [res[(op, s)]["p95_ms"] for s in xs]
        ax.errorbar(xs, med, yerr=[[0] * len(xs), [p - m for p, m in zip(p95, med, strict=True)]],
                    marker="o", capsize=4, label=OP_LABELS[op])
    colors = {"floor_append": "grey", "floor_read": "black"}
    for fop in ("floor_append", "floor_read"):
        ax.axhline(data["floor_pooled"][fop]["median_ms"], color=colors[fop], linestyle="--",
                   linewidth=1, label=OP_LABELS[fop] + " (median)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([f"{s:,}" for s in sizes])
    ax.set_xlabel("messages in the user's history")
    ax.set_ylabel("latency, ms (median; bar up to p95)")
    ax.set_title(f"chat-store under wrangler dev {data['environment']['wrangler']} "
                 f"({data['config']['samples']} samples per point)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- main -------------------------------------------------------------------------------------


def wrangler_version() -> str:
    try:
        pkg = json.loads((REPO_ROOT / "node_modules" / "wrangler" / "package.json").read_text())
        return str(pkg["version"])
    except (OSError, ValueError, KeyError):
        return "unknown"


@contextlib.contextmanager
def stopping(*workers: LocalWorker) -> Iterator[None]:
    try:
        yield
    finally:
        for w in workers:
            w.stop()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", help="history sizes (default 10,1000,10000,100000; "
                   "--quick: 10,1000)")
    p.add_argument("--samples", type=int, help="timed samples per cell (default 40; --quick 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed requests first (default 3)")
    p.add_argument("--quick", action="store_true", help="smoke run: sizes 10,1000, 10 samples")
    p.add_argument("--concurrency", type=int, default=4, help="seed requests in flight")
    p.add_argument("--seed-settle-ms", type=int, default=1000,
                   help="JOURNAL_SETTLE_MS while seeding (default 1000)")
    p.add_argument("--settle-timeout", type=float, default=60.0,
                   help="seconds to let the store collect the import's journal (default 60)")
    p.add_argument("--settle-ms", type=int, default=60_000,
                   help="JOURNAL_SETTLE_MS while measuring (default 60000)")
    p.add_argument("--journal", choices=("fastforward", "keep"), default="fastforward",
                   help="remove the folded journal the import left (default) or keep it")
    p.add_argument("--cold-starts", type=int, default=2,
                   help="extra cold-start rounds at the end (default 2; --quick 1)")
    p.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (bench/out)")
    p.add_argument("--publish", action="store_true",
                   help="also copy latency.png and results.md to docs/bench/")
    p.add_argument("--keep-state", action="store_true", help="keep the temporary KV folder")
    p.add_argument("--from-json", type=Path, metavar="RESULTS_JSON",
                   help="measure nothing: rebuild the table and plot from a results.json")
    args = p.parse_args(argv)
    if args.sizes is None:
        args.sizes = "10,1000" if args.quick else "10,1000,10000,100000"
    args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not args.sizes or args.sizes[0] < 1:
        p.error("--sizes must be positive integers")
    if args.samples is None:
        args.samples = 10 if args.quick else 40
    if args.quick and args.cold_starts == 2:
        args.cold_starts = 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json is not None:
        write_outputs(json.loads(args.from_json.read_text()), args)
        return 0
    started_wall = time.perf_counter()
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start = loadavg()
    if load_start > (os.cpu_count() or 2) * 0.75:
        log(f"warning: load average is {load_start:.1f} on {os.cpu_count()} CPUs; other "
            "processes will inflate the latencies")
    work = Path(tempfile.mkdtemp(prefix="chat-store-bench-"))
    log(f"working folder {work}")
    provenance = snapshot_app(work / "app")
    log(f"snapshot of src: {provenance}")
    state = work / "state"
    chat_vars = {"API_TOKEN": TOKEN, "AUTH_DISABLED": "false"}
    sizes: list[int] = args.sizes
    try:
        # 1. seed
        seeder = LocalWorker(persist_dir=state, config=work / "app" / "wrangler.toml",
                             vars={**chat_vars, "JOURNAL_SETTLE_MS": str(args.seed_settle_ms)},
                             log_dir=work / "logs")
        log(f"seeding {', '.join(f'{s:,}' for s in sizes)} messages "
            f"({args.concurrency} batches in flight)")
        with stopping(seeder):
            seeder.start()
            report = seed(seeder, sizes, args.concurrency)
            log(f"seeded in {report.seconds:.0f} s; settling (up to {args.settle_timeout} s)")
            report.journal_left = settle(seeder, sizes, args.settle_timeout)
            seeded_counts = counts(seeder, sizes)
        if seeded_counts != {s: s for s in sizes}:
            raise RuntimeError(f"counts after seeding are wrong: {seeded_counts}")
        # 2. the journal the import left behind (worker stopped: no compaction is running)
        chat = seeder.sibling(vars={**chat_vars, "JOURNAL_SETTLE_MS": str(args.settle_ms)})
        if args.journal == "fastforward":
            for size in sizes:
                prefix = f"idx:log:user:chat:{user_id(size)}:"
                deleted = 0
                for _ in range(100):  # `wrangler kv key list` shows at most 1,000 keys a call
                    keys = chat.kv_list(prefix)
                    if not keys:
                        break
                    kv_bulk_delete(chat, keys, work)
                    deleted += len(keys)
                report.journal_deleted[size] = deleted
        for prefix in ("idx:seg:", "idx:man:", "idx:log:"):
            n = len(chat.kv_list(prefix))
            report.keys[prefix] = f"{n}+" if n >= 1000 else str(n)
        for size in sizes:
            try:
                report.layout[size] = index_layout(chat, size)
            except (RuntimeError, ValueError, KeyError, IndexError) as exc:
                log(f"  could not read the index layout of {size}: {exc}")
        log(f"index layout: {report.layout}")
        log(f"journal entries left by the import: {report.journal_left} "
            f"({args.journal}); keys: {report.keys}")

        # 3. measure
        floor = chat.sibling(config=FLOOR_CONFIG, vars={})
        cold: list[ColdStart] = []
        results: list[OpResult] = []
        timer = Timer(args.warmup, args.samples)
        timer.workers = [chat, floor]
        with stopping(chat, floor):
            ready = start_timed(chat)
            with httpx.Client(base_url=chat.base_url, headers=AUTH, timeout=120) as c:
                t = time.perf_counter()
                check(c.get(f"/v1/users/{user_id(sizes[-1])}/messages", params={"limit": PAGE}))
                first = (time.perf_counter() - t) * 1000
            cold.append(ColdStart("chat-store", ready, first_health_ms(chat), first))
            measured_counts = counts(chat, sizes)
            if measured_counts != {s: s for s in sizes}:
                raise RuntimeError(f"counts after the journal fast-forward are wrong: "
                                   f"{measured_counts} (the import was not fully folded)")
            ready = start_timed(floor)
            # The floor has no records yet, so its first real read is timed in the rounds below.
            cold.append(ColdStart("js-floor", ready, first_health_ms(floor), None))
            for c_ in cold:
                log(f"  cold start {c_.worker}: ready after {c_.ready_s:.2f} s, first /health "
                    f"{c_.first_health_ms} ms, first read {fmt(c_.first_request_ms)} ms")
            newest = {s: s - 1 for s in sizes}
            for size in sizes:
                log(f"measuring history {size:,}")
                results.extend(measure_size(chat, floor, size, timer, newest))
        # 4. more cold starts, one worker at a time
        for _ in range(args.cold_starts):
            cold.extend(cold_start(chat, floor, sizes[-1]))
    finally:
        if args.keep_state:
            log(f"state kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    floor_pooled: dict[str, dict[str, float]] = {}
    for fop in FLOOR_OPS:
        rs = [r for r in results if r.op == fop]
        pooled = [s for r in rs for s in r.samples_ms]
        cpu = [r.cpu_ms_per_req.get("runtime") for r in rs if "runtime" in r.cpu_ms_per_req]
        floor_pooled[fop] = {**summary(pooled),
                             "runtime_cpu_ms": statistics.mean(cpu) if cpu else float("nan")}
    data: dict[str, Any] = {
        "started": started,
        "config": {"sizes": sizes, "samples": args.samples, "warmup": args.warmup,
                   "concurrency": args.concurrency, "seed_settle_ms": args.seed_settle_ms,
                   "settle_ms": args.settle_ms, "journal": args.journal},
        "environment": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "wrangler": wrangler_version(), "load_start": load_start,
                        "load_end": loadavg(), "platform": platform.platform()},
        "provenance": provenance,
        "seed": {"batches": report.batches, "seconds": report.seconds,
                 "batch_median_ms": statistics.median(report.batch_ms),
                 "batch_p95_ms": percentile(report.batch_ms, 0.95),
                 "seconds_until_user_done": {str(k): v for k, v in report.per_user_s.items()},
                 "journal_left": {str(k): v for k, v in report.journal_left.items()},
                 "journal_deleted": {str(k): v for k, v in report.journal_deleted.items()},
                 "keys": report.keys,
                 "layout": {str(k): v for k, v in report.layout.items()}},
        "cold_starts": [c.__dict__ for c in cold],
        "floor_pooled": floor_pooled,
        "results": [r.as_json() for r in results],
    }
    data["total_seconds"] = time.perf_counter() - started_wall
    write_outputs(data, args)
    return 0


def write_outputs(data: dict[str, Any], args: argparse.Namespace) -> None:
    data["targets"] = evaluate(data)
    data["cpu_notes"] = cpu_notes(data)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(data, indent=1) + "\n")
    markdown = build_report(data)
    (args.out / "results.md").write_text(markdown)
    plot(data, args.out / "latency.png")
    print(markdown)
    log(f"wrote {args.out / 'results.md'}, results.json, latency.png")
    if args.publish:
        DOCS_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy2(args.out / "latency.png", DOCS_DIR / "latency.png")
        shutil.copy2(args.out / "results.md", DOCS_DIR / "results.md")
        log(f"published to {DOCS_DIR}")


if __name__ == "__main__":
    sys.exit(main())
