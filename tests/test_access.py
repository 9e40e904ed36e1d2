"""Vectors for ``access_jwt``: Cloudflare Access RS256 tokens against keys the tests make.

Keys and signatures come from ``cryptography`` (a test-only dependency), so the pure-Python
verifier is checked against an independent implementation. Every refused vector is validly
signed with a published key unless the vector is about the signature or the key, so each one
proves that its specific check fired.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from auth.access import (
    REFETCH_MIN_INTERVAL_SECONDS,
    AccessClaims,
    AccessVerifier,
    access_certs_url,
    rsa_public_numbers,
)
from auth.hs256 import InvalidToken
from support.clock import ManualClock
from support.rsa_reference import PurePythonRsaVerifier, rsassa_pkcs1_v15_sha256_verify

ISSUER = "https://team.cloudflareaccess.com"
AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2"
JWKS_URL = access_certs_url(ISSUER)
NOW = 1_700_000_000
_DROP = object()


def _private_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


KEY_A = _private_key(2048)
KEY_B = _private_key(2048)
KEY_4096 = _private_key(4096)
WEAK_KEY = _private_key(1024)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64_uint(value: int) -> str:
    return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def jwk(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    base = {"kty": "RSA", "kid": kid, "n": b64_uint(numbers.n), "e": b64_uint(numbers.e)}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not _DROP}


def jwks(*keys: dict[str, Any]) -> dict[str, Any]:
    # Shaped like Cloudflare's /cdn-cgi/access/certs, whose extra members we must ignore.
    return {"keys": list(keys), "public_cert": {"kid": "x", "cert": "..."}, "public_certs": []}


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "aud": [AUD],
        "email": "alice@example.com",
        "exp": NOW + 300,
        "iat": NOW,
        "nbf": NOW,
        "iss": ISSUER,
        "type": "app",
        "identity_nonce": "6ei69kawdKzMIAPF",
        "sub": "7335d417-61da-459d-899c-0a01c76a2f94",
        "country": "US",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


def encode_json(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def rs256(key: rsa.RSAPrivateKey, message: bytes) -> bytes:
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def sign_raw(header: str, payload: str, key: rsa.RSAPrivateKey = KEY_A) -> str:
    """Sign already-encoded segments (for JSON that json.dumps would not produce)."""
    signing_input = f"{header}.{payload}"
    return f"{signing_input}.{b64(rs256(key, signing_input.encode()))}"


def token(
    header: dict[str, Any] | None = None, key: rsa.RSAPrivateKey = KEY_A, **overrides: Any
) -> str:
    if header is None:
        header = {"alg": "RS256", "kid": "a", "typ": "JWT"}
    return sign_raw(encode_json(header), encode_json(claims(**overrides)), key)


class FakeFetcher:
    """Serves a mutable JWKS document and counts requests; raises ``error`` when set."""

    def __init__(self, document: Any) -> None:
        self.document = document
        self.calls: list[str] = []
        self.error: Exception | None = None

    async def fetch(self, url: str) -> dict[str, Any]:
        self.calls.append(url)
        if self.error is not None:
            raise self.error
        return self.document  # type: ignore[no-any-return]


def at_now() -> ManualClock:
    """A clock standing at ``NOW``; the verifier reads it in seconds (``clock.seconds``)."""
    return ManualClock(NOW * 1000)


def verifier(
    document: Any = None, clock: ManualClock | None = None, **kwargs: Any
) -> tuple[AccessVerifier, FakeFetcher, ManualClock]:
    fetcher = FakeFetcher(jwks(jwk(KEY_A, "a")) if document is None else document)
    clock = clock or at_now()
    v = AccessVerifier(
        JWKS_URL, AUD, ISSUER, fetcher, PurePythonRsaVerifier(), clock.seconds, **kwargs
    )
    return v, fetcher, clock


def verify(tok: str, document: Any = None) -> AccessClaims:
    v, _, _ = verifier(document)
    return asyncio.run(v.verify(tok))


VALID = token()
H, P, S = VALID.split(".")
RS256_HEADER = encode_json({"alg": "RS256", "kid": "a", "typ": "JWT"})
GOOD_PAYLOAD = json.dumps(claims(), separators=(",", ":"))
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# 256-byte signature -> 342 chars, whose last char carries 4 unused bits; setting one keeps bytes.
NON_CANONICAL_SIG = S[:-1] + _ALPHABET[_ALPHABET.index(S[-1]) | 1]
_SIG = base64.urlsafe_b64decode(S + "==")
FLIPPED_SIG = b64(_SIG[:-1] + bytes([_SIG[-1] ^ 1]))


def hs256_with_public_key() -> str:
    """The classic confusion: HMAC keyed with the RSA public key's bytes, alg switched."""
    header = encode_json({"alg": "HS256", "kid": "a", "typ": "JWT"})
    payload = encode_json(claims())
    secret = json.dumps(jwk(KEY_A, "a")).encode()
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(mac)}"


