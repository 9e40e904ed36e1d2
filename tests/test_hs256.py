"""Token vectors for ``jwt_auth.verify_hs256``: what must be accepted, and what must be refused.

Every refused vector is validly MAC'd with the right key unless the vector is about the MAC or
the encoding, so each one proves that the specific check fired, not that the signature failed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auth.hs256 import InvalidToken, JWTSettings, UserClaims, sign_hs256, verify_hs256

SECRET = b"k" * 32
OTHER_SECRET = b"x" * 32
NOW = 1_700_000_000
SETTINGS = JWTSettings(secret=SECRET, issuer="https://auth.example", audience="chat-store")
_DROP = object()


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "alice",
        "iss": "https://auth.example",
        "aud": "chat-store",
        "exp": NOW + 300,
        "iat": NOW,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


def token(header: dict[str, Any] | None = None, key: bytes = SECRET, **overrides: Any) -> str:
    return sign_hs256(claims(**overrides), key, header)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def raw_token(header: bytes | str, payload: bytes | str, key: bytes = SECRET) -> str:
    """Sign exact bytes, for JSON that ``json.dumps`` refuses to produce."""
    h = b64(header.encode() if isinstance(header, str) else header)
    p = b64(payload.encode() if isinstance(payload, str) else payload)
    sig = hmac.new(key, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(sig)}"


VALID = token()
H, P, S = VALID.split(".")
HS256 = '{"alg":"HS256","typ":"JWT"}'
GOOD_PAYLOAD = json.dumps(claims())
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# 32-byte MAC -> 43 chars, whose last char carries 2 unused bits; setting one keeps the bytes.
NON_CANONICAL_SIG = S[:-1] + _ALPHABET[_ALPHABET.index(S[-1]) | 1]
TAMPERED = b64(json.dumps(claims(sub="mallory")).encode())

ACCEPTED = [
    pytest.param(VALID, "alice", frozenset(), id="valid"),
    pytest.param(token(exp=NOW - 29), "alice", frozenset(), id="expired-within-leeway"),
    pytest.param(token(nbf=NOW + 30), "alice", frozenset(), id="nbf-within-leeway"),
    pytest.param(token(aud=["other", "chat-store"]), "alice", frozenset(), id="aud-list-has-us"),
    pytest.param(token({"alg": "HS256"}), "alice", frozenset(), id="typ-absent"),
    pytest.param(token({"alg": "HS256", "typ": "jwt"}), "alice", frozenset(), id="typ-lowercase"),
    pytest.param(token(iat=_DROP), "alice", frozenset(), id="iat-absent"),
    pytest.param(
        token(sub="u-1.A_b~", conversations=["c1", "c2", "c1"]),
        "u-1.A_b~",
        frozenset({"c1", "c2"}),
        id="conversations",
    ),
    pytest.param(token(sub="a" * 128), "a" * 128, frozenset(), id="sub-128-chars"),
]


@pytest.mark.parametrize(("tok", "sub", "conversations"), ACCEPTED)
def test_accepted(tok: str, sub: str, conversations: frozenset[str]) -> None:
    exp = json.loads(base64.urlsafe_b64decode(tok.split(".")[1] + "=="))["exp"]
    assert verify_hs256(tok, SETTINGS, NOW) == UserClaims(sub, conversations, exp)


REJECTED = [
    # Algorithm and header (each MAC'd with the real key: the header check itself must fire).
    pytest.param(token({"alg": "none", "typ": "JWT"}), id="alg-none"),
    pytest.param(b64(b'{"alg":"none"}') + f".{P}.", id="alg-none-unsigned"),
    pytest.param(token({"alg": "None"}), id="alg-None"),
    pytest.param(token({"alg": "HS512"}), id="alg-HS512"),
    pytest.param(token({"alg": "RS256"}), id="alg-RS256"),
    pytest.param(token({"alg": "hs256"}), id="alg-lowercase"),
    pytest.param(token({"alg": ["HS256"]}), id="alg-not-string"),
    pytest.param(token({"typ": "JWT"}), id="alg-missing"),
    pytest.param(token({"alg": "HS256", "typ": "at+jwt"}), id="typ-other"),
    pytest.param(token({"alg": "HS256", "typ": 1}), id="typ-not-string"),
    pytest.param(token({"alg": "HS256", "crit": ["exp"]}), id="crit-header"),
    pytest.param(raw_token('{"alg":"none","alg":"HS256"}', GOOD_PAYLOAD), id="duplicate-header"),
    pytest.param(raw_token("[]", GOOD_PAYLOAD), id="header-array"),
    pytest.param(raw_token('"HS256"', GOOD_PAYLOAD), id="header-string"),
    pytest.param(raw_token("null", GOOD_PAYLOAD), id="header-null"),
    pytest.param(raw_token("{alg:HS256}", GOOD_PAYLOAD), id="header-not-json"),
    pytest.param(raw_token("[" * 1200 + "]" * 1200, GOOD_PAYLOAD), id="header-deeply-nested"),
    # Encoding and structure.
    pytest.param(f"{H}.{P}.{S}=", id="padding-on-signature"),
    pytest.param(f"{b64(HS256.encode())}==.{P}.{S}", id="padding-on-header"),
    pytest.param(f"{H}.{P}.{S[:-1]}+", id="char-plus"),
    pytest.param(f"{H}.{P}.{S[:-1]}/", id="char-slash"),
    pytest.param(f"{H}.{P}.{S[:-1]}!", id="char-bang"),
    pytest.param(f"{H} .{P}.{S}", id="char-space"),
    pytest.param(f"{H}.{P[:-1]}é.{S}", id="char-non-ascii"),
    pytest.param(f"{H}.{P}.{NON_CANONICAL_SIG}", id="non-canonical-trailing-bits"),
    pytest.param(f"{H}.{P}.{S[:-2]}", id="truncated-signature"),
    pytest.param(f"{H}.{P}.{S}.{S}", id="four-segments"),
    pytest.param(f"{H}.{P}", id="two-segments"),
    pytest.param(f"{H}.{P}.", id="empty-signature"),
    pytest.param("", id="empty-token"),
    pytest.param("..", id="empty-segments"),
    pytest.param(token(pad="x" * 4096), id="oversize"),
    # MAC.
    pytest.param(token(key=OTHER_SECRET), id="wrong-key"),
    pytest.param(f"{H}.{TAMPERED}.{S}", id="tampered-payload"),
    pytest.param(b64(b'{"alg":"HS256"}') + f".{P}.{S}", id="tampered-header"),
    # Payload JSON.
    pytest.param(raw_token(HS256, "[1,2]"), id="payload-array"),
    pytest.param(raw_token(HS256, "not json"), id="payload-not-json"),
    pytest.param(raw_token(HS256, b"\xff\xfe"), id="payload-not-utf8"),
    pytest.param(raw_token(HS256, GOOD_PAYLOAD.encode("utf-16")), id="payload-utf16"),
    pytest.param(raw_token(HS256, "\ufeff" + GOOD_PAYLOAD), id="payload-bom"),
    pytest.param(
        raw_token(HS256, GOOD_PAYLOAD[:-1] + ',"sub":"mallory"}'), id="duplicate-claim"
    ),
    pytest.param(raw_token(HS256, GOOD_PAYLOAD[:-1] + ',"x":NaN}'), id="nan-in-payload"),
    pytest.param(
        raw_token(HS256, GOOD_PAYLOAD[:-1] + ',"x":-Infinity}'), id="infinity-in-payload"
    ),
    # Time claims.
    pytest.param(token(exp=NOW - 31), id="expired"),
    pytest.param(token(exp=NOW - 30), id="expired-leeway-boundary"),
    pytest.param(token(nbf=NOW + 31), id="not-yet-valid"),
    pytest.param(token(exp=NOW + 300.0), id="exp-float"),
    pytest.param(token(exp=str(NOW + 300)), id="exp-string"),
    pytest.param(token(exp=True), id="exp-bool"),
    pytest.param(token(exp=None), id="exp-null"),
    pytest.param(token(exp=_DROP), id="exp-missing"),
    pytest.param(raw_token(HS256, GOOD_PAYLOAD.replace(f"{NOW + 300}", "1e999")), id="exp-inf"),
    pytest.param(token(nbf=float(NOW)), id="nbf-float"),
    pytest.param(token(iat="now"), id="iat-string"),
    # Subject.
    pytest.param(token(sub=_DROP), id="sub-missing"),
    pytest.param(token(sub="alice/../bob"), id="sub-invalid-chars"),
    pytest.param(token(sub="alice\n"), id="sub-trailing-newline"),
    pytest.param(token(sub="a" * 129), id="sub-too-long"),
    pytest.param(token(sub=""), id="sub-empty"),
    pytest.param(token(sub=42), id="sub-int"),
    # Issuer and audience.
    pytest.param(token(iss="https://evil.example"), id="wrong-issuer"),
    pytest.param(token(iss=_DROP), id="issuer-missing"),
    pytest.param(token(aud="other"), id="wrong-audience"),
    pytest.param(token(aud=["other"]), id="audience-list-without-us"),
    pytest.param(token(aud=[]), id="audience-empty-list"),
    pytest.param(token(aud=_DROP), id="audience-missing"),
    pytest.param(token(aud={"chat-store": True}), id="audience-object"),
    # Conversations.
    pytest.param(token(conversations="c1"), id="conversations-string"),
    pytest.param(token(conversations={"c1": True}), id="conversations-object"),
    pytest.param(token(conversations=[1, 2]), id="conversations-ints"),
    pytest.param(token(conversations=["ok", "bad id"]), id="conversations-bad-id"),
    pytest.param(token(conversations=None), id="conversations-null"),
]


@pytest.mark.parametrize("tok", REJECTED)
def test_rejected(tok: str) -> None:
    with pytest.raises(InvalidToken):
        verify_hs256(tok, SETTINGS, NOW)


def test_too_many_conversations() -> None:
    roomy = JWTSettings(secret=SECRET, max_token_bytes=1 << 16)
    ids = [f"c{i}" for i in range(1001)]
    with pytest.raises(InvalidToken):
        verify_hs256(token(aud=_DROP, iss=_DROP, conversations=ids), roomy, NOW)
    result = verify_hs256(token(aud=_DROP, iss=_DROP, conversations=ids[:1000]), roomy, NOW)
    assert len(result.conversations) == 1000


def test_unconfigured_issuer_is_ignored_but_unexpected_audience_is_not() -> None:
    bare = JWTSettings(secret=SECRET)
    assert verify_hs256(token(aud=_DROP, iss="anyone"), bare, NOW).sub == "alice"
    with pytest.raises(InvalidToken):  # RFC 7519 §4.1.3: aud present, we are not named in it
        verify_hs256(VALID, bare, NOW)


def test_size_cap_is_checked_before_decoding() -> None:
    small = JWTSettings(secret=SECRET, issuer="https://auth.example", audience="chat-store",
                        max_token_bytes=len(VALID) - 1)
    with pytest.raises(InvalidToken, match="too large"):
        verify_hs256(VALID, small, NOW)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"secret": b"short"}, id="short-secret"),
        pytest.param({"secret": SECRET, "leeway_seconds": 61}, id="leeway-over-60"),
        pytest.param({"secret": SECRET, "leeway_seconds": -1}, id="leeway-negative"),
        pytest.param({"secret": SECRET, "leeway_seconds": True}, id="leeway-bool"),
        pytest.param({"secret": SECRET, "max_token_bytes": 0}, id="max-bytes-zero"),
    ],
)
def test_bad_settings_fail_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        JWTSettings(**kwargs)


def test_sign_is_deterministic_and_key_order_independent() -> None:
    assert sign_hs256({"b": 1, "a": 2}, SECRET) == sign_hs256({"a": 2, "b": 1}, SECRET)


def _verify_only_invalid_token(tok: str) -> None:
    with contextlib.suppress(InvalidToken):
        verify_hs256(tok, SETTINGS, NOW)


@given(st.text())
def test_arbitrary_text_only_raises_invalid_token(tok: str) -> None:
    _verify_only_invalid_token(tok)


@given(st.text(alphabet=_ALPHABET + ".=+/", max_size=200))
def test_base64ish_text_only_raises_invalid_token(tok: str) -> None:
    _verify_only_invalid_token(tok)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_claim_values = st.fixed_dictionaries(
    {},
    optional={name: _json for name in ("sub", "iss", "aud", "exp", "nbf", "iat", "conversations")},
)


@settings(max_examples=300)
@given(_claim_values, st.dictionaries(st.text(max_size=5), _json, max_size=3))
def test_correctly_signed_arbitrary_claims_only_raise_invalid_token(
    payload: dict[str, Any], extra_header: dict[str, Any]
) -> None:
    _verify_only_invalid_token(sign_hs256(payload, SECRET, {"alg": "HS256", **extra_header}))


@given(st.integers(min_value=0, max_value=len(VALID) - 1), st.sampled_from(_ALPHABET + "."))
def test_any_single_character_change_is_rejected(index: int, char: str) -> None:
    mutated = VALID[:index] + char + VALID[index + 1 :]
    if mutated != VALID:
        with pytest.raises(InvalidToken):
            verify_hs256(mutated, SETTINGS, NOW)
