"""Monotonic ULIDs for client-made message ids.

A ULID is 48 bits of Unix milliseconds then 80 random bits, written as 26 Crockford base32
characters, so ids sort as text by creation time. chat-store orders messages of the same
``timestamp`` by id bytes, and plain ULIDs made within one millisecond are in random order: this
generator is *monotonic* (each id is greater than the one before in the same process: within one
millisecond, or if the clock steps back, the previous id plus one), so ids made one after the
other keep that order in every listing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_MAX_TIME = (1 << 48) - 1


def encode(value: int) -> str:
    """The 26-character Crockford base32 form of a 128-bit integer."""
    chars = []
    for _ in range(26):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def decode_time(ulid: str) -> int:
    """The Unix milliseconds in a ULID's first 10 characters."""
    value = 0
    for ch in ulid[:10].upper():
        value = value * 32 + CROCKFORD.index(ch)
    return value


class UlidGenerator:
    """Makes strictly increasing ULIDs; thread-safe. :meth:`new_with_time` also returns the
    milliseconds the id carries, which never go back either."""

    def __init__(
        self,
        clock_ms: Callable[[], int] | None = None,
        random_bits: Callable[[], int] | None = None,
    ) -> None:
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._random_bits = random_bits or (
            lambda: int.from_bytes(os.urandom(_RANDOM_BITS // 8), "big"))
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def new(self) -> str:
        """A new ULID, greater than every one this generator made before."""
        return self.new_with_time()[0]

    def new_with_time(self) -> tuple[str, int]:
        """A new ULID and the Unix milliseconds in it."""
        with self._lock:
            now = self._clock_ms()
            if now > self._last_ms:
                self._last_ms = now
                self._last_random = self._random_bits() & ((1 << _RANDOM_BITS) - 1)
            else:
                # Same millisecond, or the clock stepped back: count up from the last id.
                self._last_random += 1
                if self._last_random >> _RANDOM_BITS:
                    # 2^80 ids in one millisecond cannot happen with real randomness; move to
                    # the next millisecond rather than wrap around.
                    self._last_ms += 1
                    self._last_random = 0
            if self._last_ms > _MAX_TIME:
                raise OverflowError("ULID time overflow")
            return encode((self._last_ms << _RANDOM_BITS) | self._last_random), self._last_ms


_default = UlidGenerator()


def new_ulid() -> str:
    """A new monotonic ULID from the process-wide generator."""
    return _default.new()


def new_ulid_with_time() -> tuple[str, int]:
    """A new monotonic ULID from the process-wide generator, and its milliseconds."""
    return _default.new_with_time()


__all__ = ["UlidGenerator", "decode_time", "encode", "new_ulid", "new_ulid_with_time"]
