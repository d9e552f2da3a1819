"""Periodic compaction: which revision is due, and the loop driving a real store with a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.storage.compactor import compaction_target, run_compactor
from skiff.storage.sqlite import SQLiteStore


@pytest.mark.parametrize(
    ("seen", "current", "compacted", "retain", "want"),
    [
        pytest.param(500, 3000, 0, 1000, 500, id="previous-tick-bounds"),
        pytest.param(2900, 3000, 0, 1000, 2000, id="min-retain-bounds"),
        pytest.param(500, 3000, 500, 1000, None, id="already-compacted-there"),
        pytest.param(500, 800, 0, 1000, None, id="young-store-keeps-everything"),
        pytest.param(10, 20, 0, 0, 10, id="no-retain"),
    ],
)
def test_compaction_target(seen: int, current: int, compacted: int, retain: int, want: int | None) -> None:
    assert compaction_target(seen, current, compacted, retain) == want


class _Stop(Exception):
    pass


async def test_run_compactor_keeps_one_interval_of_history(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "db"))
    await store.start()
    ticks: list[tuple[int, int]] = []  # (revision, compact_revision) at each tick

    async def fake_sleep(_: float) -> None:
        ticks.append((store.revision, store.compact_revision))
        if len(ticks) == 4:
            raise _Stop
        for _ in range(5):
            await store.create(f"/t/{store.revision}", b"x")

    try:
        with pytest.raises(_Stop):
            await run_compactor(store, interval=300, min_retain=2, sleep=fake_sleep)
        # each tick compacts to the revision seen at the previous tick
        assert [c for _, c in ticks] == [0, ticks[0][0], ticks[1][0], ticks[2][0]]
        assert ticks[2][0] > ticks[1][0] > ticks[0][0]
    finally:
        await store.close()
