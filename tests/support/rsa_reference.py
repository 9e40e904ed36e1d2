"""A pure-Python :class:`auth.access.RsaVerifier` for tests on CPython (the Worker verifies
with WebCrypto, ``entry.WebCryptoRsaVerifier``): the reference the Access tests check tokens
against.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from auth.access import rsa_public_numbers

_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def rsassa_pkcs1_v15_sha256_verify(n: int, e: int, message: bytes, signature: bytes) -> bool:
    """RFC 8017 §8.2.2 with EMSA-PKCS1-v1_5 (§9.2) and SHA-256.

    The expected encoded message is built and compared byte for byte, rather than parsed out of
    the decrypted signature: parsing verifiers are what Bleichenbacher's 2006 forgery (short
    padding, garbage after the digest, lax DigestInfo) exploited.
    """
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:  # §8.2.2 step 1: exactly k octets, no stripped leading zeros
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:  # RSAVP1 step 1: signature representative out of range
        return False
    encoded = pow(s, e, n).to_bytes(k, "big")
    t = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    # k >= 256 (2048-bit floor) so the 0xFF padding is always far longer than the 8-byte minimum.
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(encoded, expected)


class PurePythonRsaVerifier:
    """:class:`RsaVerifier` in plain Python: a public-key check is one ``pow`` with e = 65537,
    cheap enough even in Pyodide, and needs no dependency. Raises ValueError for a weak or
    malformed key (the caller turns that into InvalidToken)."""

    async def verify(self, jwk: dict[str, Any], signing_input: bytes, signature: bytes) -> bool:
        n, e = rsa_public_numbers(jwk)
        return rsassa_pkcs1_v15_sha256_verify(n, e, signing_input, signature)
