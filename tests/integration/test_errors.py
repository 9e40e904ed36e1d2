"""Every error code the API can answer with, as an RFC 9457 problem document.

``internal_error`` (500) has no trigger from outside by design, so it is not exercised here.
``auth_not_configured`` needs a Worker without ``API_TOKEN``: a module-scoped sibling of the
session worker (sharing its KV), restarted only when a test needs different vars.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import h11
import httpx
import pytest

from support.chat_support import (
    assert_no_internals,
    assert_problem,
    body,
    count,
    create,
    list_all,
    messages_path,
)
from support.worker_harness import LocalWorker

KIB = 1024
MIB = 1024 * KIB
MAX_SCORE = 2**53 - 1


def valid(uid: str, **fields: Any) -> dict[str, Any]:
    """A valid create body with ``fields`` replaced (a value of ... removes the field)."""
    out = {**body(uid, "ok"), **fields}
    return {k: v for k, v in out.items() if v is not ...}


# -- unauthorized ---------------------------------------------------------------------------

BAD_AUTH: list[dict[str, str]] = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": "Bearer test-token-and-more"},
    {"Authorization": "Basic dGVzdC10b2tlbg=="},  # base64("test-token")
    {"Authorization": "Basic test-token"},
    {"Authorization": "Token test-token"},
    {"Authorization": "test-token"},
]


@pytest.mark.parametrize("headers", BAD_AUTH, ids=lambda h: h.get("Authorization", "missing"))
def test_bad_credentials_are_401_and_change_nothing(
    client: httpx.Client, anon_client: httpx.Client, unique_id: str, headers: dict[str, str]
) -> None:
    existing = create(client, body(unique_id, "kept", id=f"{unique_id}-m", timestamp=1))
    attempts = [
        ("GET", f"/v1/messages/{unique_id}-m", None),
        ("POST", "/v1/messages", body(unique_id, "sneaky")),
        ("POST", "/v1/messages/batch", {"messages": [body(unique_id, "sneaky")]}),
        ("PATCH", f"/v1/messages/{unique_id}-m", {"content": "sneaky"}),
        ("DELETE", f"/v1/messages/{unique_id}-m", None),
        ("GET", messages_path("users", unique_id), None),
        ("GET", messages_path("users", unique_id) + "/count", None),
        ("DELETE", messages_path("users", unique_id), None),
        ("DELETE", messages_path("conversations", unique_id), None),
        ("PUT", "/v1/messages", None),  # wrong method: authentication comes first
    ]
    for method, path, payload in attempts:
        response = anon_client.request(method, path, json=payload, headers=headers)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer"), response.headers
        assert response.headers["cache-control"] == "no-store"
    assert list_all(client, messages_path("users", unique_id)) == [existing]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_scheme_is_case_insensitive(
    anon_client: httpx.Client, api_token: str, unique_id: str, scheme: str
) -> None:
    response = anon_client.get(messages_path("users", unique_id),
                               headers={"Authorization": f"{scheme} {api_token}"})
    assert response.status_code == 200, response.text


def test_health_needs_no_token(anon_client: httpx.Client) -> None:
    response = anon_client.get("/health")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


# -- not_found, method_not_allowed, conflict ------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/v1", "/v1/", "/v2/messages", "/v1/message", "/v1/messages/a/b",
     "/v1/users/x/messages/extra", "/v1/users/x", "/v1/users//messages", "/healthz",
     "/v1/groups/x/messages"],
)
def test_unknown_route_is_404(client: httpx.Client, path: str) -> None:
    problem = assert_problem(client.get(path), 404, "not_found")
    assert problem["instance"] == path


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_missing_message_is_404(client: httpx.Client, unique_id: str, method: str) -> None:
    payload = {"content": "x"} if method == "PATCH" else None
    response = client.request(method, f"/v1/messages/{unique_id}", json=payload)
    problem = assert_problem(response, 404, "not_found")
    assert problem["instance"] == f"/v1/messages/{unique_id}"


# HEAD works wherever GET does, so Allow lists it with GET.
METHODS: list[tuple[str, str, set[str]]] = [
    ("GET", "/v1/messages", {"POST"}),
    ("PUT", "/v1/messages", {"POST"}),
    ("DELETE", "/v1/messages", {"POST"}),
    ("PUT", "/v1/messages/batch", {"POST", "GET", "HEAD", "PATCH", "DELETE"}),
    ("PUT", "/v1/messages/some-id", {"GET", "HEAD", "PATCH", "DELETE"}),
    ("POST", "/v1/messages/some-id", {"GET", "HEAD", "PATCH", "DELETE"}),
    ("POST", "/v1/users/u/messages", {"GET", "HEAD", "DELETE"}),
    ("PATCH", "/v1/conversations/c/messages", {"GET", "HEAD", "DELETE"}),
    ("POST", "/v1/users/u/messages/count", {"GET", "HEAD"}),
    ("DELETE", "/v1/conversations/c/messages/count", {"GET", "HEAD"}),
    ("GET", "/v1/admin/reindex", {"POST"}),
    ("POST", "/health", {"GET", "HEAD"}),
]


@pytest.mark.parametrize(("method", "path", "allowed"), METHODS,
                         ids=[f"{m} {p}" for m, p, _ in METHODS])
def test_wrong_method_is_405_with_allow(
    client: httpx.Client, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path)
    problem = assert_problem(response, 405, "method_not_allowed")
    listed = {m.strip() for m in response.headers["allow"].split(",")}
    assert listed == allowed
    assert all(m in problem["detail"] for m in allowed - {"HEAD"})


def test_conflicting_create_is_409(client: httpx.Client, unique_id: str) -> None:
    create(client, body(unique_id, "first", id=unique_id))
    problem = assert_problem(client.post("/v1/messages", json=body(unique_id, "second",
                                                                     id=unique_id)),
                             409, "conflict")
    assert unique_id in problem["detail"]


# -- payload_too_large ----------------------------------------------------------------------

TOO_LARGE: list[tuple[str, dict[str, Any]]] = [
    ("content 64 KiB + 1", {"content": "x" * (64 * KIB + 1)}),
    ("content multibyte", {"content": "é" * (32 * KIB + 1)}),  # 64 KiB + 2 bytes, 32 Ki chars
    ("metadata", {"metadata": {"k": "x" * (16 * KIB)}}),
    ("sender", {"sender": {"id": "s", "name": "x" * (4 * KIB)}}),
]
FITS: list[tuple[str, dict[str, Any]]] = [
    ("content 64 KiB", {"content": "x" * (64 * KIB)}),
    ("content multibyte", {"content": "é" * (32 * KIB)}),
    ("metadata 16 KiB", {"metadata": {"k": "x" * (16 * KIB - len('{"k":""}'))}}),
    ("sender 4 KiB",
     {"sender": {"id": "s", "name": "x" * (4 * KIB - len('{"id":"s","name":""}'))}}),
]


@pytest.mark.parametrize(("name", "fields"), TOO_LARGE, ids=[n for n, _ in TOO_LARGE])
def test_oversized_field_is_413(client: httpx.Client, unique_id: str, name: str,
                                fields: dict[str, Any]) -> None:
    assert_problem(client.post("/v1/messages", json=valid(unique_id, **fields)),
                   413, "payload_too_large")
    existing = create(client, body(unique_id, "small"))
    assert_problem(client.patch(f"/v1/messages/{existing['id']}", json=fields),
                   413, "payload_too_large")
    assert count(client, messages_path("users", unique_id)) == 1


@pytest.mark.parametrize(("name", "fields"), FITS, ids=[n for n, _ in FITS])
def test_field_at_its_limit_is_accepted(client: httpx.Client, unique_id: str, name: str,
                                        fields: dict[str, Any]) -> None:
    message = create(client, valid(unique_id, **fields))
    assert {k: message[k] for k in fields} == fields


def raw_post_declaring(worker: LocalWorker, token: str, declared: int, sent: bytes) -> h11.Response:
    """POST /v1/messages declaring ``declared`` bytes but sending only ``sent``; the status line
    and headers of the answer. (A full 8 MiB upload races the early answer: the runtime may
    close the connection while the client is still sending.)"""
    conn = h11.Connection(h11.CLIENT)
    head = h11.Request(method="POST", target="/v1/messages", headers=[
        ("host", f"127.0.0.1:{worker.port}"), ("authorization", f"Bearer {token}"),
        ("content-type", "application/json"), ("content-length", str(declared)),
    ])
    with socket.create_connection(("127.0.0.1", worker.port), timeout=30) as sock:
        sock.sendall(conn.send(head) + conn.send(h11.Data(data=sent)))
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(65536)
                assert data, "connection closed before an answer"
                conn.receive_data(data)
            elif isinstance(event, h11.Response):
                return event


def test_declared_body_over_8_mib_is_413_before_upload(
    worker: LocalWorker, api_token: str, client: httpx.Client, unique_id: str
) -> None:
    payload = json.dumps(body(unique_id)).encode()
    answer = raw_post_declaring(worker, api_token, 8 * MIB + 1, payload)
    assert answer.status_code == 413
    assert dict(answer.headers)[b"content-type"].startswith(b"application/problem+json")
    assert count(client, messages_path("users", unique_id)) == 0


def test_declared_body_over_8_mib_leaves_its_connection_usable(
    client: httpx.Client, unique_id: str
) -> None:
    """A declared too-large body is refused unread; the next request on the same keep-alive
    connection must still be answered (left unread, local dev's proxy answered it 503)."""
    payload = json.dumps(body(unique_id)).encode()
    oversized = payload + b" " * (8 * MIB + 1 - len(payload))
    for turn in range(3):
        refused = client.post("/v1/messages", content=oversized,
                              headers={"content-type": "application/json"})
        assert_problem(refused, 413, "payload_too_large")
        after = client.post("/v1/messages", json=body(unique_id, f"after {turn}"))
        assert after.status_code == 201, after.text
    assert count(client, messages_path("users", unique_id)) == 3


def test_streamed_body_over_8_mib_is_413(client: httpx.Client, unique_id: str) -> None:
    # No content-length (chunked): the Worker reads the body, then measures it.
    payload = json.dumps(body(unique_id)).encode()
    padding = 8 * MIB + 1 - len(payload)  # valid JSON padded with whitespace: only size is wrong

    def chunks() -> Iterator[bytes]:
        yield payload
        for offset in range(0, padding, MIB):
            yield b" " * min(MIB, padding - offset)

    response = client.post("/v1/messages", content=chunks(),
                           headers={"content-type": "application/json"})
    assert_problem(response, 413, "payload_too_large")
    assert count(client, messages_path("users", unique_id)) == 0


def test_streamed_body_of_8_mib_is_read(client: httpx.Client, unique_id: str) -> None:
    payload = json.dumps(body(unique_id)).encode()

    def chunks() -> Iterator[bytes]:
        yield payload
        yield b" " * (8 * MIB - len(payload))  # exactly at the limit

    response = client.post("/v1/messages", content=chunks(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 201, response.text


# -- unsupported_media_type -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "text/json", "application/x-www-form-urlencoded",
     "multipart/form-data; boundary=x", "application/jsonp", "application/json-seq"],
)
def test_non_json_body_is_415(client: httpx.Client, unique_id: str,
                              content_type: str | None) -> None:
    payload = json.dumps(body(unique_id)).encode()
    headers = {} if content_type is None else {"content-type": content_type}
    assert_problem(client.post("/v1/messages", content=payload, headers=headers),
                   415, "unsupported_media_type")
    existing = create(client, body(unique_id, timestamp=1))
    assert_problem(client.patch(f"/v1/messages/{existing['id']}", content=b'{"content":"x"}',
                                headers=headers), 415, "unsupported_media_type")
    assert count(client, messages_path("users", unique_id)) == 1


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8",
                                          "APPLICATION/JSON", "application/merge-patch+json"])
