"""Work queues for controllers, after client-go `util/workqueue` (queue.go, delaying_queue.go,
default_rate_limiters.go).

Semantics (upstream's): a key is queued at most once however often it is added ("dirty" set); a key
being processed is not handed out again until `done(key)`, and if it was added meanwhile it is queued
again at `done`; `add_after` holds a key until its time (the earliest pending time wins);
`add_rate_limited` delays by the per-key exponential back-off 5 ms · 2^failures capped at 1000 s (the
item part of DefaultControllerRateLimiter) until `forget(key)`.

One deliberate difference: after `shutdown()` `get()` returns None at once instead of draining the
queue first — syncs are level-driven, so nothing is lost by not running the remaining keys.
Single-threaded asyncio: every method but `get` is synchronous and never blocks.
"""

from __future__ import annotations

import asyncio
import collections


class ItemExponentialRateLimiter:
    """Per-key exponential back-off (upstream ItemExponentialFailureRateLimiter). Pure bookkeeping."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[str, int] = {}

    def when(self, key: str) -> float:
        """The delay before the next retry of `key`; counts one more failure."""
        exp = self._failures.get(key, 0)
        self._failures[key] = exp + 1
        if exp >= 64:  # 2**64 · base is far past any cap; avoid float overflow
            return self.max_delay
        return float(min(self.base_delay * (2**exp), self.max_delay))

    def num_requeues(self, key: str) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)


class RateLimitingQueue:
    """`WorkQueue`: deduplicating, one-at-a-time per key, delayed and rate-limited adds."""

    def __init__(self, name: str = "", rate_limiter: ItemExponentialRateLimiter | None = None) -> None:
        self.name = name
        self.rate_limiter = rate_limiter or ItemExponentialRateLimiter()
        self._queue: collections.deque[str] = collections.deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._delayed: dict[str, tuple[float, asyncio.TimerHandle]] = {}
        self._shutting_down = False

    def __len__(self) -> int:
        """Keys ready to be handed out (not those waiting for a delay or being processed)."""
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # queued again by done()
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: str, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + delay
        pending = self._delayed.get(key)
        if pending is not None:
            if pending[0] <= ready_at:
                return  # an earlier wake-up is already scheduled
            pending[1].cancel()
        handle = loop.call_at(ready_at, self._fire, key)
        self._delayed[key] = (ready_at, handle)

    def _fire(self, key: str) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: str) -> None:
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: str) -> None:
        self.rate_limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        return self.rate_limiter.num_requeues(key)

    async def get(self) -> str | None:
        while not self._queue:
            if self._shutting_down:
                return None
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                elif self._queue:
                    self._wake_one()  # we were woken for a key we will not take: pass it on
                raise
        if self._shutting_down:
            return None
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty and not self._shutting_down:
            self._queue.append(key)
            self._wake_one()

    def shutdown(self) -> None:
        self._shutting_down = True
        for _, handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
