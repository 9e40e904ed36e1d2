"""The segmented index under tiny bounds, so that a few dozen messages spill into segments.

A module-scoped sibling of the session worker (same KV, own vars) runs with a head of at most
8 entries (4 kept on a spill) and segments of at most 6. Messages arrive out of order, some are
deleted and some moved; every listing, range read and count must match a model, both while the
journal still overlays the stored structure and after it has all been folded into segments.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from support.chat_support import (
    Message,
    body,
    count,
    create,
    create_batch,
    in_range,
    index_entries,
    list_all,
    messages_path,
    ordered,
    poll,
    read_index,
)
from support.worker_harness import LocalWorker

HEAD_MAX, HEAD_KEEP, SEGMENT_MAX, SETTLE_MS = 8, 4, 6, 1_000
CONVERGE_S = 15.0


@pytest.fixture(scope="module")
def seg_worker(worker: LocalWorker, api_token: str) -> Iterator[LocalWorker]:
    w = worker.sibling(vars={
        "API_TOKEN": api_token,
        "AUTH_DISABLED": "false",
        "INDEX_HEAD_MAX": str(HEAD_MAX),
        "INDEX_HEAD_KEEP": str(HEAD_KEEP),
        "INDEX_SEGMENT_MAX": str(SEGMENT_MAX),
        "JOURNAL_SETTLE_MS": str(SETTLE_MS),
    })
    with w:
        yield w


@pytest.fixture
def seg(seg_worker: LocalWorker, api_token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=seg_worker.base_url, timeout=60,
                      headers={"Authorization": f"Bearer {api_token}"}) as c:
        yield c


@dataclass
class Scenario:
    user: str
    conversations: list[str]
    live: dict[str, Message] = field(default_factory=dict)

    def scopes(self) -> dict[str, list[Message]]:
        """Listing path -> the live messages it must show."""
        out = {messages_path("users", self.user): list(self.live.values())}
        for c in self.conversations:
            out[messages_path("conversations", c)] = [
                m for m in self.live.values() if m.get("conversation_id") == c]
        return out


def settle(client: httpx.Client, scenario: Scenario) -> None:
    """Let the journal settle, then read every scope so compaction folds it into segments."""
    time.sleep(SETTLE_MS / 1000 + 0.5)
    for path in scenario.scopes():
        assert client.get(path).status_code == 200
    time.sleep(0.5)


def populate(client: httpx.Client, uid: str, rng: random.Random) -> Scenario:
    """~60 messages with shuffled timestamps (ties included) via batches and single posts,
    then deletes and timestamp moves spread over the whole range."""
    scenario = Scenario(uid, [f"{uid}-c0", f"{uid}-c1"])
    timestamps = [rng.randrange(10_000, 10_040) for _ in range(60)]  # 60 in 40 ms: ties
    payloads = [
        body(uid, f"m{i}", id=f"{uid}-{i:02d}", timestamp=t,
             conversation_id=scenario.conversations[i % 2] if i % 5 else None)
        for i, t in enumerate(timestamps)
    ]
    for chunk in (payloads[0:15], payloads[15:30], payloads[30:45]):
        for message in create_batch(client, chunk):
            scenario.live[message["id"]] = message
    for payload in payloads[45:]:
        message = create(client, payload)
        scenario.live[message["id"]] = message
    settle(client, scenario)  # older entries now sit in segments

    for victim in rng.sample(sorted(scenario.live), 10):
        assert client.delete(f"/v1/messages/{victim}").status_code == 204
        del scenario.live[victim]
    movers = rng.sample(sorted(scenario.live), 10)
    targets = [9_000, 20_000, 10_000, 10_039, 10_020, 10_020, 1, 2**53 - 2,
               rng.randrange(10_000, 10_040), rng.randrange(10_000, 10_040)]
    for mover, timestamp in zip(movers, targets, strict=True):
        response = client.patch(f"/v1/messages/{mover}", json={"timestamp": timestamp})
        assert response.status_code == 200, response.text
        scenario.live[mover] = response.json()["message"]
    return scenario


RANGES = [(None, None), (10_000, 10_039), (10_010, 10_019), (10_020, 10_020), (0, 9_999),
          (10_040, None), (None, 10_005), (2**53 - 2, None), (10_013, 10_027)]


def assert_matches_model(client: httpx.Client, scenario: Scenario, when: str) -> None:
    for path, messages in scenario.scopes().items():
        assert count(client, path) == len(messages), (when, path)
        # Small pages cross segment boundaries at many offsets; one page reads across all.
        for order, limit in (("asc", 5), ("desc", 7), ("asc", 100)):
            got = list_all(client, path, order=order, limit=limit)
            assert got == ordered(messages, order), (when, path, order, limit)
        for n, (start, end) in enumerate(RANGES):
            expected = in_range(messages, start, end)
            assert count(client, path, start=start, end=end) == len(expected), (
                when, path, start, end)
            order = ("asc", "desc")[n % 2]
            got = list_all(client, path, order=order, limit=6, start=start, end=end)
            assert got == ordered(expected, order), (when, path, start, end, order)


def test_listings_ranges_and_counts_match_the_model(seg: httpx.Client, unique_id: str) -> None:
    scenario = populate(seg, unique_id, random.Random(unique_id))
    assert_matches_model(seg, scenario, "with an unfolded journal")
    settle(seg, scenario)
    assert_matches_model(seg, scenario, "after folding")


def test_head_holds_only_the_newest_entries_and_segments_exist(
    seg_worker: LocalWorker, seg: httpx.Client, unique_id: str
) -> None:
    scenario = populate(seg, unique_id, random.Random(unique_id))
    path = messages_path("users", unique_id)
    model = index_entries(scenario.live.values())

    def is_newest_suffix(head: list[dict[str, Any]] | None) -> bool:
        return head is not None and 1 <= len(head) <= HEAD_MAX and head == model[-len(head):]

    def probe() -> list[dict[str, Any]] | None:
        assert seg.get(path).status_code == 200  # reads trigger compaction
        return read_index(seg_worker, f"user:chat:{unique_id}")

    head = poll(probe, is_newest_suffix, timeout=CONVERGE_S, interval=1.0)
    assert head is not None
    assert all(set(entry) == {"score", "member"} for entry in head), head  # seed format
    assert 1 <= len(head) <= HEAD_MAX, head
    assert head == model[-len(head):], (head, model[-HEAD_MAX:])

    segments = seg_worker.kv_list(f"idx:seg:user:chat:{unique_id}:")
    # The entries below the head fit in segments of at most SEGMENT_MAX: at least this many.
    assert len(segments) >= math.ceil((len(model) - len(head)) / SEGMENT_MAX), segments
    sample = read_index(seg_worker, segments[-1])
    assert sample is not None and 1 <= len(sample) <= SEGMENT_MAX, sample
    assert sample == sorted(sample, key=lambda e: (e["score"], e["member"]))
    assert seg_worker.kv_list(f"idx:man:user:chat:{unique_id}:"), "segments need a manifest"


def test_erase_through_segments(seg: httpx.Client, unique_id: str) -> None:
    scenario = populate(seg, unique_id, random.Random(unique_id))
    settle(seg, scenario)
    response = seg.delete(messages_path("users", unique_id))
    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": len(scenario.live), "remaining": 0}
    scenario.live.clear()
    assert_matches_model(seg, scenario, "after erase")


def test_reindex_rebuilds_segments(seg: httpx.Client, unique_id: str) -> None:
    scenario = populate(seg, unique_id, random.Random(unique_id))
    settle(seg, scenario)
    for target, index in (({"user_id": unique_id}, f"user:chat:{unique_id}"),
                          ({"conversation_id": scenario.conversations[0]},
                           f"conversation:chat:{scenario.conversations[0]}")):
        response = seg.post("/v1/admin/reindex", json=target)
        assert response.status_code == 200, response.text
        result = response.json()
        expected = scenario.scopes()[messages_path(
            "users" if "user_id" in target else "conversations", next(iter(target.values())))]
        assert result["index"] == index
        assert result["entries"] == len(expected)
        assert result["scanned"] >= len(scenario.live)
    assert_matches_model(seg, scenario, "after reindex")
