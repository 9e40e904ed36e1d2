"""Racing requests: no write may be lost from listings, counts or the stored index arrays.

KV has no atomic update; the index journals every mutation under a unique key and folds the
journal into the root array later, so concurrent appends and deletes must all be visible at
once through the API and must all reach the arrays eventually.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest

from support.chat_support import (
    Expected,
    Message,
    body,
    converged_index,
    converged_indexes,
    count,
    index_entries,
    list_all,
    messages_path,
    ordered,
)
from support.worker_harness import LocalWorker

PARALLEL = 100
THREADS = 32
CONVERGE_S = 20.0
T = TypeVar("T")


@pytest.fixture
def pool(worker: LocalWorker, api_token: str) -> Iterator[Callable[..., list[Any]]]:
    """Run a function over items on THREADS threads sharing one connection pool."""
    limits = httpx.Limits(max_connections=THREADS, max_keepalive_connections=THREADS)
    with (
        httpx.Client(base_url=worker.base_url, timeout=120, limits=limits,
                     headers={"Authorization": f"Bearer {api_token}"}) as http,
        ThreadPoolExecutor(THREADS) as executor,
    ):
        def run(fn: Callable[[httpx.Client, Any], T], items: list[Any]) -> list[T]:
            return list(executor.map(lambda item: fn(http, item), items))

        yield run


def unexpected(responses: list[httpx.Response], status: int) -> list[str]:
    """Up to 5 answers that are not ``status``, for the failure message."""
    return [f"{r.request.method} {r.request.url.path} -> {r.status_code} {r.text[:300]}"
            for r in responses if r.status_code != status][:5]


def post(http: httpx.Client, payload: dict[str, Any]) -> httpx.Response:
    return http.post("/v1/messages", json=payload)


def test_parallel_appends_for_one_user_are_all_listed(
    worker: LocalWorker, client: httpx.Client, unique_id: str,
    pool: Callable[..., list[httpx.Response]],
) -> None:
    rng = random.Random(unique_id)
    payloads = [body(unique_id, f"m{i}", timestamp=rng.randrange(1_000, 1_020))
                for i in range(PARALLEL)]  # many ties
    payloads[::10] = [body(unique_id, f"srv{i}") for i in range(10)]  # server timestamps
    responses = pool(post, payloads)
    assert [r.status_code for r in responses] == [201] * PARALLEL, unexpected(responses, 201)
    live: list[Message] = [r.json()["message"] for r in responses]
    assert len({m["id"] for m in live}) == PARALLEL

    path = messages_path("users", unique_id)
    assert count(client, path) == PARALLEL
    assert list_all(client, path, order="asc", limit=30) == ordered(live, "asc")
    assert list_all(client, path, order="desc", limit=100) == ordered(live, "desc")
    expected = index_entries(live)
    actual = converged_index(worker, client, f"user:chat:{unique_id}", expected, trigger=path,
                             timeout=CONVERGE_S)
    assert actual == expected


def test_parallel_appends_and_deletes_across_conversations(
    worker: LocalWorker, client: httpx.Client, unique_id: str,
    pool: Callable[..., list[tuple[httpx.Response, httpx.Response | None]]],
) -> None:
    rng = random.Random(unique_id)
    users = [f"{unique_id}-u{k}" for k in range(2)]
    conversations = [f"{unique_id}-c{k}" for k in range(4)]
    payloads = [
        body(users[i % 2], f"m{i}", id=f"{unique_id}-{i:03d}",
             conversation_id=conversations[i % 4], timestamp=rng.randrange(0, 50))
        for i in range(PARALLEL)
    ]
    doomed = set(rng.sample(range(PARALLEL), 30))

    def append_then_maybe_delete(
        http: httpx.Client, i: int
    ) -> tuple[httpx.Response, httpx.Response | None]:
        # Deletes race with the appends still in flight on the other threads.
        created = post(http, payloads[i])
        deleted = None
        if i in doomed and created.status_code == 201:
            deleted = http.delete(f"/v1/messages/{created.json()['message']['id']}")
        return created, deleted

    results = pool(append_then_maybe_delete, list(range(PARALLEL)))
    assert [c.status_code for c, _ in results] == [201] * PARALLEL, unexpected(
        [c for c, _ in results], 201)
    deletes = [d for _, d in results if d is not None]
    assert [d.status_code for d in deletes] == [204] * len(doomed), unexpected(deletes, 204)
    live = [c.json()["message"] for i, (c, _) in enumerate(results) if i not in doomed]

    scopes = {
        **{("users", u): [m for m in live if m["user_id"] == u] for u in users},
        **{("conversations", c): [m for m in live if m["conversation_id"] == c]
           for c in conversations},
    }
    for (kind, scope_id), messages in scopes.items():
        path = messages_path(kind, scope_id)
        assert count(client, path) == len(messages), path
        assert count(client, path, start=10, end=30) == len(
            [m for m in messages if 10 <= m["timestamp"] <= 30]), path
        assert list_all(client, path, order="asc", limit=9) == ordered(messages, "asc"), path
        assert list_all(client, path, order="desc") == ordered(messages, "desc"), path
    for i in sorted(doomed):
        assert client.get(f"/v1/messages/{unique_id}-{i:03d}").status_code == 404
    expected: Expected = {
        f"{'user' if kind == 'users' else 'conversation'}:chat:{scope_id}": (
            index_entries(messages), messages_path(kind, scope_id))
        for (kind, scope_id), messages in scopes.items()
    }
    actual = converged_indexes(worker, client, expected, timeout=CONVERGE_S)
    assert actual == {key: array for key, (array, _) in expected.items()}
