"""Fixtures for the client's unit tests: scripted ``httpx.MockTransport`` servers.

Shared helpers live here as fixtures (the tests run in pytest's importlib mode, where test
modules cannot import each other).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

BASE_URL = "http://chat-store.test"
TOKEN = "unit-token"

Handler = Callable[[httpx.Request], httpx.Response]


def problem(status: int, code: str, detail: str = "it went wrong", **extra: Any) -> dict[str, Any]:
    return {"type": f"https://chat-store.dev/problems/{code}", "title": code.replace("_", " "),
            "status": status, "detail": detail, "code": code, "instance": "/v1/x", **extra}


def problem_response(status: int, code: str, headers: dict[str, str] | None = None,
                     **extra: Any) -> httpx.Response:
    return httpx.Response(status, json=problem(status, code, **extra),
                          headers={"content-type": "application/problem+json", **(headers or {})})


@dataclass
class Script:
    """A mock server answering with the next scripted response (or handler) per request, and
    recording every request it saw."""

    answers: list[httpx.Response | Handler | Exception] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if not self.answers:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


class Sleeps(list[float]):
    """Records the waits a client asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No CHAT_STORE_* variables from the developer's shell."""
    monkeypatch.delenv("CHAT_STORE_URL", raising=False)
    monkeypatch.delenv("CHAT_STORE_TOKEN", raising=False)
    yield


def message(message_id: str, user_id: str = "alice", timestamp: int = 1_000,
            **extra: Any) -> dict[str, Any]:
    return {"id": message_id, "user_id": user_id, "sender": {"id": user_id, "role": "user"},
            "content": f"text of {message_id}", "timestamp": timestamp, "created_at": timestamp,
            **extra}


@pytest.fixture
def make_message() -> Callable[..., dict[str, Any]]:
    return message


@pytest.fixture
def make_problem() -> Callable[..., httpx.Response]:
    return problem_response


class FakeChatStore:
    """An in-memory stand-in for the conversation routes that ChatStoreMessageHistory uses
    (batch create, conversation listing, conversation erase and truncation, delete), enough to
    test the history's own logic; the real Worker is tested in tests/integration."""

    def __init__(self, service: bool = True) -> None:
        self.service = service
        self.records: dict[str, dict[str, Any]] = {}
        self.batches: list[int] = []

    def ordered(self, conversation_id: str) -> list[dict[str, Any]]:
        found = [r for r in self.records.values() if r.get("conversation_id") == conversation_id]
        return sorted(found, key=lambda r: (r["timestamp"], r["id"]))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        query = dict(request.url.params)
        if request.method == "POST" and parts == ["v1", "messages", "batch"]:
            items = json.loads(request.content)["messages"]
            self.batches.append(len(items))
            stored = []
            for item in items:
                record = {**item, "created_at": 1}
                if "content" not in record:
                    record["content"] = "".join(
                        p["text"] for p in item.get("parts", []) if p["type"] == "text")
                self.records[item["id"]] = record
                stored.append(record)
            return httpx.Response(201, json={"messages": stored})
        if parts[:2] == ["v1", "conversations"] and parts[3:] == ["messages"]:
            ordered = self.ordered(parts[2])
            if request.method == "GET":
                if query.get("order", "desc") == "desc":
                    ordered.reverse()
                start = int(query.get("cursor", "0"))
                limit = int(query.get("limit", "50"))
                page = ordered[start:start + limit]
                more = start + limit < len(ordered)
                return httpx.Response(200, json={
                    "messages": page, "next_cursor": str(start + limit) if more else None})
            if request.method == "DELETE":
                after = query.get("after")
                if after is None:
                    if not self.service:
                        return problem_response(403, "forbidden")
                    doomed = ordered[:300]
                else:
                    ids = [r["id"] for r in ordered]
                    doomed = ordered[ids.index(after) + 1:]
                    if len(doomed) > 300:
                        return problem_response(403, "forbidden")
                for record in doomed:
                    del self.records[record["id"]]
                remaining = len(self.ordered(parts[2])) if after is None else 0
                return httpx.Response(200, json={"deleted": len(doomed), "remaining": remaining})
        if request.method == "DELETE" and parts[:2] == ["v1", "messages"] and len(parts) == 3:
            if self.records.pop(parts[2], None) is None:
                return problem_response(404, "not_found")
            return httpx.Response(204)
        return problem_response(404, "not_found")


@pytest.fixture
def fake_store() -> Callable[..., FakeChatStore]:
    return FakeChatStore
