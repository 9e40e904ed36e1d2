"""SortedSet against Redis sorted-set semantics.

The unit tests pin each command's contract (ZADD/ZREM return values, inclusive ZCOUNT bounds,
ZRANGE BYSCORE [REV] LIMIT with an exclusive ``after`` position). The state machine then runs
random command sequences against a model that is Redis' definition written as plainly as
possible: a dict member -> score, ranges = sort by (score, member) and filter. Scores and members
come from tiny pools so that ties (equal scores) and moves are the common case, not the rare one.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from index.zset import MAX_SCORE, MIN_SCORE, Entry, SortedSet

# -- a plain model of a Redis sorted set ---------------------------------------------------------


def model_range(
    model: dict[str, int],
    lo: int = MIN_SCORE,
    hi: int = MAX_SCORE,
    *,
    rev: bool = False,
    limit: int | None = None,
    after: Entry | None = None,
) -> list[Entry]:
    """ZRANGE key lo hi BYSCORE [REV] [LIMIT 0 limit], resuming strictly past ``after``."""
    entries = sorted(Entry(score, member) for member, score in model.items())
    entries = [e for e in entries if lo <= e.score <= hi]
    if rev:
        entries.reverse()
    if after is not None:
        entries = [e for e in entries if (e < after if rev else e > after)]
    return entries if limit is None else entries[:limit]


def paginate(zset: SortedSet, lo: int, hi: int, *, rev: bool, page_size: int) -> list[Entry]:
    """Walk a range page by page, each page resuming after the last entry of the previous one."""
    walked: list[Entry] = []
    after: Entry | None = None
    for _ in range(len(zset) + 2):  # every page makes progress, or this is a bug, not a hang
        page = zset.zrange_by_score(lo, hi, rev=rev, limit=page_size, after=after)
        assert len(page) <= page_size
        if not page:
            return walked
        walked += page
        after = page[-1]
    raise AssertionError(f"pagination does not terminate: {walked[-3:]} repeats")


def make(*pairs: tuple[str, int]) -> SortedSet:
    zset = SortedSet()
    for member, score in pairs:
        zset.zadd(member, score)
    return zset


def members(entries: list[Entry]) -> list[str]:
    return [e.member for e in entries]


# -- ZADD / ZREM -----------------------------------------------------------------------------------


def test_zadd_returns_1_for_a_new_member_and_0_for_a_move_or_same_score() -> None:
    zset = SortedSet()
    assert zset.zadd("a", 5) == 1  # new
    assert zset.zadd("a", 5) == 0  # same score: no change
    assert zset.zadd("a", 7) == 0  # move: not new, like ZADD's count of added elements
    assert zset.score("a") == 7
    assert len(zset) == 1
    assert zset.entries() == [Entry(7, "a")]


def test_a_move_repositions_the_member() -> None:
    zset = make(("a", 1), ("b", 2), ("c", 3))
    zset.zadd("a", 4)
    assert members(zset.entries()) == ["b", "c", "a"]
    zset.zadd("c", 0)
    assert zset.entries() == [Entry(0, "c"), Entry(2, "b"), Entry(4, "a")]


def test_zrem_returns_1_when_present_and_0_when_absent() -> None:
    zset = make(("a", 1), ("b", 1))
    assert zset.zrem("a") == 1
    assert zset.zrem("a") == 0
    assert zset.zrem("never") == 0
    assert "a" not in zset and "b" in zset
    assert zset.score("a") is None
    assert zset.entries() == [Entry(1, "b")]


# -- ZCOUNT ----------------------------------------------------------------------------------------


def test_zcount_bounds_are_inclusive() -> None:
    zset = make(("a", 1), ("b", 2), ("c", 2), ("d", 3))
    assert zset.zcount() == 4
    assert zset.zcount(2, 3) == 3
    assert zset.zcount(2, 2) == 2  # both ends inclusive: a point range counts its ties
    assert zset.zcount(1, 1) == 1
    assert zset.zcount(4, 10) == 0
    assert zset.zcount(3, 2) == 0  # an inverted range is empty, not an error
    assert zset.zcount(MIN_SCORE, MAX_SCORE) == 4


def test_bounds_include_the_extreme_scores() -> None:
    zset = make(("lo", MIN_SCORE), ("hi", MAX_SCORE))
    assert zset.zcount() == 2
    assert zset.zrange_by_score() == [Entry(MIN_SCORE, "lo"), Entry(MAX_SCORE, "hi")]
    assert zset.zrange_by_score(MAX_SCORE, MAX_SCORE) == [Entry(MAX_SCORE, "hi")]


# -- ZRANGE BYSCORE [REV] LIMIT, with an ``after`` position ---------------------------------------


def test_ties_are_ordered_by_member_and_rev_is_the_exact_reverse() -> None:
    zset = make(("b", 1), ("c", 1), ("a", 1), ("z", 0), ("d", 2))
    asc = zset.zrange_by_score()
    assert asc == [Entry(0, "z"), Entry(1, "a"), Entry(1, "b"), Entry(1, "c"), Entry(2, "d")]
    # REV reverses the whole order, ties included (ZRANGE ... REV), not just the scores.
    assert zset.zrange_by_score(rev=True) == asc[::-1]


def test_member_ties_follow_utf8_byte_order() -> None:
    # Code point order equals UTF-8 byte order, so other systems sorting bytes agree with us.
    names = ["é", "z", "Z", "a", "\u4e2d", "\U0001f600", "ÿ"]
    zset = make(*((name, 1) for name in names))
    assert members(zset.entries()) == sorted(names, key=lambda m: m.encode("utf-8"))


def test_range_filters_by_score_inclusively() -> None:
    zset = make(("a", 1), ("b", 2), ("c", 3), ("d", 4))
    assert members(zset.zrange_by_score(2, 3)) == ["b", "c"]
    assert members(zset.zrange_by_score(2, 3, rev=True)) == ["c", "b"]
    assert zset.zrange_by_score(5, 9) == []
    assert zset.zrange_by_score(3, 2) == []


def test_limit_takes_from_the_start_of_the_requested_order() -> None:
    zset = make(("a", 1), ("b", 2), ("c", 3), ("d", 4))
    assert members(zset.zrange_by_score(limit=2)) == ["a", "b"]
    assert members(zset.zrange_by_score(limit=2, rev=True)) == ["d", "c"]  # the newest two
    assert members(zset.zrange_by_score(2, 4, rev=True, limit=1)) == ["d"]
    assert zset.zrange_by_score(limit=0) == []
    assert members(zset.zrange_by_score(limit=99)) == ["a", "b", "c", "d"]


def test_after_is_an_exclusive_position_in_the_requested_order() -> None:
    zset = make(("a", 1), ("b", 1), ("c", 1), ("d", 2))
    # Ascending: strictly after (1, "b"), so the tie "c" at the same score still comes next.
    assert members(zset.zrange_by_score(after=Entry(1, "b"))) == ["c", "d"]
    # Descending: strictly before (1, "b") in ascending terms.
    assert members(zset.zrange_by_score(rev=True, after=Entry(1, "b"))) == ["a"]
    assert members(zset.zrange_by_score(rev=True, after=Entry(2, "d"))) == ["c", "b", "a"]
    assert zset.zrange_by_score(after=Entry(2, "d")) == []
    # Limit counts from the position, not from the start of the range.
    assert members(zset.zrange_by_score(limit=1, after=Entry(1, "a"))) == ["b"]


def test_after_need_not_be_a_member() -> None:
    # A cursor names the last entry of the previous page, which may have been deleted (or moved)
    # since: the position is still exact, nothing repeats and nothing is skipped.
    zset = make(("a", 1), ("c", 1), ("e", 3))
    assert members(zset.zrange_by_score(after=Entry(1, "b"))) == ["c", "e"]
    assert members(zset.zrange_by_score(rev=True, after=Entry(1, "b"))) == ["a"]
    assert members(zset.zrange_by_score(after=Entry(2, "zzz"))) == ["e"]
    assert members(zset.zrange_by_score(rev=True, after=Entry(2, ""))) == ["c", "a"]


def test_after_outside_the_range_bounds() -> None:
    zset = make(("a", 1), ("b", 2), ("c", 3))
    assert members(zset.zrange_by_score(2, 3, after=Entry(0, "x"))) == ["b", "c"]
    assert zset.zrange_by_score(2, 3, after=Entry(9, "x")) == []
    assert members(zset.zrange_by_score(1, 2, rev=True, after=Entry(9, "x"))) == ["b", "a"]
    assert zset.zrange_by_score(1, 2, rev=True, after=Entry(0, "x")) == []


def test_pagination_is_stable_under_inserts_and_deletes_elsewhere() -> None:
    zset = make(*((f"m{n}", n // 2) for n in range(8)))  # scores 0,0,1,1,2,2,3,3
    first = zset.zrange_by_score(limit=3)
    assert members(first) == ["m0", "m1", "m2"]
    zset.zadd("a-before", 0)  # lands before the cursor: must not shift the next page
    zset.zrem("m2")  # the cursor's own entry disappears: the position stays exact
    rest = zset.zrange_by_score(after=first[-1])
    assert members(rest) == ["m3", "m4", "m5", "m6", "m7"]


def test_constructors_agree_and_from_sorted_distrusts_bad_input() -> None:
    entries = [Entry(1, "a"), Entry(1, "b"), Entry(2, "a")]  # "a" twice: the last one wins
    assert SortedSet(entries).entries() == [Entry(1, "b"), Entry(2, "a")]
    assert SortedSet.from_sorted(entries).entries() == [Entry(1, "b"), Entry(2, "a")]
    unsorted = [Entry(3, "c"), Entry(1, "a")]
    rebuilt = SortedSet.from_sorted(unsorted)
    assert rebuilt.entries() == [Entry(1, "a"), Entry(3, "c")]
    assert rebuilt.zcount(0, 2) == 1
    good = [Entry(1, "a"), Entry(2, "b")]
    trusted = SortedSet.from_sorted(good)
    assert trusted.entries() == good and trusted.score("b") == 2 and len(trusted) == 2


# -- properties against the model -----------------------------------------------------------------

MEMBERS = st.sampled_from(["a", "b", "c", "d", "e", "ab"])
SCORES = st.integers(0, 4)  # few scores: most entries tie with another
BOUNDS = st.integers(-1, 6)  # includes bounds outside every score, and inverted ranges
LIMITS = st.none() | st.integers(0, 7)
POSITIONS = st.none() | st.builds(Entry, BOUNDS, st.sampled_from(["", "a", "b", "bb", "e", "z"]))


class SortedSetMachine(RuleBasedStateMachine):
    """Random ZADD/ZREM sequences; every query answered exactly as the model answers it."""

    def __init__(self) -> None:
        super().__init__()
        self.zset = SortedSet()
        self.model: dict[str, int] = {}

    @rule(member=MEMBERS, score=SCORES)
    def zadd(self, member: str, score: int) -> None:
        expected = 0 if member in self.model else 1
        assert self.zset.zadd(member, score) == expected
        self.model[member] = score

    @rule(member=MEMBERS)
    def zrem(self, member: str) -> None:
        expected = 1 if member in self.model else 0
        assert self.zset.zrem(member) == expected
        self.model.pop(member, None)

    @rule(lo=BOUNDS, hi=BOUNDS)
    def zcount(self, lo: int, hi: int) -> None:
        assert self.zset.zcount(lo, hi) == len(model_range(self.model, lo, hi))

    @rule(lo=BOUNDS, hi=BOUNDS, rev=st.booleans(), limit=LIMITS, after=POSITIONS)
    def zrange(self, lo: int, hi: int, rev: bool, limit: int | None, after: Entry | None) -> None:
        got = self.zset.zrange_by_score(lo, hi, rev=rev, limit=limit, after=after)
        assert got == model_range(self.model, lo, hi, rev=rev, limit=limit, after=after)

    @rule(lo=BOUNDS, hi=BOUNDS)
    def rev_is_exact_reverse(self, lo: int, hi: int) -> None:
        asc = self.zset.zrange_by_score(lo, hi)
        assert self.zset.zrange_by_score(lo, hi, rev=True) == asc[::-1]

    @rule(lo=BOUNDS, hi=BOUNDS, rev=st.booleans(), page_size=st.integers(1, 4))
    def paginate_whole_range(self, lo: int, hi: int, rev: bool, page_size: int) -> None:
        # Each entry exactly once, in order: no page repeats or skips a tie.
        walked = paginate(self.zset, lo, hi, rev=rev, page_size=page_size)
        assert walked == model_range(self.model, lo, hi, rev=rev)

    @invariant()
    def same_contents(self) -> None:
        assert self.zset.entries() == model_range(self.model)
        assert list(self.zset) == self.zset.entries()
        assert len(self.zset) == len(self.model)
        for member in ["a", "b", "c", "d", "e", "ab", "zz"]:
            assert (member in self.zset) == (member in self.model)
            assert self.zset.score(member) == self.model.get(member)


SortedSetMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40,
                                              deadline=None)
test_sorted_set_machine = SortedSetMachine.TestCase


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(st.tuples(st.booleans(), MEMBERS, SCORES), max_size=40),
    lo=BOUNDS,
    hi=BOUNDS,
    page_size=st.integers(1, 5),
)
def test_pagination_visits_the_range_exactly_once_in_order(
    ops: list[tuple[bool, str, int]], lo: int, hi: int, page_size: int
) -> None:
    zset = SortedSet()
    model: dict[str, int] = {}
    for is_add, member, score in ops:
        if is_add:
            zset.zadd(member, score)
            model[member] = score
        else:
            zset.zrem(member)
            model.pop(member, None)
    for rev in (False, True):
        walked = paginate(zset, lo, hi, rev=rev, page_size=page_size)
        assert walked == model_range(model, lo, hi, rev=rev)
        assert len(set(walked)) == len(walked)
    asc = paginate(zset, lo, hi, rev=False, page_size=page_size)
    assert paginate(zset, lo, hi, rev=True, page_size=page_size) == asc[::-1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.builds(Entry, st.integers(0, 3), st.text(max_size=3)), max_size=20))
def test_any_members_sort_by_score_then_utf8_bytes(entries: list[Entry]) -> None:
    zset = SortedSet(entries)
    model = {e.member: e.score for e in entries}  # later duplicates win, as with ZADD
    expected = sorted(model.items(), key=lambda kv: (kv[1], kv[0].encode("utf-8")))
    assert [(e.member, e.score) for e in zset.entries()] == expected
