from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from index.zset import MAX_SCORE, MIN_SCORE, Entry
from jsonutil import dumps
from kvformat import dump_entries, parse_entries

entries = st.lists(st.builds(Entry, st.integers(MIN_SCORE, MAX_SCORE), st.text(max_size=40)),
                   max_size=30)


@given(entries)
def test_an_index_array_is_written_exactly_as_the_seed_format_dumps_it(items: list[Entry]) -> None:
    """Other systems read these arrays: the fast writer must match the plain one byte for byte
    (quotes, backslashes, control and non-ASCII characters included) and read back."""
    text = dump_entries(items)
    assert text == dumps([e.to_json() for e in items])
    assert parse_entries(text) == items


def test_the_seed_format_by_example() -> None:
    text = dump_entries([Entry(5, 'chat:"a\\b\u00e9\n'), Entry(7, "chat:x")])
    assert text == ('[{"score":5,"member":"chat:\\"a\\\\b\u00e9\\n"},'
                    '{"score":7,"member":"chat:x"}]')
    assert dump_entries([]) == "[]"
