"""Verification of user tokens: compact JWS, HS256 only, following RFC 8725 (JWT BCP).

Why each check:

* Size cap first, before decoding or hashing, so a huge header cannot buy CPU or memory.
* One algorithm, pinned by us, never chosen by the token (8725 §2.1, §3.1): ``alg`` must be
  exactly ``"HS256"``; ``none``/``None``, other HMACs and RS*/ES* are refused, which closes the
  "alg: none" and RSA-public-key-as-HMAC-secret confusions. No ``kid``/``jku``/``jwk``/``x5u`` is
  ever looked at: the key is configuration, not something the token can point to.
* ``crit`` is refused: we implement no extensions, and RFC 7515 §4.1.11 says an unknown critical
  one must fail (this also rules out RFC 7797 unencoded payloads).
* ``typ``, when present, must be ``JWT`` (8725 §3.11) so another JWS kind is not accepted as ours.
* Strict, canonical base64url (RFC 7515 §2): no ``=``, nothing outside the alphabet, and non-zero
  trailing bits refused, so one token has exactly one spelling and lenient decoders cannot
  disagree with us about what was signed.
* The MAC covers the received ``header.payload`` bytes and is compared in constant time; nothing
  is re-serialized, and the payload is only parsed after the MAC has verified (8725 §3.4).
* JSON must be strict UTF-8 (RFC 8259 §8.1) holding an object with unique member names (RFC 7515
  §5.2 allows rejecting duplicates; parsers that keep the first vs. the last one would otherwise
  read different claims) and no NaN/Infinity, which are not JSON.
* Claims are typed exactly (``bool`` is not an ``int``), ``exp`` is mandatory, clock leeway is
  bounded by 60 s, and ``iss``/``aud`` are compared exactly (8725 §3.8, §3.9). A token that
  carries ``aud`` is refused when no audience is configured, as RFC 7519 §4.1.3 requires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from errors import InvalidJSON
from ids import is_valid_id
from jsonutil import loads_strict

__all__ = ["InvalidToken", "JWTSettings", "UserClaims", "sign_hs256", "verify_hs256"]

MAX_LEEWAY_SECONDS = 60
MAX_CONVERSATIONS = 1000
_MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key must be at least as long as the hash.
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class InvalidToken(Exception):
    """Any reason a token is refused. The message is for logs; clients get one generic 401."""


@dataclass(frozen=True)
class JWTSettings:
    secret: bytes
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = 30
    max_token_bytes: int = 4096

    def __post_init__(self) -> None:
        # Fail at startup, not per request: a bad config must not quietly weaken every check.
        if len(self.secret) < _MIN_SECRET_BYTES:
            raise ValueError(f"HS256 secret must be at least {_MIN_SECRET_BYTES} bytes")
        leeway = self.leeway_seconds
        if type(leeway) is not int or not 0 <= leeway <= MAX_LEEWAY_SECONDS:
            raise ValueError(f"leeway_seconds must be an int in 0..{MAX_LEEWAY_SECONDS}")
        if type(self.max_token_bytes) is not int or self.max_token_bytes <= 0:
            raise ValueError("max_token_bytes must be a positive int")


@dataclass(frozen=True)
class UserClaims:
    sub: str
    conversations: frozenset[str]
    exp: int


# -- strict JOSE decoding, shared with auth/access.py -----------------------------------------


def b64url_decode(segment: str, what: str = "segment") -> bytes:
    """Unpadded, canonical base64url or InvalidToken (never binascii.Error)."""
    # Alphabet and length checked up front, so the decoder below cannot raise binascii.Error
    # (a length of 4n+1 is never valid base64) and never silently skips characters.
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise InvalidToken(f"{what} is not unpadded base64url")
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if _b64encode(raw) != segment:
        raise InvalidToken(f"{what} is non-canonical base64url (non-zero trailing bits)")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    """A strict UTF-8 JSON object (no duplicate members, no NaN) or InvalidToken."""
    try:
        value = loads_strict(raw)  # the request bodies' parser: UTF-8 only, no duplicates
    except InvalidJSON as exc:
        raise InvalidToken(f"{what} is not valid JSON: {exc.detail}") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"{what} is not a JSON object")
    return value


def int_claim(claims: dict[str, Any], name: str) -> int | None:
    """An optional NumericDate claim: an integer, not a bool, float or string."""
    if name not in claims:
        return None
    value = claims[name]
    if type(value) is not int:  # bool is an int subclass; floats and strings are not NumericDate
        raise InvalidToken(f"{name} must be an integer NumericDate")
    return value


def _id(value: Any, what: str) -> str:
    if not is_valid_id(value):
        raise InvalidToken(f"{what} is not a valid id")
    return str(value)


@dataclass(frozen=True)
class CompactToken:
    """A JWS compact serialization whose header has been checked; payload not yet trusted."""

    header: dict[str, Any]
    signing_input: bytes  # the received ``header.payload`` bytes, never re-serialized
    payload_b64: str
    signature_b64: str


def parse_compact(token: str, *, alg: str, max_bytes: int) -> CompactToken:
    """Split ``token`` and check its header: the part of RFC 8725 common to every JWT we take."""
    # Every valid character is ASCII (1 byte), so the char count bounds the byte count cheaply.
    if not isinstance(token, str) or len(token) > max_bytes:
        raise InvalidToken("token missing or too large")
    if not token.isascii():
        raise InvalidToken("token is not ASCII")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("token must have exactly three segments")
    header_b64, payload_b64, signature_b64 = parts
    header = json_object(b64url_decode(header_b64, "header"), "header")
    if header.get("alg") != alg:
        raise InvalidToken(f"alg must be {alg}")
    typ = header.get("typ", "JWT")
    # isascii: Unicode case folding maps a few non-ASCII letters onto ASCII ones.
    if not isinstance(typ, str) or not typ.isascii() or typ.lower() != "jwt":
        raise InvalidToken("typ must be JWT")
    if "crit" in header:
        raise InvalidToken("crit extensions are not supported")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return CompactToken(header, signing_input, payload_b64, signature_b64)


def check_times(claims: dict[str, Any], now: float, leeway: int) -> int:
    """Check ``exp`` (required), ``nbf`` and ``iat``; returns ``exp``."""
    exp = int_claim(claims, "exp")
    if exp is None:  # a token that never expires cannot be revoked by waiting
        raise InvalidToken("exp is required")
    if not now < exp + leeway:
        raise InvalidToken("token expired")
    nbf = int_claim(claims, "nbf")
    if nbf is not None and not now >= nbf - leeway:
        raise InvalidToken("token not yet valid")
    int_claim(claims, "iat")
    return exp


def verify_hs256(token: str, settings: JWTSettings, now: float) -> UserClaims:
    """Return the user's claims if ``token`` is a valid HS256 JWT for ``settings`` at ``now``."""
    compact = parse_compact(token, alg="HS256", max_bytes=settings.max_token_bytes)
    signature = b64url_decode(compact.signature_b64, "signature")
    expected = hmac.new(settings.secret, compact.signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise InvalidToken("bad signature")

    claims = json_object(b64url_decode(compact.payload_b64, "payload"), "payload")
    exp = check_times(claims, now, settings.leeway_seconds)
    sub = _id(claims.get("sub"), "sub")
    if settings.issuer is not None and claims.get("iss") != settings.issuer:
        raise InvalidToken("wrong issuer")
    if "aud" in claims or settings.audience is not None:
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if (
            settings.audience is None
            or not isinstance(audiences, list)
            or not all(isinstance(a, str) for a in audiences)
            or settings.audience not in audiences
        ):
            raise InvalidToken("wrong audience")
    conversations = claims.get("conversations", [])
    if not isinstance(conversations, list) or len(conversations) > MAX_CONVERSATIONS:
        raise InvalidToken(f"conversations must be a list of at most {MAX_CONVERSATIONS} ids")
    return UserClaims(
        sub=sub,
        conversations=frozenset(_id(c, "conversation id") for c in conversations),
        exp=exp,
    )


def sign_hs256(claims: dict[str, Any], secret: bytes, header: dict[str, Any] | None = None) -> str:
    """Build a compact HS256 JWS (for tests and docs). JSON is compact, key-sorted, NaN-free."""

    def encode(obj: dict[str, Any]) -> str:
        text = json.dumps(obj, separators=(",", ":"), sort_keys=True, allow_nan=False)
        return _b64encode(text.encode("utf-8"))

    if header is None:
        header = {"alg": "HS256", "typ": "JWT"}
    signing_input = f"{encode(header)}.{encode(claims)}"
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64encode(signature)}"
