"""examples/service-binding: a JS Worker reaches chat-store through a service binding.

The example runs as a second `wrangler dev` process sharing the session worker's dev registry
(that is how wrangler 3.91 connects service bindings locally) and its KV state.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from support.worker_harness import REPO_ROOT, LocalWorker

EXAMPLE_CONFIG = REPO_ROOT / "examples" / "service-binding" / "wrangler.toml"


@pytest.fixture(scope="module")
def example_client(worker: LocalWorker, api_token: str) -> Iterator[LocalWorker]:
    w = worker.sibling(config=EXAMPLE_CONFIG, vars={"CHAT_STORE_TOKEN": api_token})
    with w:
        yield w


def test_roundtrip_through_binding(example_client: LocalWorker, unique_id: str) -> None:
    content = "hello through a service binding ✓"
    response = httpx.post(
        example_client.base_url + "/roundtrip",
        json={"user_id": unique_id, "content": content},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()

    assert body["created"]["status"] == 201, body
    created = body["created"]["body"]["message"]
    assert created["user_id"] == unique_id
    assert created["content"] == content

    assert body["latest"]["status"] == 200, body
    [latest] = body["latest"]["body"]["messages"]
    assert latest["id"] == created["id"]
    assert latest["content"] == content
