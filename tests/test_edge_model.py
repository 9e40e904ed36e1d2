"""The real ChatStore at the edge: seeded simulations of many clients (``edge_sim``) over the
edge model of Workers KV (``edge_kv``), and deterministic scenarios for known losses.

CI runs a few seeds of a modest size. The long run is ``make soak`` (or set ``EDGE_SOAK_SEEDS``:
a count ``200``, a range ``100-199`` or a list ``3,17``; ``EDGE_SOAK_OPS`` operations per seed,
default 600): one test per seed, so failing seeds are named, each with its trace.

Random runs are checked two ways: self-consistency (no 500, sound pages, counts equal to
listings) and agreement with records and acknowledgements. The checker puts a violation down to
a documented edge limit (``edge_sim.DOCUMENTED_LIMITS``: a PATCH or a create replay that acted
on a stale cached record, a PATCH that wrote a record back after a delete that came after its
read) only when every message it names ran into one and nothing written
since could have set it right; those are reported (``Report.documented``, and in the trace) but
do not fail a run. Everything else (``Report.unexplained``) does. The same clients over a
consistent KV (no caches, lags or propagation) lose nothing: the losses come from the edge, and
the checker does not make them up.

Scenario tests marked ``xfail(strict=True)`` are known bugs or documented limits: they pass (and
so fail the suite, by strictness) once fixed, and the mark should then go. Each has a control
twin without the trigger, which must pass today. Random runs that still find a known bug are
``xfail(strict=False)`` and name it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chat_store import Scope
from config import Config
from support.edge_sim import (
    AGREEMENT,
    DEFAULT_CONFIG,
    ERASE_AFTER_DELETE,
    PATCH_AFTER_DELETE,
    PATCH_RACING_DELETE,
    REPLAY_AFTER_DELETE,
    SELF_CONSISTENCY,
    START_MS,
    EdgeSettings,
    Report,
    Sim,
    SimSettings,
    run_sim,
)

CI_SEEDS = (0, 1, 2, 3)
CI_OPS = 200
USER = Scope("user", "u1")
CONVERSATION = Scope("conversation", "c1")
Script = Callable[[Sim], Awaitable[None]]


class ScenarioBroken(Exception):
    """A scripted step did not go as the scenario needs: the test proves nothing (not an
    AssertionError, so an ``xfail(raises=AssertionError)`` does not swallow it)."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise ScenarioBroken(what)


def scripted(edge: EdgeSettings, script: Script, config: Config = DEFAULT_CONFIG,
             locations: tuple[str, ...] = ("A", "B")) -> Report:
    """Run ``script`` on two locations ``A`` and ``B`` (one isolate each; or ``locations``),
    then settle and check as a random run does."""
    settings = SimSettings(seed=0, locations=locations, isolates=1, clients=0, ops=0,
                           edge=edge, config=config)
    with Sim(settings) as sim:

        async def main() -> None:
            await script(sim)
            await sim.settle()
            await sim.check()

        sim.run(main())
        return sim.report()


def assert_only_about(report: Report, message_id: str) -> None:
    """The run went wrong, if at all, only about ``message_id``: then ``report.ok`` says whether
    the bug is there."""
    others = [v.render() for v in report.violations if message_id not in v.ids
              and v.kind not in ("COUNT", "RANGE")]
    expect(not others, f"violations about other messages: {others}")
    assert report.ok, report.render()


def message(message_id: str = "m1", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": message_id, "user_id": "u1", "sender": {"id": "s1"},
                            "content": "hello", "timestamp": START_MS}
    body.update(fields)
    return body


def listed(pages: Any) -> list[str]:
    return [m["id"] for page in pages for m in page]


# -- random runs -----------------------------------------------------------------------------

# Bugs the random runs still find (scenarios below). On e34fd2b: 19 of seeds 0-79 with 400
# operations each; with segments, 31 of seeds 0-59 with 300 (most of them a page listing a
# message twice mid-run).
@functools.cache
def random_run(seed: int, ops: int, config: Config = DEFAULT_CONFIG) -> Report:
    return run_sim(SimSettings(seed=seed, ops=ops, config=config))


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_random_runs_are_self_consistent(seed: int) -> None:
    """No 500, pages within their limit and scope, listings in order both ways, counts equal to
    listings at every location, reads of a location's own writes (documented limits aside)."""
    report = random_run(seed, CI_OPS)
    assert not [v for v in report.unexplained if v.kind in SELF_CONSISTENCY], report.render()


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_random_runs_lose_nothing_beyond_the_documented_limits(seed: int) -> None:
    report = random_run(seed, CI_OPS)
    assert not report.unexplained, report.render()


def test_a_few_hundred_operations_lose_nothing_beyond_the_documented_limits() -> None:
    """Seed 2 with 400 operations: nothing beyond the documented limits (which of them a seed
    meets, if any, shifts with the store's own timing; the classifier has its own tests)."""
    report = random_run(2, 400)
    assert not report.unexplained, report.render()