def test_json_media_types_are_accepted(client: httpx.Client, unique_id: str,
                                       content_type: str) -> None:
    payload = json.dumps(body(unique_id)).encode()
    response = client.post("/v1/messages", content=payload,
                           headers={"content-type": content_type})
    assert response.status_code == 201, response.text


# -- invalid_json ---------------------------------------------------------------------------

INVALID_JSON: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("garbage", b"this is not json"),
    ("truncated", b'{"user_id": "u", "content": '),
    ("trailing comma", b'{"user_id": "u",}'),
    ("single quotes", b"{'user_id': 'u'}"),
    ("duplicate keys", b'{"user_id": "u", "content": "a", "content": "b", '
                       b'"sender": {"id": "s"}}'),
    ("duplicate nested keys", b'{"user_id": "u", "content": "a", '
                              b'"sender": {"id": "s", "id": "t"}}'),
    ("NaN", b'{"user_id": "u", "content": "a", "sender": {"id": "s"}, "timestamp": NaN}'),
    ("Infinity", b'{"user_id": "u", "content": "a", "sender": {"id": "s"}, '
                 b'"timestamp": Infinity}'),
    ("-Infinity", b'{"user_id": "u", "content": "a", "sender": {"id": "s"}, '
                  b'"metadata": {"x": -Infinity}}'),
    ("nesting 33", b"[" * 33 + b"]" * 33),
    ("nesting 33 in metadata", b'{"user_id": "u", "content": "a", "sender": {"id": "s"}, '
                               b'"metadata": ' + b'{"a":' * 32 + b"1" + b"}" * 32 + b"}"),
    ("invalid UTF-8", b'{"user_id": "u", "content": "\xff\xfe", "sender": {"id": "s"}}'),
    ("overlong UTF-8", b'{"user_id": "u", "content": "\xc0\xaf", "sender": {"id": "s"}}'),
    ("byte order mark", b'\xef\xbb\xbf{"user_id": "u", "content": "a", "sender": {"id": "s"}}'),
    ("huge integer", b'{"user_id": "u", "content": "a", "sender": {"id": "s"}, "timestamp": '
                     + b"9" * 5000 + b"}"),
    ("two documents", b'{"user_id": "u"} {"user_id": "v"}'),
]


