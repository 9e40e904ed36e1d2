"""Two isolates over one KV: racing writes through two `wrangler dev` processes lose nothing.

The session worker ("a") and a module-scoped sibling ("b") share one ``--persist-to`` directory
(each with its own inspector port), so they are two independent isolates -- own memory, own
clock readings, own per-isolate counters -- over one simulated KV namespace, the shape of
production, where one user's requests land on many isolates. Every write journals under its
own key before it is acknowledged (see ``index/sorted_index.py``), so:

* right after the last acknowledgement, with no sleep, a listing through *either* worker shows
  exactly the acknowledged, not-deleted messages in ``(timestamp, member)`` order, and both
  workers' counts agree with it;
* after a short settle (reads schedule compactions), the index ``user:chat:{uid}`` and each
  ``conversation:chat:{cid}`` hold exactly the live set (the head array, plus the segments its
  manifest names once the head has spilled);
* a moved timestamp is where the index puts the message (index == record): at once for an
  edit nobody raced (of two sequential PATCHes the later wins record and index), and once
  settled for two racing PATCHes, whichever of them won the record.

Two processes writing the simulator's one SQLite file at once sometimes get SQLITE_BUSY; the
Worker retries, and when its retries run out answers 503 ``storage_unavailable`` with
``Retry-After``, as it would for real KV trouble. The clients here then do what the API asks:
wait and send the same request again. An acknowledgement is the final 2xx, so a retried create
may answer 200 (an identical replay) and a retried delete 404; both still promise the write.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.aio import run
from support.chat_support import (
    Message,
    body,
    count,
    ids,
    index_entries,
    list_all,
    messages_path,
    ordered,
    page,
    stored_indexes,
)
from support.worker_harness import LocalWorker

WORKERS = ("a", "b")  # "a": the session worker; "b": its sibling on the same KV
IN_FLIGHT = 50  # requests in flight at once, over both workers
READERS = 4  # blocking readers at once when checking (listings, counts)
APPENDS = 200
DELETES = 40
SEEDS = 60
EDIT_APPENDS = 60
GROUP = 15  # messages per edit pattern (patched twice in sequence / racing / once)
CONVERGE_S = 20.0
# What the Worker logs when something failed without (or before) a 5xx: deferred compaction
# errors are swallowed after logging, so only the log shows them.
LOG_FAILURES = ("deferred work failed", "unhandled error", "Traceback")
# The local KV simulator is one SQLite file; two workerd processes writing it at once get
# SQLITE_BUSY, which KV reports as a 500, the Worker retries (storage/retrying.py) and, when that
# runs out, answers 503 storage_unavailable with Retry-After -- what production KV trouble
# looks like too. Clients here retry those like any well-behaved client would.
SIMULATOR_BUSY = "SQLITE_BUSY"
TRANSIENT_DETAIL = "storage is temporarily unavailable; retry later"
# The other 503 that KV trouble gives, before anything is acknowledged: journal puts slower
# than the settle time allows (``Journal.append``), which a busy machine's simulator produces.
SLOW_JOURNAL = re.compile(r"journal writes to \S+ kept taking longer than \d+ ms")
ATTEMPTS = 6
ANSI = re.compile(r"\x1b\[[0-9;]*m")

Array = list[dict[str, Any]]


# -- every request either worker answered in this module ---------------------------------


def transient_detail(status: int, content: bytes) -> str | None:
    """The detail of a 503 ``storage_unavailable`` for KV trouble (failing or too slow), else
    None (e.g. a missing segment, also a 503)."""
    if status != 503:
        return None
    try:
        problem = json.loads(content)
    except ValueError:
        return None
    if not (isinstance(problem, dict) and problem.get("code") == "storage_unavailable"):
        return None
    detail = str(problem.get("detail"))
    return detail if detail == TRANSIENT_DETAIL or SLOW_JOURNAL.fullmatch(detail) else None


def is_transient(status: int, content: bytes) -> bool:
    return transient_detail(status, content) is not None


@dataclass(frozen=True)
class Call:
    """One attempt of one request."""

    worker: str
    method: str
    target: str
    status: int  # 0: no HTTP answer at all (transport error)
    sent: float  # seconds since the module started
    done: float
    attempt: int = 1
    detail: str = ""  # the body of a 5xx, or the transport error
    label: str = ""  # what the request was about, when the target does not say (a create)

    @property
    def transient(self) -> bool:
        return is_transient(self.status, self.detail.encode())

    @property
    def slow_journal(self) -> bool:
        detail = transient_detail(self.status, self.detail.encode())
        return detail is not None and detail != TRANSIENT_DETAIL

    def __str__(self) -> str:
        retry = f" (attempt {self.attempt})" if self.attempt > 1 else ""
        label = f" [{self.label}]" if self.label else ""
        return (f"[{self.sent:8.3f}s -> {self.done:8.3f}s] {self.worker}: {self.method} "
                f"{self.target}{label}{retry} -> {self.status} {self.detail}").rstrip()


@dataclass
class Traffic:
    """Every attempt of every request of this module; the workers' log offsets at its start."""

    logs: dict[str, tuple[Path, int]]  # worker -> (log file, its size when the module started)
    t0: float = field(default_factory=time.monotonic)
    calls: list[Call] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def add(self, worker: str, request: httpx.Request, status: int, sent: float, attempt: int,
            detail: str = "") -> Call:
        call = Call(worker, request.method, request.url.raw_path.decode(), status, sent,
                    self.now(), attempt, detail, str(request.extensions.get("label", "")))
        self.calls.append(call)
        return call

    def history(self, message_id: str, label: str = "") -> str:
        """Every attempt of every request about one message (its target or its label)."""
        lines = [str(c) for c in self.calls
                 if c.target.endswith(f"/messages/{message_id}") or (label and c.label == label)]
        return f"{message_id}:\n    " + "\n    ".join(lines or ["(no request names it)"])

    def log_text(self, worker: str) -> str:
        path, start = self.logs[worker]
        with path.open("rb") as f:
            f.seek(start)
            return ANSI.sub("", f.read().decode(errors="replace"))


