"""Running the store's coroutines from synchronous tests."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``coro``'s result, run to completion on a fresh event loop."""
    return asyncio.run(coro)