@pytest.mark.parametrize("raw", [r for _, r in INVALID_JSON], ids=[n for n, _ in INVALID_JSON])
def test_malformed_json_is_400_invalid_json(client: httpx.Client, raw: bytes) -> None:
    headers = {"content-type": "application/json"}
    assert_problem(client.post("/v1/messages", content=raw, headers=headers),
                   400, "invalid_json")
    assert_problem(client.post("/v1/messages/batch", content=raw, headers=headers),
                   400, "invalid_json")
    assert_problem(client.patch("/v1/messages/anything", content=raw, headers=headers),
                   400, "invalid_json")


def test_json_just_inside_the_limits_is_parsed(client: httpx.Client, unique_id: str) -> None:
    headers = {"content-type": "application/json"}
    nested_32 = b"[" * 32 + b"]" * 32  # parses; then it is simply not a message object
    assert_problem(client.post("/v1/messages", content=nested_32, headers=headers),
                   400, "validation_error")
    metadata_31: dict[str, Any] = {"a": 1}
    for _ in range(30):
        metadata_31 = {"a": metadata_31}  # 31 levels; the body object makes 32
    message = create(client, valid(unique_id, metadata=metadata_31))
    assert message["metadata"] == metadata_31
    big = b'{"user_id": "u", "content": "a", "sender": {"id": "s"}, "timestamp": ' + b"9" * 4000
    assert_problem(client.post("/v1/messages", content=big + b"}", headers=headers),
                   400, "validation_error")  # a number, just out of the timestamp range


