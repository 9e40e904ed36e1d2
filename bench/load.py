#!/usr/bin/env python3
"""Load check for chat-store under the local Workers runtime (issue 9).

    .venv/bin/python bench/load.py                          # 2,000 appends, 1,000 reads, 50 clients
    .venv/bin/python bench/load.py --appends 300 --reads 200 --concurrency 20
    .venv/bin/python bench/load.py --url http://127.0.0.1:8787 --token dev-token-change-me
    .venv/bin/python bench/load.py --json bench/out/load.json

Without ``--url`` it starts its own ``wrangler dev`` (tests/support/worker_harness.py) on empty
KV with the default configuration (only ``API_TOKEN`` and ``AUTH_DISABLED=false`` are set: the
settle window and every other knob are what users get), running a snapshot of ``wrangler.toml`` and
``src/`` so that an edit to ``src/`` during the run cannot hot-reload the Worker under load.

One fresh user and one conversation per run, then:

1. **Appends**: ``--appends`` ``POST /v1/messages`` from ``--concurrency`` clients, each with a
   client-made unique id and a distinct timestamp (so a retry would be exactly-once and the
   newest 50 are known). Each must answer ``201`` the first time: no retries by default.
2. **Counts**: ``GET /v1/users/{u}/messages/count`` and the conversation's count must equal the
   number of appends.
3. **Reads**: ``--reads`` ``GET /v1/users/{u}/messages?limit=50`` from ``--concurrency`` clients;
   each must answer ``200`` with exactly the 50 newest messages, newest first.
4. **After**: both counts again, and ``GET /health`` must still answer ``200``.

Every request has a deadline (``--timeout``, default 60 s); running past it is a failure. The
report gives, per phase, requests, failures by status or exception, latency percentiles (over
every request, failed ones included, up to its outcome), throughput and wall time. The exit code
is 1 when any request or check failed, 2 when the Worker could not be started.

As a library: ``run_load(base_url, token, appends=..., reads=..., concurrency=...)`` returns a
``LoadReport`` (``.ok``, ``.summary()``, ``.as_json()``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for _path in (REPO_ROOT / "tests", BENCH_DIR):  # also when loaded from its file by a test
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from stats import percentile  # noqa: E402

from support.worker_harness import LocalWorker, WorkerStartError, snapshot_app  # noqa: E402

PAGE = 50
DEFAULT_APPENDS = 2_000
DEFAULT_READS = 1_000
DEFAULT_CONCURRENCY = 50
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_TOKEN = "load-token"
CONTENT = "load message body " * 8  # ~150 bytes, like a short chat line
EXAMPLES_PER_KIND = 3  # failure examples kept per status/exception kind
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Lines of the wrangler log worth showing when a run fails: the runtime's own error reports.
_LOG_ERROR = re.compile(r"error|exception|traceback|memory|killed|crash|exceeded|fatal|\b5\d\d\b",
                        re.IGNORECASE)


def log(msg: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp}] {msg}", file=sys.stderr, flush=True)


# -- results ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One request: ``error`` is None when it succeeded, else why it did not."""

    ms: float
    status: int | None
    error: str | None
    kind: str | None  # what failures are grouped by: "HTTP 500", "ReadTimeout", "wrong page"
    attempts: int = 1


