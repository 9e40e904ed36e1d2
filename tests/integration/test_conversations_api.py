"""Conversations under ``wrangler dev``: a sidebar walk, a rename, a delete of the newest
message and an erase, through the real Worker and its local KV."""

from __future__ import annotations

from typing import Any

import httpx

from support.chat_support import body


def create(client: httpx.Client, user: str, conversation: str, message_id: str, ts: int,
           content: str = "hello") -> dict[str, Any]:
    reply = client.post("/v1/messages", json=body(user, content, id=message_id,
                                                  conversation_id=conversation, timestamp=ts))
    assert reply.status_code == 201, reply.text
    message: dict[str, Any] = reply.json()["message"]
    return message


def sidebar(client: httpx.Client, user: str, **params: Any) -> list[dict[str, Any]]:
    """Every conversation of the user, following ``next_cursor``."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        reply = client.get(f"/v1/users/{user}/conversations", params=query)
        assert reply.status_code == 200, reply.text
        found += reply.json()["conversations"]
        cursor = reply.json()["next_cursor"]
        if cursor is None:
            return found


def test_a_sidebar_through_the_worker(client: httpx.Client, unique_id: str) -> None:
    alice, bob = f"{unique_id}-alice", f"{unique_id}-bob"
    c = [f"{unique_id}-c{n}" for n in range(5)]
    for n, conversation in enumerate(c):
        create(client, alice, conversation, f"{unique_id}-a{n}", 1_000 + 10 * n)
    create(client, bob, c[1], f"{unique_id}-b1", 2_000, content="Bob was here " + "é" * 300)

    walked = sidebar(client, alice, limit=2)
    assert [x["id"] for x in walked] == [c[1], c[4], c[3], c[2], c[0]]
    assert [x["id"] for x in sidebar(client, alice, limit=2, order="asc")] == [
        c[0], c[2], c[3], c[4], c[1]]
    assert [x["id"] for x in sidebar(client, bob)] == [c[1]]
    top = walked[0]
    assert (top["message_count"], top["created_at"], top["last_message_at"]) == (2, 1_010, 2_000)
    assert top["last_message"]["id"] == f"{unique_id}-b1"
    assert top["last_message"]["preview"] == ("Bob was here " + "é" * 300)[:200]

    renamed = client.patch(f"/v1/conversations/{c[1]}", json={"title": "Planning ✈"})
    assert renamed.status_code == 200, renamed.text
    assert sidebar(client, bob)[0]["title"] == "Planning ✈"
    assert client.get(f"/v1/conversations/{c[1]}").json()["conversation"]["title"] == "Planning ✈"

    # The newest message goes: the conversation sorts by the one before, at once.
    assert client.delete(f"/v1/messages/{unique_id}-b1").status_code == 204
    after = sidebar(client, alice)
    assert [x["id"] for x in after] == [c[4], c[3], c[2], c[1], c[0]]
    assert "Bob was here" not in str(after)
    assert after[3]["last_message_at"] == 1_010 and after[3]["message_count"] == 1

    # Erasing a conversation takes it off every list; erasing a user, off theirs.
    erased = client.delete(f"/v1/conversations/{c[4]}/messages")
    assert erased.json() == {"deleted": 1, "remaining": 0}
    assert [x["id"] for x in sidebar(client, alice)] == [c[3], c[2], c[1], c[0]]
    assert client.get(f"/v1/conversations/{c[4]}").status_code == 404
    assert client.delete(f"/v1/users/{alice}/messages").json()["remaining"] == 0
    assert sidebar(client, alice) == []


def test_a_bad_conversation_request_is_a_problem(client: httpx.Client, unique_id: str) -> None:
    create(client, unique_id, f"{unique_id}-c", f"{unique_id}-m", 5)
    for reply, status in (
        (client.patch(f"/v1/conversations/{unique_id}-c", json={"title": ""}), 400),
        (client.patch(f"/v1/conversations/{unique_id}-none", json={"title": "x"}), 404),
        (client.get(f"/v1/users/{unique_id}/conversations", params={"limit": "0"}), 400),
        (client.get(f"/v1/users/{unique_id}/conversations", params={"cursor": "x"}), 400),
        (client.delete(f"/v1/conversations/{unique_id}-c"), 405),
    ):
        assert reply.status_code == status, reply.text
        assert reply.headers["content-type"].startswith("application/problem+json")