def rs512() -> str:
    header = encode_json({"alg": "RS512", "kid": "a", "typ": "JWT"})
    payload = encode_json(claims())
    sig = KEY_A.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA512())
    return f"{header}.{payload}.{b64(sig)}"


def ps256() -> str:
    header = encode_json({"alg": "PS256", "kid": "a", "typ": "JWT"})
    payload = encode_json(claims())
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    sig = KEY_A.sign(f"{header}.{payload}".encode(), pss, hashes.SHA256())
    return f"{header}.{payload}.{b64(sig)}"


ACCEPTED = [
    pytest.param(VALID, id="valid"),
    pytest.param(token({"alg": "RS256", "kid": "a"}), id="typ-absent"),
    pytest.param(token(aud=AUD), id="aud-string"),
    pytest.param(token(aud=["other-app", AUD]), id="aud-list-has-us"),
    pytest.param(token(exp=NOW - 29), id="expired-within-leeway"),
    pytest.param(token(nbf=NOW + 30), id="nbf-within-leeway"),
    pytest.param(token(nbf=_DROP, iat=_DROP), id="nbf-and-iat-absent"),
    pytest.param(token(email=_DROP), id="email-absent"),
]


@pytest.mark.parametrize("tok", ACCEPTED)
def test_accepted(tok: str) -> None:
    payload = json.loads(base64.urlsafe_b64decode(tok.split(".")[1] + "=="))
    expected = AccessClaims(payload["sub"], payload.get("email"), payload["exp"])
    assert verify(tok) == expected


def test_4096_bit_key_and_key_rotation_order_do_not_matter() -> None:
    document = jwks(jwk(KEY_B, "b"), jwk(KEY_4096, "big"), jwk(KEY_A, "a"))
    tok = token({"alg": "RS256", "kid": "big"}, key=KEY_4096)
    assert verify(tok, document).sub == claims()["sub"]
    assert verify(VALID, document).sub == claims()["sub"]


