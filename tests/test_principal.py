"""``auth.Authenticator`` and ``auth.Principal``: which credential wins, and that every refusal
looks the same to the client (one exception type, one detail string), whatever went wrong."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given
from hypothesis import strategies as st

from auth import principal as auth
from auth.access import AccessVerifier, access_certs_url
from auth.hs256 import JWTSettings, sign_hs256
from auth.principal import UNAUTHORIZED_DETAIL, Authenticator, Principal
from errors import Unauthorized
from support.rsa_reference import PurePythonRsaVerifier

NOW = 1_700_000_000
API_TOKEN = "service-token-0123456789abcdef"
SECRET = b"s" * 32
JWT = JWTSettings(secret=SECRET, issuer="https://auth.example", audience="chat-store")
ISSUER = "https://team.cloudflareaccess.com"
AUD = "a" * 64
ACCESS_SUB = "7335d417-61da-459d-899c-0a01c76a2f94"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64_uint(value: int) -> str:
    return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def user_token(**overrides: Any) -> str:
    claims: dict[str, Any] = {
        "sub": "alice",
        "iss": "https://auth.example",
        "aud": "chat-store",
        "exp": NOW + 300,
        "conversations": ["c1", "c2"],
    }
    claims.update(overrides)
    return sign_hs256(claims, SECRET)


def access_token(**overrides: Any) -> str:
    claims: dict[str, Any] = {
        "aud": [AUD],
        "email": "alice@example.com",
        "exp": NOW + 300,
        "iat": NOW,
        "iss": ISSUER,
        "sub": ACCESS_SUB,
    }
    claims.update(overrides)
    header = b64(json.dumps({"alg": "RS256", "kid": "k1", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = KEY.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{b64(signature)}"


class Fetcher:
    def __init__(self) -> None:
        numbers = KEY.public_key().public_numbers()
        key = {"kty": "RSA", "kid": "k1", "n": b64_uint(numbers.n), "e": b64_uint(numbers.e)}
        self.document = {"keys": [key]}
        self.error: Exception | None = None

    async def fetch(self, url: str) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return self.document


def clock() -> float:
    return NOW


def access_verifier(fetcher: Fetcher | None = None) -> AccessVerifier:
    return AccessVerifier(
        access_certs_url(ISSUER), AUD, ISSUER, fetcher or Fetcher(), PurePythonRsaVerifier(), clock
    )


def authenticator(
    api_token: str | None = API_TOKEN,
    jwt: JWTSettings | None = JWT,
    access: AccessVerifier | None = None,
) -> Authenticator:
    return Authenticator(api_token, jwt, access, clock)


def authenticate(headers: Mapping[str, str], authn: Authenticator | None = None) -> Principal:
    return asyncio.run((authn or authenticator()).authenticate(headers))


def refused(headers: Mapping[str, str], authn: Authenticator | None = None) -> Unauthorized:
    with pytest.raises(Unauthorized) as info:
        authenticate(headers, authn)
    return info.value


def assert_generic(error: Unauthorized) -> None:
    # The client-visible parts of the error are identical for every reason.
    assert type(error) is Unauthorized
    assert error.detail == UNAUTHORIZED_DETAIL
    assert error.extensions == {}
    assert error.__cause__ is None


# Accepted credentials.


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(f"Bearer {API_TOKEN}", id="canonical"),
        pytest.param(f"bearer {API_TOKEN}", id="scheme-lowercase"),
        pytest.param(f"BEARER {API_TOKEN}", id="scheme-uppercase"),
        pytest.param(f"Bearer   {API_TOKEN}", id="several-spaces"),
        pytest.param(f" Bearer {API_TOKEN}\t", id="surrounding-whitespace"),
    ],
)
def test_service_token(value: str) -> None:
    principal = authenticate({"authorization": value})
    assert principal == Principal.service()
    assert principal.is_service


def test_user_token() -> None:
    principal = authenticate({"authorization": f"Bearer {user_token()}"})
    assert principal == Principal("user", "alice", frozenset({"c1", "c2"}))
    assert not principal.is_service


def test_user_token_works_without_a_service_token_configured() -> None:
    principal = authenticate({"authorization": f"Bearer {user_token()}"}, authenticator(None))
    assert principal.user_id == "alice"


def test_service_token_wins_over_an_access_assertion() -> None:
    headers = {"authorization": f"Bearer {API_TOKEN}", "cf-access-jwt-assertion": "garbage"}
    assert authenticate(headers, authenticator(access=access_verifier())).is_service


def test_access_assertion() -> None:
    authn = authenticator(access=access_verifier())
    principal = authenticate({"cf-access-jwt-assertion": access_token()}, authn)
    assert principal == Principal.user(ACCESS_SUB)
    assert principal.conversations == frozenset()


def test_access_assertion_without_other_auth_configured() -> None:
    authn = authenticator(None, None, access_verifier())
    assert authenticate({"cf-access-jwt-assertion": access_token()}, authn).user_id == ACCESS_SUB


# Refused credentials: all look the same.

WRONG_AUTHORIZATION = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("Bearer", id="scheme-only"),
    pytest.param("Bearer ", id="scheme-and-space"),
    pytest.param("bearer x", id="wrong-token-lowercase-scheme"),
    pytest.param("Bearer x", id="wrong-token"),
    pytest.param(f"Bearer {API_TOKEN}x", id="service-token-plus-one"),
    pytest.param(f"Bearer {API_TOKEN[:-1]}", id="service-token-minus-one"),
    pytest.param(f"Bearer {API_TOKEN.upper()}", id="service-token-other-case"),
    pytest.param(API_TOKEN, id="no-scheme"),
    pytest.param(f"Bearer{API_TOKEN}", id="no-space"),
    pytest.param(f"Bearer\t{API_TOKEN}", id="tab-separator"),
    pytest.param(f"Bearer {API_TOKEN} extra", id="two-tokens"),
    pytest.param(f"Bearer {API_TOKEN}, Basic x", id="two-credentials"),
    pytest.param(f"Token {API_TOKEN}", id="other-scheme"),
    pytest.param("Basic YWxpY2U6cGFzc3dvcmQ=", id="basic"),
    pytest.param(f"Basic {API_TOKEN}", id="basic-with-service-token"),
    pytest.param(f"Bearer {API_TOKEN}\u00e9", id="non-ascii"),
    pytest.param(f"Bearer {API_TOKEN}\n", id="trailing-newline"),
    pytest.param(f"Bearer {user_token(exp=NOW - 100)}", id="user-token-expired"),
    pytest.param(f"Bearer {user_token(aud='other')}", id="user-token-wrong-audience"),
    pytest.param(f"Bearer {sign_hs256({'sub': 'alice', 'exp': NOW + 300}, b'x' * 32)}",
                 id="user-token-wrong-key"),
    pytest.param(f"Bearer {user_token(sub='bad id')}", id="user-token-bad-sub"),
    pytest.param(f"Bearer {access_token()}", id="access-token-as-bearer"),
]


@pytest.mark.parametrize("value", WRONG_AUTHORIZATION)
def test_wrong_authorization_is_refused_generically(value: str) -> None:
    assert_generic(refused({"authorization": value}))
    # The same when Access is also configured and a valid assertion rides along: an explicit
    # Authorization header is never silently replaced by another credential.
    authn = authenticator(access=access_verifier())
    assert_generic(
        refused({"authorization": value, "cf-access-jwt-assertion": access_token()}, authn)
    )


def test_no_credentials() -> None:
    assert_generic(refused({}))
    assert_generic(refused({"x-api-key": API_TOKEN, "cookie": f"token={API_TOKEN}"}))


def test_user_tokens_refused_when_jwt_not_configured() -> None:
    authn = authenticator(jwt=None)
    assert_generic(refused({"authorization": f"Bearer {user_token()}"}, authn))
    assert authenticate({"authorization": f"Bearer {API_TOKEN}"}, authn).is_service


def test_nothing_configured_refuses_everything() -> None:
    authn = Authenticator(None, None, None, clock)
    assert_generic(refused({"authorization": f"Bearer {API_TOKEN}"}, authn))
    assert_generic(refused({"cf-access-jwt-assertion": access_token()}, authn))


@pytest.mark.parametrize(
    "assertion",
    [
        pytest.param(access_token(sub=""), id="access-service-token-empty-sub"),
        pytest.param(access_token(sub="alice@example.com"), id="sub-outside-id-grammar"),
        pytest.param(access_token(sub="a" * 129), id="sub-too-long"),
        pytest.param(access_token(aud=["other"]), id="wrong-audience"),
        pytest.param(access_token(exp=NOW - 100), id="expired"),
        pytest.param(user_token(), id="hs256-token"),
        pytest.param("", id="empty"),
        pytest.param(f"Bearer {access_token()}", id="with-scheme"),
    ],
)
def test_bad_access_assertion_is_refused_generically(assertion: str) -> None:
    authn = authenticator(access=access_verifier())
    assert_generic(refused({"cf-access-jwt-assertion": assertion}, authn))


def test_access_assertion_ignored_when_access_not_configured() -> None:
    assert_generic(refused({"cf-access-jwt-assertion": access_token()}))


def test_jwks_fetch_failure_is_a_generic_refusal() -> None:
    fetcher = Fetcher()
    fetcher.error = ConnectionError("jwks host down")
    authn = authenticator(access=access_verifier(fetcher))
    assert_generic(refused({"cf-access-jwt-assertion": access_token()}, authn))


def test_reason_is_logged_at_debug_without_the_credential(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="chat_store.auth")
    wrong = "Bearer not-the-secret-value"
    expired = user_token(exp=NOW - 100)
    refused({"authorization": wrong})
    refused({"authorization": f"Bearer {expired}"})
    messages = [r.getMessage() for r in caplog.records if r.name == "chat_store.auth"]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "chat_store.auth")
    assert any("token expired" in m for m in messages)
    assert len(messages) == 2
    for message in messages:
        assert "not-the-secret-value" not in message
        assert expired not in message
        assert API_TOKEN not in message


@given(st.text(max_size=200))
def test_arbitrary_authorization_values_are_refused_or_service(value: str) -> None:
    try:
        principal = authenticate({"authorization": value})
    except Unauthorized as error:
        assert_generic(error)
    else:
        assert principal.is_service
        assert value.strip(" \t").split(" ")[-1] == API_TOKEN


def test_service_token_comparison_is_constant_time_and_length_blind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    # Replace auth's own reference only: auth.hs256's MAC check also uses compare_digest.
    monkeypatch.setattr(auth, "hmac", SimpleNamespace(compare_digest=spy))
    for candidate in ("x", API_TOKEN[:-1], API_TOKEN, API_TOKEN * 10, user_token()):
        with contextlib.suppress(Unauthorized):
            authenticate({"authorization": f"Bearer {candidate}"})
    # Always compared, and always as two 32-byte digests: no early exit on a length mismatch.
    assert len(calls) == 5
    assert all(isinstance(a, bytes) and len(a) == len(b) == 32 for a, b in calls)


@pytest.mark.parametrize("value", ["Bearer ", "Bearer", "", "Bearer  "])
def test_empty_api_token_means_no_service_token(value: str) -> None:
    authn = Authenticator("", None, None, clock)
    assert_generic(refused({"authorization": value}, authn))


# Principal.


def test_service_principal_reaches_everything() -> None:
    service = Principal.service()
    assert service.is_service
    assert service.can_access_user("anyone")
    assert service.can_access_conversation("any-conversation")


def test_user_principal_reaches_only_itself_and_listed_conversations() -> None:
    alice = Principal.user("alice", frozenset({"c1"}))
    assert not alice.is_service
    assert alice.can_access_user("alice")
    assert not alice.can_access_user("bob")
    assert not alice.can_access_user("Alice")
    assert not alice.can_access_user("")
    assert alice.can_access_conversation("c1")
    assert not alice.can_access_conversation("c2")
    assert not alice.can_access_conversation("alice")  # a user id is not a conversation id
    assert not Principal.user("bob").can_access_conversation("c1")


@pytest.mark.parametrize(
    ("kind", "user_id", "conversations"),
    [
        pytest.param("service", "alice", frozenset(), id="service-with-user"),
        pytest.param("service", None, frozenset({"c1"}), id="service-with-conversations"),
        pytest.param("user", None, frozenset(), id="user-without-id"),
        pytest.param("user", "", frozenset(), id="user-empty-id"),
        pytest.param("user", "bad id", frozenset(), id="user-bad-id"),
        pytest.param("user", "alice", frozenset({"bad id"}), id="user-bad-conversation"),
        pytest.param("admin", None, frozenset(), id="unknown-kind"),
    ],
)
def test_malformed_principals_cannot_be_built(
    kind: Any, user_id: str | None, conversations: frozenset[str]
) -> None:
    with pytest.raises(ValueError):
        Principal(kind, user_id, conversations)
