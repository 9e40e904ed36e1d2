"""``jsonutil``: the strict request parser and the deterministic serializer."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from errors import InvalidJSON
from jsonutil import MAX_DEPTH, dumps, has_lone_surrogate, loads_strict


def nested_arrays(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def nested_objects(depth: int) -> bytes:
    text = "1"
    for _ in range(depth):
        text = '{"a":' + text + "}"
    return text.encode()


# --- loads_strict: what parses ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b'{"a":1,"b":[true,false,null]}', {"a": 1, "b": [True, False, None]},
                     id="object"),
        pytest.param(b"[]", [], id="empty-array"),
        pytest.param(b"{}", {}, id="empty-object"),
        pytest.param(b' \n\t{"a" : 1}\r\n ', {"a": 1}, id="surrounding-whitespace"),
        pytest.param(b'"x"', "x", id="bare-string"),
        pytest.param(b"0", 0, id="bare-number"),
        pytest.param(b"-0.5e3", -500.0, id="exponent"),
        pytest.param(b"9007199254740993", 9007199254740993, id="big-int-exact"),
        pytest.param('"héllo 👋"'.encode(), "héllo 👋", id="utf8-text"),
        pytest.param(b'"\\u00e9\\ud83d\\udc4b"', "é👋", id="escaped-surrogate-pair"),
        pytest.param(b'{"a":{"a":1},"b":{"a":2}}', {"a": {"a": 1}, "b": {"a": 2}},
                     id="same-key-in-sibling-objects"),
        pytest.param(b'{"NaN":"Infinity"}', {"NaN": "Infinity"}, id="constants-as-strings"),
        pytest.param(b'["[[[[", "{{{{"]', ["[[[[", "{{{{"], id="brackets-in-strings"),
    ],
)
def test_accepts(raw: bytes, expected: Any) -> None:
    assert loads_strict(raw) == expected


# --- loads_strict: what is refused -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"a":1,"a":1}', id="duplicate-same-value"),
        pytest.param(b'{"a":1,"a":2}', id="duplicate-different-value"),
        pytest.param(b'{"x":{"a":1,"b":2,"a":3}}', id="duplicate-nested"),
        pytest.param(b'[{"k":1,"k":1}]', id="duplicate-in-array-item"),
        pytest.param(b'{"\\u0061":1,"a":2}', id="duplicate-via-escape"),
        pytest.param(b"NaN", id="nan"),
        pytest.param(b"[NaN]", id="nan-in-array"),
        pytest.param(b'{"x":Infinity}', id="infinity"),
        pytest.param(b'{"x":-Infinity}', id="minus-infinity"),
        pytest.param(b"", id="empty"),
        pytest.param(b"   ", id="whitespace-only"),
        pytest.param(b'{"a":1', id="truncated"),
        pytest.param(b'{"a":1}x', id="trailing-garbage"),
        pytest.param(b'{"a":1}{"b":2}', id="two-documents"),
        pytest.param(b"{'a':1}", id="single-quotes"),
        pytest.param(b'{"a":1,}', id="trailing-comma"),
        pytest.param(b'{a:1}', id="unquoted-key"),
        pytest.param(b'"a\x01b"', id="raw-control-char"),
        pytest.param(b"[01]", id="leading-zero"),
        pytest.param(b"\xff", id="invalid-utf8-byte"),
        pytest.param(b'{"a":"\xc3"}', id="truncated-utf8-sequence"),
        pytest.param(b'"\xc0\xaf"', id="overlong-utf8"),
        pytest.param(b'"\xed\xa0\x80"', id="utf8-encoded-surrogate"),
        pytest.param(b"\xef\xbb\xbf{}", id="utf8-bom"),
        pytest.param(b"\xff\xfe{\x00}\x00", id="utf16-bom"),
    ],
)
def test_refuses_with_invalid_json(raw: bytes) -> None:
    with pytest.raises(InvalidJSON) as info:
        loads_strict(raw)
    assert info.value.detail  # a readable reason for the client


def test_duplicate_detail_names_the_member() -> None:
    with pytest.raises(InvalidJSON, match="dup"):
        loads_strict(b'{"dup":1,"dup":2}')


def test_invalid_utf8_detail_names_the_byte_offset() -> None:
    with pytest.raises(InvalidJSON, match=r"UTF-8.*byte 3"):
        loads_strict(b'"ab\xff"')


@pytest.mark.parametrize("make", [nested_arrays, nested_objects], ids=["arrays", "objects"])
def test_depth_32_is_accepted(make: Any) -> None:
    assert MAX_DEPTH == 32
    loads_strict(make(32))


@pytest.mark.parametrize("make", [nested_arrays, nested_objects], ids=["arrays", "objects"])
def test_depth_33_is_refused(make: Any) -> None:
    with pytest.raises(InvalidJSON, match="nesting"):
        loads_strict(make(33))


def test_depth_limit_is_configurable() -> None:
    loads_strict(nested_arrays(3), max_depth=3)
    with pytest.raises(InvalidJSON):
        loads_strict(nested_arrays(4), max_depth=3)


def test_very_deep_nesting_is_refused_without_recursion_error() -> None:
    with pytest.raises(InvalidJSON):
        loads_strict(nested_arrays(100_000))


def test_depth_counts_nesting_not_brackets() -> None:
    # 40 sibling arrays at depth 2 and brackets inside strings never exceed the limit.
    loads_strict(("[" + ",".join(["[]"] * 40) + "]").encode())
    loads_strict(('["' + "[" * 100 + '", "\\"[[[["]').encode())


def test_escaped_quote_does_not_end_the_string_for_the_depth_scan() -> None:
    # If `\"` ended the string, the brackets after it would be counted as nesting.
    text = '["\\"' + "[" * 40 + '"]'
    assert loads_strict(text.encode()) == ['"' + "[" * 40]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[1e400]", id="positive-overflow"),
        pytest.param(b'{"x":-1e400}', id="negative-overflow"),
        pytest.param(b'{"x":' + b"1" * 5000 + b"}", id="int-with-5000-digits"),
    ],
)
def test_numbers_json_cannot_represent_are_refused(raw: bytes) -> None:
    """A number that overflows to +-Infinity, or has more digits than CPython will convert,
    must be a clean ``InvalidJSON``: the parser promises never to yield Infinity, and any other
    exception type escapes the API's error table as a 500."""
    try:
        value = loads_strict(raw)
    except InvalidJSON:
        return
    pytest.fail(f"accepted a number JSON cannot round-trip: {dumps_or_error(value)}")


