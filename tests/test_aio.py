from __future__ import annotations

import asyncio

import pytest

from aio import both, gather, gather_settled


async def _value(v: int) -> int:
    await asyncio.sleep(0)
    return v


async def _fail(message: str) -> int:
    await asyncio.sleep(0)
    raise ValueError(message)


def test_gather_returns_every_result_in_order_one_or_many() -> None:
    assert asyncio.run(gather(_value(1))) == [1]
    assert asyncio.run(gather(_value(1), _value(2), _value(3))) == [1, 2, 3]
    assert asyncio.run(gather()) == []


def test_gather_raises_the_failure_one_or_many() -> None:
    with pytest.raises(ValueError, match="lone"):
        asyncio.run(gather(_fail("lone")))
    with pytest.raises(ValueError, match="second"):
        asyncio.run(gather(_value(1), _fail("second")))


def test_gather_settled_reports_each_outcome_after_all_finished() -> None:
    [lone] = asyncio.run(gather_settled(_fail("lone")))
    assert isinstance(lone, ValueError)
    finished: list[int] = []

    async def slow(v: int) -> int:
        for _ in range(3):
            await asyncio.sleep(0)
        finished.append(v)
        return v

    outcomes = asyncio.run(gather_settled(_fail("first"), slow(2)))
    assert isinstance(outcomes[0], ValueError) and outcomes[1] == 2
    assert finished == [2], "the failure did not cut the other one short"


def test_a_lone_awaitable_runs_without_a_task_of_its_own() -> None:
    async def scenario() -> tuple[bool, bool]:
        async def current_is_outer() -> bool:
            return asyncio.current_task() is outer

        outer = asyncio.current_task()
        [direct] = await gather(current_is_outer())
        settled = await gather_settled(current_is_outer())
        return direct, settled[0] is True

    assert asyncio.run(scenario()) == (True, True)


def test_both_awaits_the_two_at_once_and_returns_both_results() -> None:
    async def scenario() -> tuple[tuple[int, str], list[str]]:
        steps: list[str] = []
        second_started = asyncio.Event()

        async def first() -> int:
            steps.append("first")
            await asyncio.wait_for(second_started.wait(), timeout=1)  # only if both are in flight
            return 1

        async def second() -> str:
            steps.append("second")
            second_started.set()
            return "two"

        return await both(first(), second()), steps

    assert asyncio.run(scenario()) == ((1, "two"), ["first", "second"])


def test_both_cancels_the_second_when_the_first_fails_and_reports_the_second_failure() -> None:
    async def scenario() -> bool:
        cancelled = asyncio.Event()

        async def forever() -> int:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return 0

        with pytest.raises(ValueError, match="first"):
            await both(_fail("first"), forever())
        await asyncio.sleep(0)
        with pytest.raises(ValueError, match="second"):
            await both(_value(1), _fail("second"))
        return cancelled.is_set()

    assert asyncio.run(scenario()) is True
