"""Seeded fuzzing of the real Worker: ~2,000 hostile requests, and nothing may break or change.

Four families of requests, all generated up front from one seeded RNG (the same requests every
run, sent by a few threads over raw ``http.client`` connections so paths and headers go out
byte for byte, without client-side normalization):

* bodies: valid create/batch/patch/reindex bodies mutated by bit flips, byte edits,
  truncations, type swaps, huge numbers, deep nesting, odd Unicode (lone surrogates, NUL,
  BOM, invalid UTF-8), duplicate keys, NaN, unknown or missing fields, and values exactly
  at and just past the documented limits;
* headers: content types and credential variants;
* paths: random segments, encoded slashes, dot segments, very long and invalid ids;
* query strings: repeated, unknown, negative, huge, float and non-ASCII-digit parameters,
  garbage and tampered cursors.

Every response must be below 500 (503 ``storage_unavailable`` included: there is nothing to
be unavailable locally), and every error (except on HEAD, which has no body) must be an
``application/problem+json`` document whose ``code`` is a known one and whose ``status`` is
the response's.

Nothing stored may change: a dedicated "victim" user and conversation are seeded first, and
every request that names them is one that must fail (bad credentials, a non-JSON content type,
a body made invalid on purpose, an id conflict) or a read. Their listings, counts and messages
are compared before and after. Mutated bodies that happen to be valid only ever name a
separate scratch user and conversation, whose changes do not count.

Bounded: ``TOTAL`` requests, and the test fails (rather than hanging) past ``DEADLINE_S``.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from errors import PROBLEMS
from support.worker_harness import LocalWorker

SEED = 0x5EED_C4A7
THREADS = 4
DEADLINE_S = 90.0
TIMEOUT_S = 30.0
COUNTS = {"body": 900, "header": 300, "path": 400, "query": 400}
TOTAL = sum(COUNTS.values())
CODES = frozenset(p.code for p in PROBLEMS.values())

VICTIM_USER = "fuzz-victim-user"
VICTIM_CONVERSATION = "fuzz-victim-conversation"
VICTIM_IDS = tuple(f"fuzz-victim-msg-{i}" for i in range(3))
SCRATCH_USER = "fuzz-scratch-user"
SCRATCH_CONVERSATION = "fuzz-scratch-conversation"
SCRATCH_MESSAGE = "fuzz-scratch-msg"

JSON = "application/json"
# Accepted as JSON by the server (the type is `application/json` or ends with `+json`).
JSON_TYPES = (
    JSON, "APPLICATION/JSON", "application/json; charset=utf-8", " application/json ;x=y",
    "application/merge-patch+json", "application/vnd.chat+json",
)
# Refused with 415 before the body is read: safe on the victim's data.
NON_JSON_TYPES = (
    "", "text/plain", "text/json", "application/x-www-form-urlencoded", "multipart/form-data; b=x",
    "application/jsonp", "application /json", "json", "application/json-seq", "*/*",
    "application/javascript", "application/json\u00e9".encode().decode("latin-1"),
)
GOOD_AUTH = ("Bearer {t}", "bearer {t}", "BEARER {t}", "Bearer    {t}", " Bearer {t} ")
BAD_AUTH: tuple[str | None, ...] = (
    None, "", "Bearer", "Bearer ", "Basic dGVzdC10b2tlbg==", "Token {t}", "{t}",
    "Bearer {t}x", "Bearer x{t}", "Bearer {t} {t}", "Bearer\t{t}", "Bearer {T}",
    "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJmdXp6LXZpY3RpbS11c2VyIn0.",
    "Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA", "Bearer " + "A" * 5000,
    "Bearer t\u00e9st".encode().decode("latin-1"), "Bearer,{t}",
)
HUGE_NUMBERS = (
    "9007199254740991", "9007199254740992", "9007199254740993", "18446744073709551616",
    "-9223372036854775809",
    "1" + "0" * 400, "1e308", "1e999", "-1e999", "-0", "0.0", "1E2", "4.9e-324",
    "123456789012345678901234567890.5", "9" * 5000,
)
ODD_STRINGS = (
    "\\ud800", "\\udfff", "\\udfff\\ud800", "a\\u0000b", "\\ufeff", "\u202eevil", "e\u0301",
    "\U0001f4a9" * 40, "\u0000", "\\\\", "\\/", "\u2028\u2029", "x" * 200, "\u00ff" * 64,
)
RAW_JUNK = (
    b"", b" ", b"null", b"[]", b"{}", b'"str"', b"0", b"{", b"}", b"[", b'{"a":}', b"NaN",
    b"Infinity", b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b"\xc0\xaf", b"{\"a\":\"\xff\"}",
    b"{'a': 1}", b'{"a":1,}', b"[1,]", b"/* c */ {}", b"\x00", b"true false",
)


@dataclass(frozen=True)
class FuzzRequest:
    family: str
    method: str
    target: str  # raw path and query, sent as is
    headers: tuple[tuple[str, str | bytes], ...]
    body: bytes
    must_fail: bool  # names the victim's data: anything but an error is a violation


@dataclass(frozen=True)
class Outcome:
    request: FuzzRequest
    status: int  # 0: no response
    headers: dict[str, str]
    body: bytes
    error: str = ""


def _auth(template: str | None, token: str) -> tuple[tuple[str, str | bytes], ...]:
    if template is None:
        return ()
    value = template.replace("{t}", token).replace("{T}", token.upper())
    return (("Authorization", value.encode("latin-1")),)


# --- mutations ----------------------------------------------------------------------------


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(12 if depth < 3 else 8)
    simple: list[Any] = [None, True, False, 0, -1, 1.5, "", "x" * rng.randrange(1, 300)]
    if choice < len(simple):
        return simple[choice]
    if choice == 8:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if choice == 9:
        return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randrange(4))}
    if choice == 10:
        return rng.choice((2**53 - 1, 2**53, -(2**63), 10**30))
    decoded: str = json.loads(f'"{rng.choice(ODD_STRINGS)}"', strict=False)
    return decoded


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _type_swap(rng: random.Random, body: Any) -> bytes:
    path = rng.choice(_paths(body))
    return json.dumps(_replace(body, path, _random_value(rng))).encode()


def _drop_or_add_field(rng: random.Random, body: Any) -> bytes:
    paths = [p for p in _paths(body) if p and isinstance(_lookup(body, p[:-1]), dict)]
    if paths and rng.random() < 0.5:
        path = rng.choice(paths)
        parent = dict(_lookup(body, path[:-1]))
        del parent[path[-1]]
        return json.dumps(_replace(body, path[:-1], parent)).encode()
    objects = [p for p in _paths(body) if isinstance(_lookup(body, p), dict)]
    path = rng.choice(objects)
    extended = {**_lookup(body, path), rng.choice(("extra", "ID", "", " id", "\u00e9")): 1}
    return json.dumps(_replace(body, path, extended)).encode()


def _lookup(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _raw_leaf_swap(rng: random.Random, body: Any, raw_values: tuple[str, ...]) -> bytes:
    """Replace one value with raw JSON-ish text that ``json.dumps`` cannot produce."""
    marker = "\u0001MARK\u0001"
    path = rng.choice([p for p in _paths(body) if p])
    text = json.dumps(_replace(body, path, marker))
    return text.replace(json.dumps(marker), rng.choice(raw_values)).encode()


def _odd_unicode(rng: random.Random, body: Any) -> bytes:
    raw = (*(f'"{s}"' for s in ODD_STRINGS), '"\\u12"', '"\\x41"', '"\t"', '"\n"')
    data = _raw_leaf_swap(rng, body, raw)
    if rng.random() < 0.3:  # also a key
        data = data.replace(b'"content"', rng.choice((b'"\\ud800"', b'"c\\u006fntent"',
                                                      b'"content\\u0000"')), 1)
    if rng.random() < 0.2:  # raw invalid UTF-8 or NUL inside a string
        at = data.find(b'"', 1) + 1
        data = data[:at] + rng.choice((b"\xff", b"\xed\xa0\x80", b"\x00", b"\xc3")) + data[at:]
    return data


def _deep(rng: random.Random, body: Any) -> bytes:
    depth = rng.choice((31, 32, 33, 64, 1000, 20000))
    opener, closer = rng.choice((("[", "]"), ('{"a":', "}")))
    nested = opener * depth + "1" + closer * depth
    return _raw_leaf_swap(rng, body, (nested,))


def _duplicate_key(rng: random.Random, body: Any) -> bytes:
    text = json.dumps(body)
    key = rng.choice([k for k in body if isinstance(k, str)] or ["x"]) if isinstance(
        body, dict) else "x"
    return ("{" + json.dumps(key) + ":1," + text[1:]).encode() if text.startswith("{") else (
        text.encode())


def _boundary(rng: random.Random, body: Any) -> bytes:
    """A documented limit, exactly at or just past it: ids, sender id, timestamp."""
    numbers = (0, 1, 2**53 - 2, 2**53 - 1, 2**53, -1)
    strings = ("", "a", "a" * 128, "a" * 129, ".", "..", "~", "a-._~Z9")
    paths = [p for p in _paths(body) if p and p[-1] in (
        "timestamp", "user_id", "conversation_id", "id", "content")]
    if not paths:
        return json.dumps(body).encode()
    path = rng.choice(paths)
    value = rng.choice(numbers if path[-1] == "timestamp" else strings)
    return json.dumps(_replace(body, path, value)).encode()


def _bytes_edit(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        if not buf:
            break
        op = rng.randrange(4)
        at = rng.randrange(len(buf))
        if op == 0:
            buf[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            del buf[at]
        elif op == 2:
            buf.insert(at, rng.randrange(256))
        else:
            buf[at] = rng.choice(b'{}[]":,\\0\x00 ')
    return bytes(buf)


def mutate(rng: random.Random, body: Any) -> bytes:
    """One hostile variant of the valid ``body``."""
    kind = rng.randrange(13)
    data = json.dumps(body).encode()
    if kind == 0:
        return _bytes_edit(rng, data)
    if kind == 1:
        return data[: rng.randrange(len(data))]
    if kind == 2:
        return _type_swap(rng, body)
    if kind == 3:
        return _raw_leaf_swap(rng, body, HUGE_NUMBERS)
    if kind == 4:
        return _deep(rng, body)
    if kind == 5:
        return _odd_unicode(rng, body)
    if kind == 6:
        return _duplicate_key(rng, body)
    if kind == 7:
        return _drop_or_add_field(rng, body)
    if kind == 8:
        return rng.choice(RAW_JUNK)
    if kind == 9:
        return _raw_leaf_swap(rng, body, ("NaN", "Infinity", "-Infinity", "undefined", "nul",
                                          "tru", "01", "1.", ".5", "+1", "0x10", "1_000"))
    if kind == 11:
        return _boundary(rng, body)
    size = rng.choice((65_537, 70_000, 200_000))  # over a per-field limit (413)
    return _raw_leaf_swap(rng, body, (json.dumps("\u00e9" * (size // 2 + 1)),))


# --- request generation -------------------------------------------------------------------


def _message(user: str, conversation: str, **extra: Any) -> dict[str, Any]:
    return {"user_id": user, "conversation_id": conversation,
            "sender": {"id": "fuzzer", "name": "F", "role": "user"}, "content": "fuzz",
            "timestamp": 1_700_000_000_000, "metadata": {"n": 1, "tags": ["a"]}, **extra}


def _victim_routes() -> list[tuple[str, str]]:
    return [
        ("PATCH", f"/v1/messages/{VICTIM_IDS[0]}"),
        ("DELETE", f"/v1/messages/{VICTIM_IDS[1]}"),
        ("DELETE", f"/v1/users/{VICTIM_USER}/messages"),
        ("DELETE", f"/v1/conversations/{VICTIM_CONVERSATION}/messages"),
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages/batch"),
        ("POST", "/v1/admin/reindex"),
    ]


def body_requests(rng: random.Random, token: str, n: int) -> list[FuzzRequest]:
    scratch = [
        ("POST", "/v1/messages", _message(SCRATCH_USER, SCRATCH_CONVERSATION)),
        ("POST", "/v1/messages/batch", {"messages": [
            _message(SCRATCH_USER, SCRATCH_CONVERSATION),
            _message(SCRATCH_USER, SCRATCH_CONVERSATION, content="two")]}),
        ("PATCH", f"/v1/messages/{SCRATCH_MESSAGE}", {"content": "patched", "timestamp": 5,
                                                       "sender": {"id": "p"}}),
        ("POST", "/v1/admin/reindex", {"user_id": SCRATCH_USER}),
    ]
    victim_bodies = {
        "POST": _message(VICTIM_USER, VICTIM_CONVERSATION, id=VICTIM_IDS[2]),
        "PATCH": {"content": "changed"},
    }
    out: list[FuzzRequest] = []
    for i in range(n):
        if i % 3:  # valid credentials, scratch data: a mutant that happens to be valid is fine
            method, path, body = rng.choice(scratch)
            out.append(FuzzRequest("body", method, path, (
                *_auth("Bearer {t}", token), ("Content-Type", rng.choice(JSON_TYPES))),
                mutate(rng, body), must_fail=False))
            continue
        method, path = rng.choice([r for r in _victim_routes() if r[0] in ("POST", "PATCH")])
        base = victim_bodies[method] if path != "/v1/admin/reindex" else {"user_id": VICTIM_USER}
        if path == "/v1/messages/batch":
            base = {"messages": [victim_bodies["POST"]]}
        data = mutate(rng, base)
        how = rng.randrange(3)
        if how == 0:  # refused credentials
            headers = (*_auth(rng.choice(BAD_AUTH), token), ("Content-Type", JSON))
        elif how == 1:  # refused media type
            headers = (*_auth("Bearer {t}", token),
                       ("Content-Type", rng.choice(NON_JSON_TYPES).encode("latin-1")))
        else:  # made invalid on purpose: never parses as JSON
            headers = (*_auth("Bearer {t}", token), ("Content-Type", JSON))
            data = rng.choice((b"x", b"\xff", b"{{", b"\xef\xbb\xbf")) + data
        out.append(FuzzRequest("body", method, path, headers, data, must_fail=True))
    return out


def header_requests(rng: random.Random, token: str, n: int) -> list[FuzzRequest]:
    out: list[FuzzRequest] = []
    for i in range(n):
        extra: list[tuple[str, str | bytes]] = []
        if rng.random() < 0.3:
            extra.append(("Cf-Access-Jwt-Assertion", rng.choice((
                "x", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA", "", "\u00e9".encode())))
            )
        if rng.random() < 0.2:
            extra.append(("Origin", rng.choice(("https://evil.example", "null", "x"))))
        if i % 2:  # refused credentials against the victim's data
            method, path = rng.choice(_victim_routes())
            body = json.dumps({"messages": [_message(VICTIM_USER, VICTIM_CONVERSATION)]}
                              if path.endswith("/batch") else
                              {"user_id": VICTIM_USER} if path.endswith("/reindex") else
                              _message(VICTIM_USER, VICTIM_CONVERSATION)
                              if method == "POST" else {"content": "changed"}).encode()
            headers = (*_auth(rng.choice(BAD_AUTH), token),
                       ("Content-Type", rng.choice(JSON_TYPES + NON_JSON_TYPES)), *extra)
            out.append(FuzzRequest("header", method, path, tuple(headers), body, must_fail=True))
        elif i % 4 == 0:  # good credentials, a non-JSON type, a valid body: 415 on the victim
            headers = (*_auth(rng.choice(GOOD_AUTH), token),
                       ("Content-Type", rng.choice(NON_JSON_TYPES).encode("latin-1")), *extra)
            out.append(FuzzRequest("header", "PATCH", f"/v1/messages/{VICTIM_IDS[0]}",
                                   tuple(headers), b'{"content":"changed"}', must_fail=True))
        else:  # credential spellings that work, on scratch data
            headers = (*_auth(rng.choice(GOOD_AUTH), token),
                       ("Content-Type", rng.choice(JSON_TYPES + NON_JSON_TYPES)), *extra)
            body = json.dumps(_message(SCRATCH_USER, SCRATCH_CONVERSATION)).encode()
            out.append(FuzzRequest("header", "POST", "/v1/messages", tuple(headers), body,
                                   must_fail=False))
    return out


SEGMENTS = (
    "messages", "users", "conversations", "count", "batch", "admin", "reindex", "v1", "health",
    "openapi.json", ".", "..", "%2e", "%2E%2e", "%2F", "a%2Fb", "%00", "%ZZ", "%", "%C3%A9",
    "%FF", "%C3", "a%20b", "~", "-", "_", "a.b", "x" * 129, "y" * 2000, "z" * 9000, "", ";x", "a;b",
    "*", "%20", "+", "$", "%3F", "%23", "@", "!", "(", "'", "MESSAGES", "V1",
)


def path_requests(rng: random.Random, token: str, n: int) -> list[FuzzRequest]:
    out: list[FuzzRequest] = []
    methods = ("GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS")
    for i in range(n):
        method = rng.choice(methods)
        if i % 4 == 0:  # dot-segment and encoding tricks around the victim, refused credentials
            victim = rng.choice((
                f"/v1/users/{VICTIM_USER}/messages", f"/v1/messages/{VICTIM_IDS[1]}",
                f"/v1/conversations/{VICTIM_CONVERSATION}/messages",
            ))
            head, _, tail = victim.rpartition("/")
            path = rng.choice((
                f"{head}/./{tail}", f"{head}/x/../{tail}", f"/v1/x/..{victim[3:]}",
                f"{victim}/", f"/{victim}", "/" + victim[1:].replace("/", "%2F"), f"{victim}%2F",
                f"{head}/{tail}/.", f"{head}//{tail}", victim.upper(), victim,
            ))
            out.append(FuzzRequest("path", method, path, _auth(rng.choice(BAD_AUTH), token),
                                   b"", must_fail=True))
            continue
        if rng.random() < 0.5:
            segments = [rng.choice(SEGMENTS) for _ in range(rng.randrange(1, 6))]
            path = "/" + "/".join(segments)
        else:
            weird = rng.choice(SEGMENTS)
            path = rng.choice((
                f"/v1/messages/{weird}", f"/v1/users/{weird}/messages",
                f"/v1/users/{weird}/messages/count", f"/v1/conversations/{weird}/messages",
                f"/v1/conversations/{weird}/messages/count", f"/v1/{weird}",
                f"/v1/messages/{weird}/x",
            ))
        headers: tuple[tuple[str, str | bytes], ...] = _auth("Bearer {t}", token)
        body = b""
        if method in ("POST", "PATCH", "PUT"):
            headers = (*headers, ("Content-Type", JSON))
            body = json.dumps(_message(SCRATCH_USER, SCRATCH_CONVERSATION)).encode()
        out.append(FuzzRequest("path", method, path, headers, body, must_fail=False))
    return out


def query_requests(
    rng: random.Random, token: str, n: int, cursor: str
) -> list[FuzzRequest]:
    values = (
        "-1", "0", "1", "100", "101", "1.5", "1e3", "0x10", "+5", " 5", "5 ", "05", "", "%20",
        "99999999999999999", "9007199254740991", "9007199254740992", "\u0663".encode().hex(),
        "%D9%A3", "%C2%B2", "asc", "desc", "ASC", "random", "null", "true", "%00", "%FF",
        "a%26b", "%", "%zz", "1;2", "x" * 3000,
    )
    names = ("limit", "order", "start", "end", "cursor", "LIMIT", "offset", "page", "", "%6Cimit",
             "limit%00", "cursor[]", "start ", "a")
    tampered = [cursor, cursor[:-1], cursor + "A", cursor[::-1], cursor.upper(), "A" * 2000,
                cursor.replace("-", "+"), "%" + cursor, cursor[:10]]
    if len(cursor) > 4:
        flipped = list(cursor)
        flipped[len(cursor) // 2] = "A" if flipped[len(cursor) // 2] != "A" else "B"
        tampered.append("".join(flipped))
    out: list[FuzzRequest] = []
    for _ in range(n):
        base = rng.choice((f"/v1/users/{VICTIM_USER}/messages",
                           f"/v1/conversations/{VICTIM_CONVERSATION}/messages",
                           f"/v1/users/{VICTIM_USER}/messages/count",
                           f"/v1/conversations/{VICTIM_CONVERSATION}/messages/count"))
        pairs = []
        for _ in range(rng.randrange(1, 5)):
            name = rng.choice(names)
            if name == "cursor" and rng.random() < 0.7:
                value = quote(rng.choice(tampered), safe="%")
            else:
                value = rng.choice(values)
            pairs.append(rng.choice((f"{name}={value}", f"{name}", f"{name}={value}={value}")))
        separator = rng.choice(("&", "&", "&", ";", "&&"))
        query = separator.join(pairs).replace(" ", "%20")  # a raw space is not HTTP
        out.append(FuzzRequest("query", rng.choice(("GET", "GET", "HEAD")), f"{base}?{query}",
                               _auth("Bearer {t}", token), b"", must_fail=False))
    return out


# --- sending and judging ------------------------------------------------------------------


class Sender:
    """One keep-alive ``http.client`` connection per thread; reconnects after a failure."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=TIMEOUT_S)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def send(self, request: FuzzRequest) -> Outcome:
        last = ""
        for _ in range(2):  # a dropped keep-alive connection is retried once, fresh
            conn = self._connection()
            try:
                conn.putrequest(request.method, request.target, skip_accept_encoding=True)
                for name, value in request.headers:
                    conn.putheader(name, value)
                conn.putheader("Content-Length", str(len(request.body)))
                conn.endheaders(request.body)
                response = conn.getresponse()
                body = response.read()
                headers = {k.lower(): v for k, v in response.getheaders()}
                if response.will_close:
                    self._drop()
                return Outcome(request, response.status, headers, body)
            except (http.client.HTTPException, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                self._drop()
        return Outcome(request, 0, {}, b"", error=last)


def violations(outcome: Outcome) -> list[str]:
    request, status = outcome.request, outcome.status
    if status == 0:
        return [f"no response ({outcome.error[:120]})"]
    found: list[str] = []
    if status >= 500:
        found.append(f"server error {status}")
    if request.must_fail and status < 400:
        found.append(f"request on the victim's data succeeded with {status}")
    if status >= 400 and request.method != "HEAD":
        content_type = outcome.headers.get("content-type", "")
        if not content_type.startswith("application/problem+json"):
            found.append(f"{status} error with content type {content_type!r}")
        else:
            try:
                problem = json.loads(outcome.body)
            except ValueError:
                return [*found, f"{status} problem body is not JSON"]
            if not isinstance(problem, dict) or problem.get("code") not in CODES:
                found.append(f"{status} problem without a known code")
            elif problem.get("status") != status:
                found.append(f"{status} problem says status {problem.get('status')}")
    return found


def _clip(data: bytes, limit: int = 400) -> bytes:
    return data if len(data) <= limit else data[: limit // 2] + b" ... " + data[-limit // 2:]


def _describe(outcome: Outcome, why: str) -> str:
    r = outcome.request
    headers = {k: (v if isinstance(v, str) else v.decode("latin-1"))[:60] for k, v in r.headers}
    return (f"[{r.family}] {why}: {r.method} {r.target[:150]} headers={headers} "
            f"body={_clip(r.body)!r} -> {outcome.status} {_clip(outcome.body, 240)!r}")


# --- the test -----------------------------------------------------------------------------


def _snapshot(client: httpx.Client) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for scope in (f"users/{VICTIM_USER}", f"conversations/{VICTIM_CONVERSATION}"):
        for order in ("asc", "desc"):
            listing = client.get(f"/v1/{scope}/messages", params={"limit": 100, "order": order})
            assert listing.status_code == 200, listing.text
            state[f"{scope} {order}"] = listing.json()
        count = client.get(f"/v1/{scope}/messages/count")
        assert count.status_code == 200, count.text
        state[f"{scope} count"] = count.json()
    for message_id in VICTIM_IDS:
        got = client.get(f"/v1/messages/{message_id}")
        assert got.status_code == 200, got.text
        state[message_id] = got.json()
    return state


def _seed(client: httpx.Client) -> str:
    """Victim and scratch data; returns a real cursor (for tampering) from the victim."""
    for index, message_id in enumerate(VICTIM_IDS):
        created = client.post("/v1/messages", json=_message(
            VICTIM_USER, VICTIM_CONVERSATION, id=message_id, content=f"victim-{index}",
            timestamp=1_600_000_000_000 + index))
        assert created.status_code in (200, 201), created.text
    created = client.post("/v1/messages", json=_message(
        SCRATCH_USER, SCRATCH_CONVERSATION, id=SCRATCH_MESSAGE))
    assert created.status_code in (200, 201), created.text
    page = client.get(f"/v1/users/{VICTIM_USER}/messages", params={"limit": 1})
    assert page.status_code == 200, page.text
    cursor: str = page.json()["next_cursor"]
    assert cursor
    return cursor


def generate(token: str, cursor: str) -> list[FuzzRequest]:
    rng = random.Random(SEED)
    families: dict[str, Callable[[int], list[FuzzRequest]]] = {
        "body": lambda n: body_requests(rng, token, n),
        "header": lambda n: header_requests(rng, token, n),
        "path": lambda n: path_requests(rng, token, n),
        "query": lambda n: query_requests(rng, token, n, cursor),
    }
    requests = [r for family, make in families.items() for r in make(COUNTS[family])]
    rng.shuffle(requests)
    return requests


def test_generation_is_deterministic() -> None:
    assert generate("t", "abcdefgh") == generate("t", "abcdefgh")
    assert len(generate("t", "abcdefgh")) == TOTAL


def test_fuzzing_breaks_nothing_and_changes_nothing(
    worker: LocalWorker, client: httpx.Client, api_token: str
) -> None:
    cursor = _seed(client)
    before = _snapshot(client)
    requests = generate(api_token, cursor)
    sender = Sender(worker.base_url)
    started = time.monotonic()

    def run(request: FuzzRequest) -> Outcome | None:
        if time.monotonic() - started > DEADLINE_S:
            return None
        return sender.send(request)

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(run, requests))
    elapsed = time.monotonic() - started
    sent = [o for o in outcomes if o is not None]

    found = [(o, why) for o in sent for why in violations(o)]
    after = _snapshot(client)
    statuses = Counter(o.status for o in sent)
    summary = Counter(why for _, why in found)
    report = "\n".join(
        [f"{len(sent)}/{len(requests)} requests in {elapsed:.1f}s; statuses {dict(statuses)}",
         f"violations by kind: {dict(summary)}"]
        + [_describe(o, why) for o, why in found[:25]]
    )
    print(report)  # shown with -s or -rA: what was sent and what came back
    assert not found, report
    assert after == before, "the victim's data changed:\n" + report
    if len(sent) < len(requests):
        pytest.fail(f"deadline of {DEADLINE_S:.0f}s reached: {report}")
