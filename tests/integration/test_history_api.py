"""Context and export through the Worker: the README's export loop (curl, run as documented)
takes a history of more than one export page to a file, each message once, oldest first."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import httpx

from support.chat_support import body
from support.worker_harness import REPO_ROOT, LocalWorker


def readme_export_loop() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    found = re.search(r"\*\*Export a whole history to a file\*\*.*?```sh\n(.*?)\n```", text,
                      re.DOTALL)
    assert found is not None, "the README's export loop is gone"
    return found.group(1)


def test_the_readme_export_loop_takes_a_whole_history(
    client: httpx.Client, worker: LocalWorker, api_token: str, unique_id: str, tmp_path: Path
) -> None:
    messages = [body(unique_id, f"line {n}\nwith a newline ✓", id=f"{unique_id}-{n:04d}",
                     timestamp=1_000 + n) for n in range(650)]
    for first in range(0, len(messages), 100):
        reply = client.post("/v1/messages/batch", json={"messages": messages[first:first + 100]})
        assert reply.status_code == 201, reply.text
    done = subprocess.run(
        ["bash", "-c", readme_export_loop()], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "URL": worker.base_url, "TOKEN": api_token, "CHAT_USER": unique_id},
        timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "history.ndjson").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [m["id"] for m in messages]
    assert json.loads(lines[0])["content"] == "line 0\nwith a newline ✓"


def test_context_through_the_worker(client: httpx.Client, unique_id: str) -> None:
    conversation = f"{unique_id}-c"
    for n in range(6):
        reply = client.post("/v1/messages", json=body(
            unique_id, f"m{n}", id=f"{unique_id}-{n}", conversation_id=conversation,
            timestamp=100 + n // 2))  # ties, ordered by id
        assert reply.status_code == 201, reply.text
    reply = client.get(f"/v1/messages/{unique_id}-3/context", params={"before": 2, "after": 1})
    assert reply.status_code == 200, reply.text
    found = reply.json()
    assert [m["id"] for m in found["before"]] == [f"{unique_id}-1", f"{unique_id}-2"]
    assert [m["id"] for m in found["after"]] == [f"{unique_id}-4"]
    older = client.get(f"/v1/conversations/{conversation}/messages",
                       params={"order": "desc", "cursor": found["before_cursor"]})
    assert [m["id"] for m in older.json()["messages"]] == [f"{unique_id}-0"]
    newer = client.get(f"/v1/conversations/{conversation}/messages",
                       params={"order": "asc", "cursor": found["after_cursor"]})
    assert [m["id"] for m in newer.json()["messages"]] == [f"{unique_id}-5"]


def test_truncate_through_the_worker(client: httpx.Client, unique_id: str) -> None:
    conversation = f"{unique_id}-c"
    for n in range(5):
        reply = client.post("/v1/messages", json=body(
            unique_id, f"m{n}", id=f"{unique_id}-{n}", conversation_id=conversation,
            timestamp=100 + n))
        assert reply.status_code == 201, reply.text
    reply = client.delete(f"/v1/conversations/{conversation}/messages",
                          params={"after": f"{unique_id}-1"})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"deleted": 3, "remaining": 0}
    listed = client.get(f"/v1/conversations/{conversation}/messages", params={"order": "asc"})
    assert [m["id"] for m in listed.json()["messages"]] == [f"{unique_id}-0", f"{unique_id}-1"]
    assert client.get(f"/v1/users/{unique_id}/messages/count").json() == {"count": 2}
    missing = client.delete(f"/v1/conversations/{conversation}/messages",
                            params={"after": f"{unique_id}-4"})
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
