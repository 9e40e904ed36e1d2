"""Per-caller request limits, behind a protocol so the core never sees the runtime's binding.

``entry.py`` adapts the Workers Rate Limiting binding (``RATE_LIMITER``); without the binding
there is no limiter and nothing is limited. Keys name the caller, never the request: the
authenticated principal, or the client address for requests that failed authentication (so
guessing tokens is throttled too).
"""

from __future__ import annotations

from typing import Protocol


class RateLimiter(Protocol):
    async def allow(self, key: str) -> bool:
        """True if the caller named by ``key`` may make one more request now."""
        ...