def test_a_random_run_with_erases_retried_after_failures_loses_nothing() -> None:
    """Seed 9, 200 operations: an erase fails with 503 after deleting records, its retry 1 s
    later answers 200 without finishing the plan (and another erase gives up after three 503s)."""
    report = random_run(9, CI_OPS)
    assert not report.unexplained, report.render()


# KV as one consistent store (no cache, lag or propagation), 429s and failures still on.
CONSISTENT_KV = EdgeSettings(cache_ttl_ms=0, max_list_lag_ms=0, max_propagation_ms=0)
TINY_LAYOUT = Config(api_token="edge-sim", index_head_max=4, index_head_keep=2,
                     index_segment_max=3)


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_random_runs_over_a_consistent_kv_lose_nothing(seed: int) -> None:
    """The same clients, 429s and failures, without the edge's caches and lags: the losses the
    other runs find come from the edge (and the checker finds nothing that is not there)."""
    report = run_sim(SimSettings(seed=seed, ops=CI_OPS, edge=CONSISTENT_KV))
    assert report.ok, report.render()


@pytest.mark.parametrize("seed", (4, 5))
def test_random_runs_with_segments_lose_nothing_beyond_the_documented_limits(seed: int) -> None:
    report = random_run(seed, CI_OPS, TINY_LAYOUT)
    assert not report.unexplained, report.render()


def test_a_random_run_with_segments_never_lists_a_message_twice() -> None:
    """Seed 0, 200 operations, segments: mid-run pages once listed messages twice. What is left
    is documented: a PATCH at sin moves c5m4 from a stale cached copy while ams erases its user;
    the erase's removal, journaled after the move, leaves the record written back unlisted."""
    report = random_run(0, CI_OPS, TINY_LAYOUT)
    assert not report.unexplained, report.render()


# -- the settle time against the edge's lag --------------------------------------------------

# The worst the model does, every time: listings 60 s behind, writes 1 s to reach another
# location, cached reads 60 s old. A journal entry's time is its writer's clock before the put,
# so a pass may miss an entry up to lag + propagation + the put's own duration (latency, and
# retries: the engine's ``put_ms``, 2 s) after that time: 63 s here.
WORST_EDGE = EdgeSettings(min_list_lag_ms=60_000, min_propagation_ms=1_000)


@pytest.mark.parametrize("seed", (0, 1, 2))
def test_the_default_settle_time_covers_the_worst_lag(seed: int) -> None:
    """The default settle time (120 s) against the worst lag, every time: nothing lost."""
    report = run_sim(SimSettings(seed=seed, ops=300, edge=WORST_EDGE))
    assert not report.unexplained, report.render()


def test_a_settle_time_of_the_documented_lag_alone_loses_writes() -> None:
    """Expected to find losses: a settle time of 60 s (KV's documented lag, and this store's
    old default) leaves no room for propagation and the put's own duration; with listings
    always 60 s behind, passes claim entries they did not list."""
    config = Config(api_token="edge-sim", journal_settle_ms=60_000)
    report = run_sim(SimSettings(seed=0, ops=300, edge=WORST_EDGE, config=config))
    assert "MISSING" in {v.kind for v in report.unexplained}, report.render()


def test_the_checker_reports_losses_when_settle_is_below_the_list_lag() -> None:
    """Expected to find violations: with a settle time of 5 s under listings that lag up to
    60 s, compactions fold journal entries they could not see; the checker must say so, and
    not put them down to documented limits."""
    config = Config(api_token="edge-sim", journal_settle_ms=5_000)
    report = run_sim(SimSettings(seed=1, ops=CI_OPS, config=config))
    assert [v for v in report.unexplained if v.kind in AGREEMENT]
    assert {"MISSING", "EXTRA", "POSITION"} & {v.kind for v in report.unexplained}
    rendered = report.render()
    assert "seed=1" in rendered and "settle=5000 ms" in rendered and "KV writes about" in rendered


def test_a_seed_replays_the_same_run() -> None:
    settings = SimSettings(seed=5, ops=60)

    def trace() -> tuple[list[str], list[str]]:
        report = run_sim(settings)
        writes = [w.describe() for key in report.world.keys_with_prefix("")
                  for w in report.world.history(key)]
        return [line.render() for line in report.log], writes

    assert trace() == trace()


REPLAY_TRACE = """
import hashlib, sys
from support.edge_sim import SimSettings, run_sim
report = run_sim(SimSettings(seed=5, ops=60))
lines = [line.render() for line in report.log]
writes = [w.describe() for k in report.world.keys_with_prefix("") for w in report.world.history(k)]
print(hashlib.sha256("\\n".join(lines + writes).encode()).hexdigest())
"""