REJECTED = [
    # Algorithm: pinned by us, never chosen by the token (each one validly signed for its alg).
    pytest.param(token({"alg": "none", "kid": "a"}), id="alg-none-signed"),
    pytest.param(encode_json({"alg": "none", "kid": "a"}) + f".{P}.", id="alg-none-unsigned"),
    pytest.param(hs256_with_public_key(), id="alg-HS256-public-key-as-secret"),
    pytest.param(rs512(), id="alg-RS512"),
    pytest.param(ps256(), id="alg-PS256"),
    pytest.param(token({"alg": "rs256", "kid": "a"}), id="alg-lowercase"),
    pytest.param(token({"alg": ["RS256"], "kid": "a"}), id="alg-not-string"),
    pytest.param(token({"kid": "a"}), id="alg-missing"),
    # Header.
    pytest.param(token({"alg": "RS256"}), id="kid-missing"),
    pytest.param(token({"alg": "RS256", "kid": ""}), id="kid-empty"),
    pytest.param(token({"alg": "RS256", "kid": 1}), id="kid-not-string"),
    pytest.param(token({"alg": "RS256", "kid": "a" * 257}), id="kid-too-long"),
    pytest.param(token({"alg": "RS256", "kid": "a", "typ": "at+jwt"}), id="typ-other"),
    pytest.param(token({"alg": "RS256", "kid": "a", "crit": ["exp"]}), id="crit"),
    pytest.param(
        sign_raw(b64(b'{"alg":"none","alg":"RS256","kid":"a"}'), b64(GOOD_PAYLOAD.encode())),
        id="duplicate-header-member",
    ),
    pytest.param(sign_raw(b64(b"[]"), b64(GOOD_PAYLOAD.encode())), id="header-array"),
    pytest.param(
        sign_raw(b64(b"[" * 1200 + b"]" * 1200), b64(GOOD_PAYLOAD.encode())),
        id="header-deeply-nested",
    ),
    # Encoding and structure.
    pytest.param(f"{H}.{P}.{S}=", id="padding-on-signature"),
    pytest.param(f"{H}.{P}.{NON_CANONICAL_SIG}", id="non-canonical-trailing-bits"),
    pytest.param(f"{H}.{P}.{S[:-1]}+", id="char-plus"),
    pytest.param(f"{H}.{P[:-1]}é.{S}", id="char-non-ascii"),
    pytest.param(f"{H}.{P}", id="two-segments"),
    pytest.param(f"{H}.{P}.{S}.{S}", id="four-segments"),
    pytest.param(f"{H}.{P}.", id="empty-signature"),
    pytest.param("", id="empty-token"),
    pytest.param(token(pad="x" * 8192), id="oversize"),
    # Signature.
    pytest.param(f"{H}.{P}.{FLIPPED_SIG}", id="tampered-signature"),
    pytest.param(f"{H}.{encode_json(claims(sub='mallory'))}.{S}", id="tampered-payload"),
    pytest.param(f"{encode_json({'alg': 'RS256', 'kid': 'a'})}.{P}.{S}", id="tampered-header"),
    pytest.param(token(key=KEY_B), id="signed-by-other-key-same-kid"),
    pytest.param(f"{H}.{P}.{b64(_SIG[1:])}", id="signature-one-byte-short"),
    pytest.param(f"{H}.{P}.{b64(bytes(1) + _SIG)}", id="signature-leading-zero-byte"),
    pytest.param(token({"alg": "RS256", "kid": "weak"}, key=WEAK_KEY), id="key-1024-bits"),
    # Payload JSON (validly signed).
    pytest.param(sign_raw(RS256_HEADER, b64(b"[1]")), id="payload-array"),
    pytest.param(sign_raw(RS256_HEADER, b64(b"\xff\xfe")), id="payload-not-utf8"),
    pytest.param(
        sign_raw(RS256_HEADER, b64((GOOD_PAYLOAD[:-1] + ',"sub":"mallory"}').encode())),
        id="duplicate-claim",
    ),
    pytest.param(
        sign_raw(RS256_HEADER, b64((GOOD_PAYLOAD[:-1] + ',"x":NaN}').encode())), id="nan"
    ),
    # Time.
    pytest.param(token(exp=NOW - 31), id="expired"),
    pytest.param(token(exp=NOW - 30), id="expired-leeway-boundary"),
    pytest.param(token(nbf=NOW + 31), id="not-yet-valid"),
    pytest.param(token(exp=_DROP), id="exp-missing"),
    pytest.param(token(exp=NOW + 300.0), id="exp-float"),
    pytest.param(token(exp=True), id="exp-bool"),
    pytest.param(token(nbf=str(NOW)), id="nbf-string"),
    pytest.param(token(iat="now"), id="iat-string"),
    # Issuer and audience.
    pytest.param(token(iss="https://evil.cloudflareaccess.com"), id="wrong-issuer"),
    pytest.param(token(iss=ISSUER + "/"), id="issuer-trailing-slash"),
    pytest.param(token(iss=_DROP), id="issuer-missing"),
    pytest.param(token(aud=["other-app"]), id="wrong-audience"),
    pytest.param(token(aud=[]), id="audience-empty-list"),
    pytest.param(token(aud=_DROP), id="audience-missing"),
    pytest.param(token(aud=[AUD, 1]), id="audience-list-with-non-string"),
    pytest.param(token(aud={AUD: True}), id="audience-object"),
    # Subject.
    pytest.param(token(sub=_DROP), id="sub-missing"),
    pytest.param(token(sub=1), id="sub-int"),
    pytest.param(token(email=["a@example.com"]), id="email-not-string"),
]


@pytest.mark.parametrize("tok", REJECTED)
def test_rejected(tok: str) -> None:
    document = jwks(jwk(KEY_A, "a"), jwk(WEAK_KEY, "weak"))
    with pytest.raises(InvalidToken):
        verify(tok, document)


def test_the_rejection_setup_accepts_the_unmodified_token() -> None:
    # Guard for the table above: each vector fails because of its change, not the setup.
    assert verify(VALID, jwks(jwk(KEY_A, "a"), jwk(WEAK_KEY, "weak"))).email == "alice@example.com"


