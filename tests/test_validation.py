"""``validation``: the Validator (create / batch / patch bodies) and the query parsers."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest

from config import KIB, Config
from errors import ChatStoreError, PayloadTooLarge, ValidationError
from index.zset import MAX_SCORE, MIN_SCORE
from jsonutil import dumps
from store.model import DEFAULT_LIMIT, MessageDraft, RangeQuery
from validation import (
    MAX_BATCH,
    MAX_LIMIT,
    Validator,
    count_query,
    range_query,
)

V = Validator(Config())
SENDER = {"id": "s1"}
DROP: Any = object()


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"user_id": "u1", "sender": dict(SENDER), "content": "hi"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not DROP}


def sized_string(total_bytes: int, wrapper_bytes: int) -> str:
    return "x" * (total_bytes - wrapper_bytes)


# --- message: accepted --------------------------------------------------------------------------


def test_minimal_message() -> None:
    draft = V.message(body())
    assert draft == MessageDraft(user_id="u1", sender={"id": "s1"}, content="hi")
    assert draft.id is None and draft.timestamp is None
    assert draft.conversation_id is None and draft.metadata is None


def test_full_message() -> None:
    draft = V.message(body(
        id="m-1", conversation_id="c.1", timestamp=5, metadata={"k": [1, {"n": None}]},
        sender={"id": "s", "name": "N", "role": "assistant"}, content="",
    ))
    assert draft == MessageDraft(
        user_id="u1", sender={"id": "s", "name": "N", "role": "assistant"}, content="",
        id="m-1", conversation_id="c.1", timestamp=5, metadata={"k": [1, {"n": None}]},
    )


def test_sender_is_copied() -> None:
    sender = {"id": "s1"}
    draft = V.message(body(sender=sender))
    sender["id"] = "changed"
    assert draft.sender == {"id": "s1"}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("a", id="one-char"),
        pytest.param("x" * 128, id="128-chars"),
        pytest.param("AZaz09._~-", id="every-class"),
        pytest.param("...", id="three-dots"),
        pytest.param(".a", id="leading-dot"),
        pytest.param("01J0000000000000000000000", id="ulid-like"),
    ],
)
@pytest.mark.parametrize("field", ["id", "user_id", "conversation_id"])
def test_valid_ids(field: str, value: str) -> None:
    draft = V.message(body(**{field: value}))
    assert getattr(draft, field) == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param(".", id="dot-segment"),  # URL parsing removes it: never addressable
        pytest.param("..", id="dot-dot-segment"),
        pytest.param("x" * 129, id="129-chars"),
        pytest.param("a b", id="space"),
        pytest.param("a/b", id="slash"),
        pytest.param("a:b", id="colon"),
        pytest.param("a+b", id="plus"),
        pytest.param("a%20", id="percent"),
        pytest.param("é", id="non-ascii"),
        pytest.param("a\n", id="trailing-newline"),
        pytest.param(5, id="int"),
        pytest.param(None, id="null"),
        pytest.param(["a"], id="list"),
        pytest.param(True, id="bool"),
    ],
)
@pytest.mark.parametrize("field", ["id", "user_id", "conversation_id"])
def test_invalid_ids(field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=field):
        V.message(body(**{field: value}))


@pytest.mark.parametrize("value", [MIN_SCORE, 1, 1_700_000_000_000, MAX_SCORE],
                         ids=["zero", "one", "now", "max"])
def test_valid_timestamps(value: int) -> None:
    assert V.message(body(timestamp=value)).timestamp == value


@pytest.mark.parametrize("content", ["", "x", "é" * 10, "\x00", "👋"])
def test_any_string_content(content: str) -> None:
    assert V.message(body(content=content)).content == content


# --- message: refused ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        pytest.param(body(user_id=DROP), "user_id is required", id="no-user_id"),
        pytest.param(body(sender=DROP), "sender is required", id="no-sender"),
        pytest.param(body(content=DROP), "content or parts is required", id="no-content"),
        pytest.param(body(parts=None), "parts must be an array", id="parts-null"),
        pytest.param(body(parts={"type": "text"}), "parts must be an array", id="parts-object"),
        pytest.param(body(parts=["text"]), r"parts\[0\] must be an object", id="part-string"),
        pytest.param(body(parts=[{"text": "a"}]), r"parts\[0\].*string type", id="part-no-type"),
        pytest.param(body(parts=[{"type": "text", "text": "a"}, {"type": 1}]),
                     r"parts\[1\].*string type", id="part-type-int"),
        pytest.param(body(content=DROP, parts=[{"type": "text"}]), r"parts\[0\].*text",
                     id="text-part-without-text"),
        pytest.param(body(parts=[{"type": "text", "text": ["a"]}]), r"parts\[0\].*text",
                     id="text-part-text-list"),
        pytest.param(body(parts=[{"type": "data-x", "data": "\ud800"}]), "surrogate",
                     id="lone-surrogate-part"),
        pytest.param(body(extra=1), "unknown field.*extra", id="unknown-field"),
        pytest.param(body(created_at=1), "unknown field.*created_at", id="server-field"),
        pytest.param(body(edited_at=1), "unknown field.*edited_at", id="edited_at"),
        pytest.param(body(sender="s1"), "sender", id="sender-string"),
        pytest.param(body(sender=None), "sender", id="sender-null"),
        pytest.param(body(sender=[]), "sender", id="sender-list"),
        pytest.param(body(sender={}), "sender.id", id="sender-without-id"),
        pytest.param(body(sender={"id": 1}), "sender.id", id="sender-id-int"),
        pytest.param(body(sender={"id": ""}), "sender.id", id="sender-id-empty"),
        pytest.param(body(sender={"id": "x" * 129}), "sender.id", id="sender-id-129"),
        pytest.param(body(sender={"id": "s", "x": 1}), "unknown field.*sender", id="sender-extra"),
        pytest.param(body(sender={"id": "s", "name": 1}), "sender.name", id="sender-name-int"),
        pytest.param(body(sender={"id": "s", "name": None}), "sender.name",
                     id="sender-name-null"),
        pytest.param(body(sender={"id": "s", "role": ["a"]}), "sender.role",
                     id="sender-role-list"),
        pytest.param(body(content=None), "content", id="content-null"),
        pytest.param(body(content=1), "content", id="content-int"),
        pytest.param(body(content=["a"]), "content", id="content-list"),
        pytest.param(body(timestamp=True), "timestamp", id="timestamp-true"),
        pytest.param(body(timestamp=False), "timestamp", id="timestamp-false"),
        pytest.param(body(timestamp=1.0), "timestamp", id="timestamp-float-integral"),
        pytest.param(body(timestamp=1.5), "timestamp", id="timestamp-float"),
        pytest.param(body(timestamp="5"), "timestamp", id="timestamp-string"),
        pytest.param(body(timestamp=None), "timestamp", id="timestamp-null"),
        pytest.param(body(timestamp=-1), "timestamp", id="timestamp-negative"),
        pytest.param(body(timestamp=MAX_SCORE + 1), "timestamp", id="timestamp-2^53"),
        pytest.param(body(metadata=[]), "metadata", id="metadata-list"),
        pytest.param(body(metadata="x"), "metadata", id="metadata-string"),
        pytest.param(body(metadata=None), "metadata", id="metadata-null"),
        pytest.param(body(content="a\ud800"), "surrogate", id="lone-surrogate-content"),
        pytest.param(body(sender={"id": "s", "name": "\udfff"}), "surrogate",
                     id="lone-surrogate-sender"),
        pytest.param(body(metadata={"\ud800": 1}), "surrogate", id="lone-surrogate-key"),
        pytest.param([], "must be a JSON object", id="array-body"),
        pytest.param("x", "must be a JSON object", id="string-body"),
        pytest.param(None, "must be a JSON object", id="null-body"),
        pytest.param(1, "must be a JSON object", id="number-body"),
    ],
)
def test_message_refused(payload: Any, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        V.message(payload)


# --- structured content (parts) ----------------------------------------------------------------


UI_PARTS: list[dict[str, Any]] = [
    {"type": "step-start"},
    {"type": "reasoning", "text": "The user greets me.", "state": "done"},
    {"type": "text", "text": "Hello, "},
    {"type": "tool-weather", "toolCallId": "c1", "state": "output-available",
     "input": {"city": "Paris"}, "output": {"celsius": 21}},
    {"type": "text", "text": "it is 21 °C."},
    {"type": "file", "mediaType": "image/png", "url": "https://example.com/a.png"},
    {"type": "source-url", "sourceId": "s1", "url": "https://example.com"},
    {"type": "data-weather", "id": "d1", "data": {"nested": [1, {"deep": None}]}},
    {"type": "something-new", "whatever": True},
]


def test_parts_are_kept_verbatim_and_give_content_when_it_is_missing() -> None:
    draft = V.message(body(content=DROP, parts=UI_PARTS))
    assert draft.parts == UI_PARTS
    assert draft.content == "Hello, it is 21 °C."
    assert V.message(body(content=DROP, parts=[{"type": "step-start"}])).content == ""


def test_content_given_beside_parts_is_kept() -> None:
    draft = V.message(body(content="summary", parts=UI_PARTS))
    assert (draft.content, draft.parts) == ("summary", UI_PARTS)
    assert V.message(body()).parts is None


def test_a_patch_of_parts_alone_derives_content_too() -> None:
    assert V.patch({"parts": UI_PARTS}).changes == {"content": "Hello, it is 21 °C.",
                                                    "parts": UI_PARTS}
    assert V.patch({"parts": UI_PARTS, "content": "x"}).changes == {"content": "x",
                                                                    "parts": UI_PARTS}
    assert V.patch({"content": "x"}).changes == {"content": "x"}


def test_parts_limit_counts_serialized_bytes_and_names_itself() -> None:
    v = Validator(Config(max_parts_bytes=47))
    parts = [{"type": "text", "text": "x" * 20}]  # [{"type":"text","text":"xxx..."}]: 47 bytes
    assert len(dumps(parts).encode()) == 47
    assert v.message(body(content=DROP, parts=parts)).content == "x" * 20
    with pytest.raises(PayloadTooLarge, match=r"parts exceed 47 bytes \(MAX_PARTS_BYTES\)"):
        v.message(body(content=DROP, parts=[{"type": "text", "text": "x" * 21}]))
    with pytest.raises(PayloadTooLarge, match="MAX_PARTS_BYTES"):
        v.patch({"parts": [{"type": "text", "text": "x" * 21}]})
    assert Config().max_parts_bytes == 1024 * KIB


def test_content_derived_from_parts_is_not_held_to_the_content_limit() -> None:
    # MAX_PARTS_BYTES bounds it: tool-heavy answers carry much more than typed text.
    v = Validator(Config(max_content_bytes=4))
    assert v.message(body(content=DROP, parts=[{"type": "text", "text": "long text"}])).content \
        == "long text"
    with pytest.raises(PayloadTooLarge, match="content"):
        v.message(body(content="long text", parts=[]))


# --- size limits --------------------------------------------------------------------------------


def test_content_limit_counts_utf8_bytes() -> None:
    limit = 64 * KIB
    assert V.message(body(content="x" * limit)).content == "x" * limit
    with pytest.raises(PayloadTooLarge, match="content"):
        V.message(body(content="x" * (limit + 1)))
    # 32,769 characters, but 65,538 UTF-8 bytes
    with pytest.raises(PayloadTooLarge, match="content"):
        V.message(body(content="é" * (limit // 2 + 1)))
    V.message(body(content="é" * (limit // 2)))


def test_metadata_limit_counts_serialized_bytes() -> None:
    limit = 16 * KIB
    wrapper = len(dumps({"k": ""}).encode())
    exact = {"k": sized_string(limit, wrapper)}
    assert len(dumps(exact).encode()) == limit
    V.message(body(metadata=exact))
    with pytest.raises(PayloadTooLarge, match="metadata"):
        V.message(body(metadata={"k": sized_string(limit + 1, wrapper)}))


def test_sender_limit_counts_serialized_bytes() -> None:
    limit = 4 * KIB
    wrapper = len(dumps({"id": "s", "name": ""}).encode())
    exact = {"id": "s", "name": sized_string(limit, wrapper)}
    assert len(dumps(exact).encode()) == limit
    V.message(body(sender=exact))
    with pytest.raises(PayloadTooLarge, match="sender"):
        V.message(body(sender={"id": "s", "name": sized_string(limit + 1, wrapper)}))


def test_limits_come_from_config() -> None:
    v = Validator(Config(max_content_bytes=3, max_metadata_bytes=10, max_sender_bytes=20))
    v.message(body(content="abc"))
    with pytest.raises(PayloadTooLarge):
        v.message(body(content="abcd"))
    v.message(body(metadata={"a": "bc"}))  # {"a":"bc"}: 10 bytes
    with pytest.raises(PayloadTooLarge):
        v.message(body(metadata={"a": "bcd"}))
    v.message(body(sender={"id": "x" * 11}))  # {"id":"xxxxxxxxxxx"}: 20 bytes
    with pytest.raises(PayloadTooLarge):
        v.message(body(sender={"id": "x" * 12}))


def test_type_errors_win_over_size() -> None:
    v = Validator(Config(max_content_bytes=1))
    with pytest.raises(ValidationError):
        v.message(body(content=["long list", "of things"]))


# --- batch --------------------------------------------------------------------------------------


def items(n: int, **overrides: Any) -> list[dict[str, Any]]:
    return [body(id=f"m{i}", **overrides) for i in range(n)]


def test_batch_accepts_1_to_100() -> None:
    assert MAX_BATCH == 100
    assert [d.id for d in V.batch({"messages": items(1)})] == ["m0"]
    drafts = V.batch({"messages": items(MAX_BATCH)})
    assert [d.id for d in drafts] == [f"m{i}" for i in range(MAX_BATCH)]


def test_batch_items_without_ids_are_not_duplicates() -> None:
    drafts = V.batch({"messages": [body(), body()]})
    assert [d.id for d in drafts] == [None, None]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({}, id="missing-messages"),
        pytest.param({"messages": None}, id="null"),
        pytest.param({"messages": {}}, id="object"),
        pytest.param({"messages": []}, id="empty"),
        pytest.param({"messages": items(MAX_BATCH + 1)}, id="101-items"),
        pytest.param({"messages": items(1), "extra": 1}, id="unknown-top-level-field"),
        pytest.param([body()], id="bare-array"),
    ],
)
def test_batch_shape_refused(payload: Any) -> None:
    with pytest.raises(ValidationError):
        V.batch(payload)


BAD_ITEMS: list[Any] = [
    pytest.param(body(extra=1), ValidationError, id="unknown-field"),
    pytest.param(body(content=DROP), ValidationError, id="missing-content"),
    pytest.param(body(timestamp=1.0), ValidationError, id="float-timestamp"),
    pytest.param(body(id="bad id"), ValidationError, id="bad-id"),
    pytest.param("not an object", ValidationError, id="not-an-object"),
    pytest.param(body(id="m1"), ValidationError, id="duplicate-id"),
    pytest.param(body(content="x" * (64 * KIB + 1)), PayloadTooLarge, id="content-too-large"),
    pytest.param(body(metadata={"k": "x" * (16 * KIB)}), PayloadTooLarge,
                 id="metadata-too-large"),
    pytest.param(body(content="\ud800"), ValidationError, id="lone-surrogate"),
]


@pytest.mark.parametrize(("bad", "error"), BAD_ITEMS)
def test_batch_item_error_names_its_index(bad: Any, error: type[ChatStoreError]) -> None:
    messages: list[Any] = items(3)
    messages.append(bad)
    messages.extend(body(id=f"later{i}") for i in range(2))
    with pytest.raises(error) as info:
        V.batch({"messages": messages})
    assert "messages[3]" in info.value.detail
    assert info.value.extensions == {"index": 3}


def test_batch_reports_the_first_bad_item() -> None:
    messages = items(5)
    messages[1] = body(extra=1)
    messages[4] = body(extra=1)
    with pytest.raises(ValidationError) as info:
        V.batch({"messages": messages})
    assert info.value.extensions == {"index": 1}


# --- patch --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "changes"),
    [
        pytest.param({"content": ""}, {"content": ""}, id="content"),
        pytest.param({"sender": {"id": "s2", "role": "bot"}},
                     {"sender": {"id": "s2", "role": "bot"}}, id="sender"),
        pytest.param({"metadata": {}}, {"metadata": {}}, id="metadata"),
        pytest.param({"timestamp": 0}, {"timestamp": 0}, id="timestamp"),
        pytest.param({"content": "a", "timestamp": MAX_SCORE},
                     {"content": "a", "timestamp": MAX_SCORE}, id="several"),
    ],
)
def test_patch_accepted(payload: dict[str, Any], changes: dict[str, Any]) -> None:
    assert V.patch(payload).changes == changes


@pytest.mark.parametrize(
    ("payload", "error", "match"),
    [
        pytest.param({"id": "m1"}, ValidationError, "cannot change id", id="id"),
        pytest.param({"user_id": "u1"}, ValidationError, "cannot change user_id", id="user_id"),
        pytest.param({"conversation_id": "c"}, ValidationError, "cannot change conversation_id",
                     id="conversation_id"),
        pytest.param({"content": "x", "user_id": "u2"}, ValidationError, "user_id",
                     id="immutable-with-valid-change"),
        pytest.param({}, ValidationError, "nothing to change", id="empty"),
        pytest.param({"created_at": 1}, ValidationError, "unknown", id="created_at"),
        pytest.param({"edited_at": 1}, ValidationError, "unknown", id="edited_at"),
        pytest.param({"content": None}, ValidationError, "content", id="content-null"),
        pytest.param({"sender": {}}, ValidationError, "sender", id="sender-no-id"),
        pytest.param({"metadata": None}, ValidationError, "metadata", id="metadata-null"),
        pytest.param({"timestamp": 1.0}, ValidationError, "timestamp", id="timestamp-float"),
        pytest.param({"timestamp": True}, ValidationError, "timestamp", id="timestamp-bool"),
        pytest.param({"timestamp": "1"}, ValidationError, "timestamp", id="timestamp-string"),
        pytest.param({"timestamp": -1}, ValidationError, "timestamp", id="timestamp-negative"),
        pytest.param({"content": "\ud800"}, ValidationError, "surrogate", id="lone-surrogate"),
        pytest.param([{"content": "x"}], ValidationError, "object", id="array"),
        pytest.param(None, ValidationError, "object", id="null"),
        pytest.param({"content": "x" * (64 * KIB + 1)}, PayloadTooLarge, "content",
                     id="content-too-large"),
    ],
)
def test_patch_refused(payload: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        V.patch(payload)


# --- range_query --------------------------------------------------------------------------------


def q(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(parse_qsl(text, keep_blank_values=True))


def test_range_query_defaults() -> None:
    assert range_query(()) == RangeQuery(
        limit=DEFAULT_LIMIT, order="desc", start=MIN_SCORE, end=MAX_SCORE, cursor=None
    )
    assert (DEFAULT_LIMIT, MAX_LIMIT) == (50, 100)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("limit=1", RangeQuery(limit=1), id="limit-1"),
        pytest.param("limit=100", RangeQuery(limit=100), id="limit-100"),
        pytest.param("limit=007", RangeQuery(limit=7), id="limit-leading-zeros"),
        pytest.param("order=asc", RangeQuery(order="asc"), id="asc"),
        pytest.param("order=desc", RangeQuery(order="desc"), id="desc"),
        pytest.param("start=5&end=5", RangeQuery(start=5, end=5), id="start-equals-end"),
        pytest.param("start=0", RangeQuery(start=0), id="start-0"),
        pytest.param(f"end={MAX_SCORE}", RangeQuery(end=MAX_SCORE), id="end-max"),
        pytest.param(f"start={MAX_SCORE}", RangeQuery(start=MAX_SCORE), id="start-max"),
        pytest.param("end=0", RangeQuery(end=0), id="end-0"),
        pytest.param("cursor=abc", RangeQuery(cursor="abc"), id="cursor-passed-through"),
        pytest.param("cursor=abc&order=asc&limit=3&start=1&end=9",
                     RangeQuery(limit=3, order="asc", start=1, end=9, cursor="abc"), id="all"),
    ],
)
def test_range_query_accepted(text: str, expected: RangeQuery) -> None:
    assert range_query(q(text)) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param("limit=0", "limit", id="limit-0"),
        pytest.param("limit=101", "limit", id="limit-101"),
        pytest.param("limit=-1", "limit", id="limit-negative"),
        pytest.param("limit=+5", "limit", id="limit-plus-sign"),
        pytest.param("limit=1.0", "limit", id="limit-float"),
        pytest.param("limit=1e1", "limit", id="limit-exponent"),
        pytest.param("limit=", "limit", id="limit-empty"),
        pytest.param("limit=%205", "limit", id="limit-space"),
        pytest.param("limit=%D9%A3", "limit", id="limit-arabic-digit"),
        pytest.param("limit=abc", "limit", id="limit-word"),
        pytest.param("order=ASC", "order", id="order-uppercase"),
        pytest.param("order=up", "order", id="order-other"),
        pytest.param("order=", "order", id="order-empty"),
        pytest.param("start=-1", "start", id="start-negative"),
        pytest.param(f"start={MAX_SCORE + 1}", "start", id="start-2^53"),
        pytest.param(f"end={MAX_SCORE + 1}", "end", id="end-2^53"),
        pytest.param("end=" + "9" * 17, "end", id="end-17-digits"),
        pytest.param("start=1.5", "start", id="start-float"),
        pytest.param("start=6&end=5", "start must not be greater than end", id="start-gt-end"),
        pytest.param("cursor=", "cursor", id="cursor-empty"),
        pytest.param("limit=1&limit=2", "more than once", id="repeated-limit"),
        pytest.param("order=asc&order=asc", "more than once", id="repeated-same-value"),
        pytest.param("offset=5", "unknown query parameter", id="unknown"),
        pytest.param("Limit=5", "unknown query parameter", id="case-sensitive-name"),
        pytest.param("user_id=u1", "unknown query parameter", id="user_id"),
    ],
)
def test_range_query_refused(text: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        range_query(q(text))


# --- count_query --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", (MIN_SCORE, MAX_SCORE), id="defaults"),
        pytest.param("start=3", (3, MAX_SCORE), id="start"),
        pytest.param("end=3", (MIN_SCORE, 3), id="end"),
        pytest.param("start=3&end=3", (3, 3), id="equal"),
        pytest.param(f"start=0&end={MAX_SCORE}", (0, MAX_SCORE), id="full-range"),
    ],
)
def test_count_query_accepted(text: str, expected: tuple[int, int]) -> None:
    assert count_query(q(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("start=4&end=3", id="start-gt-end"),
        pytest.param("limit=5", id="limit-not-allowed"),
        pytest.param("order=asc", id="order-not-allowed"),
        pytest.param("cursor=x", id="cursor-not-allowed"),
        pytest.param("start=1&start=2", id="repeated"),
        pytest.param("start=x", id="non-numeric"),
        pytest.param("end=-3", id="negative"),
        pytest.param("start=", id="empty"),
    ],
)
def test_count_query_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        count_query(q(text))
