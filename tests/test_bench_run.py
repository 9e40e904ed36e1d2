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
    monkeypatch.setattr(run, "runtime_cpu", lambda worker: 0.0)
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


def test_rotated_turns_start_one_cell_later_each_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "wait_idle", lambda workers, **_: 0.0)
    monkeypatch.setattr(run, "loadavg", lambda: 0.0)
    monkeypatch.setattr(run, "runtime_cpu", lambda worker: 0.0)
    made: list[str] = []

    def cell(name: str) -> Any:
        return run.Cell(name, 0, object(), lambda i: made.append(name))

    timer = run.Timer(warmup=0, samples=2)
    timer.workers = [object()]
    # Three turns of full blocks (the timer's 2 samples each), as the appends run.
    results = timer.interleaved([cell("f"), cell("a"), cell("b")], 3, samples=6, rotate=True)

    turns = ["".join(made[i:i + 6:2]) for i in range(0, 18, 6)]
    assert turns == ["fab", "abf", "bfa"]  # every cell first once
    assert made[:2] == ["f", "f"]  # whole blocks, not single requests
    assert [len(r.samples_ms) for r in results] == [6, 6, 6]


def test_interleaved_counts_each_blocks_cpu_from_idle_to_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each request costs its own runtime 10 ms (a's) or 30 ms (b's) of CPU; going idle after
    # any block costs every runtime 2 ms more (deferred work). A block's CPU runs from the idle
    # runtimes before it to the idle runtimes after it, so its own runtime's drain is in it and
    # the drain after the other cell's blocks is not.
    cpu_s = {"wa": 0.0, "wb": 0.0}
    per_call = {"wa": 0.010, "wb": 0.030}

    def drain(workers: Any, **_: Any) -> float:
        for worker in cpu_s:
            cpu_s[worker] += 0.002
        return 0.0

    monkeypatch.setattr(run, "wait_idle", drain)
    monkeypatch.setattr(run, "loadavg", lambda: 0.0)
    monkeypatch.setattr(run, "runtime_cpu", lambda worker: cpu_s[worker])

    def cell(name: str, worker: str) -> Any:
        def call(i: int) -> None:
            cpu_s[worker] += per_call[worker]
        return run.Cell(name, 0, worker, call)

    timer = run.Timer(warmup=1, samples=5)
    timer.workers = ["wa", "wb"]
    a, b = timer.interleaved([cell("a", "wa"), cell("b", "wb")], blocks=2)

    # 5 requests and 2 blocks' drains, per request; until the last responses: requests only.
    assert a.cpu_ms_per_req == {"runtime": pytest.approx(10.8), "runtime_responses": 10.0}
    assert b.cpu_ms_per_req == {"runtime": pytest.approx(30.8), "runtime_responses": 30.0}


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


def _estimate_data(paired_cpu: bool) -> dict[str, Any]:
    def cell(op: str, size: int, median: float, cpu: float | None) -> dict[str, Any]:
        return {"op": op, "size": size, "median_ms": median, "p95_ms": median * 1.2, "note": "",
                "cpu_ms_per_req": {} if cpu is None else {"runtime": cpu}}

    rounds = [cell("newest50", 1_000, 50.0, 60.0), cell("newest50", 100_000, 50.0, 70.0)]
    paired = [cell("newest50", 1_000, 40.0, 45.0 if paired_cpu else None),
              cell("floor_read_list", 1_000, 35.0, 41.0 if paired_cpu else None)]
    return {"config": {"sizes": [1_000, 100_000]}, "results": rounds,
            "floor_pooled": {"floor_read_list": {"median_ms": 36.0, "runtime_cpu_ms": 50.0}},
            "paired": {"blocks": {"reads": 4, "appends": 1}, "results": paired}}


def test_cpu_is_judged_against_the_floor_interleaved_with_it() -> None:
    by_size = {e.size: e for e in run.cpu_estimates(_estimate_data(paired_cpu=True))
               if e.op == "newest50"}

    # At 1,000: our interleaved cell against the floor's same calls in the same minutes, the
    # rounds' figure against the pooled floor beside it.
    assert by_size[1_000].paired
    assert by_size[1_000].python_ms == pytest.approx(4.0)
    assert by_size[1_000].rounds == pytest.approx(10.0)
    # At 100,000 there is no interleaved pair: the rounds judge.
    assert not by_size[100_000].paired
    assert by_size[100_000].python_ms == pytest.approx(20.0)


def test_a_run_without_interleaved_cpu_is_judged_on_its_rounds() -> None:
    by_size = {e.size: e for e in run.cpu_estimates(_estimate_data(paired_cpu=False))
               if e.op == "newest50"}

    assert not by_size[1_000].paired
    assert by_size[1_000].python_ms == pytest.approx(10.0)
    assert by_size[1_000].rounds is None


def test_the_interleaved_report_says_what_each_run_measured() -> None:
    data = _estimate_data(paired_cpu=True)
    data["config"]["samples"] = 40
    data["paired"]["appends_after_settle_s"] = 18.2
    data["paired"]["appends_journal_left"] = {"bench-u10": "0", "bench-u1000": "12"}
    text = "\n".join(run.paired_report(data))

    assert "targets 1, 3 and 4 compare" in text and "*Runtime CPU*" in text
    assert "18 s; still there when the time was up: {'bench-u1000': '12'}" in text
    assert "1 block(s) each" in text  # a run before the appends rotated
    assert "each cell's 40 samples in 4 blocks" in text  # reads as many as the rounds'

    data["paired"].update(blocks={"reads": 8, "appends": 5}, append_block_samples=40,
                          appends_rotated=True, read_samples=80)
    text = "\n".join(run.paired_report(data))
    assert "each cell's 80 samples in 8 blocks" in text
    assert ("the floor's append, 5 blocks of 40 each, in 5 turns that each start one cell "
            "later, so that every cell, the floor's too, runs first once") in text

    older = _estimate_data(paired_cpu=False)
    older["config"]["samples"] = 40
    text = "\n".join(run.paired_report(older))

    assert "targets 3 and 4 compare" in text and "Latency only" in text
    assert "then, after the rounds, every size's append" in text
