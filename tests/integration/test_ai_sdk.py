"""examples/ai-sdk: AI SDK ``UIMessage``s of every part type round-trip through the Worker.

The script (Node, the real ``ai`` package pinned in the lockfile) stores a conversation, loads
it back, maps it to ``UIMessage``s and checks them with the SDK's ``validateUIMessages`` and a
deep equality against the originals; this test runs it and looks at what the Worker stored.
"""

from __future__ import annotations

import json
import os
import subprocess

import httpx

from support.worker_harness import REPO_ROOT, LocalWorker

SCRIPT = REPO_ROOT / "examples" / "ai-sdk" / "roundtrip.mjs"


def test_ui_messages_round_trip_through_the_worker(
    worker: LocalWorker, api_token: str, unique_id: str
) -> None:
    conversation = f"{unique_id}-c"
    done = subprocess.run(
        ["node", str(SCRIPT), unique_id, conversation],
        env={**os.environ, "CHAT_STORE_URL": worker.base_url, "CHAT_STORE_TOKEN": api_token},
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"ok": True, "messages": 3}

    reply = httpx.get(f"{worker.base_url}/v1/messages/{conversation}-2",
                      headers={"Authorization": f"Bearer {api_token}"}, timeout=30)
    assert reply.status_code == 200, reply.text
    stored = reply.json()["message"]
    assert stored["sender"] == {"id": "assistant", "role": "assistant"}
    assert [p["type"] for p in stored["parts"]] == [
        "step-start", "reasoning", "tool-weather", "step-start", "source-url", "data-weather",
        "text"]
    assert stored["content"] == "It is 21 °C and clear in Paris ☀️."
