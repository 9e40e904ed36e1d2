"""Tests of the in-memory Workers KV fake itself, so the store's tests can trust it."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.kv import (
    MAX_KEY_BYTES,
    MAX_LIST_LIMIT,
    MAX_METADATA_BYTES,
    MAX_VALUE_BYTES,
    KVStore,
    ListedKey,
    ListPage,
    ValueWithMetadata,
)
from support.aio import run
from support.clock import ManualClock
from support.memory_kv import KVLimitError, MemoryKV


async def fill(kv: MemoryKV, keys: list[str]) -> None:
    for key in keys:
        await kv.put(key, f"v:{key}")


async def list_all(kv: MemoryKV, *, prefix: str = "", limit: int = MAX_LIST_LIMIT) -> list[str]:
    names: list[str] = []
    cursor: str | None = None
    while True:
        page = await kv.list(prefix=prefix, limit=limit, cursor=cursor)
        assert len(page.keys) <= limit
        names += [k.name for k in page.keys]
        if page.list_complete:
            assert page.cursor is None
            return names
        assert page.cursor is not None
        cursor = page.cursor


def utf8_sorted(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda k: k.encode("utf-8"))


# --- protocol and basic operations ------------------------------------------------------------


def test_satisfies_kvstore_protocol() -> None:
    store: KVStore = MemoryKV()  # checked statically by mypy
    for name in ("get", "get_with_metadata", "put", "delete", "list"):
        assert inspect.iscoroutinefunction(getattr(store, name)), name


def test_get_put_overwrite_and_missing() -> None:
    async def go() -> None:
        kv = MemoryKV()
        assert await kv.get("k") is None
        assert await kv.get_with_metadata("k") is None
        await kv.put("k", "one")
        assert await kv.get("k") == "one"
        assert await kv.get_with_metadata("k") == ValueWithMetadata("one", None)
        await kv.put("k", "two")
        assert await kv.get("k") == "two"
        await kv.put("empty", "")
        assert await kv.get("empty") == ""
        assert kv.snapshot() == {"empty": "", "k": "two"}

    run(go())


def test_delete_existing_and_missing() -> None:
    async def go() -> None:
        kv = MemoryKV()
        await kv.delete("never-there")  # no error
        await kv.put("k", "v")
        await kv.delete("k")
        assert await kv.get("k") is None
        await kv.delete("k")
        assert kv.snapshot() == {}
        assert (await kv.list()).keys == []
        await kv.put("k", "again")  # re-insert after delete is listed once
        assert await list_all(kv) == ["k"]

    run(go())


# --- listing ----------------------------------------------------------------------------------


def test_list_is_in_utf8_byte_order() -> None:
    # "！" (U+FF01) sorts before the emoji in UTF-8 (and code point) order, but after it in
    # UTF-16 order (JavaScript's default sort), because the emoji's high surrogate is 0xD83D.
    keys = ["z", "é", "~", "a", "\U0001f600", "B", "\uff01", "aa", "a\x00"]
    expected = ["B", "a", "a\x00", "aa", "z", "~", "é", "\uff01", "\U0001f600"]
    assert utf8_sorted(keys) == expected

    async def go() -> None:
        kv = MemoryKV()
        await fill(kv, keys)
        page = await kv.list()
        assert [k.name for k in page.keys] == expected
        assert page.list_complete and page.cursor is None
        assert list(kv.snapshot()) == expected
        assert await list_all(kv, limit=2) == expected

    run(go())


def test_list_prefix() -> None:
    async def go() -> None:
        kv = MemoryKV()
        await fill(kv, ["user:1", "user:10", "user:2", "users", "use", "zz", "user:é", "a"])
        assert await list_all(kv, prefix="user:") == ["user:1", "user:10", "user:2", "user:é"]
        assert await list_all(kv, prefix="user:", limit=1) == [
            "user:1",
            "user:10",
            "user:2",
            "user:é",
        ]
        assert await list_all(kv, prefix="user") == [
            "user:1",
            "user:10",
            "user:2",
            "user:é",
            "users",
        ]
        assert await list_all(kv, prefix="user:1") == ["user:1", "user:10"]
        assert await list_all(kv, prefix="user:é") == ["user:é"]
        assert await list_all(kv, prefix="nope") == []
        assert await list_all(kv, prefix="") == utf8_sorted(list(kv.snapshot()))

    run(go())


@pytest.mark.parametrize(("limit", "pages"), [(MAX_LIST_LIMIT, 3), (7, 358), (1, 2500)])
def test_paging_2500_keys_returns_each_key_once(limit: int, pages: int) -> None:
    keys = [f"key:{i}" for i in range(2500)]

    async def go() -> None:
        kv = MemoryKV()
        await fill(kv, keys)
        kv.reset_counters()
        names = await list_all(kv, limit=limit)
        assert names == utf8_sorted(keys)
        assert len(set(names)) == 2500
        assert kv.lists == pages

    run(go())


def test_default_limit_is_1000_and_pages_are_full() -> None:
    async def go() -> None:
        kv = MemoryKV()
        await fill(kv, [f"k{i:04d}" for i in range(2500)])
        first = await kv.list()
        assert len(first.keys) == 1000 and not first.list_complete
        second = await kv.list(cursor=first.cursor)
        assert len(second.keys) == 1000 and not second.list_complete
        third = await kv.list(cursor=second.cursor)
        assert len(third.keys) == 500 and third.list_complete and third.cursor is None
        assert [k.name for k in third.keys][-1] == "k2499"

    run(go())


def test_exactly_limit_keys_is_one_complete_page() -> None:
    async def go() -> None:
        kv = MemoryKV()
        await fill(kv, [f"k{i:04d}" for i in range(10)])
        page = await kv.list(limit=10)
        assert len(page.keys) == 10 and page.list_complete and page.cursor is None

    run(go())


def test_cursor_survives_inserts_and_deletes_between_pages() -> None:
    async def go() -> None:
        kv = MemoryKV()
        await fill(kv, [f"k{i:02d}" for i in range(30)])
        first = await kv.list(limit=10)
        assert [k.name for k in first.keys] == [f"k{i:02d}" for i in range(10)]
        assert first.cursor is not None and not first.cursor.isdigit()

        await kv.delete("k09")  # the very key the cursor points after
        await kv.delete("k03")  # already returned
        await kv.delete("k10")  # would have been next
        await kv.put("k00a", "v")  # before the cursor: not returned on later pages
        await kv.put("k095", "v")  # after the cursor: returned
        await kv.put("k99", "v")  # at the end: returned

        rest: list[str] = []
        cursor: str | None = first.cursor
        while cursor is not None:
            page = await kv.list(limit=10, cursor=cursor)
            rest += [k.name for k in page.keys]
            cursor = page.cursor
        assert rest == ["k095"] + [f"k{i:02d}" for i in range(11, 30)] + ["k99"]

    run(go())


def test_cursor_is_reusable_and_keeps_prefix() -> None:
    async def go() -> None:
        kv = MemoryKV()
        await fill(kv, ["a1", "a2", "a3", "b1", "b2"])
        page = await kv.list(prefix="a", limit=1)
        again = await kv.list(prefix="a", limit=1, cursor=page.cursor)
        assert again == await kv.list(prefix="a", limit=1, cursor=page.cursor)
        assert [k.name for k in again.keys] == ["a2"]
        last = await kv.list(prefix="a", cursor=again.cursor)
        assert [k.name for k in last.keys] == ["a3"]  # the prefix still bounds later pages
        assert last.list_complete

    run(go())


@pytest.mark.parametrize("cursor", ["not base64!", "é", "abc"])
def test_invalid_cursor_is_rejected(cursor: str) -> None:
    with pytest.raises(KVLimitError, match="cursor"):
        run(MemoryKV().list(cursor=cursor))


# --- metadata ---------------------------------------------------------------------------------


def test_metadata_round_trip_and_listed() -> None:
    meta = {"title": "Chat ☕", "count": 3, "tags": ["a", "b"], "nested": {"ok": True}, "n": None}

    async def go() -> None:
        kv = MemoryKV()
        await kv.put("chat:1", "body", metadata=meta)
        await kv.put("chat:2", "plain")
        assert await kv.get_with_metadata("chat:1") == ValueWithMetadata("body", meta)
        assert kv.metadata_of("chat:1") == meta
        assert kv.metadata_of("chat:2") is None
        page = await kv.list(prefix="chat:")
        assert page == ListPage(
            keys=[ListedKey("chat:1", meta, None), ListedKey("chat:2", None, None)],
            list_complete=True,
            cursor=None,
        )
        await kv.put("chat:1", "body2")  # a put without metadata drops the old metadata
        assert kv.metadata_of("chat:1") is None

    run(go())


def test_metadata_is_copied_in_and_out() -> None:
    async def go() -> None:
        kv = MemoryKV()
        meta: dict[str, Any] = {"tags": ["a"]}
        await kv.put("k", "v", metadata=meta)
        meta["tags"].append("leaked")
        meta["new"] = 1
        got = await kv.get_with_metadata("k")
        assert got is not None and got.metadata == {"tags": ["a"]}
        assert got.metadata is not None
        got.metadata["tags"].append("leaked")
        listed = (await kv.list()).keys[0].metadata
        assert listed == {"tags": ["a"]}
        assert listed is not None
        listed["x"] = 1
        assert kv.metadata_of("k") == {"tags": ["a"]}

    run(go())


def test_metadata_goes_through_json() -> None:
    kv = MemoryKV()
    run(kv.put("k", "v", metadata={"t": (1, 2), "n": 1.5}))
    assert kv.metadata_of("k") == {"t": [1, 2], "n": 1.5}


def test_snapshot_is_a_copy() -> None:
    kv = MemoryKV()
    run(kv.put("k", "v"))
    snap = kv.snapshot()
    snap["k"] = "changed"
    snap["other"] = "x"
    assert kv.snapshot() == {"k": "v"}


# --- limits -----------------------------------------------------------------------------------


def _metadata_of_size(size: int) -> dict[str, Any]:
    overhead = len(json.dumps({"p": ""}, separators=(",", ":")))
    return {"p": "x" * (size - overhead)}


def test_boundaries_are_accepted() -> None:
    async def go() -> None:
        kv = MemoryKV()
        await kv.put("k" * MAX_KEY_BYTES, "v")
        await kv.put("é" * (MAX_KEY_BYTES // 2), "v")  # 512 bytes in 256 characters
        await kv.put("meta", "v", metadata=_metadata_of_size(MAX_METADATA_BYTES))
        await kv.put("ttl", "v", expiration_ttl=60)
        await kv.put("...", "v")
        await kv.put(".a", "v")
        await kv.list(limit=1)
        await kv.list(limit=MAX_LIST_LIMIT)
        assert kv.writes == 6

    run(go())


class _Unserializable:
    pass


_circular: dict[str, Any] = {}
_circular["self"] = _circular

BAD_PUTS: list[tuple[str, dict[str, Any], str]] = [
    ("", {}, "empty"),
    (".", {}, "'.'"),
    ("..", {}, "'..'"),
    ("k" * (MAX_KEY_BYTES + 1), {}, "513 UTF-8 bytes"),
    ("é" * (MAX_KEY_BYTES // 2) + "k", {}, "513 UTF-8 bytes"),
    ("\ud800", {}, "key is not encodable"),
    ("k", {"metadata": _metadata_of_size(MAX_METADATA_BYTES + 1)}, "1025 bytes"),
    ("k", {"metadata": {"t": "é" * 600}}, "1208 bytes as JSON"),  # 608 characters
    ("k", {"metadata": {"s": {1, 2}}}, "not JSON-serializable"),
    ("k", {"metadata": {"o": _Unserializable()}}, "not JSON-serializable"),
    ("k", {"metadata": {"f": float("nan")}}, "not JSON-serializable"),
    ("k", {"metadata": _circular}, "not JSON-serializable"),
    ("k", {"expiration_ttl": 59}, "minimum is 60"),
    ("k", {"expiration_ttl": 0}, "minimum is 60"),
    ("k", {"expiration_ttl": -100}, "minimum is 60"),
]


@pytest.mark.parametrize(("key", "kwargs", "message"), BAD_PUTS)
def test_put_limit_violations(key: str, kwargs: dict[str, Any], message: str) -> None:
    kv = MemoryKV()
    with pytest.raises(KVLimitError, match=message):
        run(kv.put(key, "v", **kwargs))
    assert kv.snapshot() == {}
    assert kv.ops == 0  # a rejected call is not counted as an operation


@pytest.mark.parametrize("char", ["x", "é", "\U0001f600"])
def test_value_over_25_mib_is_rejected(char: str) -> None:
    kv = MemoryKV()
    value = char * (MAX_VALUE_BYTES // len(char.encode("utf-8")))
    run(kv.put("k", value))  # exactly 25 MiB
    with pytest.raises(KVLimitError, match=f"value is {MAX_VALUE_BYTES + 1} UTF-8 bytes"):
        run(kv.put("k", value + "x"))
    assert kv.snapshot() == {"k": value}
    assert kv.writes == 1


def test_limit_error_is_a_value_error() -> None:
    assert issubclass(KVLimitError, ValueError)


@pytest.mark.parametrize("key", ["", ".", "..", "k" * (MAX_KEY_BYTES + 1)])
def test_invalid_keys_rejected_by_get_and_delete(key: str) -> None:
    kv = MemoryKV()
    for call in (kv.get, kv.get_with_metadata, kv.delete):
        with pytest.raises(KVLimitError):
            run(call(key))
    with pytest.raises(KVLimitError):
        kv.metadata_of(key)
    assert kv.ops == 0


@pytest.mark.parametrize("limit", [0, -1, MAX_LIST_LIMIT + 1])
def test_list_limit_out_of_range(limit: int) -> None:
    kv = MemoryKV()
    with pytest.raises(KVLimitError, match="limit"):
        run(kv.list(limit=limit))
    assert kv.ops == 0


# --- expiration -------------------------------------------------------------------------------


def test_expiration_with_fake_clock() -> None:
    clock = ManualClock(1_000_000_000)

    async def go() -> None:
        kv = MemoryKV(clock=clock.seconds)
        await kv.put("a", "1", expiration_ttl=60, metadata={"m": 1})
        await kv.put("b", "2")
        await kv.put("c", "3", expiration_ttl=3600)
        page = await kv.list()
        assert page.keys == [
            ListedKey("a", {"m": 1}, 1_000_060),
            ListedKey("b", None, None),
            ListedKey("c", None, 1_003_600),
        ]

        clock.set_seconds(1_000_059.9)
        assert await kv.get("a") == "1"

        clock.set_seconds(1_000_060)
        assert await kv.get("a") is None
        assert await kv.get_with_metadata("a") is None
        assert [k.name for k in (await kv.list()).keys] == ["b", "c"]
        assert kv.snapshot() == {"b": "2", "c": "3"}
        with pytest.raises(KeyError):
            kv.metadata_of("a")

        await kv.put("a", "revived")  # a put without a TTL never expires
        assert (await kv.list(limit=1)).keys == [ListedKey("a", None, None)]
        clock.advance(10**12)
        assert kv.snapshot() == {"a": "revived", "b": "2"}

    run(go())


def test_overwrite_changes_expiration() -> None:
    clock = ManualClock(500_000)

    async def go() -> None:
        kv = MemoryKV(clock=clock.seconds)
        await kv.put("k", "v")
        await kv.put("k", "v", expiration_ttl=120)
        assert (await kv.list()).keys[0].expiration == 620
        await kv.put("k", "v")
        assert (await kv.list()).keys[0].expiration is None

    run(go())


def test_expired_keys_do_not_fill_pages() -> None:
    clock = ManualClock(0)

    async def go() -> None:
        kv = MemoryKV(clock=clock.seconds)
        for i in range(20):
            await kv.put(f"k{i:02d}", "v", expiration_ttl=60 if i % 2 else None)
        clock.set_seconds(60)
        first = await kv.list(limit=5)
        assert [k.name for k in first.keys] == ["k00", "k02", "k04", "k06", "k08"]
        assert await list_all(kv, limit=5) == [f"k{i:02d}" for i in range(0, 20, 2)]
        # The last live key is followed only by expired ones: the page is complete.
        last = await kv.list(prefix="k18", limit=1)
        assert last.list_complete and [k.name for k in last.keys] == ["k18"]

    run(go())


# --- counters ---------------------------------------------------------------------------------


def test_counters() -> None:
    async def go() -> None:
        kv = MemoryKV()
        assert (kv.ops, kv.reads, kv.writes, kv.deletes, kv.lists) == (0, 0, 0, 0, 0)
        await kv.put("a", "1")
        await kv.put("b", "2", metadata={"x": 1})
        await kv.get("a")
        await kv.get("missing")
        await kv.get_with_metadata("b")
        await kv.delete("a")
        await kv.delete("missing")
        await kv.list()
        kv.snapshot()
        kv.metadata_of("b")
        assert (kv.reads, kv.writes, kv.deletes, kv.lists) == (3, 2, 2, 1)
        assert kv.ops == 8
        kv.reset_counters()
        assert (kv.ops, kv.reads, kv.writes, kv.deletes, kv.lists) == (0, 0, 0, 0, 0)
        assert kv.snapshot() == {"b": "2"}  # resetting counters keeps the data
        await kv.list()
        assert kv.ops == kv.lists == 1

    run(go())


# --- model-based ------------------------------------------------------------------------------

KEYS = st.text(alphabet="aB~é\uff01\U0001f600", min_size=1, max_size=4)
OPS = st.lists(
    st.tuples(st.sampled_from(["put", "delete"]), KEYS, st.text(max_size=3)), max_size=60
)


@settings(max_examples=200, deadline=None)
@given(ops=OPS, limit=st.integers(1, 7), prefix=st.sampled_from(["", "a", "é", "\U0001f600"]))
def test_random_operations_match_dict_model(
    ops: list[tuple[str, str, str]], limit: int, prefix: str
) -> None:
    async def go() -> None:
        kv = MemoryKV()
        model: dict[str, str] = {}
        for op, key, value in ops:
            if op == "put":
                await kv.put(key, value)
                model[key] = value
            else:
                await kv.delete(key)
                model.pop(key, None)
        assert await list_all(kv, limit=limit) == utf8_sorted(list(model))
        wanted = [k for k in model if k.startswith(prefix)]
        assert await list_all(kv, prefix=prefix, limit=limit) == utf8_sorted(wanted)
        assert kv.snapshot() == model
        for _, key, _ in ops:
            assert await kv.get(key) == model.get(key)
        assert kv.writes + kv.deletes == len(ops)

    run(go())