# JWKS contents: which published keys may be used.
UNUSABLE_KEYS = [
    pytest.param(jwk(KEY_A, "a", use="enc"), id="use-enc"),
    pytest.param(jwk(KEY_A, "a", alg="RS512"), id="alg-RS512"),
    pytest.param(jwk(KEY_A, "a", alg="PS256"), id="alg-PS256"),
    pytest.param(jwk(KEY_A, "a", key_ops=["encrypt"]), id="key-ops-without-verify"),
    pytest.param(jwk(KEY_A, "a", kty="EC"), id="kty-EC"),
    pytest.param(jwk(KEY_A, "a", kty=_DROP), id="kty-missing"),
    pytest.param(jwk(KEY_A, "a", n=_DROP), id="n-missing"),
    pytest.param(jwk(KEY_A, "a", e=b64_uint(65536)), id="e-even"),
    pytest.param(jwk(KEY_A, "a", e=b64_uint(1)), id="e-one"),
    pytest.param(jwk(KEY_A, "a", e=b64_uint(1 << 40 | 1)), id="e-huge"),
    pytest.param(jwk(KEY_A, "a", n=jwk(KEY_A, "a")["n"] + "="), id="n-padded"),
    pytest.param(jwk(WEAK_KEY, "a"), id="modulus-1024-bits"),
    pytest.param(["not", "an", "object"], id="entry-not-object"),
]


@pytest.mark.parametrize("entry", UNUSABLE_KEYS)
def test_unusable_jwks_keys_are_skipped(entry: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="chat_store.access")
    with pytest.raises(InvalidToken, match="unknown kid"):
        verify(VALID, jwks(entry))
    assert "skipped" in caplog.text
    # ...while a usable key in the same set keeps working.
    other = token({"alg": "RS256", "kid": "b"}, key=KEY_B)
    assert verify(other, jwks(entry, jwk(KEY_B, "b"))).sub == claims()["sub"]


def test_key_below_2048_bits_is_never_used(caplog: pytest.LogCaptureFixture) -> None:
    # Even with a verifier that would accept anything, a weak published key is not selected.
    class AcceptAll:
        async def verify(self, key: dict[str, Any], signing_input: bytes, sig: bytes) -> bool:
            return True

    caplog.set_level(logging.DEBUG, logger="chat_store.access")
    fetcher = FakeFetcher(jwks(jwk(WEAK_KEY, "weak")))
    v = AccessVerifier(JWKS_URL, AUD, ISSUER, fetcher, AcceptAll(), at_now().seconds)
    with pytest.raises(InvalidToken, match="unknown kid"):
        asyncio.run(v.verify(token({"alg": "RS256", "kid": "weak"})))
    assert "RSA modulus must be 2048..8192 bits, got 1024" in caplog.text


def test_jwks_key_with_matching_optional_members_is_usable() -> None:
    entry = jwk(KEY_A, "a", use="sig", alg="RS256", key_ops=["verify"])
    assert verify(VALID, jwks(entry)).sub == claims()["sub"]


def test_duplicate_kid_in_jwks_is_refused() -> None:
    with pytest.raises(InvalidToken):
        verify(VALID, jwks(jwk(KEY_A, "a"), jwk(KEY_B, "a")))


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(None, id="null"),
        pytest.param([], id="array"),
        pytest.param({}, id="no-keys"),
        pytest.param({"keys": {"a": 1}}, id="keys-object"),
        pytest.param({"keys": [jwk(KEY_A, f"k{i}") for i in range(65)]}, id="too-many-keys"),
    ],
)
def test_malformed_jwks_document_is_invalid_token(document: Any) -> None:
    v, fetcher, _ = verifier()
    fetcher.document = document
    with pytest.raises(InvalidToken):
        asyncio.run(v.verify(VALID))


def test_sanitized_jwk_is_passed_to_the_rsa_verifier() -> None:
    seen: list[dict[str, Any]] = []

    class Recording:
        async def verify(self, key: dict[str, Any], signing_input: bytes, sig: bytes) -> bool:
            seen.append(key)
            assert signing_input == f"{H}.{P}".encode()
            return await PurePythonRsaVerifier().verify(key, signing_input, sig)

    fetcher = FakeFetcher(jwks(jwk(KEY_A, "a", use="sig", x5c=["..."], ext=True)))
    v = AccessVerifier(JWKS_URL, AUD, ISSUER, fetcher, Recording(), at_now().seconds)
    asyncio.run(v.verify(VALID))
    a = jwk(KEY_A, "a")
    assert seen == [{"kty": "RSA", "n": a["n"], "e": a["e"], "alg": "RS256"}]


