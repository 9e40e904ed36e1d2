"""What schemathesis does not reach, checked on the real Worker against ``openapi.json``.

Schemathesis sends the service token and documented methods only. These tests cover the rest
of the document's promises where only the real runtime can break them (the JS boundary, the
bundle, URL parsing, the pre-routing size check): answers without credentials, to undocumented
methods and to HEAD, the served document itself, and values at the documented limits.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from config import Config
from support.openapi_support import conformance_errors, load_document, operations
from support.worker_harness import LocalWorker

DOC = load_document()
MAX_TIMESTAMP = 2**53 - 1
_PARAM = re.compile(r"\{[^/{}]+\}")


def _concrete(template: str) -> str:
    return _PARAM.sub("x1", template)


def _errors(method: str, path: str, response: httpx.Response) -> list[str]:
    return conformance_errors(method, path, response.status_code, response.headers,
                              response.content, DOC)


def _raw(worker: LocalWorker, method: str, target: str, token: str) -> tuple[int, bytes]:
    """A request whose target goes out byte for byte (httpx would normalize dot segments)."""
    parts = urlsplit(worker.base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request(method, target, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


V1_OPERATIONS = [(m.upper(), t) for t, m, _ in operations(DOC) if t.startswith("/v1/")]


@pytest.mark.parametrize(("method", "template"), V1_OPERATIONS)
def test_no_credentials_answer_conforms(
    anon_client: httpx.Client, method: str, template: str
) -> None:
    path = _concrete(template)
    response = anon_client.request(method, path, json={})
    assert response.status_code == 401, response.text
    assert _errors(method, path, response) == []


def _documented_methods(path: str) -> set[str]:
    """Methods documented for a concrete path, over every template it matches (the path
    `/v1/messages/batch` is both the batch route and `/v1/messages/{id}` with id `batch`)."""
    methods: set[str] = set()
    for template, item in DOC["paths"].items():
        parts, segments = template.split("/"), path.split("/")
        if len(parts) == len(segments) and all(
            p == s or _PARAM.fullmatch(p) is not None for p, s in zip(parts, segments, strict=True)
        ):
            methods |= {m.upper() for m in item if m != "parameters"}
    return methods


@pytest.mark.parametrize("template", list(DOC["paths"]))
def test_undocumented_methods_get_405_with_the_documented_allow(
    client: httpx.Client, template: str
) -> None:
    path = _concrete(template)
    documented = _documented_methods(path)
    for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - documented):
        response = client.request(method, path)
        assert response.status_code == 405, (method, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "method_not_allowed"
        # HEAD is served wherever GET is (documented in info.description, not as operations).
        implied = {"HEAD"} if "GET" in documented else set()
        assert set(response.headers["allow"].split(", ")) == documented | implied
        if template.startswith("/v1/"):
            assert response.headers.get("cache-control") == "no-store"


@pytest.mark.parametrize("path", ["/health", "/openapi.json", "/v1/users/x1/messages",
                                  "/v1/users/x1/messages/count", "/v1/messages/nope"])
def test_head_answers_like_get_without_a_body(client: httpx.Client, path: str) -> None:
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code
    assert head.content == b""
    assert head.headers.get("content-type") == got.headers.get("content-type")
    assert head.headers.get("cache-control") == got.headers.get("cache-control")
    assert _errors("HEAD", path, head) == []


def test_the_worker_serves_the_committed_document(anon_client: httpx.Client) -> None:
    response = anon_client.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.json() == DOC
    assert _errors("GET", "/openapi.json", response) == []


def _message(message_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": message_id, "user_id": message_id, "sender": {"id": "s"}, "content": "c",
            **extra}


@pytest.mark.parametrize("timestamp", [0, MAX_TIMESTAMP - 1, MAX_TIMESTAMP])
def test_documented_timestamp_range_is_stored(
    client: httpx.Client, unique_id: str, timestamp: int
) -> None:
    """The document (and validation) allow 0..2^53-1; every value in it must be storable."""
    created = client.post("/v1/messages", json=_message(unique_id, timestamp=timestamp))
    assert created.status_code == 201, created.text
    assert _errors("POST", "/v1/messages", created) == []
    other = f"{unique_id}-p"
    assert client.post("/v1/messages", json=_message(other, timestamp=5)).status_code == 201
    patched = client.patch(f"/v1/messages/{other}", json={"timestamp": timestamp})
    assert patched.status_code == 200, patched.text
    assert patched.json()["message"]["timestamp"] == timestamp
    batch = client.post("/v1/messages/batch",
                        json={"messages": [_message(f"{unique_id}-b", timestamp=timestamp)]})
    assert batch.status_code == 201, batch.text


def test_body_over_the_limit_answer_conforms(client: httpx.Client) -> None:
    """413 for a body over MAX_BODY_BYTES, documented with Cache-Control: no-store like any /v1
    answer. Sent chunked, so the Worker reads the body and then measures it (test_errors.py
    checks the declared Content-Length path, over a raw socket and on a keep-alive connection)."""
    size = Config().max_body_bytes + 1

    def chunks() -> Iterator[bytes]:
        for start in range(0, size, 1 << 20):
            yield b" " * min(1 << 20, size - start)

    response = client.post("/v1/messages", content=chunks(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert _errors("POST", "/v1/messages", response) == []


@pytest.mark.parametrize("weird", [".", ".."])
def test_every_accepted_id_is_addressable(
    worker: LocalWorker, client: httpx.Client, api_token: str, weird: str
) -> None:
    """An id the API accepts in a body must be usable in its URL paths. `.` and `..` are
    dot segments, which URL parsing removes before the Worker sees the path, so the API must
    refuse them as ids (400) or be able to address them."""
    created = client.post("/v1/messages", json={"id": weird, "user_id": weird,
                                                 "sender": {"id": "s"}, "content": "dot"})
    if created.status_code == 400:
        return  # refused: fine
    assert created.status_code in (200, 201), created.text
    status, body = _raw(worker, "GET", f"/v1/messages/{weird}", api_token)
    assert status == 200, (
        f"POST /v1/messages accepted id {weird!r} (status {created.status_code}), but "
        f"GET /v1/messages/{weird} answers {status}: {body[:200]!r}"
    )
    status, body = _raw(worker, "GET", f"/v1/users/{weird}/messages", api_token)
    assert status == 200, (
        f"user_id {weird!r} was accepted, but GET /v1/users/{weird}/messages answers {status}:"
        f" {body[:200]!r}"
    )
    assert [m["id"] for m in json.loads(body)["messages"]] == [weird]
