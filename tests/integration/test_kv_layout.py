"""The KV layout other systems read, inspected straight from the simulator's storage.

- ``chat:{id}``: exactly the message JSON the API returns.
- ``user:chat:{uid}`` / ``conversation:chat:{cid}``: a JSON array of ``{"score", "member"}`` in
  ``(score, member)`` order. Compaction runs after the response (``waitUntil``), so the arrays
  are polled until they converge on the live set.
- ``idx:log:{index}:...``: journal entries, garbage collected once settled (the session worker
  runs with ``JOURNAL_SETTLE_MS=2000``; collection waits for settle + 10 s of compaction
  headroom after the root that folded them).
"""

from __future__ import annotations

import httpx

from support.chat_support import (
    Expected,
    Message,
    body,
    converged_indexes,
    create,
    create_batch,
    index_entries,
    kv_get_many,
    list_all,
    messages_path,
    ordered,
    poll,
    read_index,
)
from support.worker_harness import LocalWorker

CONVERGE_S = 10.0
JOURNAL_GC_S = 30.0


def message_json(response: httpx.Response) -> str:
    """The message's JSON text exactly as it appears in a ``{"message": ...}`` response."""
    text = response.text
    prefix = '{"message":'
    assert text.startswith(prefix) and text.endswith("}"), text
    return text[len(prefix) : -1]


def assert_indexes_converge(
    worker: LocalWorker, client: httpx.Client, live: list[Message], user: str, conversation: str
) -> None:
    scopes = {
        f"user:chat:{user}": (messages_path("users", user), list(live)),
        f"conversation:chat:{conversation}": (
            messages_path("conversations", conversation),
            [m for m in live if m.get("conversation_id") == conversation],
        ),
    }
    for path, messages in scopes.values():
        # The API answers from root + journal at once; the root itself catches up.
        assert list_all(client, path, order="asc") == ordered(messages)
    expected: Expected = {key: (index_entries(messages), path)
                          for key, (path, messages) in scopes.items()}
    actual = converged_indexes(worker, client, expected, timeout=CONVERGE_S)
    assert actual == {key: array for key, (array, _) in expected.items()}


def test_message_record_is_the_api_json(
    worker: LocalWorker, client: httpx.Client, unique_id: str
) -> None:
    payloads = {
        "plain": body(unique_id, "plain"),
        "rich": body(unique_id, "ünïcödé ✓ 😀 \"quoted\" \\ slash", id=f"{unique_id}-rich",
                     conversation_id=f"{unique_id}-c", timestamp=12_345,
                     sender={"id": "s", "name": "Zoë", "role": "assistant"},
                     metadata={"z": [1, 2.5, None, True], "a": {"nested": "x"}}),
        "patched": body(unique_id, "to patch", id=f"{unique_id}-patched", timestamp=5),
        "deleted": body(unique_id, "to delete", id=f"{unique_id}-deleted", timestamp=6),
    }
    expected: dict[str, str | None] = {}
    for payload in payloads.values():
        response = client.post("/v1/messages", json=payload)
        assert response.status_code == 201, response.text
        expected[f"chat:{response.json()['message']['id']}"] = message_json(response)
    # A patch rewrites the record: still exactly what the API returns.
    patched = client.patch(f"/v1/messages/{unique_id}-patched",
                           json={"content": "edited ✓", "timestamp": 99, "metadata": {"k": 1}})
    assert patched.status_code == 200, patched.text
    expected[f"chat:{unique_id}-patched"] = message_json(patched)
    assert message_json(client.get(f"/v1/messages/{unique_id}-patched")) == message_json(patched)
    assert client.delete(f"/v1/messages/{unique_id}-deleted").status_code == 204
    expected[f"chat:{unique_id}-deleted"] = None

    assert kv_get_many(worker, expected) == expected