def test_a_seed_replays_the_same_run_in_another_process() -> None:
    """What a soak failure prints (``run_sim(SimSettings(seed=...))``) must replay it: nothing
    in the store or the simulation may hang on the order of a set of strings, which changes
    with each process's hash seed. (Seed 5 once batched into two conversations in either
    order.)"""
    here = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parent / "src")])}
    digests = {subprocess.run([sys.executable, "-c", REPLAY_TRACE], check=True, text=True,
                              capture_output=True, env={**env, "PYTHONHASHSEED": hash_seed}
                              ).stdout for hash_seed in ("0", "1", "2")}
    assert len(digests) == 1, digests


def test_virtual_time_passes_without_real_waiting() -> None:
    with Sim(SimSettings(seed=0, clients=0, ops=0)) as sim:

        async def main() -> int:
            before = sim.now_ms()
            await asyncio.gather(asyncio.sleep(3600), asyncio.sleep(60))
            return sim.now_ms() - before

        assert sim.run(main()) == 3_600_000


def soak_seeds() -> list[int]:
    raw = os.environ.get("EDGE_SOAK_SEEDS", "").strip()
    if not raw:
        return []
    if "," in raw:
        return [int(part) for part in raw.split(",") if part.strip()]
    if "-" in raw:
        first, last = raw.split("-", 1)
        return list(range(int(first), int(last) + 1))
    return list(range(int(raw)))


@pytest.mark.parametrize("seed", soak_seeds())
def test_soak(seed: int) -> None:
    """The long run: ``EDGE_SOAK_SEEDS`` seeds of ``EDGE_SOAK_OPS`` operations each."""
    ops = int(os.environ.get("EDGE_SOAK_OPS", "600"))
    report = run_sim(SimSettings(seed=seed, ops=ops))
    assert not report.unexplained, report.render()


# -- known bugs, as scenarios ------------------------------------------------------------------

# No propagation delay, no 429s, no failures: each scenario controls what it is about.
EXACT = EdgeSettings(max_propagation_ms=0, max_list_lag_ms=0, rate_limit_writes=False,
                     failure_rate=0.0, latency_ms=(0, 0))


def recreate_after_delete(cached_miss: bool) -> Script:
    """Scenario a. B's listing lags 30 s behind; A writes, B reads."""

    async def script(sim: Sim) -> None:
        expect((await sim.create("A", [message()])).status == 201, "A creates m1")
        await sim.drain()
        await sim.at(61_000)
        counted = await sim.count("B", USER)  # its compaction folds m1: root stamped +61 s
        expect(counted.value == 1, f"B counts m1: {counted}")
        await sim.drain()
        await sim.at(62_000)
        expect((await sim.delete("A", "m1")).status == 204, "A deletes m1")
        await sim.drain()
        if cached_miss:
            await sim.at(63_000)
            expect((await sim.get("B", "m1")).status == 404, "B reads m1: 404, now cached")
        await sim.at(64_000)
        expect((await sim.create("A", [message()])).status == 201, "A re-creates m1: 201")
        await sim.drain()
        await sim.at(65_000)
        await sim.list_all("B", USER)  # its journal listing lags: m1 is settled in its root
        await sim.drain()

    return script


LAGGING_LISTS = replace(EXACT, min_list_lag_ms=30_000, max_list_lag_ms=30_000)


def test_recreate_after_delete_survives_a_cached_miss_elsewhere() -> None:
    assert_only_about(scripted(LAGGING_LISTS, recreate_after_delete(cached_miss=True)), "m1")


def test_recreate_after_delete_without_a_cached_miss() -> None:
    assert_only_about(scripted(LAGGING_LISTS, recreate_after_delete(cached_miss=False)), "m1")


def slow_record_write(cached_miss: bool) -> Script:
    """Scenario b. A's record write takes 1 s; B lists the conversation meanwhile."""

    async def script(sim: Sim) -> None:
        await sim.at(100)
        sim.world.delay_next_write("chat:m1", 1_000)
        creating = asyncio.ensure_future(
            sim.create("A", [message(conversation_id=CONVERSATION.id)]))
        await sim.at(500)  # m1's entry is journaled, its record not written yet
        if cached_miss:
            early = await sim.list_all("B", CONVERSATION)  # m1's record: a miss, cached
            expect(listed(early.value) == [], f"B lists before the record exists: {early}")
        expect((await creating).status == 201, "A's create is acknowledged at +1.1 s")
        await sim.drain()
        await sim.at(60_300)  # m1's entry has settled: B's compaction stamps its root +60.3 s
        await sim.list_all("B", CONVERSATION)
        await sim.drain()
        await sim.at(60_400)  # B's cached miss (+0.5 s) has not expired yet
        await sim.list_all("B", CONVERSATION)
        await sim.drain()

    return script


