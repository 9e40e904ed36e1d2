"""Monotonic ULIDs: sortable by time, strictly increasing within a millisecond and when the
clock steps back."""

from __future__ import annotations

import threading

from chat_store_client.ulid import CROCKFORD, UlidGenerator, decode_time, encode, new_ulid


def test_format_and_time() -> None:
    generator = UlidGenerator(clock_ms=lambda: 1_732_700_000_123, random_bits=lambda: 5)
    ulid, ms = generator.new_with_time()
    assert len(ulid) == 26 and set(ulid) <= set(CROCKFORD)
    assert ms == 1_732_700_000_123 == decode_time(ulid)
    assert ulid.endswith("0000000000000005")
    assert encode((1 << 128) - 1) == "7" + "Z" * 25


def test_increasing_within_one_millisecond_and_when_the_clock_goes_back() -> None:
    clock = iter([100, 100, 100, 99, 101])
    randoms = iter([(1 << 80) - 2, 7, 1])
    generator = UlidGenerator(clock_ms=lambda: next(clock), random_bits=lambda: next(randoms))
    made = [generator.new_with_time() for _ in range(5)]
    ids = [ulid for ulid, _ in made]
    assert ids == sorted(ids) and len(set(ids)) == 5
    # The random part overflowed within ms 100: the generator moved on to ms 101 rather than
    # wrap around, and the clock's step back to 99 did not move it back.
    assert [ms for _, ms in made] == [100, 100, 101, 101, 101]


def test_a_plain_clock_makes_distinct_time_ordered_ids() -> None:
    ids = [new_ulid() for _ in range(2_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [decode_time(i) for i in ids] == sorted(decode_time(i) for i in ids)


def test_threads_share_one_increasing_sequence() -> None:
    generator = UlidGenerator(clock_ms=lambda: 42)
    made: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(500):
            ulid = generator.new()
            with lock:
                made.append(ulid)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 2_000
