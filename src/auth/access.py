"""Verification of Cloudflare Access assertions: compact JWS, RS256 only, keys from a JWKS URL.

Cloudflare Access puts a signed JWT in the ``Cf-Access-Jwt-Assertion`` header of every request
it lets through. Checking it in the Worker (rather than trusting that the request came through
Access) is what Cloudflare recommends: anything that can reach the Worker's hostname directly,
or a misconfigured Access policy, would otherwise be trusted blindly.

The module is a pure core plus two injected capabilities, so the same logic runs on CPython in
the tests and in Pyodide in the Worker:

* :class:`JwksFetcher` downloads the team's key set (``entry.py`` uses the Workers ``fetch``).
* :class:`RsaVerifier` checks one RSASSA-PKCS1-v1_5/SHA-256 signature. In the Worker that is
  WebCrypto (``crypto.subtle``); the tests use a pure-Python reference
  (``tests/rsa_reference.py``).

Why each check (RFC 8725, the JWT BCP, as in ``auth/hs256.py``):

* Size cap and strict, canonical base64url/JSON before anything else, and before any network
  access, so a malformed token costs no fetch and one token has exactly one spelling.
* The algorithm is pinned by us: ``alg`` must be exactly ``"RS256"``. ``none``, HS256 (the
  "RSA public key used as an HMAC secret" confusion), RS512, PS256 ... are refused. ``jku``,
  ``jwk``, ``x5u`` and ``x5c`` are never looked at: keys come only from the configured URL.
* ``kid`` is required and only selects among keys we fetched ourselves; a key is usable only if
  it is ``kty: RSA``, its ``use``/``alg``/``key_ops`` (when present) allow RS256 signing, and its
  modulus is 2048..8192 bits (smaller is factorable, larger only buys an attacker CPU).
* Keys are cached for ``cache_seconds``. An unknown ``kid`` triggers one refetch (Access rotates
  its keys), but never more than once per ``REFETCH_MIN_INTERVAL_SECONDS``: otherwise every
  token with a random ``kid`` would make us fetch, turning the Worker into a request amplifier
  against the JWKS host and burning our own subrequest budget. A failed fetch blocks further
  fetches for the same interval, for the same reason.
* ``exp`` is mandatory, ``nbf`` honoured, leeway at most 60 s; ``iss`` must equal the team
  domain exactly and ``aud`` must contain the application's AUD tag (an Access token for
  another application of the same team is signed by the same keys and must not be accepted).
* Every failure, including a fetch error or an exception from the injected verifier, raises
  :class:`auth.hs256.InvalidToken`; the message is for logs, never for the client.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from auth.hs256 import (
    MAX_LEEWAY_SECONDS,
    InvalidToken,
    b64url_decode,
    check_times,
    json_object,
    parse_compact,
)

__all__ = [
    "MIN_MODULUS_BITS",
    "REFETCH_MIN_INTERVAL_SECONDS",
    "AccessClaims",
    "AccessVerifier",
    "JwksFetcher",
    "RsaVerifier",
    "access_certs_url",
    "rsa_public_numbers",
]

log = logging.getLogger("chat_store.access")

REFETCH_MIN_INTERVAL_SECONDS = 30
MIN_MODULUS_BITS = 2048
MAX_MODULUS_BITS = 8192
MAX_CACHE_SECONDS = 86_400
# Same bound as Go's crypto/rsa: real keys use 65537; a huge exponent only makes pow() slow.
_MAX_PUBLIC_EXPONENT = (1 << 31) - 1
_MAX_JWKS_KEYS = 64
_MAX_KID_CHARS = 256
# An Access issuer is exactly "https://<team>.cloudflareaccess.com" (or a custom domain): no
# path and no trailing "/", which would silently never match the token's ``iss``.
_ISSUER = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?")
# DER of DigestInfo{ AlgorithmIdentifier{ id-sha256, NULL }, OCTET STRING (32 bytes) } without
# the digest itself (RFC 8017 §9.2, note 1).


class RsaVerifier(Protocol):
    """One RSASSA-PKCS1-v1_5 + SHA-256 signature check against a public JWK.

    ``jwk`` is a sanitized ``{"kty": "RSA", "n": ..., "e": ..., "alg": "RS256"}``. Return True
    only for a valid signature; returning False or raising both make the token invalid.
    """

    async def verify(self, jwk: dict[str, Any], signing_input: bytes, signature: bytes) -> bool:
        ...


class JwksFetcher(Protocol):
    """GET ``url`` and return the parsed JSON document; raise on any HTTP or parse error."""

    async def fetch(self, url: str) -> dict[str, Any]:
        ...


@dataclass(frozen=True)
class AccessClaims:
    """What the caller needs from a verified Access token.

    ``sub`` is Access's stable user id (a UUID for people; the empty string for Access service
    tokens); ``email`` is informational only, since it can change and is not an id.
    """

    sub: str
    email: str | None
    exp: int


@dataclass(frozen=True)
class _Key:
    jwk: dict[str, Any]
    modulus_bytes: int


def access_certs_url(issuer: str) -> str:
    """The JWKS URL Cloudflare Access serves for a team domain."""
    return f"{issuer}/cdn-cgi/access/certs"


def _jwk_uint(jwk: dict[str, Any], name: str) -> int:
    value = jwk.get(name)
    # Length cap before decoding: 8192 bits is 1366 base64url characters.
    if not isinstance(value, str) or not 0 < len(value) <= 2 * MAX_MODULUS_BITS // 8:
        raise ValueError(f"JWK {name} must be a non-empty base64url string")
    try:
        return int.from_bytes(b64url_decode(value, f"JWK {name}"), "big")
    except InvalidToken as exc:
        raise ValueError(str(exc)) from None


def rsa_public_numbers(jwk: dict[str, Any]) -> tuple[int, int]:
    """``(n, e)`` of an RSA public JWK that is strong enough to trust; ValueError otherwise."""
    if jwk.get("kty") != "RSA":
        raise ValueError("JWK kty must be RSA")
    n = _jwk_uint(jwk, "n")
    e = _jwk_uint(jwk, "e")
    if not MIN_MODULUS_BITS <= n.bit_length() <= MAX_MODULUS_BITS:
        raise ValueError(
            f"RSA modulus must be {MIN_MODULUS_BITS}..{MAX_MODULUS_BITS} bits,"
            f" got {n.bit_length()}"
        )
    if n % 2 == 0:
        raise ValueError("RSA modulus must be odd")
    if not 3 <= e <= _MAX_PUBLIC_EXPONENT or e % 2 == 0:
        raise ValueError("RSA public exponent must be odd and in 3..2**31-1")
    return n, e


def _usable_key(entry: object) -> tuple[str, _Key] | None:
    """``(kid, key)`` if this JWKS entry may verify RS256 signatures, else None (and why, logged).

    A JWKS may legitimately hold keys we must not use (EC keys, encryption keys); skipping them
    one by one keeps the usable ones working.
    """
    if not isinstance(entry, dict):
        log.debug("JWKS entry skipped: not an object")
        return None
    kid = entry.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID_CHARS:
        log.debug("JWKS entry skipped: missing or invalid kid")
        return None
    if entry.get("use", "sig") != "sig" or entry.get("alg", "RS256") != "RS256":
        log.debug("JWKS key %r skipped: not an RS256 signing key", kid)
        return None
    key_ops = entry.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        log.debug("JWKS key %r skipped: key_ops does not allow verify", kid)
        return None
    try:
        n, _ = rsa_public_numbers(entry)
    except ValueError as exc:
        log.debug("JWKS key %r skipped: %s", kid, exc)
        return None
    # Only the members WebCrypto's importKey needs: an unexpected "key_ops"/"ext" combination in
    # the published key must not make import fail or widen what the imported key may do.
    jwk = {"kty": "RSA", "n": entry["n"], "e": entry["e"], "alg": "RS256"}
    return kid, _Key(jwk, (n.bit_length() + 7) // 8)


def _parse_jwks(document: object) -> dict[str, _Key]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise InvalidToken("JWKS document must be an object with a 'keys' array")
    entries = document["keys"]
    if len(entries) > _MAX_JWKS_KEYS:
        raise InvalidToken(f"JWKS holds more than {_MAX_JWKS_KEYS} keys")
    keys: dict[str, _Key] = {}
    ambiguous: set[str] = set()
    for entry in entries:
        usable = _usable_key(entry)
        if usable is None:
            continue
        kid, key = usable
        if kid in keys:
            ambiguous.add(kid)
        keys[kid] = key
    for kid in ambiguous:  # two keys under one kid: refuse to guess which one signed
        log.debug("JWKS kid %r skipped: used by more than one key", kid)
        del keys[kid]
    return keys


def _within(now: float, start: float, span: float) -> bool:
    # start <= now: a clock that jumped backwards counts as "expired", never as "fresh forever".
    return start <= now < start + span


class AccessVerifier:
    """Verifies ``Cf-Access-Jwt-Assertion`` tokens for one Access application.

    ``issuer`` is the team domain (``https://<team>.cloudflareaccess.com``), ``audience`` the
    application's AUD tag, ``jwks_url`` normally :func:`access_certs_url` of the issuer.
    One instance lives per isolate, so its key cache is shared by the isolate's requests; no
    request ever awaits another request's fetch (the Workers runtime forbids sharing I/O across
    requests), so concurrent cold requests may each fetch once.
    """

    def __init__(
        self,
        jwks_url: str,
        audience: str,
        issuer: str,
        fetcher: JwksFetcher,
        rsa: RsaVerifier,
        clock: Callable[[], float],
        cache_seconds: int = 300,
        *,
        leeway_seconds: int = 30,
        max_token_bytes: int = 8192,
    ) -> None:
        # Fail at startup, not per request: a bad config must not quietly weaken every check.
        if not isinstance(jwks_url, str) or not jwks_url.startswith("https://"):
            raise ValueError("jwks_url must be an https:// URL")
        if not isinstance(issuer, str) or not _ISSUER.fullmatch(issuer):
            raise ValueError("issuer must be https://<team domain> with no path or trailing '/'")
        if not isinstance(audience, str) or not audience:
            raise ValueError("audience (the Access application's AUD tag) must be non-empty")
        if (
            type(cache_seconds) is not int
            or not REFETCH_MIN_INTERVAL_SECONDS <= cache_seconds <= MAX_CACHE_SECONDS
        ):
            # Below the refetch interval, an expired cache could not always be refilled.
            low, high = REFETCH_MIN_INTERVAL_SECONDS, MAX_CACHE_SECONDS
            raise ValueError(f"cache_seconds must be an int in {low}..{high}")
        if type(leeway_seconds) is not int or not 0 <= leeway_seconds <= MAX_LEEWAY_SECONDS:
            raise ValueError(f"leeway_seconds must be an int in 0..{MAX_LEEWAY_SECONDS}")
        if type(max_token_bytes) is not int or max_token_bytes <= 0:
            raise ValueError("max_token_bytes must be a positive int")
        self.jwks_url = jwks_url
        self.audience = audience
        self.issuer = issuer
        self.cache_seconds = cache_seconds
        self.leeway_seconds = leeway_seconds
        self.max_token_bytes = max_token_bytes
        self._fetcher = fetcher
        self._rsa = rsa
        self._clock = clock
        self._keys: dict[str, _Key] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch started, successful or not
        self._failed_at: float | None = None  # last fetch that failed

    @classmethod
    def for_team(
        cls,
        issuer: str,
        audience: str,
        fetcher: JwksFetcher,
        rsa: RsaVerifier,
        clock: Callable[[], float],
        cache_seconds: int = 300,
    ) -> AccessVerifier:
        return cls(access_certs_url(issuer), audience, issuer, fetcher, rsa, clock, cache_seconds)

    async def verify(self, token: str) -> AccessClaims:
        """The token's claims if it is a valid Access token for this application, now."""
        now = self._clock()
        compact = parse_compact(token, alg="RS256", max_bytes=self.max_token_bytes)
        kid = compact.header.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID_CHARS:
            raise InvalidToken("kid is required")
        signature = b64url_decode(compact.signature_b64, "signature")
        if not MIN_MODULUS_BITS // 8 <= len(signature) <= MAX_MODULUS_BITS // 8:
            raise InvalidToken("signature length does not fit any acceptable RSA key")
        payload_raw = b64url_decode(compact.payload_b64, "payload")

        # Only a syntactically valid RS256 token gets this far, so only those can cause a fetch.
        key = await self._key_for(kid, now)
        if len(signature) != key.modulus_bytes:
            raise InvalidToken("signature length does not match the key")
        try:
            valid = await self._rsa.verify(dict(key.jwk), compact.signing_input, signature)
        except Exception as exc:  # an adapter error must refuse the token, never crash the request
            raise InvalidToken(f"signature check failed: {exc!r}") from exc
        if valid is not True:
            raise InvalidToken("bad signature")

        # The payload is only parsed once the signature has verified (RFC 8725 §3.4).
        return self._check_claims(json_object(payload_raw, "payload"), now)

    def _check_claims(self, claims: dict[str, Any], now: float) -> AccessClaims:
        exp = check_times(claims, now, self.leeway_seconds)
        iss = claims.get("iss")
        if not isinstance(iss, str) or iss != self.issuer:
            raise InvalidToken("wrong issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if (
            not isinstance(audiences, list)
            or not all(isinstance(a, str) for a in audiences)
            or self.audience not in audiences
        ):
            raise InvalidToken("wrong audience")
        sub = claims.get("sub")
        if not isinstance(sub, str):
            raise InvalidToken("sub must be a string")
        email = claims.get("email")
        if email is not None and not isinstance(email, str):
            raise InvalidToken("email must be a string")
        return AccessClaims(sub=sub, email=email, exp=exp)

    async def _key_for(self, kid: str, now: float) -> _Key:
        fresh = self._fetched_at is not None and _within(now, self._fetched_at, self.cache_seconds)
        if fresh:
            key = self._keys.get(kid)
            if key is not None:
                return key
            # Unknown kid with fresh keys: perhaps a rotation, perhaps junk. Throttled on the
            # start of the last attempt, so a burst of random kids costs at most one fetch.
            if self._recent(self._attempted_at, now):
                raise InvalidToken("unknown kid (JWKS refetch throttled)")
        elif self._recent(self._failed_at, now):
            raise InvalidToken("JWKS unavailable (last fetch failed recently)")
        await self._refresh(now)
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("unknown kid")
        return key

    @staticmethod
    def _recent(when: float | None, now: float) -> bool:
        return when is not None and _within(now, when, REFETCH_MIN_INTERVAL_SECONDS)

    async def _refresh(self, now: float) -> None:
        self._attempted_at = now
        try:
            keys = _parse_jwks(await self._fetcher.fetch(self.jwks_url))
        except Exception as exc:
            # Known-good keys stay: a failed refetch must not lock out tokens we could verify.
            self._failed_at = now
            raise InvalidToken(f"JWKS fetch failed: {exc!r}") from exc
        self._keys = keys
        self._fetched_at = now