def stale_keep_alive(request: httpx.Request, exc: Exception, attempt: int) -> bool:
    """A reused keep-alive connection that the proxy closed just before our request: no
    request reached the Worker, and HTTP clients resend idempotent requests in that case."""
    return (
        attempt == 1
        and request.method in ("GET", "HEAD")
        and isinstance(exc, httpx.RemoteProtocolError)
        and "without sending a response" in str(exc)
    )


class RetryTransport(httpx.BaseTransport):
    """What a well-behaved client does with ``503`` + ``Retry-After`` for KV trouble: wait and
    send again, up to ``ATTEMPTS`` times. Every attempt is recorded in ``traffic``."""

    def __init__(self, worker: str, traffic: Traffic) -> None:
        self._inner = httpx.HTTPTransport()
        self._worker = worker
        self._traffic = traffic

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(1, ATTEMPTS + 1):
            request.extensions["attempts"] = attempt
            sent = self._traffic.now()
            try:
                response = self._inner.handle_request(request)
            except httpx.TransportError as exc:
                if stale_keep_alive(request, exc, attempt):
                    continue
                self._traffic.add(self._worker, request, 0, sent, attempt, repr(exc))
                raise
            content = response.read() if response.status_code >= 500 else b""
            self._traffic.add(self._worker, request, response.status_code, sent, attempt,
                              content.decode(errors="replace")[:500])
            if attempt == ATTEMPTS or not is_transient(response.status_code, content):
                return response
            response.close()
            time.sleep(float(response.headers.get("retry-after", "1")))
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._inner.close()


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    """``RetryTransport`` for ``httpx.AsyncClient``."""

    def __init__(self, worker: str, traffic: Traffic, limits: httpx.Limits) -> None:
        self._inner = httpx.AsyncHTTPTransport(limits=limits)
        self._worker = worker
        self._traffic = traffic

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(1, ATTEMPTS + 1):
            request.extensions["attempts"] = attempt
            sent = self._traffic.now()
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.TransportError as exc:
                if stale_keep_alive(request, exc, attempt):
                    continue
                self._traffic.add(self._worker, request, 0, sent, attempt, repr(exc))
                raise
            content = await response.aread() if response.status_code >= 500 else b""
            self._traffic.add(self._worker, request, response.status_code, sent, attempt,
                              content.decode(errors="replace")[:500])
            if attempt == ATTEMPTS or not is_transient(response.status_code, content):
                return response
            await response.aclose()
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass(frozen=True)
class Timed:
    """A response and when it was asked for and answered (over all attempts)."""

    worker: str
    response: httpx.Response
    sent: float
    done: float

    def json(self) -> Any:
        return self.response.json()

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def attempts(self) -> int:
        return int(self.response.request.extensions.get("attempts", 1))

    def __str__(self) -> str:
        request = self.response.request
        retried = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return (f"[{self.sent:8.3f}s -> {self.done:8.3f}s] {self.worker}: {request.method} "
                f"{request.url.raw_path.decode()} -> {self.status}{retried}")