def test_a_slow_record_write_survives_a_cached_miss() -> None:
    assert_only_about(scripted(EXACT, slow_record_write(cached_miss=True)), "m1")


def test_a_slow_record_write_without_a_cached_miss() -> None:
    assert_only_about(scripted(EXACT, slow_record_write(cached_miss=False)), "m1")


def read_elsewhere_then(write_back: bool, cached: bool, ack_lost: bool = False) -> Script:
    """A creates m1; B reads it (now cached at B); A deletes it; then B either patches m1
    (``write_back``) or sends its create again. With ``ack_lost``, B's writes of the record land
    and B is told they failed, until its retries run out and the PATCH answers 503."""

    async def script(sim: Sim) -> None:
        expect((await sim.create("A", [message()])).status == 201, "A creates m1")
        await sim.drain()
        await sim.at(1_000)
        if cached:
            expect((await sim.get("B", "m1")).status == 200, "B reads m1, now cached at B")
        await sim.at(2_000)
        expect((await sim.delete("A", "m1")).status == 204, "A deletes m1")
        await sim.drain()
        await sim.at(3_000)
        if write_back:
            for _ in range(3 if ack_lost else 0):
                sim.world.lose_next_ack("chat:m1", location="B")
            edited = await sim.patch("B", "m1", {"content": "edited"})
            answer = (503 if ack_lost else 200) if cached else 404
            expect(edited.status == answer, f"B patches m1: {edited}")
        else:
            again = await sim.create("B", [message()])
            expect(again.status == (200 if cached else 201), f"B creates m1 again: {again}")
        await sim.drain()

    return script


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "documented edge limit (README, consistency model): without a consistent read, a PATCH "
    "that reads a stale cached record (deleted or erased elsewhere within the cache TTL) "
    "answers 200 and writes the record back with no index entries: an "
    "acknowledged message that no listing shows"))
def test_a_patch_from_a_stale_cache_does_not_bring_back_an_unlisted_message() -> None:
    assert_only_about(scripted(EXACT, read_elsewhere_then(write_back=True, cached=True)), "m1")


def test_a_patch_after_a_delete_without_a_stale_cache() -> None:
    assert_only_about(scripted(EXACT, read_elsewhere_then(write_back=True, cached=False)), "m1")


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "documented edge limit (README, consistency model): without a consistent read, a create "
    "that finds a stale cached record of a deleted message takes it for an identical replay "
    "and answers 200 without writing it: an acknowledged message with "
    "no record"))
def test_a_create_from_a_stale_cache_is_not_a_replay_of_a_deleted_message() -> None:
    assert_only_about(scripted(EXACT, read_elsewhere_then(write_back=False, cached=True)), "m1")


def test_a_create_after_a_delete_without_a_stale_cache() -> None:
    assert_only_about(scripted(EXACT, read_elsewhere_then(write_back=False, cached=False)), "m1")


@pytest.mark.parametrize(("write_back", "limit"), [(True, PATCH_AFTER_DELETE),
                                                   (False, REPLAY_AFTER_DELETE)])
def test_the_checker_puts_the_stale_cache_scenarios_down_to_their_documented_limit(
    write_back: bool, limit: str
) -> None:
    """What the two strict xfails above find is the documented limit, and nothing else: a
    random run that runs into it only does not fail."""
    report = scripted(EXACT, read_elsewhere_then(write_back=write_back, cached=True))
    assert not report.unexplained, report.render()
    assert {v.limit for v in report.violations} <= {limit}


def test_the_checker_puts_a_patch_after_delete_that_answered_503_down_to_its_limit() -> None:
    """Soak seed 134: KV failed the PATCH after its write of the stale copy had landed. The
    answer changes nothing about what it did: the record is back, no index lists it."""
    report = scripted(RATE_LIMITED, read_elsewhere_then(write_back=True, cached=True,
                                                        ack_lost=True))
    assert report.violations
    assert not report.unexplained, report.render()
    assert {v.limit for v in report.violations} == {PATCH_AFTER_DELETE}


def erase_during_create(racing: bool) -> Script:
    """A's create of m1 (user u1, conversation c1) has its entries journaled but its record
    write takes 1 s; B erases user u1 meanwhile (``racing``) or once the create is done."""

    async def script(sim: Sim) -> None:
        sim.world.delay_next_write("chat:m1", 1_000)
        creating = asyncio.ensure_future(
            sim.create("A", [message(conversation_id=CONVERSATION.id)]))
        await sim.at(500 if racing else 2_000)
        erased = await sim.erase("B", USER)
        expect(erased.ok and erased.value.remaining == 0, f"B erases u1: {erased}")
        expect((await creating).status == 201, "A's create is acknowledged")
        await sim.drain()

    return script


def test_an_erase_racing_a_create_leaves_it_in_all_its_indexes_or_none() -> None:
    assert_only_about(scripted(EXACT, erase_during_create(racing=True)), "m1")


