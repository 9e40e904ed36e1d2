"""The sync client against scripted mock servers: requests, retries, errors, pagination,
export, ids and configuration."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat_store_client import (
    AuthNotConfigured,
    BadRequest,
    ChatStore,
    ChatStoreError,
    Conflict,
    Forbidden,
    InternalError,
    InvalidJson,
    NotFound,
    PayloadTooLarge,
    ProtocolError,
    RateLimited,
    RetentionExpired,
    RetryPolicy,
    ServiceUnavailable,
    StorageUnavailable,
    TransportError,
    Unauthorized,
    ValidationError,
)
from chat_store_client.errors import ERROR_CLASSES
from chat_store_client.ulid import decode_time

BASE_URL = "http://chat-store.test"
TOKEN = "unit-token"
ULID_CHARS = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def store(script: Any, sleeps: Any = None, **kwargs: Any) -> ChatStore:
    kwargs.setdefault("rng", random.Random(7))
    return ChatStore(BASE_URL, TOKEN, transport=httpx.MockTransport(script),
                     sleep=sleeps if sleeps is not None else _no_sleep, **kwargs)


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected sleep({seconds})")


def ok(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


# -- requests -----------------------------------------------------------------------------------


def test_create_sends_a_client_ulid_and_returns_the_stored_message(
        script: Any, make_message: Callable[..., dict[str, Any]]) -> None:
    script.answers.append(lambda r: ok({"message": make_message(json.loads(r.content)["id"])},
                                       201))
    with store(script) as client:
        made = client.create_message(user_id="alice", conversation_id="c1", content="héllo",
                                     sender={"id": "alice", "role": "user"},
                                     metadata={"b": 1, "a": [1.5]})
    request = script.requests[0]
    assert (request.method, request.url.path) == ("POST", "/v1/messages")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    sent = json.loads(request.content)
    assert set(sent) == {"id", "user_id", "conversation_id", "sender", "content", "metadata"}
    assert len(sent["id"]) == 26 and set(sent["id"]) <= ULID_CHARS
    assert made["id"] == sent["id"]
    # Deterministic compact JSON, UTF-8 as is, keys sorted.
    assert request.content.decode("utf-8") == json.dumps(
        sent, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert "héllo" in request.content.decode("utf-8")


def test_create_keeps_a_given_id_and_refuses_nan(script: Any,
                                                 make_message: Callable[..., Any]) -> None:
    script.answers.append(ok({"message": make_message("mine")}))
    client = store(script)
    client.create_message(id="mine", user_id="alice", sender={"id": "alice"}, content="x")
    assert json.loads(script.requests[0].content)["id"] == "mine"
    with pytest.raises(ValueError):
        client.create_message(user_id="alice", sender={"id": "alice"}, content="x",
                              metadata={"score": float("nan")})
    assert len(script.requests) == 1


def test_batch_gives_each_message_without_id_an_increasing_ulid(script: Any) -> None:
    script.answers.append(lambda r: ok({"messages": json.loads(r.content)["messages"]}, 201))
    items: list[dict[str, Any]] = [
        {"user_id": "u", "sender": {"id": "u"}, "content": str(n)} for n in range(50)]
    items[10]["id"] = "given"
    stored = store(script).create_messages(items)
    ids = [m["id"] for m in stored]
    assert ids[10] == "given"
    made = ids[:10] + ids[11:]
    assert made == sorted(made) and len(set(made)) == 49
    assert "id" not in items[0]  # the caller's dicts are not changed


def test_query_parameters_and_path_segments(script: Any) -> None:
    script.answers += [ok({"messages": [], "next_cursor": None}), ok({"count": 3}),
                       ok({"before": [], "message": {}, "after": [], "before_cursor": None,
                           "after_cursor": None}),
                       ok({"deleted": 2, "remaining": 0}),
                       ok({"index": "user:chat:u", "entries": 0, "scanned": 0})]
    client = store(script)
    client.list_user_messages("a/b c", limit=10, order="asc", start=0, end=99, cursor="k")
    assert client.count_conversation_messages("c1", start=5) == 3
    client.get_message_context("m1", scope="user", before=0, after=3)
    client.erase_conversation_messages("c1", after="m9")
    client.reindex(user_id="u")
    urls = [str(r.url) for r in script.requests]
    assert urls[0] == (f"{BASE_URL}/v1/users/a%2Fb%20c/messages"
                       "?limit=10&order=asc&start=0&end=99&cursor=k")
    assert urls[1] == f"{BASE_URL}/v1/conversations/c1/messages/count?start=5"
    assert urls[2] == f"{BASE_URL}/v1/messages/m1/context?scope=user&before=0&after=3"
    assert (script.requests[3].method, urls[3]) == (
        "DELETE", f"{BASE_URL}/v1/conversations/c1/messages?after=m9")
    assert json.loads(script.requests[4].content) == {"user_id": "u"}
    for bad in ("", ".", ".."):
        with pytest.raises(ValueError):
            client.get_message(bad)
    with pytest.raises(ValueError):
        client.reindex(user_id="u", conversation_id="c")
    assert len(script.requests) == 5


def test_patch_sends_only_the_given_fields(script: Any, make_message: Callable[..., Any]) -> None:
    script.answers += [ok({"message": make_message("m1")}),
                       ok({"conversation": {"id": "c1"}})]
    client = store(script)
    client.patch_message("m1", content="new", timestamp=5)
    client.patch_conversation("c1", title="Trip")
    assert script.requests[0].method == "PATCH"
    assert script.bodies() == [{"content": "new", "timestamp": 5}, {"title": "Trip"}]


# -- retries -----------------------------------------------------------------------------------


def test_a_retried_create_sends_the_same_id_and_honours_retry_after(
        script: Any, sleeps: Any, make_problem: Callable[..., httpx.Response],
        make_message: Callable[..., Any]) -> None:
    script.answers += [make_problem(503, "storage_unavailable", {"retry-after": "2"}),
                       make_problem(429, "rate_limited", {"retry-after": "3"}),
                       lambda r: ok({"message": make_message(json.loads(r.content)["id"])})]
    made = store(script, sleeps).create_message(user_id="u", sender={"id": "u"}, content="x")
    ids = {body["id"] for body in script.bodies()}
    assert ids == {made["id"]} and len(script.requests) == 3
    assert sleeps == [2.0, 3.0]


def test_retries_are_bounded_by_attempts(script: Any, sleeps: Any,
                                         make_problem: Callable[..., httpx.Response]) -> None:
    script.answers += [make_problem(429, "rate_limited", {"retry-after": "1"})] * 3
    client = store(script, sleeps, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(RateLimited) as caught:
        client.get_message("m1")
    assert len(script.requests) == 3 and sleeps == [1.0, 1.0]
    assert caught.value.retry_after == 1.0 and caught.value.status == 429


def test_a_retry_after_beyond_the_wait_budget_is_raised_at_once(
        script: Any, sleeps: Any, make_problem: Callable[..., httpx.Response]) -> None:
    script.answers += [make_problem(429, "rate_limited", {"retry-after": "60"})]
    client = store(script, sleeps, retry=RetryPolicy(max_total_wait=30))
    with pytest.raises(RateLimited) as caught:
        client.get_message("m1")
    assert sleeps == [] and caught.value.retry_after == 60.0


def test_backoff_without_retry_after_is_jittered_capped_and_bounded(
        script: Any, sleeps: Any) -> None:
    script.answers += [httpx.Response(503, text="upstream busy")] * 6
    policy = RetryPolicy(max_attempts=6, max_total_wait=2.0, backoff_initial=0.5,
                         backoff_max=1.0)
    with pytest.raises(ServiceUnavailable) as caught:
        store(script, sleeps, retry=policy).get_message("m1")
    assert caught.value.problem is None and "upstream busy" in str(caught.value)
    caps = [0.5, 1.0, 1.0, 1.0, 1.0]
    assert all(0 <= s <= cap for s, cap in zip(sleeps, caps, strict=False))
    assert sum(sleeps) <= 2.0 + 1e-9
    assert len(script.requests) == len(sleeps) + 1 <= 6


def test_retry_after_as_an_http_date(script: Any, sleeps: Any,
                                     make_message: Callable[..., Any]) -> None:
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    script.answers += [httpx.Response(429, headers={"retry-after": past}),
                       ok({"message": make_message("m1")})]
    store(script, sleeps).get_message("m1")
    assert sleeps == [0.0]  # a date in the past: retry at once


def test_auth_not_configured_and_other_errors_are_not_retried(
        script: Any, make_problem: Callable[..., httpx.Response]) -> None:
    script.answers += [make_problem(503, "auth_not_configured"),
                       make_problem(500, "internal_error"), make_problem(409, "conflict")]
    client = store(script)
    with pytest.raises(AuthNotConfigured):
        client.get_message("m1")
    with pytest.raises(InternalError):
        client.get_message("m1")
    with pytest.raises(Conflict):
        client.create_message(user_id="u", sender={"id": "u"}, content="x")
    assert len(script.requests) == 3


def test_network_failures_are_retried_and_wrapped(script: Any, sleeps: Any,
                                                  make_message: Callable[..., Any]) -> None:
    script.answers += [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"),
                       ok({"message": make_message("m1")})]
    assert store(script, sleeps).get_message("m1")["id"] == "m1"
    assert len(sleeps) == 2
    script.answers += [httpx.ConnectError("refused")] * 2
    with pytest.raises(TransportError) as caught:
        store(script, sleeps, retry=RetryPolicy(max_attempts=2)).get_message("m1")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert caught.value.status is None
    script.answers += [httpx.ConnectError("refused")]
    with pytest.raises(TransportError):
        store(script, retry=RetryPolicy(retry_network_errors=False)).get_message("m1")


def test_a_delete_whose_answer_was_lost_counts_as_done(
        script: Any, sleeps: Any, make_problem: Callable[..., httpx.Response]) -> None:
    script.answers += [httpx.ReadError("connection reset"), make_problem(404, "not_found")]
    store(script, sleeps).delete_message("m1")  # the first attempt deleted it
    script.answers += [make_problem(404, "not_found")]
    with pytest.raises(NotFound):
        store(script, sleeps).delete_message("m1")  # nothing was ever sent before
    script.answers += [httpx.ConnectError("refused"), make_problem(404, "not_found")]
    with pytest.raises(NotFound):
        store(script, sleeps).delete_message("m1")  # the first attempt never reached it


# -- errors ------------------------------------------------------------------------------------

STATUS_OF = {"invalid_json": 400, "validation_error": 400, "unauthorized": 401,
             "forbidden": 403, "not_found": 404, "method_not_allowed": 405, "conflict": 409,
             "payload_too_large": 413, "unsupported_media_type": 415, "retention_expired": 422,
             "rate_limited": 429, "internal_error": 500, "auth_not_configured": 503,
             "storage_unavailable": 503}


@pytest.mark.parametrize("code", sorted(STATUS_OF))
def test_every_problem_code_raises_its_class_with_the_document(
        code: str, script: Any, make_problem: Callable[..., httpx.Response]) -> None:
    script.answers.append(make_problem(STATUS_OF[code], code, detail=f"because {code}", index=4))
    with pytest.raises(ChatStoreError) as caught:
        store(script, retry=RetryPolicy(max_attempts=1)).create_messages(
            [{"user_id": "u", "sender": {"id": "u"}, "content": "x"}])
    error = caught.value
    assert type(error) is ERROR_CLASSES[code] and type(error).code == code
    assert error.status == STATUS_OF[code]
    assert error.problem is not None and error.problem["code"] == code
    assert error.detail == f"because {code}" and error.index == 4
    assert code in str(error) and f"because {code}" in str(error)


def test_error_class_hierarchy() -> None:
    assert issubclass(InvalidJson, BadRequest) and issubclass(ValidationError, BadRequest)
    assert issubclass(StorageUnavailable, ServiceUnavailable)
    assert issubclass(AuthNotConfigured, ServiceUnavailable)
    for cls in (Unauthorized, Forbidden, NotFound, PayloadTooLarge, RetentionExpired,
                TransportError, ProtocolError):
        assert issubclass(cls, ChatStoreError)


def test_responses_that_are_not_problem_documents(script: Any) -> None:
    script.answers += [httpx.Response(404, html="<h1>Not here</h1>"),
                       httpx.Response(418, text="teapot"),
                       httpx.Response(400, json={"type": "x", "code": "brand_new_code",
                                                 "detail": "new"},
                                      headers={"content-type": "application/problem+json"}),
                       httpx.Response(200, text="not json"),
                       httpx.Response(200, json={"unexpected": True})]
    client = store(script)
    with pytest.raises(NotFound) as not_found:
        client.get_message("m1")
    assert not_found.value.problem is None and b"Not here" in not_found.value.body
    with pytest.raises(ChatStoreError) as teapot:
        client.get_message("m1")
    assert type(teapot.value) is ChatStoreError and teapot.value.status == 418
    with pytest.raises(BadRequest) as unknown:
        client.get_message("m1")
    assert type(unknown.value) is BadRequest and unknown.value.problem_code == "brand_new_code"
    with pytest.raises(ProtocolError):
        client.get_message("m1")
    with pytest.raises(ProtocolError):
        client.get_message("m1")


# -- pagination --------------------------------------------------------------------------------


def test_iterators_follow_next_cursor(script: Any, make_message: Callable[..., Any]) -> None:
    pages = [([make_message("m1"), make_message("m2")], "c1"), ([make_message("m3")], "c2"),
             ([], None)]
    script.answers += [ok({"messages": m, "next_cursor": c}) for m, c in pages]
    found = list(store(script).iter_conversation_messages("conv", order="asc", start=5,
                                                          page_size=2))
    assert [m["id"] for m in found] == ["m1", "m2", "m3"]
    queries = [dict(r.url.params) for r in script.requests]
    assert queries == [{"limit": "2", "order": "asc", "start": "5"},
                       {"limit": "2", "order": "asc", "start": "5", "cursor": "c1"},
                       {"limit": "2", "order": "asc", "start": "5", "cursor": "c2"}]
    assert all(r.url.path == "/v1/conversations/conv/messages" for r in script.requests)


def test_iter_user_messages_and_conversations(script: Any,
                                              make_message: Callable[..., Any]) -> None:
    script.answers += [ok({"messages": [make_message("m1")], "next_cursor": "x"}),
                       ok({"messages": [make_message("m2")], "next_cursor": None}),
                       ok({"conversations": [{"id": "c1"}], "next_cursor": "y"}),
                       ok({"conversations": [{"id": "c2"}], "next_cursor": None})]
    client = store(script)
    assert [m["id"] for m in client.iter_user_messages("alice")] == ["m1", "m2"]
    assert [c["id"] for c in client.iter_user_conversations("alice", page_size=1)] == ["c1", "c2"]
    assert script.requests[3].url.path == "/v1/users/alice/conversations"
    assert dict(script.requests[3].url.params) == {"limit": "1", "cursor": "y"}


def test_erase_until_done_repeats_and_sums(script: Any) -> None:
    script.answers += [ok({"deleted": 300, "remaining": 250}), ok({"deleted": 250, "remaining": 0})]
    assert store(script).erase_user_messages("u", until_done=True) == {
        "deleted": 550, "remaining": 0}
    script.answers += [ok({"deleted": 0, "remaining": 2})] * 4
    assert store(script).erase_user_messages("u", until_done=True) == {
        "deleted": 0, "remaining": 2}  # stalled: gives up after three rounds without progress
    assert len(script.requests) == 2 + 4


# -- export ------------------------------------------------------------------------------------


def ndjson(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


def export_page(body: bytes, cursor: str | None) -> httpx.Response:
    headers = {"content-type": "application/x-ndjson"}
    if cursor:
        headers["chat-store-next-cursor"] = cursor
        headers["link"] = f'</v1/users/u/export?limit=500&cursor={cursor}>; rel="next"'
    return httpx.Response(200, content=body, headers=headers)


def test_export_to_streams_every_page_verbatim(tmp_path: Path, script: Any, sleeps: Any,
                                               make_message: Callable[..., Any],
                                               make_problem: Callable[..., httpx.Response]) -> None:
    first = ndjson(make_message("m1"), make_message("m2", content="é ✈"))
    second = ndjson(make_message("m3"))
    script.answers += [export_page(first, "k1"),
                       make_problem(503, "storage_unavailable", {"retry-after": "1"}),
                       export_page(second, None)]
    target = tmp_path / "history.ndjson"
    assert store(script, sleeps).export_to(target, user_id="u", page_size=2) == 3
    assert target.read_bytes() == first + second
    assert [dict(r.url.params) for r in script.requests] == [
        {"limit": "2"}, {"limit": "2", "cursor": "k1"}, {"limit": "2", "cursor": "k1"}]
    assert sleeps == [1.0]
    assert os.listdir(tmp_path) == ["history.ndjson"]


class _BrokenStream(httpx.SyncByteStream):
    """A body that breaks off after its first chunk."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise httpx.ReadError("connection reset mid-body")


