"""The in-memory latest-state index and prefix ranges (pure logic, table-driven)."""

from __future__ import annotations

import pytest

from skiff.storage.index import LatestIndex, prefix_end
from skiff.storage.interface import KV


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        pytest.param("/registry/pods/", "/registry/pods0", id="slash-becomes-zero"),
        pytest.param("a", "b", id="single-char"),
        pytest.param("", None, id="empty-is-unbounded"),
        pytest.param("a\U0010ffff", "b", id="max-code-point-carries"),
        pytest.param("\U0010ffff", None, id="all-max-is-unbounded"),
    ],
)
def test_prefix_end(prefix: str, end: str | None) -> None:
    assert prefix_end(prefix) == end


KEYS = ["/r/a/1", "/r/a/2", "/r/a/3", "/r/ab/1", "/r/b/1"]


def _index(keys: list[str]) -> LatestIndex:
    idx = LatestIndex()
    for i, k in enumerate(reversed(keys)):  # insertion order must not matter
        idx.put(KV(k, k.encode(), i + 1, i + 1))
    return idx


@pytest.mark.parametrize(
    ("prefix", "limit", "start_after", "want", "left"),
    [
        pytest.param("/r/a/", None, None, ["/r/a/1", "/r/a/2", "/r/a/3"], 0, id="prefix-excludes-sibling-ab"),
        pytest.param(
            "/r/a", None, None, ["/r/a/1", "/r/a/2", "/r/a/3", "/r/ab/1"], 0, id="raw-prefix-includes-ab"
        ),
        pytest.param("/r/", 2, None, ["/r/a/1", "/r/a/2"], 3, id="limit-counts-remaining"),
        pytest.param("/r/", 2, "/r/a/2", ["/r/a/3", "/r/ab/1"], 1, id="continue-after-key"),
        pytest.param("/r/a/", 10, "/r/a/3", [], 0, id="continue-past-end"),
        pytest.param("/r/b/", None, "/r/a/9", ["/r/b/1"], 0, id="start-after-before-prefix"),
        pytest.param("/x/", None, None, [], 0, id="no-match"),
        pytest.param("", None, None, KEYS, 0, id="empty-prefix-is-everything"),
    ],
)
def test_range(prefix: str, limit: int | None, start_after: str | None, want: list[str], left: int) -> None:
    items, remaining = _index(KEYS).range(prefix, limit, start_after)
    assert [kv.key for kv in items] == want
    assert remaining == left


def test_put_replaces_and_remove_forgets() -> None:
    idx = _index(KEYS)
    idx.put(KV("/r/a/2", b"new", 99, 2))
    idx.remove("/r/a/1")
    idx.remove("/r/zzz")  # absent: no-op
    items, _ = idx.range("/r/a/", None, None)
    assert [(kv.key, kv.value) for kv in items] == [("/r/a/2", b"new"), ("/r/a/3", b"/r/a/3")]
    assert idx.count("/r/") == 4
    assert idx.get("/r/a/1") is None
    assert len(idx) == 4