def dumps_or_error(value: Any) -> str:
    try:
        return dumps(value)
    except ValueError as exc:
        return f"<dumps fails: {exc}>"


# --- has_lone_surrogate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("plain", False, id="ascii"),
        pytest.param("é👋\U0010ffff", False, id="non-ascii"),
        pytest.param("\ud800", True, id="lone-high"),
        pytest.param("\udfff", True, id="lone-low"),
        pytest.param("a\udc00b", True, id="low-inside-text"),
        pytest.param(["ok", ["deep", "\ud83d"]], True, id="in-nested-list"),
        pytest.param({"k": {"k2": "\ud800"}}, True, id="in-nested-value"),
        pytest.param({"\ud800": 1}, True, id="in-key"),
        pytest.param({"k": [1, 2.5, None, True]}, False, id="non-strings"),
        pytest.param(12, False, id="number"),
        pytest.param(None, False, id="null"),
    ],
)
def test_has_lone_surrogate(value: Any, expected: bool) -> None:
    assert has_lone_surrogate(value) is expected


def test_lone_surrogate_escape_parses_but_is_detected() -> None:
    value = loads_strict(b'{"content":"x\\ud800"}')
    assert has_lone_surrogate(value)
    pair = loads_strict(b'{"content":"\\ud83d\\udc4b"}')
    assert not has_lone_surrogate(pair)


def _walk_has_lone_surrogate(value: Any) -> bool:
    """The definition: some string, key or value, at any depth, that UTF-8 cannot encode."""
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_walk_has_lone_surrogate(k) or _walk_has_lone_surrogate(v)
                   for k, v in value.items())
    if isinstance(value, list):
        return any(_walk_has_lone_surrogate(v) for v in value)
    return False


# ``st.text`` leaves lone surrogates out, so strings are joined from characters, half of them
# from the edges of the surrogate range.
texts_with_surrogates = st.lists(
    st.characters() | st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"]), max_size=6,
).map("".join)
values_with_surrogates = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | texts_with_surrogates,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(texts_with_surrogates, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(values_with_surrogates)
def test_has_lone_surrogate_finds_one_wherever_it_is(value: Any) -> None:
    assert has_lone_surrogate(value) is _walk_has_lone_surrogate(value)


# --- dumps -------------------------------------------------------------------------------------


def test_dumps_is_compact() -> None:
    assert dumps({"a": [1, 2], "b": {"c": None}}) == '{"a":[1,2],"b":{"c":null}}'


def test_dumps_keeps_non_ascii_as_is() -> None:
    assert dumps({"t": "héllo 👋 日本"}) == '{"t":"héllo 👋 日本"}'
    assert "\\u" not in dumps("é")


def test_dumps_escapes_what_json_requires() -> None:
    assert dumps('a"b\\c\n\x00') == '"a\\"b\\\\c\\n\\u0000"'


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, [1.0, {"x": math.inf}]],
                         ids=["nan", "inf", "-inf", "nested-inf"])
def test_dumps_refuses_non_finite_numbers(value: Any) -> None:
    with pytest.raises(ValueError):
        dumps(value)


def test_dumps_preserves_member_order() -> None:
    assert dumps({"b": 1, "a": 2}) == '{"b":1,"a":2}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_dumps_is_deterministic_and_round_trips(value: Any) -> None:
    text = dumps(value)
    assert dumps(value) == text
    assert dumps(json.loads(text)) == text  # a stored value re-serializes to the same bytes
    if not has_lone_surrogate(value):
        assert loads_strict(text.encode("utf-8")) == json.loads(text)
