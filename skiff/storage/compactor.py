"""Periodic compaction, as the apiserver and kine schedule it.

Upstream's apiserver compacts every `--etcd-compaction-interval` (default 5m) to the revision it saw one
interval earlier, so every watcher keeps at least one interval of history
(`k8s.io/apiserver/pkg/storage/etcd3/compact.go`); kine additionally keeps at least `compact-min-retain`
(default 1000) revisions. `compaction_target` combines both; `run_compactor` is the loop the server runs
in its TaskGroup.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from skiff.storage.interface import StorageError, Store

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 300.0
DEFAULT_MIN_RETAIN = 1000


def compaction_target(previous_seen: int, current: int, compact_revision: int, min_retain: int) -> int | None:
    """The revision to compact to now, or None when nothing is due.

    At most what the previous tick saw (one interval of history kept) and at most `current - min_retain`.
    """
    target = min(previous_seen, current - min_retain)
    return target if target > compact_revision else None


async def run_compactor(
    store: Store,
    interval: float = DEFAULT_INTERVAL,
    min_retain: int = DEFAULT_MIN_RETAIN,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Compact `store` every `interval` seconds until cancelled; a failed compaction is logged and retried."""
    seen = store.revision
    while True:
        await sleep(interval)
        current = store.revision
        target = compaction_target(seen, current, store.compact_revision, min_retain)
        seen = current
        if target is None:
            continue
        try:
            await store.compact(target)
        except StorageError as e:
            log.warning("compaction to revision %d failed: %s", target, e)
