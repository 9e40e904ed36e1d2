"""The benchmark's pairing and judging (bench/run.py), without a runtime: the interleaved
cells' order, the quiet twin's reads in turns, and which basis each target is judged on."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load_run() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # run.py imports its sibling `stats`
    try:
        spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_run"] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


run = _load_run()


def test_interleaved_runs_every_cells_blocks_in_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "wait_idle", lambda workers, **_: 0.0)
    monkeypatch.setattr(run, "loadavg", lambda: 0.0)
    made: list[tuple[str, int]] = []

    def cell(name: str) -> Any:
        return run.Cell(name, 0, object(), lambda i: made.append((name, i)))

    timer = run.Timer(warmup=1, samples=5)
    timer.workers = [object()]
    results = timer.interleaved([cell("a"), cell("b")], blocks=2)

    # Warmups first, then blocks of 3 and 2 samples, a's block before b's each time; each
    # cell counts its own calls.
    assert made == [("a", 0), ("b", 0),
                    ("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2), ("b", 3),
                    ("a", 4), ("a", 5), ("b", 4), ("b", 5)]
    assert [(r.op, len(r.samples_ms)) for r in results] == [("a", 5), ("b", 5)]


def _messages_transport(seen: list[str], newest_ts: int) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        user = request.url.path.split("/")[3]
        seen.append(user)
        return httpx.Response(200, json={"messages": [{"timestamp": newest_ts - i}
                                                      for i in range(run.PAGE)]})
    return httpx.MockTransport(handler)


def test_paced_reads_pair_each_read_with_the_twins_in_turns() -> None:
    seen: list[str] = []
    with httpx.Client(transport=_messages_transport(seen, 1_000), base_url="http://w") as c:
        paced = run.paced_reads(c, "busy", 4, 0.0, acked_ts=lambda: 2_000, twin="twin")

    # The twin after the first read, before the second, and so on: neither always goes first.
    assert seen == ["busy", "twin", "twin", "busy", "busy", "twin", "twin", "busy"]
    assert len(paced.reads_ms) == len(paced.twin_ms) == 4
    # Every read missed the append acknowledged at 2,000 (its newest is 1,000); the twin's
    # reads are not checked against the busy user's appends.
    assert paced.stale == 4


def _row(median: float, p90: float, **extra: float) -> dict[str, Any]:
    return {"median_ms": median, "p90_ms": p90, **extra}


def test_a_burst_row_is_judged_against_its_twin_when_the_run_has_one() -> None:
    quiet = _row(50.0, 60.0)
    # 1.8x the quiet row, but its twin, read in the same seconds, slowed as much.
    row = _row(90.0, 108.0, twin_median_ms=80.0, twin_p90_ms=100.0)

    ratio, p90_ratio, verdict = run.burst_verdict(row, quiet)

    assert (ratio, p90_ratio) == pytest.approx((1.125, 1.08))
    assert verdict == "median met, p90 met"
    assert run.quiet_ratios(row, quiet) == pytest.approx((1.8, 1.8))


def test_a_burst_row_without_a_twin_is_judged_against_the_quiet_row() -> None:
    quiet = _row(50.0, 60.0)

    ratio, p90_ratio, verdict = run.burst_verdict(_row(70.0, 66.0), quiet)

    assert (ratio, p90_ratio) == pytest.approx((1.4, 1.1))
    assert verdict == "median MISSED by 1.08x, p90 met"


def test_a_busy_row_slower_than_its_twin_misses() -> None:
    row = _row(80.0, 100.0, twin_median_ms=50.0, twin_p90_ms=60.0)

    assert run.burst_verdict(row, _row(80.0, 100.0))[2] == (
        "median MISSED by 1.23x, p90 MISSED by 1.28x")


def test_the_interleaved_floor_of_each_operation_makes_its_kv_calls_for_its_user() -> None:
    def cell(op: str, size: int, median: float) -> dict[str, Any]:
        return {"op": op, "size": size, "median_ms": median, "cpu_ms_per_req": {}}

    paired = {(r["op"], r["size"]): r for r in (
        cell("floor_append", 0, 5.0), cell("floor_read_list", 1_000, 40.0),
        cell("floor_read_list", 100_000, 44.0), cell("floor_list", 1_000, 25.0))}

    def median_of(op: str, size: int) -> float | None:
        floor = run.paired_floor(paired, op, size)
        return None if floor is None else float(floor.median_ms)

    assert median_of("append", 100_000) == 5.0  # the floor appends to its own user
    assert median_of("newest50", 1_000) == 40.0
    assert median_of("deep_page", 100_000) == 44.0
    assert median_of("count", 1_000) == 25.0
    assert median_of("count", 100_000) is None  # not measured: nothing to judge against
    assert median_of("batch_append", 1_000) is None
