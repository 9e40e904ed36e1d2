"""Parsed immutable index objects, kept per isolate so hot histories skip KV and JSON.

Segments and manifests are written once under a fresh key and never modified (see
``sorted_index``), so a copy parsed by an earlier request can never be stale: at worst it is
an object no root references any more, which nothing asks for. The cache is bounded by the
number of index entries it holds, least recently used out first.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

T = TypeVar("T")

# About 40 bytes of Python per entry: a few MiB, far below an isolate's 128 MiB.
DEFAULT_MAX_WEIGHT = 64 * 1024


class ObjectCache(Generic[T]):
    def __init__(self, max_weight: int = DEFAULT_MAX_WEIGHT) -> None:
        self.max_weight = max_weight
        self.weight = 0
        self._items: OrderedDict[str, tuple[T, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> T | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: str, value: T, weight: int) -> None:
        """Keep ``value`` unless it alone outweighs the whole cache."""
        weight = max(weight, 1)
        if weight > self.max_weight:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.weight -= old[1]
        self._items[key] = (value, weight)
        self.weight += weight
        while self.weight > self.max_weight:
            _, (_, dropped) = self._items.popitem(last=False)
            self.weight -= dropped