def test_an_erase_after_a_create_takes_it_from_every_index() -> None:
    report = scripted(EXACT, erase_during_create(racing=False))
    assert_only_about(report, "m1")
    assert "chat:m1" not in report.world.settled_view()


# -- found on the rewritten engine (0564cd1), from the random runs -----------------------------

LAGGING_AT_B = 30_000  # B's listings lag this much; A's do not lag at all


def erase_retried_after_an_outage(lagging: bool) -> Script:
    """A creates m1 (user u1, conversation c1). Long after (its entries are no longer recent),
    B erases u1 while B's journal writes fail, longer than its retries last: the record is
    deleted, the plan stays, 503. B sends the erase again once KV is back; B's listing of
    plans lags (``lagging``) or not."""

    async def script(sim: Sim) -> None:
        created = await sim.create("A", [message(conversation_id=CONVERSATION.id)])
        expect(created.status == 201, "A creates m1")
        await sim.drain()
        await sim.at(200_000)
        sim.world.fail_writes("idx:log:", START_MS + 203_000, location="B")
        first = await sim.erase("B", USER)
        expect(first.status == 503, f"B's erase fails after deleting the record: {first}")
        expect("chat:m1" not in sim.world.settled_view(), "the record is gone")
        await sim.drain()
        await sim.at(204_000)
        if lagging:
            sim.world.lag_lists("B", LAGGING_AT_B)
        again = await sim.erase("B", USER)
        expect(again.ok and again.value.remaining == 0, f"B's erase again: {again}")
        sim.world.lag_lists("B", None)
        await sim.drain()

    return script


def test_an_erase_retried_within_the_list_lag_finishes_its_own_plan() -> None:
    assert_only_about(scripted(EXACT, erase_retried_after_an_outage(lagging=True)), "m1")


def test_an_erase_retried_after_an_outage_finishes_its_plan() -> None:
    assert_only_about(scripted(EXACT, erase_retried_after_an_outage(lagging=False)), "m1")


def erase_after_a_cached_miss(cached_miss: bool) -> Script:
    """B reads m1 before it exists (``cached_miss``: a 404, which B's cache keeps 60 s). A then
    creates m1 (user u1, conversation c1), and A's passes fold it into both roots. 20 s later
    B, whose listings lag 30 s, erases conversation c1. Without the cached miss the erase takes
    m1 from every index; with it, B cannot see m1's record, and must leave m1 in every index
    (an edge limit: an erase elsewhere, or here once the cache expires, takes it) rather than
    delete the record and leave the entry counted in the other index."""

    async def script(sim: Sim) -> None:
        if cached_miss:
            expect((await sim.get("B", "m1")).status == 404, "B reads m1: 404, now cached")
        await sim.at(1_000)
        created = await sim.create("A", [message(conversation_id=CONVERSATION.id)])
        expect(created.status == 201, "A creates m1")
        await sim.drain()
        await sim.at(20_000)
        sim.world.lag_lists("B", LAGGING_AT_B)
        erased = await sim.erase("B", CONVERSATION)
        expect(erased.ok and erased.value.remaining == 0, f"B erases c1: {erased}")
        sim.world.lag_lists("B", None)
        await sim.drain()
        if not cached_miss:
            expect("chat:m1" not in sim.world.settled_view(), "the erase deleted m1's record")

    return script


def test_an_erase_does_not_take_a_cached_miss_for_a_long_gone_record() -> None:
    assert_only_about(scripted(EXACT, erase_after_a_cached_miss(cached_miss=True)), "m1")


def test_an_erase_without_a_cached_miss_takes_the_message_from_every_index() -> None:
    assert_only_about(scripted(EXACT, erase_after_a_cached_miss(cached_miss=False)), "m1")


def patch_racing_a_delete(racing: bool) -> Script:
    """A patches m1's content while B deletes m1. A reads the record, then its write of the
    record takes 1 s (a 429's backoff, say): B's delete lands in between (``racing``), or only
    after the patch is done."""

    async def script(sim: Sim) -> None:
        expect((await sim.create("A", [message()])).status == 201, "A creates m1")
        await sim.drain()
        await sim.at(10_000)
        if racing:
            sim.world.delay_next_write("chat:m1", 1_000)
        patching = asyncio.ensure_future(sim.patch("A", "m1", {"content": "edited"}))
        await sim.at(10_500)
        if not racing:
            expect((await patching).status == 200, "A's patch is done before B deletes")
        expect((await sim.delete("B", "m1")).status == 204, "B deletes m1")
        expect((await patching).status == 200, "A's patch is acknowledged")
        await sim.drain()

    return script