def test_export_to_cuts_off_a_page_broken_mid_body_before_retrying(
        tmp_path: Path, script: Any, sleeps: Any, make_message: Callable[..., Any]) -> None:
    body = ndjson(make_message("m1"), make_message("m2"))
    script.answers += [httpx.Response(200, stream=_BrokenStream(body[:30])),
                       export_page(body, None)]
    target = tmp_path / "c.ndjson"
    assert store(script, sleeps).export_to(target, conversation_id="c") == 2
    assert target.read_bytes() == body
    assert script.requests[0].url.path == "/v1/conversations/c/export"


def test_export_to_leaves_no_partial_file(tmp_path: Path, script: Any,
                                          make_message: Callable[..., Any],
                                          make_problem: Callable[..., httpx.Response]) -> None:
    target = tmp_path / "h.ndjson"
    target.write_bytes(b"previous export\n")
    script.answers += [export_page(ndjson(make_message("m1")), "k1"),
                       make_problem(403, "forbidden")]
    with pytest.raises(Forbidden):
        store(script).export_to(target, user_id="u")
    assert target.read_bytes() == b"previous export\n"
    assert os.listdir(tmp_path) == ["h.ndjson"]
    with pytest.raises(ValueError):
        store(script).export_to(target)


def test_export_pages_and_iter_export(script: Any, make_message: Callable[..., Any]) -> None:
    script.answers += [export_page(ndjson(make_message("m1")), "k"),
                       export_page(ndjson(make_message("m2")), None),
                       export_page(ndjson(make_message("m3")), None)]
    client = store(script)
    assert [m["id"] for m in client.iter_export(user_id="u")] == ["m1", "m2"]
    page = client.export_conversation_messages("c", limit=10)
    assert page == {"messages": [make_message("m3")], "next_cursor": None}