# -- validation_error -----------------------------------------------------------------------

INVALID_FIELDS: list[tuple[str, dict[str, Any]]] = [
    ("unknown field", {"colour": "red"}),
    ("created_at is server-owned", {"created_at": 1}),
    ("timestamp string", {"timestamp": "1700000000000"}),
    ("timestamp float", {"timestamp": 1.5}),
    ("timestamp integral float", {"timestamp": 1.0}),
    ("timestamp bool", {"timestamp": True}),
    ("timestamp negative", {"timestamp": -1}),
    ("timestamp 2^53", {"timestamp": 2**53}),
    ("timestamp null", {"timestamp": None}),
    ("id with slash", {"id": "a/b"}),
    ("id 129 chars", {"id": "x" * 129}),
    ("id empty", {"id": ""}),
    ("id with space", {"id": "a b"}),
    ("id non-ASCII", {"id": "ä"}),
    ("id number", {"id": 5}),
    ("user_id missing", {"user_id": ...}),
    ("user_id invalid", {"user_id": "a:b"}),
    ("conversation_id invalid", {"conversation_id": "x" * 129}),
    ("conversation_id null", {"conversation_id": None}),
    ("sender missing", {"sender": ...}),
    ("sender without id", {"sender": {"name": "Ann"}}),
    ("sender id empty", {"sender": {"id": ""}}),
    ("sender id number", {"sender": {"id": 7}}),
    ("sender string", {"sender": "Ann"}),
    ("sender unknown field", {"sender": {"id": "s", "email": "a@b"}}),
    ("sender name number", {"sender": {"id": "s", "name": 1}}),
    ("content missing", {"content": ...}),
    ("content number", {"content": 42}),
    ("content null", {"content": None}),
    ("metadata array", {"metadata": [1, 2]}),
    ("metadata string", {"metadata": "x"}),
]


@pytest.mark.parametrize("fields", [f for _, f in INVALID_FIELDS],
                         ids=[n for n, _ in INVALID_FIELDS])
def test_invalid_message_is_400_validation_error(
    client: httpx.Client, unique_id: str, fields: dict[str, Any]
) -> None:
    problem = assert_problem(client.post("/v1/messages", json=valid(unique_id, **fields)),
                             400, "validation_error")
    assert problem["instance"] == "/v1/messages"
    assert count(client, messages_path("users", unique_id)) == 0


