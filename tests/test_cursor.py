"""CursorCodec: a cursor decodes only for the query that issued it; anything else is a clean 400.

"Clean" means ``errors.ValidationError`` and nothing else: any other exception would surface as
a 500, so the properties below feed the decoder arbitrary text and mutated cursors.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from cursor import CursorCodec, CursorScope
from errors import ValidationError
from ids import ID_PATTERN
from index.zset import MAX_SCORE, MIN_SCORE, Entry

SECRET = "test-cursor-secret"
SCOPE = CursorScope("user:chat:alice", "desc", 0, MAX_SCORE)
POSITION = Entry(1_700_000_000_123, "chat:01HZX4Y3K9Q6B8N2M5P7R0T1VW")

ids = st.from_regex(ID_PATTERN, fullmatch=True)
members = st.builds(lambda i: f"chat:{i}", ids) | st.text(max_size=40)
positions = st.builds(Entry, st.integers(MIN_SCORE, MAX_SCORE), members)
scopes = st.builds(
    CursorScope,
    st.builds(lambda kind, i: f"{kind}:chat:{i}", st.sampled_from(["user", "conversation"]), ids),
    st.sampled_from(["asc", "desc"]),
    st.integers(MIN_SCORE, MAX_SCORE),
    st.integers(MIN_SCORE, MAX_SCORE),
)


def decode_bytes(cursor: str) -> bytes:
    """What the cursor's text means as bytes (unpadded urlsafe base64, as the codec reads it)."""
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def assert_rejected(codec: CursorCodec, cursor: str, scope: CursorScope) -> None:
    with pytest.raises(ValidationError):
        codec.decode(cursor, scope)


# -- round trip -------------------------------------------------------------------------------


def test_round_trip() -> None:
    codec = CursorCodec(SECRET)
    cursor = codec.encode(SCOPE, POSITION)
    assert codec.decode(cursor, SCOPE) == POSITION
    # URL-safe without escaping: it travels as a query parameter.
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    # Another codec with the same secret (another isolate) accepts it too.
    assert CursorCodec(SECRET).decode(cursor, SCOPE) == POSITION


@settings(max_examples=300, deadline=None)
@given(scope=scopes, position=positions)
def test_round_trip_any_scope_and_position(scope: CursorScope, position: Entry) -> None:
    codec = CursorCodec(SECRET)
    assert codec.decode(codec.encode(scope, position), scope) == position


# -- cursors for another query ------------------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        CursorScope("user:chat:bob", SCOPE.order, SCOPE.start, SCOPE.end),
        CursorScope("conversation:chat:alice", SCOPE.order, SCOPE.start, SCOPE.end),
        CursorScope(SCOPE.index, "asc", SCOPE.start, SCOPE.end),
        CursorScope(SCOPE.index, SCOPE.order, SCOPE.start + 1, SCOPE.end),
        CursorScope(SCOPE.index, SCOPE.order, SCOPE.start, SCOPE.end - 1),
    ],
    ids=["other-user", "other-index-kind", "other-order", "other-start", "other-end"],
)
def test_a_cursor_for_another_query_is_rejected(other: CursorScope) -> None:
    codec = CursorCodec(SECRET)
    assert_rejected(codec, codec.encode(SCOPE, POSITION), other)


def test_a_cursor_signed_with_another_secret_is_rejected() -> None:
    cursor = CursorCodec("another-secret").encode(SCOPE, POSITION)
    assert_rejected(CursorCodec(SECRET), cursor, SCOPE)


@settings(max_examples=200, deadline=None)
@given(scope=scopes, other=scopes, position=positions)
def test_any_foreign_scope_is_rejected(
    scope: CursorScope, other: CursorScope, position: Entry
) -> None:
    assume(scope != other)
    codec = CursorCodec(SECRET)
    assert_rejected(codec, codec.encode(scope, position), other)


# -- damaged cursors -------------------------------------------------------------------------------


def test_every_truncation_is_rejected() -> None:
    codec = CursorCodec(SECRET)
    cursor = codec.encode(SCOPE, POSITION)
    for length in range(len(cursor)):
        assert_rejected(codec, cursor[:length], SCOPE)


def test_every_single_character_flip_is_rejected() -> None:
    codec = CursorCodec(SECRET)
    cursor = codec.encode(SCOPE, POSITION)
    for i, char in enumerate(cursor):
        for replacement in "A0_-zQ":
            tampered = cursor[:i] + replacement + cursor[i + 1 :]
            if tampered == cursor:
                continue
            if decode_bytes(tampered) == decode_bytes(cursor):
                # Unpadded base64 leaves a few low bits of the last character unused, so some
                # edits of it spell the same bytes: the same cursor, not a forgery.
                assert i == len(cursor) - 1, (i, char, replacement)
                assert codec.decode(tampered, SCOPE) == POSITION
                continue
            assert_rejected(codec, tampered, SCOPE)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "=",
        "====",
        "a",
        "abcde",
        "!!!!",
        "not a cursor",
        "%00",
        "\x00",
        "é",
        "\ud800",  # a lone surrogate, as a query string decoder might hand us
        "A" * 22,  # exactly a MAC's worth of bytes and no payload
        "A" * 1024,
        "A" * 1025,
        "A" * 100_000,
        base64.urlsafe_b64encode(b"\x00" * 16 + b'[1,5,"chat:x"]').decode(),  # unsigned payload
    ],
)
def test_garbage_is_rejected(garbage: str) -> None:
    assert_rejected(CursorCodec(SECRET), garbage, SCOPE)


@settings(max_examples=500, deadline=None)
@given(text=st.text() | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789-_+/=", max_size=200))
@example(text="\ud800\udfff")
@example(text="-" * 1025)
def test_arbitrary_text_is_only_ever_a_validation_error(text: str) -> None:
    codec = CursorCodec(SECRET)
    valid = codec.encode(SCOPE, POSITION)
    assume(decode_bytes_or_none(text) != decode_bytes(valid))
    assert_rejected(codec, text, SCOPE)


@settings(max_examples=300, deadline=None)
@given(
    position=positions,
    cut=st.integers(0, 200),
    insert=st.text(max_size=4),
    flip=st.integers(0, 200),
)
def test_mutated_cursors_are_only_ever_a_validation_error(
    position: Entry, cut: int, insert: str, flip: int
) -> None:
    codec = CursorCodec(SECRET)
    cursor = codec.encode(SCOPE, position)
    variants = [
        cursor[: cut % len(cursor)],
        cursor[:flip % len(cursor)] + insert + cursor[flip % len(cursor) :],
        cursor[:flip % len(cursor)] + chr(ord(cursor[flip % len(cursor)]) ^ 0x20)
        + cursor[flip % len(cursor) + 1 :],
    ]
    for variant in variants:
        if decode_bytes_or_none(variant) == decode_bytes(cursor):
            # Same bytes (characters outside the alphabet are ignored, or unused low bits):
            # it is the original cursor, and decodes to the original position.
            assert codec.decode(variant, SCOPE) == position
        else:
            assert_rejected(codec, variant, SCOPE)


def decode_bytes_or_none(text: str) -> bytes | None:
    try:
        return decode_bytes(text)
    except ValueError:  # binascii.Error, or non-ASCII text
        return None
