"""clients/typescript against the real Worker, in both of its modes.

* baseUrl mode: ``clients/typescript/test/smoke.ts`` (compiled by the pinned tsc, run by Node
  with its global fetch) exercises every operation against the session worker and asserts the
  answers itself; this test then checks, with plain HTTP, that the store holds what the script
  says it left.
* binding mode: ``examples/service-binding`` (a TypeScript Worker bundling the client's source)
  runs as a second ``wrangler dev`` sharing the dev registry, and its routes drive the client
  through ``env.CHAT_STORE``: iterators over several pages, counts, export, a conversation, the
  user's conversation list, context, truncation, erase and typed errors. Each answer is compared
  with what the API itself answers over HTTP.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.worker_harness import REPO_ROOT, LocalWorker

CLIENT_DIR = REPO_ROOT / "clients" / "typescript"
EXAMPLE_CONFIG = REPO_ROOT / "examples" / "service-binding" / "wrangler.toml"
TSC = REPO_ROOT / "node_modules" / ".bin" / "tsc"
BASE_TIME = 1_732_700_000_000  # explicit timestamps: listing order is known in advance


@pytest.fixture(scope="module")
def client_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client, its tests and the smoke script compiled to ES modules in a temp dir."""
    out = tmp_path_factory.mktemp("ts-client")
    done = subprocess.run(
        [str(TSC), "-p", str(CLIENT_DIR / "tsconfig.test.json"), "--outDir", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (out / "package.json").write_text('{"type": "module"}\n')
    return out


@pytest.fixture(scope="module")
def example(worker: LocalWorker, api_token: str) -> Iterator[LocalWorker]:
    w = worker.sibling(config=EXAMPLE_CONFIG, vars={"CHAT_STORE_TOKEN": api_token})
    with w:
        yield w


@pytest.fixture
def call(example: LocalWorker) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=example.base_url, timeout=60) as c:
        yield c


def seed(
    call: httpx.Client,
    user: str,
    count: int,
    start: int,
    conversation: str | None = None,
) -> list[str]:
    body: dict[str, Any] = {"user_id": user, "count": count, "start": start}
    if conversation is not None:
        body["conversation_id"] = conversation
    reply = call.post("/seed", json=body)
    assert reply.status_code == 201, reply.text
    ids: list[str] = reply.json()["ids"]
    assert len(ids) == count
    return ids


def listed_ids(client: httpx.Client, path: str, **query: str | int) -> list[str]:
    """Every id of a listing, straight from the API (the reference the example is held to)."""
    ids: list[str] = []
    params: dict[str, str | int] = {"limit": 100, **query}
    while True:
        reply = client.get(path, params=params)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        key = "conversations" if "conversations" in page else "messages"
        ids += [item["id"] for item in page[key]]
        if page["next_cursor"] is None:
            return ids
        params["cursor"] = page["next_cursor"]


# -- baseUrl mode -------------------------------------------------------------------------------


def test_node_script_over_http(
    worker: LocalWorker, api_token: str, client_build: Path, client: httpx.Client, unique_id: str
) -> None:
    conversation = f"{unique_id}-c"
    done = subprocess.run(
        ["node", str(client_build / "test" / "smoke.js"), unique_id, conversation],
        env={**os.environ, "CHAT_STORE_URL": worker.base_url, "CHAT_STORE_TOKEN": api_token},
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    created, batch = summary["created"], summary["batch"]

    # The client made the ids (26-character ULIDs, increasing in batch order).
    assert len(created) == 26
    assert [len(i) for i in batch] == [26] * 7
    assert sorted(batch) == batch

    # What the script left: the first message and turns 1-4 (turn 0 deleted, 5-6 truncated).
    expected = [created, *batch[1:5]]
    assert summary["remaining"] == expected
    assert listed_ids(client, f"/v1/users/{unique_id}/messages", order="asc") == expected
    in_conversation = listed_ids(client, f"/v1/conversations/{conversation}/messages", order="asc")
    assert in_conversation == batch[1:5]
    edited = client.get(f"/v1/messages/{batch[1]}").json()["message"]
    assert edited["content"] == "turn 1, edited"
    assert "edited_at" in edited
    assert client.get(f"/v1/messages/{batch[0]}").status_code == 404
    stored = client.get(f"/v1/conversations/{conversation}").json()["conversation"]
    assert stored["title"] == summary["title"] == "Smoke test"
    assert stored["message_count"] == 4
    erased = client.get(f"/v1/users/{summary['erased_user']}/messages/count").json()
    assert erased == {"count": 0}


# -- binding mode -------------------------------------------------------------------------------


def test_iterators_count_and_export_through_binding(
    call: httpx.Client, client: httpx.Client, unique_id: str
) -> None:
    ids = seed(call, unique_id, 8, BASE_TIME)

    reply = call.get(f"/users/{unique_id}/messages", params={"page_size": 3})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    reference = listed_ids(client, f"/v1/users/{unique_id}/messages")
    assert reference == ids[::-1]  # newest first
    assert body["ids"] == reference
    assert body["count"] == 8
    assert body["pages"] == 3  # 3 + 3 + 2

    reply = call.get(f"/users/{unique_id}/messages", params={"page_size": 5, "order": "asc"})
    assert reply.json()["ids"] == ids
    assert reply.json()["pages"] == 2

    reply = call.get(f"/users/{unique_id}/export", params={"limit": 3})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"ids": ids, "pages": 3}


def test_conversation_context_and_truncate_through_binding(
    call: httpx.Client, client: httpx.Client, unique_id: str
) -> None:
    conversation = f"{unique_id}-c"
    ids = seed(call, unique_id, 5, BASE_TIME, conversation)

    reply = call.patch(f"/conversations/{conversation}", json={"title": "Through a binding"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["conversation"]["title"] == "Through a binding"

    reply = call.get(f"/conversations/{conversation}", params={"page_size": 2})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (
        body["ids"]
        == ids
        == listed_ids(client, f"/v1/conversations/{conversation}/messages", order="asc")
    )
    assert body["pages"] == 3  # 2 + 2 + 1
    assert body["count"] == 5
    assert (
        body["conversation"]
        == client.get(f"/v1/conversations/{conversation}").json()["conversation"]
    )
    assert body["conversation"]["message_count"] == 5
    assert body["conversation"]["last_message"]["id"] == ids[-1]

    reply = call.get(f"/messages/{ids[2]}/context", params={"before": 1, "after": 1})
    assert reply.status_code == 200, reply.text
    context = reply.json()
    assert [m["id"] for m in context["before"]] == [ids[1]]
    assert context["message"]["id"] == ids[2]
    assert [m["id"] for m in context["after"]] == [ids[3]]

    reply = call.delete(f"/conversations/{conversation}/messages", params={"after": ids[1]})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"deleted": 3, "remaining": 0}
    assert listed_ids(client, f"/v1/conversations/{conversation}/messages", order="asc") == ids[:2]


def test_user_conversations_through_binding(
    call: httpx.Client, client: httpx.Client, unique_id: str
) -> None:
    # Three conversations; the last seeded has the newest activity.
    conversations = [f"{unique_id}-c{i}" for i in range(3)]
    for i, conversation in enumerate(conversations):
        seed(call, unique_id, 2, BASE_TIME + 10 * i, conversation)

    reply = call.get(f"/users/{unique_id}/conversations", params={"page_size": 2})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    reference = listed_ids(client, f"/v1/users/{unique_id}/conversations")
    assert reference == conversations[::-1]
    assert body["ids"] == reference
    assert body["pages"] == math.ceil(3 / 2)
    first = body["first_page"]
    assert [c["id"] for c in first["conversations"]] == reference[:2]
    assert isinstance(first["next_cursor"], str)


def test_typed_errors_through_binding(call: httpx.Client, unique_id: str) -> None:
    missing = f"{unique_id}-missing"
    reply = call.get(f"/messages/{missing}")
    assert reply.status_code == 404, reply.text
    error = reply.json()["error"]
    assert error["name"] == "NotFound"
    assert error["code"] == "not_found"
    assert error["status"] == 404
    assert error["problem"]["status"] == 404
    assert error["problem"]["instance"] == f"/v1/messages/{missing}"

    # page_size goes to the API as `limit`; 1000 is over its maximum.
    reply = call.get(f"/users/{unique_id}/messages", params={"page_size": 1000})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["name"] == "ValidationError"
    assert reply.json()["error"]["problem"]["code"] == "validation_error"


def test_erase_user_through_binding(
    call: httpx.Client, client: httpx.Client, unique_id: str
) -> None:
    seed(call, unique_id, 4, BASE_TIME)
    seed(call, unique_id, 3, BASE_TIME + 100, f"{unique_id}-c")
    reply = call.delete(f"/users/{unique_id}")
    assert reply.status_code == 200, reply.text
    assert reply.json()["deleted"] == 7
    assert reply.json()["remaining"] == 0
    assert reply.json()["requests"] >= 1
    assert client.get(f"/v1/users/{unique_id}/messages/count").json() == {"count": 0}
    assert client.get(f"/v1/conversations/{unique_id}-c/messages/count").json() == {"count": 0}


def test_roundtrip_reports_the_create_status(call: httpx.Client, unique_id: str) -> None:
    reply = call.post("/roundtrip", json={"user_id": unique_id, "content": "typed ✓"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["created"]["status"] == 201
    assert body["latest"]["status"] == 200
    message = body["created"]["body"]["message"]
    assert message["content"] == "typed ✓"
    assert [m["id"] for m in body["latest"]["body"]["messages"]] == [message["id"]]