@pytest.mark.parametrize(
    "result",
    [
        pytest.param(False, id="false"),
        pytest.param(1, id="truthy-non-bool"),
        pytest.param(RuntimeError("JsException: DataError"), id="raises"),
    ],
)
def test_rsa_verifier_anything_but_true_refuses(result: Any) -> None:
    class Stub:
        async def verify(self, key: dict[str, Any], signing_input: bytes, sig: bytes) -> Any:
            if isinstance(result, Exception):
                raise result
            return result

    fetcher = FakeFetcher(jwks(jwk(KEY_A, "a")))
    v = AccessVerifier(JWKS_URL, AUD, ISSUER, fetcher, Stub(), at_now().seconds)
    with pytest.raises(InvalidToken):
        asyncio.run(v.verify(VALID))


def test_malformed_tokens_never_cause_a_fetch() -> None:
    v, fetcher, _ = verifier()
    for tok in ("", "a.b", f"{H}.{P}.{S}=", token({"alg": "HS256", "kid": "a"}), rs512()):
        with pytest.raises(InvalidToken):
            asyncio.run(v.verify(tok))
    assert fetcher.calls == []


# The key cache: fetch counts.


def test_jwks_is_cached_for_cache_seconds() -> None:
    v, fetcher, clock = verifier(cache_seconds=300)
    for offset in (0, 1, 100, 299):
        clock.set_seconds(NOW + offset)
        asyncio.run(v.verify(token(exp=NOW + 1000)))
    assert fetcher.calls == [JWKS_URL]
    clock.set_seconds(NOW + 300)
    asyncio.run(v.verify(token(exp=NOW + 1000)))
    assert fetcher.calls == [JWKS_URL] * 2


def test_unknown_kid_refetches_once_then_fails_and_is_throttled() -> None:
    v, fetcher, clock = verifier()
    asyncio.run(v.verify(VALID))
    assert len(fetcher.calls) == 1
    unknown = token({"alg": "RS256", "kid": "nope"}, exp=NOW + 1000)

    # Within 30 s of the last fetch: no refetch at all.
    clock.set_seconds(NOW + REFETCH_MIN_INTERVAL_SECONDS - 1)
    with pytest.raises(InvalidToken):
        asyncio.run(v.verify(unknown))
    assert len(fetcher.calls) == 1

    # After 30 s: exactly one refetch, then failure; a burst of random kids costs nothing more.
    clock.set_seconds(NOW + REFETCH_MIN_INTERVAL_SECONDS)
    for kid in ("nope", "x1", "x2", "x3"):
        with pytest.raises(InvalidToken):
            asyncio.run(v.verify(token({"alg": "RS256", "kid": kid}, exp=NOW + 1000)))
    assert len(fetcher.calls) == 2

    # Known kids keep working from the cache meanwhile.
    asyncio.run(v.verify(token(exp=NOW + 1000)))
    assert len(fetcher.calls) == 2

    clock.set_seconds(NOW + 2 * REFETCH_MIN_INTERVAL_SECONDS)
    with pytest.raises(InvalidToken):
        asyncio.run(v.verify(unknown))
    assert len(fetcher.calls) == 3


def test_key_rotation_is_picked_up_by_the_unknown_kid_refetch() -> None:
    v, fetcher, clock = verifier()
    asyncio.run(v.verify(VALID))
    fetcher.document = jwks(jwk(KEY_A, "a"), jwk(KEY_B, "b"))  # Access publishes the new key
    clock.set_seconds(NOW + 60)
    rotated = token({"alg": "RS256", "kid": "b"}, key=KEY_B, exp=NOW + 1000)
    assert asyncio.run(v.verify(rotated)).sub == claims()["sub"]
    assert len(fetcher.calls) == 2
    # The old key is retired: after the cache expires it is gone.
    fetcher.document = jwks(jwk(KEY_B, "b"))
    clock.set_seconds(NOW + 60 + 300)
    with pytest.raises(InvalidToken):
        asyncio.run(v.verify(token(exp=NOW + 1000)))
    assert asyncio.run(v.verify(rotated)).sub == claims()["sub"]
    assert len(fetcher.calls) == 3


