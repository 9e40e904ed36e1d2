"""The harness itself: the real Worker starts under wrangler dev, and KV can be inspected."""

from __future__ import annotations

import httpx

from support.worker_harness import LocalWorker


def test_health_answers_200(anon_client: httpx.Client) -> None:
    response = anon_client.get("/health")
    assert response.status_code == 200, response.text


def test_kv_is_readable_from_outside(
    worker: LocalWorker, client: httpx.Client, unique_id: str
) -> None:
    assert worker.kv_get(f"no-such-key-{unique_id}") is None
    created = client.post(
        "/v1/messages",
        json={"user_id": unique_id, "sender": {"id": unique_id}, "content": "stored"},
    )
    assert created.status_code == 201, created.text
    # Layout-agnostic: whatever keys the store wrote, they are listed and readable.
    keys = worker.kv_list()
    assert keys
    assert any(worker.kv_get(key) is not None for key in keys[:5])