# -- configuration -----------------------------------------------------------------------------


def test_url_and_token_from_the_environment(monkeypatch: pytest.MonkeyPatch, script: Any) -> None:
    monkeypatch.setenv("CHAT_STORE_URL", "https://env.example/base/")
    monkeypatch.setenv("CHAT_STORE_TOKEN", "env-token")
    script.answers += [ok({"status": "ok"}), ok({"status": "ok"})]
    client = ChatStore(transport=httpx.MockTransport(script))
    assert client.get_health() == {"status": "ok"}
    assert str(script.requests[0].url) == "https://env.example/base/health"
    assert script.requests[0].headers["authorization"] == "Bearer env-token"
    ChatStore("http://arg.example", "arg-token",
              transport=httpx.MockTransport(script)).get_health()
    assert str(script.requests[1].url) == "http://arg.example/health"
    assert script.requests[1].headers["authorization"] == "Bearer arg-token"


@pytest.mark.usefixtures("no_env")
def test_configuration_errors_and_no_token(script: Any) -> None:
    with pytest.raises(ValueError, match="CHAT_STORE_URL"):
        ChatStore()
    with pytest.raises(ValueError):
        ChatStore("ftp://x")
    script.answers.append(ok({"status": "ok"}))
    ChatStore(BASE_URL, transport=httpx.MockTransport(script)).get_health()
    assert "authorization" not in script.requests[0].headers