@pytest.mark.parametrize("raw", [b"[]", b'"message"', b"5", b"null", b"true",
                                 b'[{"user_id": "u"}]'])
def test_non_object_body_is_400(client: httpx.Client, raw: bytes) -> None:
    headers = {"content-type": "application/json"}
    for path in ("/v1/messages", "/v1/messages/batch"):
        assert_problem(client.post(path, content=raw, headers=headers), 400, "validation_error")


# A lone surrogate can only arrive as a JSON escape; it cannot be stored as UTF-8.
LONE_SURROGATES = [
    ("content", b'{"user_id": "%s", "sender": {"id": "s"}, "content": "a\\ud800b"}'),
    ("sender name", b'{"user_id": "%s", "sender": {"id": "s", "name": "\\udfff"}, '
                    b'"content": "a"}'),
    ("metadata key", b'{"user_id": "%s", "sender": {"id": "s"}, "content": "a", '
                     b'"metadata": {"\\ud83d": 1}}'),
]


@pytest.mark.parametrize("template", [t for _, t in LONE_SURROGATES],
                         ids=[n for n, _ in LONE_SURROGATES])
def test_lone_surrogate_is_400(client: httpx.Client, unique_id: str, template: bytes) -> None:
    raw = template % unique_id.encode()
    headers = {"content-type": "application/json"}
    assert_problem(client.post("/v1/messages", content=raw, headers=headers),
                   400, "validation_error")
    problem = assert_problem(
        client.post("/v1/messages/batch", headers=headers,
                    content=b'{"messages": [' + json.dumps(body(unique_id)).encode() + b", "
                    + raw + b"]}"),
        400, "validation_error")
    assert problem["index"] == 1
    assert count(client, messages_path("users", unique_id)) == 0


@pytest.mark.parametrize(
    "changes",
    [{}, {"colour": "red"}, {"timestamp": "5"}, {"timestamp": -1}, {"content": 1},
     {"sender": {}}, {"metadata": None}, {"created_at": 5}, {"edited_at": 5}],
    ids=["empty", "unknown", "ts string", "ts negative", "content number", "sender no id",
         "metadata null", "created_at", "edited_at"],
)
def test_invalid_patch_is_400_and_changes_nothing(
    client: httpx.Client, unique_id: str, changes: dict[str, Any]
) -> None:
    original = create(client, body(unique_id, timestamp=3))
    assert_problem(client.patch(f"/v1/messages/{original['id']}", json=changes),
                   400, "validation_error")
    assert client.get(f"/v1/messages/{original['id']}").json() == {"message": original}


@pytest.mark.parametrize(
    "fields",
    [{"timestamp": 0}, {"timestamp": MAX_SCORE}, {"id": "x" * 128}, {"id": "A-z_0.9~"},
     {"sender": {"id": "s" * 128, "name": "", "role": "assistant"}}, {"metadata": {}},
     {"content": ""}],
    ids=["ts 0", "ts max", "id 128", "id alphabet", "sender full", "metadata empty",
         "content empty"],
)
def test_values_at_the_edges_are_accepted(client: httpx.Client, unique_id: str,
                                          fields: dict[str, Any]) -> None:
    if "id" in fields:  # unique per test, same length and alphabet
        fields = {"id": (unique_id + fields["id"])[: max(len(fields["id"]), 100)]}
    message = create(client, valid(unique_id, **fields))
    assert {k: message[k] for k in fields} == fields


# -- problem documents and caching everywhere -----------------------------------------------


def test_every_v1_response_is_no_store(client: httpx.Client, unique_id: str) -> None:
    message = create(client, body(unique_id, timestamp=1))
    responses = [
        client.post("/v1/messages", json=body(unique_id)),
        client.get(f"/v1/messages/{message['id']}"),
        client.patch(f"/v1/messages/{message['id']}", json={"content": "y"}),
        client.get(messages_path("users", unique_id)),
        client.get(messages_path("users", unique_id) + "/count"),
        client.get(f"/v1/messages/{unique_id}-missing"),
        client.put("/v1/messages"),
        client.post("/v1/messages", content=b"x", headers={"content-type": "text/plain"}),
        client.delete(f"/v1/messages/{message['id']}"),
        client.delete(messages_path("users", unique_id)),
        client.get("/v1/nowhere"),
    ]
    for response in responses:
        assert response.headers.get("cache-control") == "no-store", (
            response.request.method, response.request.url, response.headers)
        assert_no_internals(response)