class Duo:
    """One async client per worker, at most ``in_flight`` requests in flight over both."""

    def __init__(self, urls: dict[str, str], token: str, traffic: Traffic,
                 in_flight: int = IN_FLIGHT) -> None:
        self._urls = urls
        self._token = token
        self._traffic = traffic
        self._in_flight = in_flight
        self._clients: dict[str, httpx.AsyncClient] = {}

    async def __aenter__(self) -> Duo:
        self._slots = asyncio.Semaphore(self._in_flight)
        limits = httpx.Limits(max_connections=self._in_flight,
                              max_keepalive_connections=self._in_flight)
        for name, url in self._urls.items():
            self._clients[name] = httpx.AsyncClient(
                base_url=url, timeout=120,
                transport=AsyncRetryTransport(name, self._traffic, limits),
                headers={"Authorization": f"Bearer {self._token}"})
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(c.aclose() for c in self._clients.values()))

    async def call(self, worker: str, method: str, path: str, payload: Any | None = None,
                   label: str = "") -> Timed:
        async with self._slots:
            sent = self._traffic.now()
            response = await self._clients[worker].request(method, path, json=payload,
                                                           extensions={"label": label})
            return Timed(worker, response, sent, self._traffic.now())


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def twin(worker: LocalWorker) -> Iterator[LocalWorker]:
    """A second wrangler dev on the session worker's persist dir: another isolate, same KV.

    Same vars as the session worker (API_TOKEN, AUTH_DISABLED=false, JOURNAL_SETTLE_MS=2000),
    so the two differ only in being separate processes; sibling() gives it its own ports
    (inspector included) and its own dev registry.
    """
    assert worker.vars.get("JOURNAL_SETTLE_MS") == "2000", worker.vars  # CONVERGE_S assumes it
    with worker.sibling(vars=dict(worker.vars)) as w:
        yield w


@pytest.fixture(scope="module")
def traffic(worker: LocalWorker, twin: LocalWorker) -> Traffic:
    def size(path: Path) -> int:
        return path.stat().st_size if path.exists() else 0

    return Traffic({name: (w.log_path, size(w.log_path))
                    for name, w in zip(WORKERS, (worker, twin), strict=True)})


@pytest.fixture(scope="module")
def pair(
    worker: LocalWorker, twin: LocalWorker, api_token: str, traffic: Traffic
) -> Iterator[dict[str, httpx.Client]]:
    """Blocking clients for both workers (listings, counts, reads), recording every response."""
    clients = {
        name: httpx.Client(base_url=w.base_url, timeout=60, transport=RetryTransport(name, traffic),
                           headers={"Authorization": f"Bearer {api_token}"})
        for name, w in zip(WORKERS, (worker, twin), strict=True)
    }
    try:
        yield clients
    finally:
        for c in clients.values():
            c.close()


@pytest.fixture
def duo(worker: LocalWorker, twin: LocalWorker, api_token: str, traffic: Traffic) -> Duo:
    return Duo({"a": worker.base_url, "b": twin.base_url}, api_token, traffic)


# -- checks ----------------------------------------------------------------------------------