@pytest.mark.usefixtures("no_env")
def test_a_token_function_is_asked_before_every_request(script: Any) -> None:
    tokens = iter(["jwt-1", "jwt-2"])
    script.answers += [ok({"status": "ok"}), ok({"status": "ok"})]
    client = ChatStore(BASE_URL, lambda: next(tokens), transport=httpx.MockTransport(script))
    client.get_health()
    client.get_health()
    assert [r.headers["authorization"] for r in script.requests] == [
        "Bearer jwt-1", "Bearer jwt-2"]


def test_a_custom_http_client_is_used_and_left_open(script: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_STORE_URL", "http://env.example")  # the client's own URL wins
    script.answers += [ok({"status": "ok"})]
    http = httpx.Client(base_url="http://from-client.example/api",
                        transport=httpx.MockTransport(script), headers={"x-trace": "t1"})
    with ChatStore(http_client=http, token="t") as client:
        client.get_health()
    assert str(script.requests[0].url) == "http://from-client.example/api/health"
    assert script.requests[0].headers["x-trace"] == "t1"
    assert not http.is_closed
    http.close()
    with pytest.raises(ValueError):
        ChatStore(BASE_URL, http_client=http, transport=httpx.MockTransport(script))


def test_ids_come_from_make_id(script: Any) -> None:
    script.answers.append(lambda r: ok({"message": json.loads(r.content)}))
    made = store(script, make_id=lambda: "fixed-id").create_message(
        user_id="u", sender={"id": "u"}, content="x")
    assert made["id"] == "fixed-id"


def test_default_ids_carry_the_current_time(script: Any) -> None:
    script.answers.append(lambda r: ok({"message": json.loads(r.content)}))
    before = time.time_ns() // 1_000_000
    made = store(script).create_message(user_id="u", sender={"id": "u"}, content="x")
    after = time.time_ns() // 1_000_000
    assert before <= decode_time(made["id"]) <= after