# -- auth_not_configured (a sibling worker without API_TOKEN) -------------------------------

SiblingFactory = Callable[[dict[str, str]], LocalWorker]


@pytest.fixture(scope="module")
def sibling(worker: LocalWorker) -> Iterator[SiblingFactory]:
    """Start (or restart) the one sibling worker with the given vars; stopped after the module.

    An empty value is passed rather than leaving API_TOKEN out, so a developer's .dev.vars
    cannot supply one (``--var`` wins over .dev.vars); the Worker treats "" as unset.
    """
    current: list[LocalWorker] = []

    def running_with(vars: dict[str, str]) -> LocalWorker:
        if current and current[0].vars == vars:
            return current[0]
        while current:
            current.pop().stop()
        started = worker.sibling(vars=vars).start()
        current.append(started)
        return started

    try:
        yield running_with
    finally:
        while current:
            current.pop().stop()


def test_missing_api_token_is_503_auth_not_configured(sibling: SiblingFactory,
                                                      api_token: str, unique_id: str) -> None:
    w = sibling({"API_TOKEN": "", "AUTH_DISABLED": "false", "JOURNAL_SETTLE_MS": "2000"})
    with httpx.Client(base_url=w.base_url, timeout=30) as http:
        assert http.get("/health").status_code == 200
        for headers in ({}, {"Authorization": f"Bearer {api_token}"},
                        {"Authorization": "Basic x"}):
            for method, path, payload in [
                ("POST", "/v1/messages", body(unique_id)),
                ("GET", messages_path("users", unique_id), None),
                ("GET", f"/v1/messages/{unique_id}", None),
                ("DELETE", messages_path("users", unique_id), None),
            ]:
                response = http.request(method, path, json=payload, headers=headers)
                assert_problem(response, 503, "auth_not_configured")
                assert response.headers["cache-control"] == "no-store"


def test_a_chunked_body_over_the_limit_is_not_held_whole(sibling: SiblingFactory) -> None:
    """Sent without a length, a body is read chunk by chunk and refused once it passes
    MAX_BODY_BYTES: the runtime's peak memory must grow by less than the body sent (read whole,
    64 MiB grew it by about 170 MiB; the JS streams' buffers grow it by about 30; at the edge
    an isolate has 128 MB)."""
    w = sibling({"API_TOKEN": "", "AUTH_DISABLED": "true", "JOURNAL_SETTLE_MS": "2000",
                 "MAX_BODY_BYTES": str(64 * KIB)})

    def chunks() -> Iterator[bytes]:
        yield json.dumps(body("chunked", "big")).encode()
        for _ in range(64):
            yield b" " * MIB

    with httpx.Client(base_url=w.base_url, timeout=60) as http:
        # A create first, so the growth measured is the body's, not the first request's imports.
        first = http.post("/v1/messages", json=body("chunked", "first"))
        assert first.status_code == 201, first.text
        before = w.runtime_peak_rss()
        if before is None:
            pytest.skip("the runtime's memory cannot be read here (Linux /proc)")
        refused = http.post("/v1/messages", content=chunks(),
                            headers={"content-type": "application/json"})
        assert_problem(refused, 413, "payload_too_large")
        after = http.post("/v1/messages", json=body("chunked", "small"))
        assert after.status_code == 201, after.text
    grown = (w.runtime_peak_rss() or 0) - before
    assert grown < 64 * MIB, f"the runtime's peak memory grew by {grown / MIB:.0f} MiB"


def test_auth_disabled_lets_requests_through(sibling: SiblingFactory, client: httpx.Client,
                                             unique_id: str) -> None:
    w = sibling({"API_TOKEN": "", "AUTH_DISABLED": "true", "JOURNAL_SETTLE_MS": "2000"})
    with httpx.Client(base_url=w.base_url, timeout=30) as http:
        created = http.post("/v1/messages", json=body(unique_id, "open", timestamp=9))
        assert created.status_code == 201, created.text
        message = created.json()["message"]
        for headers in ({}, {"Authorization": "Bearer whatever"}, {"Authorization": "Basic x"}):
            listed = http.get(messages_path("users", unique_id), headers=headers)
            assert listed.status_code == 200, listed.text
            assert listed.json() == {"messages": [message], "next_cursor": None}
    # Same KV: the session worker (auth on) sees what the open one wrote.
    assert list_all(client, messages_path("users", unique_id)) == [message]