class Problems:
    """Soft assertions: a race report is worth more with everything that went wrong in it."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def check(self, ok: bool, message: str) -> bool:
        if not ok:
            self.found.append(message)
        return ok

    def assert_none(self) -> None:
        assert not self.found, "\n\n".join(self.found)


def id_diff(got: list[str], want: list[str]) -> str:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    twice = sorted({i for i in got if got.count(i) > 1})
    first = next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), None)
    return (f"{len(got)} listed vs {len(want)} live; missing {missing}; extra {extra}; "
            f"listed twice {twice}; first difference at #{first}")


def check_listings(
    problems: Problems, pair: dict[str, httpx.Client],
    scopes: dict[str, tuple[str, list[Message]]], *, moving: Iterable[str] = (),
) -> set[str]:
    """For every scope (index key -> listing path, live messages), through both workers: the
    asc and desc listings hold exactly the live records, once each and in order, and the count
    agrees. Messages in ``moving`` may still be moved by the index while a listing pages through
    it (see the edits test): counts include them, listings are compared without them. Returns
    the ids in trouble."""
    moving = set(moving)
    jobs = [(path, name, order, limit) for path, _ in scopes.values() for name in WORKERS
            for order, limit in (("count", 0), ("asc", 37), ("desc", 100))]

    def read(job: tuple[str, str, str, int]) -> int | list[Message]:
        path, name, order, limit = job
        if order == "count":
            return count(pair[name], path)
        return list_all(pair[name], path, order=order, limit=limit)

    with ThreadPoolExecutor(READERS) as pool:
        results = dict(zip(jobs, pool.map(read, jobs), strict=True))
    trouble: set[str] = set()
    for path, live in scopes.values():
        records = {m["id"]: m for m in live}
        for (where, name, order, _), result in results.items():
            if where != path:
                continue
            if isinstance(result, int):
                problems.check(result == len(live),
                               f"{name} {path}: count {result} != {len(live)} live")
                continue
            listed = [m for m in result if m["id"] not in moving]
            want = [m for m in ordered(live, order) if m["id"] not in moving]
            got_ids, want_ids = ids(listed), ids(want)
            if not problems.check(got_ids == want_ids, (
                    f"{name} {path} {order}: {id_diff(got_ids, want_ids)}")):
                odd = set(got_ids) ^ set(want_ids) | {i for i in got_ids if got_ids.count(i) > 1}
                trouble |= odd or {g for g, w in zip(got_ids, want_ids, strict=True) if g != w}
            differ = [m["id"] for m in listed
                      if m["id"] in records and m != records[m["id"]]]
            problems.check(not differ, f"{name} {path} {order}: records differ: {differ}")
    return trouble


def array_diff(actual: Array | None, expected: Array) -> tuple[str, set[str]]:
    """A description of how ``actual`` differs from ``expected``, and the message ids in it."""
    if actual is None:
        return "the index key does not exist", set()
    got = {e["member"]: e["score"] for e in actual}
    want = {e["member"]: e["score"] for e in expected}
    missing = sorted(m for m in want if m not in got)
    extra = sorted(m for m in got if m not in want)
    moved = {m: {"index": got[m], "record": want[m]}
             for m in want if m in got and got[m] != want[m]}
    in_order = actual == sorted(actual, key=lambda e: (e["score"], e["member"]))
    involved = {m.removeprefix("chat:") for m in [*missing, *extra, *moved]}
    return (f"{len(actual)} entries vs {len(expected)} live; missing {missing}; extra {extra}; "
            f"wrong score {moved}; sorted: {in_order}; duplicates: {len(actual) - len(got)}",
            involved)


def converge(
    worker: LocalWorker, pair: dict[str, httpx.Client], expected: dict[str, tuple[Array, str]],
    *, timeout: float = CONVERGE_S,
) -> dict[str, Array | None]:
    """Poll the index arrays until each equals its expected array. Each round first lists every
    index not there yet in full through *both* workers: a read schedules compaction of an index
    with unfolded journal entries, and journals a correction for each settled entry it returned
    whose record says otherwise. Returns the last value read for every key."""
    actual: dict[str, Array | None] = {}
    deadline = time.monotonic() + timeout
    while True:
        pending = [k for k, (array, _) in expected.items() if k not in actual or
                   actual[k] != array]
        if not pending or time.monotonic() > deadline:
            return actual
        with ThreadPoolExecutor(READERS) as pool:
            list(pool.map(lambda job: list_all(pair[job[1]], expected[job[0]][1], order="asc",
                                               limit=100),
                          [(key, name) for key in pending for name in WORKERS]))
        actual.update(stored_indexes(worker, pending))
        time.sleep(0.5)


def check_arrays(problems: Problems, worker: LocalWorker, pair: dict[str, httpx.Client],
                 scopes: dict[str, tuple[str, list[Message]]]) -> set[str]:
    """``scopes``: index key -> (listing path, live messages). Returns the ids in trouble."""
    expected = {key: (index_entries(live), path) for key, (path, live) in scopes.items()}
    actual = converge(worker, pair, expected)
    trouble: set[str] = set()
    for key, (array, _) in expected.items():
        if actual.get(key) != array:
            description, involved = array_diff(actual.get(key), array)
            problems.check(False, f"{key} after {CONVERGE_S:.0f} s: {description}")
            trouble |= involved
    return trouble


def scopes_of(user: str, conversations: list[str],
              live: Iterable[Message]) -> dict[str, tuple[str, list[Message]]]:
    live = list(live)
    out = {f"user:chat:{user}": (messages_path("users", user), live)}
    for c in conversations:
        out[f"conversation:chat:{c}"] = (
            messages_path("conversations", c), [m for m in live if m.get("conversation_id") == c])
    return out


def failure_blocks(log: str) -> list[str]:
    """Each logged failure with the lines after it, up to the next request line or failure."""
    lines = log.splitlines()
    starts: list[int] = []
    for i, line in enumerate(lines):
        # "deferred work failed" and the "Traceback" just below it are one failure.
        if any(s in line for s in LOG_FAILURES) and not (starts and i - starts[-1] <= 3):
            starts.append(i)
    blocks = []
    for n, i in enumerate(starts):
        end = min([*starts[n + 1 : n + 2], i + 80])
        block = lines[i:end]
        cut = next((k for k, line in enumerate(block) if k and "[wrangler:inf]" in line), None)
        blocks.append("\n".join(block[:cut]))
    return blocks


def out_of_kv_retries(block: str) -> bool:
    """A logged traceback of StorageUnavailable, raised when KV retries ran out. (The runtime
    prints a traceback twice, the copies interleaved with other output, so one copy may lack
    its last line: then its innermost frame, the retry loop's raise, says the same.)"""
    frames = [line for line in block.splitlines() if line.strip().startswith('File "')]
    innermost = frames[-1] if frames else ""
    return "StorageUnavailable" in block or (
        "retrying.py" in innermost and "in _retry" in innermost)


RELOADED = "restarted mid-request"  # what wrangler dev answers when it reloads the Worker
# Seen for two causes: a change under src/ (which wrangler dev watches) and, rarely, the local
# runtime restarting on its own (a fresh-clone CI run with src/ untouched); neither is the store's.
RELOAD_HINT = ("wrangler dev restarted the Worker in the middle of the run (a change under src/, "
               "which it watches, or the local runtime restarting): run again with src/ untouched")


def unexpected(results: Iterable[Timed | None], want: int, after_retry: int) -> list[str]:
    """Every request that answered neither ``want`` nor, once retried, ``after_retry``: a retry
    after a 503 may find the first attempt's work done (a create is then an identical replay,
    200; a delete finds nothing, 404) -- the request is acknowledged all the same."""
    bad = [
        f"{r} {r.response.text[:300]}" for r in results
        if r is not None and r.status != want and not (r.attempts > 1 and r.status == after_retry)
    ]
    return [RELOAD_HINT, *bad] if any(RELOADED in b for b in bad) else bad


# -- tests -----------------------------------------------------------------------------------


def explain(problems: Problems, traffic: Traffic, trouble: set[str], labels: dict[str, str],
            acknowledged: set[str]) -> None:
    """Add every request about each message in trouble to the report (at most 16, the
    acknowledged ones first)."""
    for message_id in sorted(trouble, key=lambda i: (i not in acknowledged, i))[:16]:
        problems.found.append(traffic.history(message_id, labels.get(message_id, "")))
    if trouble - acknowledged:  # ids no answer named: from an attempt that failed, if any
        failed = [str(c) for c in traffic.calls if c.status == 0 or c.status >= 500]
        problems.found.append("attempts that failed:\n    "
                              + "\n    ".join(failed[:32] or ["(none)"]))
        for worker in traffic.logs:
            logged = [line for line in traffic.log_text(worker).splitlines()
                      if "failed" in line or "Traceback" in line]
            problems.found.append(f"{worker}'s log, failures:\n    "
                                  + "\n    ".join(logged[-32:] or ["(none)"]))


def test_appends_and_deletes_race_across_two_isolates(
    worker: LocalWorker, pair: dict[str, httpx.Client], duo: Duo, traffic: Traffic,
    unique_id: str,
) -> None:
    rng = random.Random(unique_id)
    user = unique_id
    conversations = [f"{user}-c0", f"{user}-c1"]
    payloads = [
        body(user, f"m{i}",
             id=None if i % 3 == 0 else f"{user}-{i:03d}",  # a third get server ULIDs
             conversation_id=None if i % 7 == 6 else conversations[(i // 2) % 2],
             timestamp=None if i % 10 == 5 else rng.randrange(1_000, 1_040))  # ties galore
        for i in range(APPENDS)
    ]
    doomed = set(rng.sample(range(APPENDS), DELETES))

    async def append_then_maybe_delete(i: int) -> tuple[Timed, Timed | None]:
        # Alternate workers; a doomed message is deleted through the *other* worker as soon as
        # its create is acknowledged, while the remaining appends are still in flight.
        created = await duo.call(WORKERS[i % 2], "POST", "/v1/messages", payloads[i],
                                 label=f"m{i}")
        deleted = None
        if i in doomed and created.status in (200, 201):
            message_id = created.json()["message"]["id"]
            deleted = await duo.call(WORKERS[1 - i % 2], "DELETE", f"/v1/messages/{message_id}")
        return created, deleted

    async def burst() -> list[tuple[Timed, Timed | None]]:
        async with duo:
            return list(await asyncio.gather(
                *(append_then_maybe_delete(i) for i in range(APPENDS))))

    results: list[tuple[Timed, Timed | None]] = run(burst())
    bad = (unexpected((c for c, _ in results), 201, after_retry=200)
           + unexpected((d for _, d in results), 204, after_retry=404))
    assert not bad, "\n".join(bad)
    assert sum(d is not None for _, d in results) == DELETES
    created = [c.json()["message"] for c, _ in results]
    assert len({m["id"] for m in created}) == APPENDS
    labels = {m["id"]: m["content"] for m in created}
    live = [m for i, m in enumerate(created) if i not in doomed]
    gone = [m["id"] for i, m in enumerate(created) if i in doomed]

    problems = Problems()
    trouble: set[str] = set()
    scopes = scopes_of(user, conversations, live)
    # At once: no sleep between the last acknowledgement and these reads.
    trouble |= check_listings(problems, pair, scopes)
    for k, message_id in enumerate(gone):
        response = pair[WORKERS[k % 2]].get(f"/v1/messages/{message_id}")
        if not problems.check(response.status_code == 404, (
                f"deleted {message_id} still readable: {response.status_code}")):
            trouble.add(message_id)
    # After a short settle: the stored arrays are exactly the live set.
    trouble |= check_arrays(problems, worker, pair, scopes)
    for message_id in trouble - set(labels):  # e.g. left behind by a create that failed
        stored = pair["a"].get(f"/v1/messages/{message_id}")
        if stored.status_code == 200:
            labels[message_id] = stored.json()["message"]["content"]
            problems.found.append(f"{message_id} is stored: {stored.text}")
    explain(problems, traffic, trouble, labels, {m["id"] for m in created})
    problems.assert_none()


@dataclass(frozen=True)
class Patch:
    message_id: str
    worker: str
    timestamp: int
    result: Timed

    def __str__(self) -> str:
        edited = ""
        if self.result.status == 200:
            edited = f", edited_at={self.result.json()['message'].get('edited_at')}"
        return f"timestamp={self.timestamp}: {self.result}{edited}"


def test_timestamp_edits_race_across_two_isolates(
    worker: LocalWorker, pair: dict[str, httpx.Client], duo: Duo, traffic: Traffic,
    unique_id: str,
) -> None:
    """Edits that move timestamps, racing each other and appends over both workers.

    The record keeps the last put (KV is last-writer-wins) and the index must follow it: a
    message patched twice in sequence (the second PATCH sent after the first was acknowledged,
    through the other worker) and a message patched once are where their record says at once;
    for two PATCHes of one message racing on both workers either value may win the record, and
    the index must agree with it once settled (the README's consistency model: the index first
    follows the later journal entry, and a read that finds a settled entry disagreeing with its
    record journals the correction). Right after the burst the counts are exact, every other
    message is listed once and in order, and each racing message is in the index once, at one
    of its two values -- a paginated listing may meet it twice or not at all while a correction
    moves it between two pages. After the settle every listing, racing messages included, and
    every stored array match the records exactly.
    """
    rng = random.Random(unique_id)
    user = unique_id
    conversations = [f"{user}-c0", f"{user}-c1"]
    seed_payloads = [
        body(user, f"s{k}", id=f"{user}-s{k:02d}", conversation_id=conversations[k % 2],
             timestamp=1_000 + 10 * k)
        for k in range(SEEDS)
    ]
    response = pair["a"].post("/v1/messages/batch", json={"messages": seed_payloads})
    assert response.status_code in (200, 201), response.text  # 200: a retry's replay
    seeded: dict[str, Message] = {m["id"]: m for m in response.json()["messages"]}
    # Let the seed reach the stored arrays first, so the edits move entries out of the head
    # rather than only out of the journal.
    seeding = Problems()
    check_arrays(seeding, worker, pair, scopes_of(user, conversations, seeded.values()))
    seeding.assert_none()

    order = list(seeded)
    rng.shuffle(order)
    in_sequence, racing, once = (order[:GROUP], order[GROUP : 2 * GROUP],
                                 order[2 * GROUP : 3 * GROUP])
    values = iter(rng.sample(range(2_000, 50_000), 5 * GROUP))  # unique: positions tell apart
    plan: dict[str, list[tuple[str, int]]] = {}
    for k, message_id in enumerate(in_sequence + racing):
        first = k % 2
        plan[message_id] = [(WORKERS[first], next(values)), (WORKERS[1 - first], next(values))]
    for k, message_id in enumerate(once):
        plan[message_id] = [(WORKERS[k % 2], next(values))]
    append_payloads = [
        body(user, f"n{k}", id=f"{user}-n{k:02d}", conversation_id=conversations[k % 2],
             timestamp=rng.randrange(1_000, 1_600))  # among the seeds, ties included
        for k in range(EDIT_APPENDS)
    ]
    labels = {p["id"]: p["content"] for p in append_payloads}
    patches: list[Patch] = []

    async def patch(message_id: str, worker_name: str, timestamp: int) -> None:
        target = f"/v1/messages/{message_id}"
        result = await duo.call(worker_name, "PATCH", target, {"timestamp": timestamp})
        if result.status == 404 and message_id in racing:
            # The simulator, not the Worker: miniflare's KV get reads the key's row, then its
            # blob, and an overwrite by the *other* process deletes the old blob in between, so
            # the get answers "no such key" for a record that exists (production KV returns the
            # old or the new value). Seeded messages are never deleted: send it again.
            result = await duo.call(worker_name, "PATCH", target, {"timestamp": timestamp},
                                    label="again after the simulator's 404")
        patches.append(Patch(message_id, worker_name, timestamp, result))

    async def one_after_the_other(message_id: str) -> None:
        for worker_name, timestamp in plan[message_id]:
            await patch(message_id, worker_name, timestamp)

    async def at_the_same_time(message_id: str) -> None:
        await asyncio.gather(*(patch(message_id, w, t) for w, t in plan[message_id]))

    async def append(k: int) -> Timed:
        return await duo.call(WORKERS[k % 2], "POST", "/v1/messages", append_payloads[k],
                              label=f"n{k}")

    async def burst() -> list[Timed]:
        others: list[Coroutine[Any, Any, Any]] = [
            *(one_after_the_other(m) for m in in_sequence),
            *(patch(m, *plan[m][0]) for m in once),
        ]
        rng.shuffle(others)
        async with duo:
            # The racing pairs go first so that both halves of each pair start together.
            done = await asyncio.gather(*(at_the_same_time(m) for m in racing),
                                        *(append(k) for k in range(EDIT_APPENDS)), *others)
        return [d for d in done if isinstance(d, Timed)]

    appended = run(burst())
    bad = (unexpected(appended, 201, after_retry=200)
           + unexpected((p.result for p in patches), 200, after_retry=200))
    assert not bad, "\n".join(bad)
    assert len(patches) == 5 * GROUP

    # The records, as anyone now reads them (alternating workers, all at once).
    every_id = [*seeded, *(p["id"] for p in append_payloads)]

    async def read_records() -> list[Timed]:
        async with duo:
            return list(await asyncio.gather(*(
                duo.call(WORKERS[k % 2], "GET", f"/v1/messages/{message_id}")
                for k, message_id in enumerate(every_id))))

    reads: list[Timed] = run(read_records())
    assert not unexpected(reads, 200, after_retry=200), unexpected(reads, 200, after_retry=200)
    records: dict[str, Message] = {r.json()["message"]["id"]: r.json()["message"] for r in reads}

    def history(message_id: str) -> str:
        answers = [str(p) for p in patches if p.message_id == message_id]
        return (f"seeded at {seeded[message_id]['timestamp']}; PATCH answers:\n    "
                + "\n    ".join(answers) + "\n  " + traffic.history(message_id))

    problems = Problems()
    # At once: listings and counts through both workers.
    scopes = scopes_of(user, conversations, list(records.values()))
    trouble: set[str] = set()
    trouble |= check_listings(problems, pair, scopes, moving=racing)
    for message_id in every_id:
        stored = records[message_id]["timestamp"]
        steps = plan.get(message_id, [])
        if message_id in in_sequence:
            problems.check(stored == steps[-1][1], (
                f"record of a message patched twice in sequence is not the last acknowledged "
                f"value ({stored}): {history(message_id)}"))
        elif message_id in racing:
            problems.check(stored in {t for _, t in steps}, (
                f"record {stored} is neither racing value: {history(message_id)}"))
        elif message_id in once:
            problems.check(stored == steps[0][1], (
                f"record {stored} != the patched value: {history(message_id)}"))
        elif message_id in seeded:
            problems.check(stored == seeded[message_id]["timestamp"], (
                f"untouched {message_id} moved to {stored}"))

    # At once, through both workers and in the user and the conversation index of each patched
    # message: an edit that did not race puts the message exactly where its record says (one
    # read of start=end=record timestamp); a racing pair leaves it there once, at one of its two
    # values (one read of the range both lie in; another read may already see it moved).
    # Timestamps are unique by construction, so a range read names only the message's places.
    def window(message_id: str) -> tuple[int, int]:
        if message_id in racing:
            low, high = sorted(t for _, t in plan[message_id])
            return low, high
        stored = records[message_id]["timestamp"]
        return stored, stored

    probes = [
        (message_id, path, name)
        for message_id in [*in_sequence, *once, *racing]
        for path in (messages_path("users", user),
                     messages_path("conversations", records[message_id]["conversation_id"]))
        for name in WORKERS
    ]

    async def probe_all() -> list[Timed]:
        async with duo:
            return list(await asyncio.gather(*(
                duo.call(name, "GET", "{}?start={}&end={}&limit=100".format(path, *window(m)))
                for m, path, name in probes)))

    for (message_id, path, name), result in zip(probes, run(probe_all()), strict=True):
        assert result.status == 200, f"{result} {result.response.text}"
        times = ids(result.json()["messages"]).count(message_id)
        low, high = window(message_id)
        if message_id in racing:
            problems.check(times == 1, (
                f"racing edits: {name} {path} lists it {times} times between {low} and {high}:"
                f" {history(message_id)}"))
        elif times != 1:
            elsewhere = [t for t in (seeded[message_id]["timestamp"],
                                     *(t for _, t in plan[message_id])) if t != low and
                         message_id in ids(page(pair[name], path, start=t, end=t)[0])]
            problems.check(False, (
                f"index != record at once: {name} {path} lists it {times} times at the record's "
                f"{low}, and at {elsewhere}: {history(message_id)}"))

    # After a short settle: the stored arrays, and so every listing's order, follow the records.
    trouble |= check_arrays(problems, worker, pair, scopes)
    trouble |= check_listings(problems, pair, scopes)
    for message_id in sorted(trouble & set(plan))[:12]:
        problems.found.append(history(message_id))
    explain(problems, traffic, trouble - set(plan), labels, set(records))
    problems.assert_none()


def test_no_server_errors_on_either_worker(
    pair: dict[str, httpx.Client], duo: Duo, traffic: Traffic, unique_id: str
) -> None:
    """No 5xx, nor a dropped connection, in anything this module sent (every attempt is
    recorded), and no failure in either worker's log: compaction runs after the response, so
    only the log shows its errors.

    The 5xx allowed are a 503 for journal writes too slow to acknowledge (the machine is busy;
    nothing was acknowledged) and the transient 503 (``storage_unavailable`` with Retry-After)
    on a worker whose log shows the simulator's SQLITE_BUSY behind it: the two processes then really
    had no storage for a moment, and the clients' retries must have succeeded (the other tests
    check every final status). A 503 for any other reason (a missing segment or manifest is
    one too) fails, as does every 500. Likewise the one logged failure allowed is deferred work
    (a compaction) that ran out of KV retries with StorageUnavailable on such a worker: the
    journal keeps everything, so the next compaction catches up.

    Some racing traffic of its own, so that this means something when run alone: the same
    message deleted through both workers at once, another patched on one while deleted on the
    other, listings and counts in between.
    """
    user = unique_id
    payloads = [body(user, f"x{k}", id=f"{user}-x{k}", timestamp=k) for k in range(8)]
    for k, payload in enumerate(payloads):
        assert pair[WORKERS[k % 2]].post("/v1/messages", json=payload).status_code in (200, 201)

    async def races() -> list[Timed]:
        async with duo:
            return list(await asyncio.gather(
                duo.call("a", "DELETE", f"/v1/messages/{user}-x0"),
                duo.call("b", "DELETE", f"/v1/messages/{user}-x0"),
                duo.call("a", "PATCH", f"/v1/messages/{user}-x1", {"timestamp": 100}),
                duo.call("b", "DELETE", f"/v1/messages/{user}-x1"),
                duo.call("b", "PATCH", f"/v1/messages/{user}-x2", {"content": "edited"}),
                duo.call("a", "GET", messages_path("users", user)),
                duo.call("b", "GET", messages_path("users", user) + "/count"),
            ))

    for result in run(races()):
        assert result.status in (200, 204, 404), f"{result} {result.response.text}"
    for client in pair.values():
        assert client.get(messages_path("users", user)).status_code == 200
        assert client.get(f"/v1/messages/{user}-x0").status_code == 404
    time.sleep(1.0)  # the deferred compactions of the last requests finish (and log)

    assert traffic.calls
    logs = {name: traffic.log_text(name) for name in WORKERS}
    busy = {name: text.count(SIMULATOR_BUSY) for name, text in logs.items()}
    failed = [
        str(c) for c in traffic.calls
        if c.status == 0
        or (c.status >= 500 and not (c.slow_journal or (c.transient and busy[c.worker])))
    ]
    if any(RELOADED in f for f in failed):
        failed.insert(0, RELOAD_HINT)
    assert not failed, f"{len(failed)} of {len(traffic.calls)} attempts failed:\n" + "\n".join(
        failed)
    for name, text in logs.items():
        hits = [block for block in failure_blocks(text)
                if not (busy[name] and out_of_kv_retries(block))]
        assert not hits, (f"worker {name} ({traffic.logs[name][0]}) logged failures:\n"
                          + "\n---\n".join(hits[:5]))


def test_parallel_appends_to_many_conversations_of_one_user_list_each_exactly(
    pair: dict[str, httpx.Client], duo: Duo, unique_id: str,
) -> None:
    """100 appends across 10 conversations of one user, from both workers at once: every
    conversation is listed once, with its newest message's timestamp and its count."""
    user = unique_id
    conversations = [f"{user}-c{n}" for n in range(10)]
    rng = random.Random(unique_id)
    payloads = [body(user, f"m{i}", id=f"{user}-{i:03d}", conversation_id=conversations[i % 10],
                     timestamp=rng.randrange(1_000, 1_100)) for i in range(100)]

    async def burst() -> list[Timed]:
        async with duo:
            return list(await asyncio.gather(*(
                duo.call(WORKERS[i % 2], "POST", "/v1/messages", p, label=f"m{i}")
                for i, p in enumerate(payloads))))

    results = run(burst())
    bad = unexpected(results, 201, after_retry=200)
    assert not bad, "\n".join(bad)
    expected = {}
    for c in conversations:
        mine = [p for p in payloads if p["conversation_id"] == c]
        newest = max(mine, key=lambda p: (p["timestamp"], "chat:" + p["id"]))
        expected[c] = (newest["timestamp"], len(mine), newest["id"])
    order = sorted(conversations, key=lambda c: (expected[c][0], "chat:" + expected[c][2]),
                   reverse=True)
    for name, client in pair.items():
        reply = client.get(f"/v1/users/{user}/conversations", params={"limit": 100})
        assert reply.status_code == 200, reply.text
        listed = reply.json()["conversations"]
        assert [x["id"] for x in listed] == order, name
        assert {x["id"]: (x["last_message_at"], x["message_count"], x["last_message"]["id"])
                for x in listed} == expected, name