# No read cache either: what goes wrong is a race, not a stale read.
UNCACHED = replace(EXACT, cache_ttl_ms=0)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "documented limit (README, consistency model: 'a PATCH racing a delete can also do on one "
    "KV'): a PATCH of content only journals nothing, so when a delete (or an erase) lands "
    "between its read and its write of the record, the record is written back after the index "
    "removal: an acknowledged message that no listing shows, without any stale read. Without "
    "a conditional write KV gives no way for the PATCH to lose to the delete"))
def test_a_patch_racing_a_delete_leaves_no_unlisted_record() -> None:
    assert_only_about(scripted(UNCACHED, patch_racing_a_delete(racing=True)), "m1")


def test_a_patch_then_a_delete() -> None:
    assert_only_about(scripted(UNCACHED, patch_racing_a_delete(racing=False)), "m1")


@pytest.mark.parametrize("edge", [UNCACHED, EXACT], ids=["uncached", "cached"])
def test_the_checker_puts_a_patch_racing_a_delete_down_to_its_documented_limit(
    edge: EdgeSettings,
) -> None:
    """Seed 135 (600 operations) in small: the PATCH read the record before the delete (no
    stale read), wrote it back after. Documented, in the indexes the delete's removal reached,
    and nothing else."""
    report = scripted(edge, patch_racing_a_delete(racing=True))
    assert report.violations
    assert not report.unexplained, report.render()
    assert {v.limit for v in report.violations} == {PATCH_RACING_DELETE}


SEGMENTED = Config(api_token="edge-sim", index_head_max=4, index_head_keep=2,
                   index_segment_max=3)


def fold_behind_the_root(lagging: bool) -> Script:
    """With segments: A creates six old messages (folded, and confirmed long before the rest),
    then m1, newest (in the head), then moves m1 below them all (A's pass puts it in a
    segment). 10 s later B lists u1: a full pass is due, and B's journal listing lags 20 s
    (``lagging``): it shows m1's create, not its move. 2 s later B lists u1 again."""

    async def script(sim: Sim) -> None:
        others = [message(f"f{n}", timestamp=START_MS + n * 1_000) for n in range(1, 7)]
        expect((await sim.create("A", others)).status == 201, "A creates f1-f6")
        await sim.drain()
        await sim.at(150_000)
        created = await sim.create("A", [message(timestamp=START_MS + 500_000)])
        expect(created.status == 201, "A creates m1, the newest")
        await sim.drain()
        await sim.at(180_000)
        moved = await sim.patch("A", "m1", {"timestamp": START_MS + 500})
        expect(moved.status == 200, f"A moves m1 below f1: {moved}")
        await sim.drain()
        await sim.at(190_000)
        if lagging:
            sim.world.lag_lists("B", 20_000)
        await sim.list_all("B", USER)
        sim.world.lag_lists("B", None)
        await sim.drain()
        await sim.at(192_000)
        await sim.list_all("B", USER)
        await sim.drain()

    return script


def test_a_pass_behind_its_root_does_not_store_a_message_twice() -> None:
    assert_only_about(scripted(EXACT, fold_behind_the_root(lagging=True), SEGMENTED), "m1")


def test_a_pass_that_lists_the_move_stores_the_message_once() -> None:
    assert_only_about(scripted(EXACT, fold_behind_the_root(lagging=False), SEGMENTED), "m1")




# -- found by make soak on f6e0591 (200 seeds x 600 operations) --------------------------------

# 429s on: the retries of a write whose first attempt happened meet the rate limit it set off.
RATE_LIMITED = replace(EXACT, rate_limit_writes=True)


def withdraw_whose_delete_is_lost(lost: bool) -> Script:
    """Seed 39. A creates a message with a server-made id (user u1, conversation c1) while A's
    journal writes for u1 fail (an outage longer than the retries): the c1 entry is journaled,
    the create answers 503 and withdraws what it wrote. Its delete of the record happens, but
    A is told it failed (``lost``); the retries then meet the 1 write/s limit that delete set
    off, and run out within that second."""

    async def script(sim: Sim) -> None:
        sim.world.fail_writes("idx:log:user:", START_MS + 10_000, location="A")
        if lost:
            sim.world.lose_next_ack("chat:", location="A")
        body = message(conversation_id=CONVERSATION.id)
        del body["id"]
        created = await sim.create("A", [body])
        expect(created.status == 503, f"A's create fails: {created}")
        await sim.drain()
        expect(not [k for k in sim.world.settled_view() if k.startswith("chat:")],
               "no record is left")
        journaled = [w for k in sim.world.keys_with_prefix("idx:log:conversation:")
                     for w in sim.world.history(k)]
        expect(bool(journaled), "the create's c1 entry was journaled")

    return script


def server_id_of(report: Report) -> str:
    ids = {i for v in report.violations for i in v.ids}
    expect(len(ids) <= 1, f"violations about several messages: {ids}")
    return next(iter(ids), "")


