"""``asyncio.gather`` without a task for a lone awaitable, and two awaitables at once with
one task, not two.

In Pyodide every task is scheduled through the JavaScript event loop (a timer per step), which
costs more than many a request's own Python work; most writes touch one index and one record,
so the common case awaits its one coroutine directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")


async def gather(*awaitables: Awaitable[T]) -> list[T]:
    """Every result, in order; the first failure propagates (as ``asyncio.gather``)."""
    if len(awaitables) == 1:
        return [await awaitables[0]]
    return list(await asyncio.gather(*awaitables))


async def gather_settled(*awaitables: Awaitable[T]) -> list[T | Exception]:
    """Every result or the exception it raised, in order, once all have finished."""
    if len(awaitables) == 1:
        try:
            return [await awaitables[0]]
        except Exception as exc:
            return [exc]
    settled: list[T | Exception] = []
    for outcome in await asyncio.gather(*awaitables, return_exceptions=True):
        if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
            raise outcome  # a cancellation is not an outcome to report
        settled.append(outcome)
    return settled


async def both(first: Awaitable[T], second: Awaitable[U]) -> tuple[T, U]:
    """Both results, the two awaited at once: ``second`` runs as a task while ``first`` is
    awaited directly. If ``first`` fails, ``second`` is cancelled and the failure propagates;
    otherwise ``second``'s failure does."""
    task = asyncio.ensure_future(second)
    try:
        result = await first
    except BaseException:
        task.cancel()
        raise
    return result, await task