@dataclass
class PhaseResult:
    name: str
    concurrency: int
    wall_s: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.outcomes)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if o.error is not None)

    @property
    def ok(self) -> int:
        return self.requests - self.failed

    @property
    def retried(self) -> int:
        return sum(1 for o in self.outcomes if o.attempts > 1)

    def failures(self) -> Counter[str]:
        return Counter(o.kind or "?" for o in self.outcomes if o.error is not None)

    def examples(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for o in self.outcomes:
            if o.error is not None:
                kept = out.setdefault(o.kind or "?", [])
                if len(kept) < EXAMPLES_PER_KIND:
                    kept.append(o.error)
        return out

    def latency(self) -> dict[str, float]:
        ms = [o.ms for o in self.outcomes]
        return {
            "p50_ms": percentile(ms, 0.50),
            "p90_ms": percentile(ms, 0.90),
            "p99_ms": percentile(ms, 0.99),
            "max_ms": max(ms) if ms else float("nan"),
        }

    @property
    def throughput(self) -> float:
        """Successful requests per second of the phase's wall time."""
        return self.ok / self.wall_s if self.wall_s > 0 else float("nan")

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "ok": self.ok,
            "failed": self.failed,
            "retried": self.retried,
            "failures": dict(self.failures()),
            "failure_examples": self.examples(),
            "latency": self.latency(),
            "throughput_rps": self.throughput,
            "wall_s": self.wall_s,
            "samples_ms": [round(o.ms, 2) for o in self.outcomes],
        }


@dataclass
class Check:
    name: str
    expected: str
    got: str
    ok: bool


@dataclass
class LoadReport:
    base_url: str
    user_id: str
    conversation_id: str
    appends: int
    reads: int
    concurrency: int
    timeout_s: float
    retries: int
    phases: list[PhaseResult] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    wall_s: float = 0.0
    log_excerpt: list[str] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(p.failed == 0 for p in self.phases) and all(c.ok for c in self.checks)

    def phase(self, name: str) -> PhaseResult:
        return next(p for p in self.phases if p.name == name)

    def summary(self) -> str:
        head = (f"load check against {self.base_url}: {self.appends:,} appends, "
                f"{self.reads:,} newest-{PAGE} reads, {self.concurrency} clients, "
                f"timeout {self.timeout_s:g} s, retries {self.retries}")
        if self.provenance:
            head += "\n" + ", ".join(f"{k} {v}" for k, v in self.provenance.items())
        lines = [head, "",
                 f"{'phase':<8} {'requests':>8} {'ok':>6} {'failed':>6} {'p50 ms':>8} "
                 f"{'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>7} {'wall s':>7}"]
        for p in self.phases:
            lat = p.latency()
            lines.append(
                f"{p.name:<8} {p.requests:>8,} {p.ok:>6,} {p.failed:>6,} {lat['p50_ms']:>8.1f} "
                f"{lat['p90_ms']:>8.1f} {lat['p99_ms']:>8.1f} {lat['max_ms']:>8.1f} "
                f"{p.throughput:>7.1f} {p.wall_s:>7.1f}"
            )
        for p in self.phases:
            if p.retried:
                lines.append(f"{p.name}: {p.retried} requests needed a retry")
            if p.failed:
                lines.append("")
                lines.append(f"{p.name} failures: " + ", ".join(
                    f"{kind} x{n}" for kind, n in p.failures().most_common()))
                for kind, examples in p.examples().items():
                    for e in examples:
                        lines.append(f"  [{kind}] {e}")
        lines.append("")
        for c in self.checks:
            mark = "ok  " if c.ok else "FAIL"
            lines.append(f"{mark} {c.name}: expected {c.expected}, got {c.got}")
        if self.log_excerpt:
            lines.append("")
            lines.append("worker log (error lines, last ones):")
            lines.extend(f"  {line}" for line in self.log_excerpt)
        lines.append("")
        lines.append(f"{'PASS' if self.ok else 'FAIL'} in {self.wall_s:.1f} s")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "base_url": self.base_url,
            "user_id": self.user_id,
            "conversation_id": self.conversation_id,
            "config": {"appends": self.appends, "reads": self.reads,
                       "concurrency": self.concurrency, "timeout_s": self.timeout_s,
                       "retries": self.retries},
            "provenance": self.provenance,
            "environment": {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()},
            "phases": [p.as_json() for p in self.phases],
            "checks": [c.__dict__ for c in self.checks],
            "wall_s": self.wall_s,
            "log_excerpt": self.log_excerpt,
        }


# -- requests -----------------------------------------------------------------------------------