def test_fetch_error_is_invalid_token_and_retries_are_throttled() -> None:
    v, fetcher, clock = verifier()
    fetcher.error = OSError("connection reset")
    with pytest.raises(InvalidToken):
        asyncio.run(v.verify(VALID))
    clock.set_seconds(NOW + REFETCH_MIN_INTERVAL_SECONDS - 1)
    with pytest.raises(InvalidToken):
        asyncio.run(v.verify(VALID))
    assert len(fetcher.calls) == 1  # a down JWKS host is not hammered once per request
    fetcher.error = None
    clock.set_seconds(NOW + REFETCH_MIN_INTERVAL_SECONDS)
    assert asyncio.run(v.verify(VALID)).sub == claims()["sub"]
    assert len(fetcher.calls) == 2


def test_failed_refetch_keeps_known_keys() -> None:
    v, fetcher, clock = verifier()
    asyncio.run(v.verify(VALID))
    fetcher.error = TimeoutError()
    clock.set_seconds(NOW + 60)
    with pytest.raises(InvalidToken):
        asyncio.run(v.verify(token({"alg": "RS256", "kid": "new"}, exp=NOW + 1000)))
    assert asyncio.run(v.verify(token(exp=NOW + 1000))).sub == claims()["sub"]
    assert len(fetcher.calls) == 2


def test_clock_going_backwards_does_not_freeze_the_cache() -> None:
    v, fetcher, clock = verifier()
    asyncio.run(v.verify(VALID))
    clock.set_seconds(NOW - 3600)
    asyncio.run(v.verify(token(iat=NOW - 3600, nbf=NOW - 3600)))
    assert len(fetcher.calls) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"jwks_url": "http://team.cloudflareaccess.com/cdn-cgi/access/certs"},
                     id="jwks-http"),
        pytest.param({"issuer": "team.cloudflareaccess.com"}, id="issuer-no-scheme"),
        pytest.param({"issuer": ISSUER + "/"}, id="issuer-trailing-slash"),
        pytest.param({"issuer": "http://team.cloudflareaccess.com"}, id="issuer-http"),
        pytest.param({"audience": ""}, id="audience-empty"),
        pytest.param({"cache_seconds": 29}, id="cache-below-refetch-interval"),
        pytest.param({"cache_seconds": 86_401}, id="cache-too-long"),
        pytest.param({"leeway_seconds": 61}, id="leeway-too-large"),
        pytest.param({"leeway_seconds": -1}, id="leeway-negative"),
        pytest.param({"max_token_bytes": 0}, id="max-token-bytes-zero"),
    ],
)
def test_bad_configuration_fails_at_construction(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "jwks_url": JWKS_URL,
        "audience": AUD,
        "issuer": ISSUER,
        "fetcher": FakeFetcher(jwks()),
        "rsa": PurePythonRsaVerifier(),
        "clock": at_now().seconds,
    }
    args.update(kwargs)
    with pytest.raises(ValueError):
        AccessVerifier(**args)


def test_for_team_derives_the_certs_url() -> None:
    fetcher = FakeFetcher(jwks(jwk(KEY_A, "a")))
    v = AccessVerifier.for_team(ISSUER, AUD, fetcher, PurePythonRsaVerifier(), at_now().seconds)
    asyncio.run(v.verify(VALID))
    assert fetcher.calls == ["https://team.cloudflareaccess.com/cdn-cgi/access/certs"]


# PurePythonRsaVerifier against hand-built encoded messages (raw RSA with the private key).

_A_NUMBERS = KEY_A.private_numbers()
_N, _E, _D = _A_NUMBERS.public_numbers.n, _A_NUMBERS.public_numbers.e, _A_NUMBERS.d
_K = 256
_MESSAGE = b"header.payload"
_DIGEST = hashlib.sha256(_MESSAGE).digest()
_DI_SHA256 = bytes.fromhex("3031300d060960864801650304020105000420")
_DI_SHA256_NO_NULL = bytes.fromhex("302f300b0609608648016503040201") + b"\x04\x20"
_DI_SHA1 = bytes.fromhex("3021300906052b0e03021a05000414")


def raw_sign(encoded: bytes) -> bytes:
    """RSASP1 on an arbitrary encoded message: lets a test forge any padding layout."""
    assert len(encoded) == _K
    return pow(int.from_bytes(encoded, "big"), _D, _N).to_bytes(_K, "big")


