"""Identifier grammar and server-made ids (ULIDs: time-ordered, 26 Crockford base32 chars)."""

from __future__ import annotations

import re
import secrets

# "." and ".." are dot segments: URL parsing removes them, so such an id could never be addressed.
ID_PATTERN = re.compile(r"(?!\.\.?$)[A-Za-z0-9._~-]{1,128}")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def new_ulid(now_ms: int) -> str:
    """48 bits of milliseconds then 80 random bits, so ids sort by creation time."""
    number = (now_ms & ((1 << 48) - 1)) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[number & 31])
        number >>= 5
    return "".join(reversed(chars))
