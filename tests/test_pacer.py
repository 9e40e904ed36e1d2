from __future__ import annotations

import asyncio

import pytest

from index.pacer import MAX_TRACKED, CompactionPacer

T0 = 1_700_000_000_000


async def _no_sleep(seconds: float) -> None:
    return None


def test_a_read_compacts_at_once_and_a_burst_shares_one_later_compaction() -> None:
    pacer = CompactionPacer(1_000, _no_sleep)
    assert pacer.plan("user:chat:u1", T0) == 0
    assert pacer.plan("user:chat:u1", T0 + 300) == 700  # the end of the interval
    assert pacer.plan("user:chat:u1", T0 + 400) is None  # that one will fold this write too
    assert pacer.is_scheduled("user:chat:u1")
    assert pacer.plan("user:chat:u2", T0 + 400) == 0, "indexes are paced independently"


def test_a_write_compacts_at_the_end_of_the_interval_and_what_follows_shares_it() -> None:
    pacer = CompactionPacer(1_000, _no_sleep)
    assert pacer.plan("i", T0, trailing=True) == 1_000, "a quiet index: one interval from now"
    assert pacer.plan("i", T0 + 400, trailing=True) is None
    assert pacer.plan("i", T0 + 400) is None, "a read's work is folded by that pass too"
    asyncio.run(pacer.wait("i", 1_000, lambda: T0 + 1_000))
    assert pacer.plan("i", T0 + 1_300, trailing=True) == 700, "then at the next interval's end"
    assert CompactionPacer(0, _no_sleep).plan("i", T0, trailing=True) == 0


def test_after_the_scheduled_compaction_begins_the_next_write_schedules_again() -> None:
    pacer = CompactionPacer(1_000, _no_sleep)
    pacer.plan("i", T0)
    delay = pacer.plan("i", T0 + 10)
    assert delay == 990
    asyncio.run(pacer.wait("i", delay, lambda: T0 + 1_000))
    assert not pacer.is_scheduled("i")
    assert pacer.plan("i", T0 + 1_500) == 500
    assert pacer.plan("i", T0 + 2_000) is None


def test_a_quiet_index_compacts_at_once_again() -> None:
    pacer = CompactionPacer(1_000, _no_sleep)
    assert pacer.plan("i", T0) == 0
    assert pacer.plan("i", T0 + 1_000) == 0
    assert pacer.plan("i", T0 - 5_000) == 0, "a clock that went back does not block compaction"


def test_the_delay_is_slept_and_a_cancelled_wait_unschedules() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        raise asyncio.CancelledError

    pacer = CompactionPacer(1_000, sleep)
    pacer.plan("i", T0)
    delay = pacer.plan("i", T0 + 250)
    assert delay is not None
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(pacer.wait("i", delay, lambda: T0 + 1_000))
    assert slept == [0.75]
    assert not pacer.is_scheduled("i"), "else this index would never compact again here"


def test_the_isolate_remembers_a_bounded_number_of_indexes() -> None:
    pacer = CompactionPacer(1_000, _no_sleep)
    for n in range(MAX_TRACKED + 10):
        pacer.plan(f"i{n}", T0)
    assert pacer.plan("i0", T0 + 1) == 0, "forgotten: compacts at once"
    assert pacer.plan(f"i{MAX_TRACKED + 9}", T0 + 1) == 999


def test_an_interval_of_zero_compacts_after_every_write() -> None:
    pacer = CompactionPacer(0, _no_sleep)
    assert [pacer.plan("i", T0), pacer.plan("i", T0), pacer.plan("i", T0 + 1)] == [0, 0, 0]
