from __future__ import annotations

from index.object_cache import ObjectCache


def test_least_recently_used_items_go_first_when_over_weight() -> None:
    cache: ObjectCache[str] = ObjectCache(max_weight=10)
    cache.put("a", "A", 4)
    cache.put("b", "B", 4)
    assert cache.get("a") == "A"  # now "b" is the least recently used
    cache.put("c", "C", 4)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == ("A", "C")
    assert cache.weight == 8 and len(cache) == 2


def test_replacing_a_key_does_not_count_its_weight_twice() -> None:
    cache: ObjectCache[str] = ObjectCache(max_weight=10)
    cache.put("a", "A", 6)
    cache.put("a", "A2", 6)
    assert cache.weight == 6 and cache.get("a") == "A2"


def test_an_item_heavier_than_the_whole_cache_is_not_kept() -> None:
    cache: ObjectCache[str] = ObjectCache(max_weight=10)
    cache.put("small", "s", 3)
    cache.put("huge", "h", 11)
    assert cache.get("huge") is None
    assert cache.get("small") == "s", "a rejected item must not evict anything"


def test_weightless_items_still_weigh_one() -> None:
    cache: ObjectCache[int] = ObjectCache()
    cache.put("k", 1, 0)
    assert cache.get("k") == 1 and cache.get("x") is None
    assert cache.weight == 1