def em(t: bytes, *, ps_len: int | None = None, prefix: bytes = b"\x00\x01") -> bytes:
    """prefix || FF * ps_len || 00 || t, then zero-filled to k bytes (a too-short padding)."""
    if ps_len is None:
        ps_len = _K - len(t) - len(prefix) - 1
    body = prefix + b"\xff" * ps_len + b"\x00" + t
    assert len(body) <= _K
    return body + b"\x00" * (_K - len(body))


def pure_verify(signature: bytes, message: bytes = _MESSAGE) -> bool:
    return asyncio.run(PurePythonRsaVerifier().verify(jwk(KEY_A, "a"), message, signature))


def test_pure_verifier_accepts_the_exact_encoding() -> None:
    signature = raw_sign(em(_DI_SHA256 + _DIGEST))
    assert signature == rs256(KEY_A, _MESSAGE)
    assert pure_verify(signature)


_T = _DI_SHA256 + _DIGEST
FORGED = [
    # Bleichenbacher 2006: short padding, the digest, then attacker-chosen bytes a lax parser
    # never looks at (with e = 3 these can be chosen to make a cube root exist).
    pytest.param(em(_T, ps_len=8), id="short-padding-zero-tail"),
    pytest.param(em(_T, ps_len=8)[: 2 + 8 + 1 + 51] + b"\x42" * (_K - 62), id="garbage-after-hash"),
    pytest.param(em(_T, ps_len=0), id="no-padding"),
    pytest.param(em(_T, prefix=b"\x00\x02"), id="block-type-2"),
    pytest.param(em(_T, prefix=b"\x00\x00"), id="block-type-0"),
    pytest.param(em(_DI_SHA256_NO_NULL + _DIGEST), id="digestinfo-without-null"),
    pytest.param(em(_DI_SHA1 + _DIGEST[:20]), id="sha1-digestinfo"),
    pytest.param(em(_DI_SHA256 + hashlib.sha256(b"other").digest()), id="other-message"),
    pytest.param(em(_T)[:100] + b"\xfe" + em(_T)[101:], id="non-ff-padding-byte"),
    pytest.param(em(_T)[:-1] + bytes([em(_T)[-1] ^ 1]), id="digest-last-bit"),
]


@pytest.mark.parametrize("encoded", FORGED)
def test_pure_verifier_rejects_forged_encodings(encoded: bytes) -> None:
    assert not pure_verify(raw_sign(encoded))


def test_pure_verifier_rejects_out_of_range_and_wrong_length_signatures() -> None:
    signature = rs256(KEY_A, _MESSAGE)
    assert not pure_verify(signature[1:] if signature[0] == 0 else signature[:-1])
    assert not pure_verify(b"\x00" + signature)
    # s + n is congruent to s but out of range (only possible to encode if it still fits k).
    s_plus_n = int.from_bytes(signature, "big") + _N
    if s_plus_n < 1 << (8 * _K):
        assert not pure_verify(s_plus_n.to_bytes(_K, "big"))
    assert not pure_verify(_N.to_bytes(_K, "big"))
    assert not pure_verify(b"\xff" * _K)


def test_pure_verifier_refuses_weak_keys() -> None:
    message = b"m"
    signature = rs256(WEAK_KEY, message)
    with pytest.raises(ValueError):
        asyncio.run(PurePythonRsaVerifier().verify(jwk(WEAK_KEY, "w"), message, signature))
    with pytest.raises(ValueError):
        rsa_public_numbers(jwk(KEY_A, "a", kty="oct"))


@settings(max_examples=50, deadline=None)
@given(message=st.binary(max_size=512), flip=st.integers(min_value=0, max_value=255 * 8))
def test_pure_verifier_agrees_with_cryptography(message: bytes, flip: int) -> None:
    signature = rs256(KEY_B, message)
    n = KEY_B.public_key().public_numbers().n
    assert rsassa_pkcs1_v15_sha256_verify(n, 65537, message, signature)
    damaged = bytearray(signature)
    damaged[flip // 8] ^= 1 << (flip % 8)
    assert not rsassa_pkcs1_v15_sha256_verify(n, 65537, message, bytes(damaged))
    assert not rsassa_pkcs1_v15_sha256_verify(n, 65537, message + b"x", signature)