def test_a_withdrawn_create_whose_delete_answered_503_leaves_no_counted_entry() -> None:
    report = scripted(RATE_LIMITED, withdraw_whose_delete_is_lost(lost=True))
    assert_only_about(report, server_id_of(report))


def test_a_withdrawn_create_leaves_no_counted_entry() -> None:
    report = scripted(RATE_LIMITED, withdraw_whose_delete_is_lost(lost=False))
    assert_only_about(report, server_id_of(report))


def erase_behind_a_recreated_root(lagging: bool) -> Script:
    """Seed 79. A creates m1 (user u1, conversation c1), deletes it 62 s later, and B reads it
    then (a 404, which B's cache keeps 60 s). A creates m1 again at +100 s and A's passes fold it
    into both roots. At +121 s B erases c1 with its listings 60 s behind (``lagging``): the
    listing shows m1's first create (not recent any more), not the delete nor the new create,
    which only the root holds."""

    async def script(sim: Sim) -> None:
        created = await sim.create("A", [message(conversation_id=CONVERSATION.id)])
        expect(created.status == 201, "A creates m1")
        await sim.drain()
        await sim.at(62_000)
        expect((await sim.delete("A", "m1")).status == 204, "A deletes m1")
        await sim.drain()
        await sim.at(63_000)
        expect((await sim.get("B", "m1")).status == 404, "B reads m1: 404, now cached")
        await sim.at(100_000)
        again = await sim.create("A", [message(conversation_id=CONVERSATION.id)])
        expect(again.status == 201, f"A creates m1 again: {again}")
        await sim.drain()
        await sim.at(121_000)
        if lagging:
            sim.world.lag_lists("B", 60_000)
        erased = await sim.erase("B", CONVERSATION)
        expect(erased.ok and erased.value.remaining == 0, f"B erases c1: {erased}")
        sim.world.lag_lists("B", None)
        await sim.drain()

    return script


def test_an_erase_behind_its_root_does_not_take_a_cached_miss_for_a_long_gone_record() -> None:
    assert_only_about(scripted(EXACT, erase_behind_a_recreated_root(lagging=True)), "m1")


def test_an_erase_that_lists_the_recreate_leaves_the_message_alone() -> None:
    assert_only_about(scripted(EXACT, erase_behind_a_recreated_root(lagging=False)), "m1")


def test_the_checker_puts_stale_patches_that_race_an_erase_down_to_their_limit() -> None:
    """600 operations per seed: a timestamp PATCH retried from a stale copy of a message an
    erase took answers 200 without writing (acknowledged, no record); a move from a stale copy
    writes the record back while the erase's retry, finishing its plan, journals the removal
    after the move (a record no index lists). Documented, and nothing unexplained. Which seeds
    meet it shifts with the store's sequence of KV operations (and with the journal's
    per-isolate key counter, so with the tests run before), so several seeds are run and it
    must show in at least one: in a scan at this commit, most seeds meet it."""
    met = []
    for seed in (100, 101, 102, 103, 104):
        report = random_run(seed, 600)
        assert not report.unexplained, report.render()
        limits = {limit for v in report.violations for limit in v.limit.split(", ")}
        met.append(PATCH_AFTER_DELETE in limits)
    assert any(met), met


@pytest.mark.parametrize(("script", "config", "edge"), [
    (erase_retried_after_an_outage(lagging=True), DEFAULT_CONFIG, EXACT),
    (erase_after_a_cached_miss(cached_miss=True), DEFAULT_CONFIG, EXACT),
    (fold_behind_the_root(lagging=True), SEGMENTED, EXACT),
    (withdraw_whose_delete_is_lost(lost=True), DEFAULT_CONFIG, RATE_LIMITED),
    (erase_behind_a_recreated_root(lagging=True), DEFAULT_CONFIG, EXACT),
], ids=["erase-retry", "erase-cached-miss", "fold-behind-root",
        "withdraw-lost-delete", "erase-behind-root"])
def test_the_checker_does_not_put_these_bugs_down_to_documented_limits(
    script: Script, config: Config, edge: EdgeSettings
) -> None:
    """They are not the documented limits (and whatever they find once fixed is not either)."""
    report = scripted(edge, script, config)
    assert not report.documented, report.render()


# -- found by make soak on c63b3f3 (seeds 100-299 x 600 operations) ------------------------------


