"""In-process fan-out of committed events to watchers, filtered by key prefix.

Writers never wait for watchers: `publish` only appends to a bounded per-watcher buffer. A watcher whose
buffer overflows is dropped and its stream ends with `WatchOverflow`, which the API layer maps to 410
Expired so the client re-lists (upstream's cacher likewise terminates unresponsive watchers,
`k8s.io/apiserver/pkg/storage/cacher/cache_watcher.go`). Owned by the event loop; not thread-safe.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from skiff.storage.interface import Event, StorageError

DEFAULT_BUFFER = 10_000


class WatchOverflow(StorageError):
    """The watcher fell more than its buffer behind the writers; it must resume or re-list (HTTP 410)."""

    def __init__(self, last_revision: int, buffer: int) -> None:
        super().__init__(f"watch fell more than {buffer} events behind after revision {last_revision}")
        self.last_revision = last_revision
        self.buffer = buffer


class Watcher:
    """One subscription: a bounded queue of events under `prefix`, consumed by one task."""

    __slots__ = ("_waiter", "buffer", "closed", "error", "events", "prefix")

    def __init__(self, prefix: str, buffer: int) -> None:
        self.prefix = prefix
        self.buffer = buffer
        self.events: deque[Event] = deque()
        self.error: StorageError | None = None
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, event: Event) -> bool:
        """Queue `event`; False (and the watcher is failed) when the buffer is full."""
        if len(self.events) >= self.buffer:
            last = self.events[-1].revision if self.events else event.revision - 1
            self.fail(WatchOverflow(last, self.buffer))
            return False
        self.events.append(event)
        self._wake()
        return True

    def fail(self, error: StorageError | None) -> None:
        """End the stream: with `error` after the queued events, or cleanly when None (store closing)."""
        self.closed = True
        self.error = error
        if error is not None:
            self.events.clear()  # an overflowed stream must not be consumed partially then silently resumed
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        """Block until an event is queued or the watcher is closed."""
        if self.events or self.closed:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class WatchHub:
    """The set of live watchers; `publish` delivers a committed batch in revision order."""

    def __init__(self, buffer: int = DEFAULT_BUFFER) -> None:
        self.buffer = buffer
        self._watchers: set[Watcher] = set()

    def __len__(self) -> int:
        return len(self._watchers)

    def subscribe(self, prefix: str) -> Watcher:
        w = Watcher(prefix, self.buffer)
        self._watchers.add(w)
        return w

    def unsubscribe(self, w: Watcher) -> None:
        self._watchers.discard(w)

    def publish(self, events: Iterable[Event]) -> None:
        """Fan `events` (already in revision order) out to every matching watcher; never blocks."""
        if not self._watchers:
            return
        dropped: list[Watcher] = []
        watchers = list(self._watchers)
        for ev in events:
            key = ev.kv.key
            for w in watchers:
                if not w.closed and key.startswith(w.prefix) and not w.offer(ev):
                    dropped.append(w)
        for w in dropped:
            self._watchers.discard(w)

    def close(self) -> None:
        """End every watch cleanly (the store is closing)."""
        for w in self._watchers:
            w.fail(None)
        self._watchers.clear()
