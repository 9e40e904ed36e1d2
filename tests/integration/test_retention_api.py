"""Retention under the real runtime: a sibling of the session worker (same KV) with a retention
of 90 seconds (``RETENTION_DAYS`` is a decimal) and tiny index bounds, so that segments exist.

Messages whose timestamps age out a few seconds into the test leave the listing, the count, the
export and the conversation list at once; the index sweeps drop their entries; KV itself deletes
their records once the expiration the store gave them passes (KV's minimum is 60 s ahead); the
messages written at "now" stay throughout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from support.chat_support import (
    assert_problem,
    body,
    count,
    create_batch,
    list_all,
    messages_path,
    poll,
    stored_index,
)
from support.worker_harness import LocalWorker

RETENTION_S = 90
DAY_S = 86_400


@pytest.fixture(scope="module")
def kept_worker(worker: LocalWorker, api_token: str) -> Iterator[LocalWorker]:
    w = worker.sibling(vars={
        "API_TOKEN": api_token,
        "AUTH_DISABLED": "false",
        "RETENTION_DAYS": f"{RETENTION_S / DAY_S:.12f}",
        "INDEX_HEAD_MAX": "4",
        "INDEX_HEAD_KEEP": "2",
        "INDEX_SEGMENT_MAX": "4",
        "JOURNAL_SETTLE_MS": "1000",
    })
    with w:
        yield w


@pytest.fixture
def kept(kept_worker: LocalWorker, api_token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=kept_worker.base_url, timeout=60,
                      headers={"Authorization": f"Bearer {api_token}"}) as c:
        yield c


def test_a_create_older_than_the_retention_is_422_and_stores_nothing(
    kept: httpx.Client, kept_worker: LocalWorker, unique_id: str
) -> None:
    late = int(time.time() * 1000) - RETENTION_S * 1000 - 5_000
    response = kept.post("/v1/messages", json=body(unique_id, id=f"{unique_id}-late",
                                                   timestamp=late))
    assert_problem(response, 422, "retention_expired")
    assert kept_worker.kv_get(f"chat:{unique_id}-late") is None


def test_messages_age_out_of_every_read_and_of_kv_while_newer_ones_stay(
    kept: httpx.Client, kept_worker: LocalWorker, unique_id: str
) -> None:
    user, conversation = f"{unique_id}-u", f"{unique_id}-c"
    start_ms = int(time.time() * 1000)
    # Old ones age out 8-12 s from now; new ones in 90 s, after the test.
    old = create_batch(kept, [
        body(user, f"old {n}", id=f"{unique_id}-old{n}", conversation_id=conversation,
             timestamp=start_ms - (RETENTION_S - 8) * 1000 + n * 400)
        for n in range(10)])
    new = create_batch(kept, [
        body(user, f"new {n}", id=f"{unique_id}-new{n}", conversation_id=conversation,
             timestamp=start_ms + n)
        for n in range(10)])
    everything = {m["id"] for m in old + new}
    conversation_path = messages_path("conversations", conversation)
    assert {m["id"] for m in list_all(kept, conversation_path)} == everything
    assert count(kept, messages_path("users", user)) == 20
    records = {k["name"]: k for k in kept_worker.kv_list_keys(f"chat:{unique_id}-")}
    assert set(records) == {f"chat:{i}" for i in everything}
    # Every record carries its expiration: at the earliest 60 s ahead (KV's minimum).
    assert all(k.get("expiration", 0) >= start_ms // 1000 + 60 for k in records.values())

    # Once the old ones' time is up (12 s from the start), they are gone from every read.
    time.sleep(max(0.0, start_ms / 1000 + 13 - time.time()))
    newer = {m["id"] for m in new}
    assert {m["id"] for m in list_all(kept, conversation_path)} == newer
    assert {m["id"] for m in list_all(kept, messages_path("users", user))} == newer
    assert count(kept, conversation_path) == 10
    exported = kept.get(f"/v1/conversations/{conversation}/export")
    assert exported.status_code == 200
    assert {json.loads(line)["id"] for line in exported.text.splitlines()} == newer
    summary = kept.get(f"/v1/conversations/{conversation}").json()["conversation"]
    assert (summary["message_count"], summary["created_at"]) == (10, start_ms)
    assert kept.get(f"/v1/messages/{unique_id}-old0").status_code == 404

    # The indexes' sweeps drop the aged-out entries (reads schedule the passes).
    def aged_out_entries() -> int:
        kept.get(conversation_path)
        kept.get(messages_path("users", user))
        floor = int(time.time() * 1000) - RETENTION_S * 1000
        stored = [*(stored_index(kept_worker, f"conversation:chat:{conversation}") or []),
                  *(stored_index(kept_worker, f"user:chat:{user}") or [])]
        return sum(1 for e in stored if e["score"] < floor)

    assert poll(aged_out_entries, lambda n: n == 0, timeout=30, interval=1.0) == 0

    # KV deletes the old records itself when their expiration passes; the new ones stay.
    def stored_records() -> set[str]:
        return {k["name"][len("chat:"):] for k in kept_worker.kv_list_keys(f"chat:{unique_id}-")}

    remaining = poll(stored_records, lambda names: names == newer,
                     timeout=max(5.0, start_ms / 1000 + 75 - time.time()), interval=2.0)
    assert remaining == newer
    assert {m["id"] for m in list_all(kept, conversation_path)} == newer
    assert count(kept, messages_path("users", user)) == 10