def stale_move_then_blind_erase(stale: bool) -> Script:
    """Seed 123. A creates m1 (user u1, conversation c1). C counts c1 at +90 s (its root, with
    m1, now cached at C). B reads m1 at +95 s (``stale``: now cached at B); A deletes m1 at
    +100 s; C reads m1 at +101 s (a 404, cached at C). At +102 s B moves m1: from its stale
    copy it writes the record back and journals the move in both indexes, after the delete's
    removals (a documented limit). At +125 s C erases c1 with its listings 30 s behind: it sees
    m1's first create only, and a miss of its record; it deletes the record B wrote back and
    removes m1 from c1, blind to the entry B's move journaled in u1."""

    async def script(sim: Sim) -> None:
        created = await sim.create("A", [message(conversation_id=CONVERSATION.id)])
        expect(created.status == 201, "A creates m1")
        await sim.drain()
        await sim.at(90_000)
        expect((await sim.count("C", CONVERSATION)).value == 1, "C counts m1 in c1")
        await sim.drain()
        await sim.at(95_000)
        if stale:
            expect((await sim.get("B", "m1")).status == 200, "B reads m1, now cached at B")
        await sim.at(100_000)
        expect((await sim.delete("A", "m1")).status == 204, "A deletes m1")
        await sim.drain()
        await sim.at(101_000)
        expect((await sim.get("C", "m1")).status == 404, "C reads m1: 404, now cached")
        await sim.at(102_000)
        moved = await sim.patch("B", "m1", {"timestamp": START_MS + 5_000})
        expect(moved.status == (200 if stale else 404), f"B moves m1: {moved}")
        await sim.drain()
        await sim.at(125_000)
        sim.world.lag_lists("C", 30_000)
        erased = await sim.erase("C", CONVERSATION)
        expect(erased.ok and erased.value.remaining == 0, f"C erases c1: {erased}")
        sim.world.lag_lists("C", None)
        await sim.drain()

    return script


def test_the_checker_puts_a_stale_move_erased_blind_down_to_its_documented_limit() -> None:
    """What the stale move leaves, once an erase that could not see its record takes that
    record, is an entry with no record in the other index: the documented limit, not set right
    by that erase."""
    report = scripted(EXACT, stale_move_then_blind_erase(stale=True),
                      locations=("A", "B", "C"))
    assert [v for v in report.violations if v.kind == "COUNT"], report.render()
    assert not report.unexplained, report.render()
    assert {v.limit for v in report.violations} == {PATCH_AFTER_DELETE}


def test_a_move_refused_after_a_delete_leaves_nothing_to_erase_blind() -> None:
    report = scripted(EXACT, stale_move_then_blind_erase(stale=False),
                      locations=("A", "B", "C"))
    assert report.ok, report.render()



def recreate_racing_a_stale_erase(stale: bool) -> Script:
    """Seed 193. A creates m1 (user u1); B reads it at +1 s (``stale``: now cached at B); A
    deletes it at +2 s. At +31 s A creates m1 again, its record write taking 1 s (the 429 a
    racing delete of the key sets off, in the soak); at +31.1 s B, its listings 30 s behind,
    erases u1: from its cached copy m1 is live, so it deletes the record (again) and journals
    the removal, after A's entries and before A's record."""

    async def script(sim: Sim) -> None:
        expect((await sim.create("A", [message()])).status == 201, "A creates m1")
        await sim.drain()
        await sim.at(1_000)
        if stale:
            expect((await sim.get("B", "m1")).status == 200, "B reads m1, now cached at B")
        await sim.at(2_000)
        expect((await sim.delete("A", "m1")).status == 204, "A deletes m1")
        await sim.drain()
        await sim.at(31_000)
        sim.world.delay_next_write("chat:m1", 1_000)
        creating = asyncio.ensure_future(sim.create("A", [message()]))
        await sim.at(31_100)
        sim.world.lag_lists("B", 30_000)
        erased = await sim.erase("B", USER)
        sim.world.lag_lists("B", None)
        expect(erased.ok and erased.value.remaining == 0, f"B erases u1: {erased}")
        expect((await creating).status == 201, "A's create is acknowledged")
        await sim.drain()

    return script


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "documented edge limit (README, consistency model): an erase that reads a stale cached "
    "copy of a message deleted elsewhere deletes it again and journals its removal, which "
    "undoes a re-create of that id racing it: an acknowledged message that no listing shows"))
def test_a_recreate_survives_an_erase_from_a_stale_cache() -> None:
    assert_only_about(scripted(EXACT, recreate_racing_a_stale_erase(stale=True)), "m1")


def test_a_recreate_racing_an_erase_without_a_stale_cache() -> None:
    assert_only_about(scripted(EXACT, recreate_racing_a_stale_erase(stale=False)), "m1")


def test_the_checker_puts_a_recreate_undone_by_a_stale_erase_down_to_its_documented_limit(
) -> None:
    report = scripted(EXACT, recreate_racing_a_stale_erase(stale=True))
    assert report.violations
    assert not report.unexplained, report.render()
    assert {v.limit for v in report.violations} == {ERASE_AFTER_DELETE}


def test_the_soak_findings_are_documented_limits() -> None:
    """Seeds 123, 135 and 193 at 600 operations: each a documented limit, nothing else."""
    for seed in (123, 135, 193):
        report = random_run(seed, 600)
        assert not report.unexplained, report.render()
