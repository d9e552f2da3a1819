"""In-memory latest-state index: the live KV of every key, sorted for prefix ranges.

Backends keep one of these consistent with their commits (updated on the event loop, one committed batch at
a time), so reads at the latest revision never touch the database; upstream's apiserver gets the same effect
from its watch cache (`k8s.io/apiserver/pkg/storage/cacher`). Not thread-safe: owned by the event loop.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

from skiff.storage.interface import KV


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix` (None: no upper bound).

    Same idea as etcd's `clientv3.GetPrefixRangeEnd`, on code points instead of bytes; code-point order
    equals UTF-8 byte order, which is SQLite's BINARY collation, so SQL ranges and this index agree.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars[-1])
        if last < 0x10FFFF:
            chars[-1] = chr(last + 1)
            return "".join(chars)
        chars.pop()
    return None


class LatestIndex:
    """Live keys → KV, with a sorted key list for `list`/`count` by prefix in O(log n + page)."""

    def __init__(self) -> None:
        self._kvs: dict[str, KV] = {}
        self._keys: list[str] = []

    def __len__(self) -> int:
        return len(self._kvs)

    def get(self, key: str) -> KV | None:
        return self._kvs.get(key)

    def put(self, kv: KV) -> None:
        if kv.key not in self._kvs:
            insort(self._keys, kv.key)
        self._kvs[kv.key] = kv

    def remove(self, key: str) -> None:
        if self._kvs.pop(key, None) is not None:
            del self._keys[bisect_left(self._keys, key)]

    def _bounds(self, prefix: str, start_after: str | None) -> tuple[int, int]:
        lo = bisect_left(self._keys, prefix)
        if start_after is not None:
            lo = max(lo, bisect_right(self._keys, start_after))
        end = prefix_end(prefix)
        hi = len(self._keys) if end is None else bisect_left(self._keys, end)
        return lo, max(lo, hi)

    def range(self, prefix: str, limit: int | None, start_after: str | None) -> tuple[list[KV], int]:
        """Up to `limit` live KVs under `prefix` after `start_after`, sorted; and how many are left after them."""
        lo, hi = self._bounds(prefix, start_after)
        stop = hi if limit is None else min(hi, lo + limit)
        kvs = self._kvs
        return [kvs[k] for k in self._keys[lo:stop]], hi - stop

    def count(self, prefix: str) -> int:
        lo, hi = self._bounds(prefix, None)
        return hi - lo