def test_index_arrays_converge_to_the_live_set(
    worker: LocalWorker, client: httpx.Client, unique_id: str
) -> None:
    user, conversation = unique_id, f"{unique_id}-c"
    live = create_batch(client, [
        body(user, f"m{i}", conversation_id=conversation if i % 3 else None,
             timestamp=[500, 100, 300, 300, 900, 100, 700][i])
        for i in range(7)
    ])
    live.append(create(client, body(user, "tie", id=f"{unique_id}-0", timestamp=300,
                                    conversation_id=conversation)))
    live.append(create(client, body(user, "server time", conversation_id=conversation)))
    assert_indexes_converge(worker, client, live, user, conversation)

    # Move one message to the front and one onto a tie, delete two: converge again.
    by_id = {m["id"]: m for m in live}
    in_conversation = [m for m in ordered(live) if m.get("conversation_id") == conversation]
    for target, timestamp in ((in_conversation[-1], 1), (in_conversation[0], 300)):
        response = client.patch(f"/v1/messages/{target['id']}", json={"timestamp": timestamp})
        assert response.status_code == 200, response.text
        by_id[target["id"]] = response.json()["message"]
    for victim in (in_conversation[1], ordered(live)[-1]):
        assert client.delete(f"/v1/messages/{victim['id']}").status_code == 204
        by_id.pop(victim["id"])
    assert_indexes_converge(worker, client, list(by_id.values()), user, conversation)


def test_a_burst_of_appends_reaches_the_array_with_no_read_to_trigger_it(
    worker: LocalWorker, client: httpx.Client, unique_id: str
) -> None:
    """Compactions are paced (one per index per second per isolate): the writes of a burst
    after the first wait for one compaction scheduled inside ``waitUntil``. Nothing reads the
    index here, so only that scheduled compaction can bring the array up to date."""
    live = [create(client, body(unique_id, f"m{i}", timestamp=1_000 + i)) for i in range(6)]
    key = f"user:chat:{unique_id}"
    array = poll(lambda: read_index(worker, key), lambda got: got == index_entries(live),
                 timeout=CONVERGE_S)
    assert array == index_entries(live)


def test_erased_user_index_converges_to_empty(
    worker: LocalWorker, client: httpx.Client, unique_id: str
) -> None:
    conversation = f"{unique_id}-c"
    other = create(client, body(f"{unique_id}-v", "stays", conversation_id=conversation,
                                timestamp=2))
    create_batch(client, [body(unique_id, str(i), conversation_id=conversation, timestamp=i)
                          for i in range(5)])
    response = client.delete(messages_path("users", unique_id))
    assert response.json() == {"deleted": 5, "remaining": 0}
    expected: Expected = {
        f"user:chat:{unique_id}": ([], messages_path("users", unique_id)),
        f"conversation:chat:{conversation}": (
            index_entries([other]), messages_path("conversations", conversation)),
    }
    actual = converged_indexes(worker, client, expected, timeout=CONVERGE_S)
    assert actual == {key: array for key, (array, _) in expected.items()}


def test_journal_entries_are_garbage_collected_after_settle(
    worker: LocalWorker, client: httpx.Client, unique_id: str
) -> None:
    conversation = f"{unique_id}-c"
    first = create(client, body(unique_id, "a", conversation_id=conversation, timestamp=1))
    create_batch(client, [body(unique_id, "b", conversation_id=conversation, timestamp=2),
                          body(unique_id, "c", timestamp=3)])
    client.patch(f"/v1/messages/{first['id']}", json={"timestamp": 4})
    prefixes = [f"idx:log:user:chat:{unique_id}:", f"idx:log:conversation:chat:{conversation}:"]
    assert all(worker.kv_list(p) for p in prefixes), "every write journals before answering"

    def journal() -> list[str]:
        # Reads (and writes) are what trigger compaction, and compaction collects the journal.
        assert client.get(messages_path("users", unique_id)).status_code == 200
        assert client.get(messages_path("conversations", conversation)).status_code == 200
        return [key for p in prefixes for key in worker.kv_list(p)]

    left = poll(journal, lambda keys: not keys, timeout=JOURNAL_GC_S, interval=1.0)
    assert left == [], f"journal entries still present after {JOURNAL_GC_S:.0f} s: {left}"
    # Collecting the journal lost nothing.
    assert [m["content"] for m in list_all(client, messages_path("users", unique_id),
                                          order="asc")] == ["b", "c", "a"]
    assert read_index(worker, f"conversation:chat:{conversation}") == index_entries(
        list_all(client, messages_path("conversations", conversation)))
