"""Shared helpers for the integration tests: request builders, a listing model, KV polling.

The model is deliberately independent of ``src/``: an index is the set of live messages ordered
by ``(timestamp, "chat:" + id)``, which is what the API promises (ties broken by member bytes;
for the ASCII id grammar Python's ``str`` order is byte order).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from support.worker_harness import LocalWorker

Message = dict[str, Any]
Position = tuple[int, str]
T = TypeVar("T")

ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PROBLEM_FIELDS = ("type", "title", "status", "detail", "code")
MAX_PAGES = 200  # a listing that needs more pages than this is looping
KV_READERS = 2  # wrangler processes reading KV at once (the machine has 2 cores)


def ulid_ms(ulid: str) -> int:
    """The millisecond timestamp in the first 10 characters of a ULID."""
    value = 0
    for ch in ulid[:10]:
        value = value * 32 + CROCKFORD.index(ch)
    return value


def body(
    user_id: str,
    content: str = "hello",
    *,
    id: str | None = None,
    conversation_id: str | None = None,
    timestamp: int | None = None,
    sender: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A create request body; only the given optional fields are sent."""
    out: dict[str, Any] = {
        "user_id": user_id,
        "sender": dict(sender) if sender is not None else {"id": f"sender-{user_id}"},
        "content": content,
    }
    optional = {
        "id": id,
        "conversation_id": conversation_id,
        "timestamp": timestamp,
        "metadata": dict(metadata) if metadata is not None else None,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    return out


def create(client: httpx.Client, payload: Mapping[str, Any]) -> Message:
    response = client.post("/v1/messages", json=dict(payload))
    assert response.status_code == 201, response.text
    message: Message = response.json()["message"]
    return message


def create_batch(client: httpx.Client, payloads: Iterable[Mapping[str, Any]]) -> list[Message]:
    response = client.post("/v1/messages/batch", json={"messages": [dict(p) for p in payloads]})
    assert response.status_code == 201, response.text
    messages: list[Message] = response.json()["messages"]
    return messages


def messages_path(kind: str, scope_id: str) -> str:
    """The URL path of a scope's messages: ``("users", "u1")`` -> ``"/v1/users/u1/messages"``
    (``kind`` is "users" or "conversations", as in the URL)."""
    return f"/v1/{kind}/{scope_id}/messages"


def position(message: Mapping[str, Any]) -> Position:
    return (message["timestamp"], f"chat:{message['id']}")


def ordered(messages: Iterable[Message], order: str = "asc") -> list[Message]:
    return sorted(messages, key=position, reverse=order == "desc")


def in_range(messages: Iterable[Message], start: int | None, end: int | None) -> list[Message]:
    return [
        m for m in messages
        if (start is None or m["timestamp"] >= start) and (end is None or m["timestamp"] <= end)
    ]


def ids(messages: Iterable[Mapping[str, Any]]) -> list[str]:
    return [m["id"] for m in messages]


def page(
    client: httpx.Client, path: str, **params: str | int | None
) -> tuple[list[Message], str | None]:
    response = client.get(path, params={k: v for k, v in params.items() if v is not None})
    assert response.status_code == 200, response.text
    data = response.json()
    return data["messages"], data["next_cursor"]


def list_all(
    client: httpx.Client,
    path: str,
    *,
    order: str | None = None,
    limit: int | None = None,
    start: int | None = None,
    end: int | None = None,
) -> list[Message]:
    """Every message of a listing, following ``next_cursor`` to the end."""
    found: list[Message] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        messages, cursor = page(client, path, order=order, limit=limit, start=start, end=end,
                                cursor=cursor)
        if limit is not None:
            assert len(messages) <= limit
        found.extend(messages)
        if cursor is None:
            return found
    raise AssertionError(f"{path}: more than {MAX_PAGES} pages")


def count(
    client: httpx.Client, path: str, *, start: int | None = None, end: int | None = None
) -> int:
    params = {k: v for k, v in {"start": start, "end": end}.items() if v is not None}
    response = client.get(f"{path}/count", params=params)
    assert response.status_code == 200, response.text
    value: int = response.json()["count"]
    return value


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 problem document with the given status and code; returns its body."""
    assert response.status_code == status, (response.status_code, response.text)
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    assert media_type == "application/problem+json", response.headers
    problem: dict[str, Any] = response.json()
    for field in PROBLEM_FIELDS:
        assert field in problem, (field, problem)
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"].endswith(code)
    assert isinstance(problem["title"], str) and problem["title"]
    assert isinstance(problem["detail"], str) and problem["detail"]
    assert_no_internals(response)
    return problem


def assert_no_internals(response: httpx.Response) -> None:
    assert "Traceback" not in response.text, response.text
    assert 'File "' not in response.text, response.text


def index_entries(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """The seed-format array an index must hold for these live messages."""
    return [{"score": s, "member": m} for s, m in sorted(position(msg) for msg in messages)]


def read_index(worker: LocalWorker, key: str) -> list[dict[str, Any]] | None:
    raw = worker.kv_get(key)
    value: list[dict[str, Any]] | None = None if raw is None else json.loads(raw)
    return value


def kv_get_many(worker: LocalWorker, keys: Iterable[str]) -> dict[str, str | None]:
    """Several ``kv_get`` at once: each is a wrangler process, so two run side by side."""
    keys = list(keys)
    with ThreadPoolExecutor(KV_READERS) as pool:
        return dict(zip(keys, pool.map(worker.kv_get, keys), strict=True))


def stored_index(worker: LocalWorker, key: str) -> list[dict[str, Any]] | None:
    """Every entry an index holds in KV, oldest first: the segments its root's manifest names
    (past the head's 128 entries) followed by the head array itself; None if there is no root."""
    listed = [k for k in worker.kv_list_keys(key) if k["name"] == key]
    head = worker.kv_get(key)
    if not listed or head is None:
        return None
    entries: list[dict[str, Any]] = []
    manifest_key = (listed[0].get("metadata") or {}).get("m")
    if manifest_key is not None:
        manifest = json.loads(worker.kv_get(manifest_key) or "null")
        segments = kv_get_many(worker, [segment[0] for segment in manifest["segments"]])
        for segment in manifest["segments"]:
            entries += json.loads(segments[segment[0]] or "null")
    head_entries: list[dict[str, Any]] = json.loads(head)
    return entries + head_entries


def stored_indexes(
    worker: LocalWorker, keys: Iterable[str]
) -> dict[str, list[dict[str, Any]] | None]:
    keys = list(keys)
    with ThreadPoolExecutor(KV_READERS) as pool:
        return dict(zip(keys, pool.map(lambda key: stored_index(worker, key), keys), strict=True))


def poll(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float, interval: float = 0.5
) -> T:
    """Call ``probe`` until ``done(result)`` or ``timeout`` seconds; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result) or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


Expected = dict[str, tuple[list[dict[str, Any]], str]]  # index key -> (array, listing path)


def converged_indexes(
    worker: LocalWorker, client: httpx.Client, expected: Expected, *, timeout: float = 10.0
) -> dict[str, list[dict[str, Any]] | None]:
    """Poll the indexes in KV (head and segments, see ``stored_index``) until each holds its
    expected array; each round GETs the listing of every index not there yet first (a read
    schedules compaction of an index with unfolded journal entries). Returns the last value read
    for every key."""
    actual: dict[str, list[dict[str, Any]] | None] = {}

    def pending() -> list[str]:
        return [k for k, (array, _) in expected.items() if k not in actual or actual[k] != array]

    def probe() -> list[str]:
        keys = pending()
        for key in keys:
            assert client.get(expected[key][1]).status_code == 200
        actual.update(stored_indexes(worker, keys))
        return pending()

    poll(probe, lambda left: not left, timeout=timeout)
    return actual


def converged_index(
    worker: LocalWorker,
    client: httpx.Client,
    key: str,
    expected: list[dict[str, Any]],
    *,
    trigger: str,
    timeout: float = 10.0,
) -> list[dict[str, Any]] | None:
    """``converged_indexes`` for one index key."""
    return converged_indexes(worker, client, {key: (expected, trigger)}, timeout=timeout)[key]