class BadAnswer(Exception):
    """A response with the right status whose body is not what it must be."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def _describe(response: httpx.Response) -> str:
    return (f"{response.request.method} {response.request.url.path} -> "
            f"{response.status_code}: {response.text[:300]}")


async def timed(
    call: Callable[[], Awaitable[httpx.Response]],
    accept: Callable[[httpx.Response, int], None],
    *,
    timeout_s: float,
    retries: int,
) -> Outcome:
    """Run ``call`` under a deadline; ``accept(response, attempt)`` raises BadAnswer to reject.

    A retry (only with ``retries`` > 0) repeats the same request, so only idempotent calls
    belong here: appends carry their own ids. The latency is the last attempt's.
    """
    attempt = 0
    while True:
        attempt += 1
        started = time.perf_counter()
        status: int | None = None
        try:
            # httpx's timeout bounds each socket operation; this bounds the whole request.
            async with asyncio.timeout(timeout_s):
                response = await call()
            status = response.status_code
            try:
                accept(response, attempt)
            except (ValueError, AttributeError, TypeError) as exc:  # not the JSON it must be
                raise BadAnswer("bad body", f"{_describe(response)} ({exc})") from exc
            return Outcome((time.perf_counter() - started) * 1000, status, None, None, attempt)
        except BadAnswer as exc:
            kind, error = exc.kind, str(exc)
        except TimeoutError:
            kind, error = "timeout", f"no answer within {timeout_s:g} s"
        except httpx.HTTPError as exc:
            kind, error = type(exc).__name__, f"{type(exc).__name__}: {exc}"
        ms = (time.perf_counter() - started) * 1000
        if attempt > retries:
            return Outcome(ms, status, error, kind, attempt)
        await asyncio.sleep(min(0.5 * attempt, 5.0))


async def run_phase(
    name: str,
    count: int,
    concurrency: int,
    one: Callable[[int], Awaitable[Outcome]],
    *,
    progress: bool,
) -> PhaseResult:
    """``count`` calls of ``one(i)`` from ``concurrency`` clients, each taking the next ``i``."""
    result = PhaseResult(name, concurrency)
    outcomes: list[Outcome | None] = [None] * count
    next_i = iter(range(count))
    done = 0
    step = max(count // 10, 1)

    async def client() -> None:
        nonlocal done
        for i in next_i:  # one shared iterator: whichever client is free takes the next request
            outcomes[i] = await one(i)
            done += 1
            if progress and (done % step == 0 or done == count):
                failed = sum(1 for o in outcomes if o is not None and o.error is not None)
                log(f"  {name}: {done:,}/{count:,} ({failed} failed)")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(min(concurrency, count))))
    result.wall_s = time.perf_counter() - started
    result.outcomes = [o for o in outcomes if o is not None]
    return result


def message_id(user: str, i: int) -> str:
    return f"{user}-{i:06d}"


async def run_load_async(
    base_url: str,
    token: str,
    *,
    appends: int = DEFAULT_APPENDS,
    reads: int = DEFAULT_READS,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = 0,
    run_id: str | None = None,
    progress: bool = False,
) -> LoadReport:
    """The load check against a running chat-store at ``base_url``; see the module docstring."""
    if appends < 1 or reads < 0 or concurrency < 1:
        raise ValueError("need appends >= 1, reads >= 0, concurrency >= 1")
    run_id = run_id or uuid.uuid4().hex[:12]
    user, conversation = f"load-{run_id}", f"load-{run_id}-c"
    report = LoadReport(base_url.rstrip("/"), user, conversation, appends, reads, concurrency,
                        timeout_s, retries)
    # Distinct, increasing timestamps: message i is the i-th oldest whatever order the
    # concurrent appends land in, so the expected newest page is known exactly.
    t0 = int(time.time() * 1000) - appends
    newest = [message_id(user, i) for i in range(appends - 1, max(appends - 1 - PAGE, -1), -1)]
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=report.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(timeout_s),
        limits=limits,
    ) as http:

        async def append(i: int) -> Outcome:
            body = {"id": message_id(user, i), "user_id": user, "conversation_id": conversation,
                    "sender": {"id": user, "role": "user"}, "content": f"{CONTENT}#{i}",
                    "timestamp": t0 + i}

            def accept(r: httpx.Response, attempt: int) -> None:
                # A retry of an append that did land is an identical replay: 200, not 201.
                if r.status_code != 201 and not (attempt > 1 and r.status_code == 200):
                    raise BadAnswer(f"HTTP {r.status_code}", _describe(r))
                got = r.json().get("message", {}).get("id")
                if got != body["id"]:
                    raise BadAnswer("wrong message", f"{_describe(r)} (expected id {body['id']})")

            return await timed(lambda: http.post("/v1/messages", json=body), accept,
                               timeout_s=timeout_s, retries=retries)

        async def read(_: int) -> Outcome:
            def accept(r: httpx.Response, attempt: int) -> None:
                if r.status_code != 200:
                    raise BadAnswer(f"HTTP {r.status_code}", _describe(r))
                ids = [m.get("id") for m in r.json().get("messages", [])]
                if ids != newest:
                    got = len(ids), ids[:1]
                    raise BadAnswer("wrong page", f"expected {len(newest)} messages from "
                                    f"{newest[:1]}, got {got[0]} from {got[1]}")

            return await timed(
                lambda: http.get(f"/v1/users/{user}/messages", params={"limit": PAGE}),
                accept, timeout_s=timeout_s, retries=retries)

        async def check_count(label: str, path: str) -> None:
            try:
                async with asyncio.timeout(timeout_s):
                    r = await http.get(path)
                got = str(r.json().get("count")) if r.status_code == 200 else _describe(r)
            except (TimeoutError, httpx.HTTPError, ValueError) as exc:
                got = f"{type(exc).__name__}: {exc}"
            report.checks.append(Check(label, str(appends), got, got == str(appends)))

        async def check_counts(when: str) -> None:
            await check_count(f"user count {when}", f"/v1/users/{user}/messages/count")
            await check_count(f"conversation count {when}",
                              f"/v1/conversations/{conversation}/messages/count")

        if progress:
            log(f"appending {appends:,} messages for {user} from {concurrency} clients")
        report.phases.append(await run_phase("appends", appends, concurrency, append,
                                             progress=progress))
        await check_counts("after appends")
        if reads:
            if progress:
                log(f"reading the newest {PAGE} {reads:,} times from {concurrency} clients")
            report.phases.append(await run_phase("reads", reads, concurrency, read,
                                                 progress=progress))
            await check_counts("after reads")
        try:
            async with asyncio.timeout(timeout_s):
                r = await http.get("/health")
            got = f"HTTP {r.status_code}"
        except (TimeoutError, httpx.HTTPError) as exc:
            got = f"{type(exc).__name__}: {exc}"
        report.checks.append(Check("GET /health at the end", "HTTP 200", got, got == "HTTP 200"))
    report.wall_s = time.perf_counter() - started
    return report


def run_load(
    base_url: str,
    token: str,
    *,
    appends: int = DEFAULT_APPENDS,
    reads: int = DEFAULT_READS,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = 0,
    run_id: str | None = None,
    progress: bool = False,
    log_path: Path | None = None,
) -> LoadReport:
    """Blocking form of ``run_load_async``; ``log_path``: a wrangler log to quote on failure."""
    report = asyncio.run(run_load_async(
        base_url, token, appends=appends, reads=reads, concurrency=concurrency,
        timeout_s=timeout_s, retries=retries, run_id=run_id, progress=progress))
    if log_path is not None and not report.ok:
        report.log_excerpt = log_errors(log_path)
    return report


def log_errors(path: Path, limit: int = 25) -> list[str]:
    """The last error-looking lines of a wrangler log (where the runtime reports crashes)."""
    try:
        text = _ANSI.sub("", path.read_text(errors="replace"))
    except OSError:
        return []
    hits = [line.rstrip()[:300] for line in text.splitlines() if _LOG_ERROR.search(line)]
    return hits[-limit:]


# -- own worker ---------------------------------------------------------------------------------


@contextlib.contextmanager
def own_worker(token: str, *, keep_state: bool) -> Iterator[tuple[LocalWorker, dict[str, str]]]:
    """A fresh chat-store under wrangler dev with the default configuration, on empty KV."""
    work = Path(tempfile.mkdtemp(prefix="chat-store-load-"))
    try:
        provenance = snapshot_app(work / "app")
        # Only the credential is set (AUTH_DISABLED pinned so a developer's .dev.vars cannot
        # change the run): no JOURNAL_SETTLE_MS, the defaults are what users get.
        worker = LocalWorker(persist_dir=work / "state", config=work / "app" / "wrangler.toml",
                             vars={"API_TOKEN": token, "AUTH_DISABLED": "false"},
                             log_dir=work / "logs")
        with worker:
            yield worker, provenance
    finally:
        if keep_state:
            log(f"state and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--appends", type=int, default=DEFAULT_APPENDS,
                   help=f"POST /v1/messages requests (default {DEFAULT_APPENDS:,})")
    p.add_argument("--reads", type=int, default=DEFAULT_READS,
                   help=f"newest-{PAGE} reads (default {DEFAULT_READS:,})")
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                   help=f"concurrent clients (default {DEFAULT_CONCURRENCY})")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                   help=f"per-request deadline in seconds, a failure when passed "
                        f"(default {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--retries", type=int, default=0,
                   help="retries per failed request (default 0: every request must succeed "
                        "the first time); appends stay exactly-once through their ids")
    p.add_argument("--url", help="an already-running chat-store (default: start a fresh one)")
    p.add_argument("--token", help=f"its API_TOKEN (with --url: $CHAT_STORE_TOKEN; own worker: "
                                   f"{DEFAULT_TOKEN!r})")
    p.add_argument("--log", type=Path, help="with --url: its wrangler log, quoted on failure")
    p.add_argument("--json", type=Path, help="also write the report (with every sample) here")
    p.add_argument("--keep-state", action="store_true",
                   help="own worker: keep its temporary KV folder and log")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    if args.appends < 1 or args.reads < 0 or args.concurrency < 1 or args.timeout <= 0:
        p.error("need --appends >= 1, --reads >= 0, --concurrency >= 1, --timeout > 0")
    if args.url and not (args.token or os.environ.get("CHAT_STORE_TOKEN")):
        p.error("--url needs --token or $CHAT_STORE_TOKEN")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kwargs: dict[str, Any] = {"appends": args.appends, "reads": args.reads,
                              "concurrency": args.concurrency, "timeout_s": args.timeout,
                              "retries": args.retries, "progress": not args.quiet}
    if args.url:
        token = args.token or os.environ["CHAT_STORE_TOKEN"]
        report = run_load(args.url, token, log_path=args.log, **kwargs)
    else:
        token = args.token or DEFAULT_TOKEN
        log("starting wrangler dev (default configuration, empty KV)")
        try:
            with own_worker(token, keep_state=args.keep_state) as (worker, provenance):
                log(f"worker ready at {worker.base_url} (src {provenance['src_sha256']}, "
                    f"commit {provenance['git_commit']}, dirty {provenance['src_dirty']})")
                report = run_load(worker.base_url, token, log_path=worker.log_path, **kwargs)
                report.provenance = provenance
                report.checks.append(Check("wrangler dev process still running", "yes",
                                           "yes" if worker.running else "no", worker.running))
                if not report.ok and not report.log_excerpt:
                    report.log_excerpt = log_errors(worker.log_path)
        except WorkerStartError as exc:
            log(f"could not start the Worker: {exc}")
            return 2
    print(report.summary())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.as_json(), indent=1) + "\n")
        log(f"wrote {args.json}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
