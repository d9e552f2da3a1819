"""Recording core/v1 Events as client-go's `tools/record` package does.

A controller that reports every pod it creates would otherwise write one Event per pod: 10,000 replicas,
10,000 extra writes. Upstream's correlator (`events_cache.go`) bounds that, and skiff does the same:

- **aggregation**: events that differ only in message (same source, object, type and reason) are counted; from
  the 10th distinct message within 10 minutes on, they fold into one event whose message is
  `(combined from similar events): <latest message>`;
- **counting**: an event identical to one already written is a PATCH of `count` and `lastTimestamp` on it;
- **spam filter**: a token bucket per source + object (burst 25, refilled one per 5 minutes) drops the rest.

Writes happen in the background (`EventBroadcaster.run`), so recording never blocks a controller; without a
running writer (unit tests), `record` writes inline so a test sees the event when `record` returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from skiff.api.errors import ApiError
from skiff.api.meta import Obj, rfc3339
from skiff.client.interface import EVENTS, Client, Patch

log = logging.getLogger("skiff.events")

MAX_LRU_ENTRIES = 4096
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL_SECONDS = 600.0
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0
QUEUE_LENGTH = 1000  # upstream's maxQueuedEvents: beyond it, events are dropped rather than blocking
COMBINED_PREFIX = "(combined from similar events): "


class _LRU(OrderedDict[str, Any]):
    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > MAX_LRU_ENTRIES:
            self.popitem(last=False)


@dataclass
class _Aggregate:
    messages: set[str] = field(default_factory=set)
    last: float = 0.0


@dataclass
class _Observed:
    name: str
    count: int
    first_timestamp: str


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class Correlated:
    """What to write for one recorded event: a new Event, or a patch of an existing one."""

    event: Obj
    patch: Obj | None  # strategic merge patch for an event seen before (name in event.metadata.name)


def _ref_key(ev: Obj) -> tuple[str, ...]:
    ref = ev["involvedObject"]
    src = ev.get("source") or {}
    return (src.get("component", ""), src.get("host", ""), ref.get("kind", ""), ref.get("namespace", ""),
            ref.get("name", ""), ref.get("uid", ""), ref.get("apiVersion", ""))


class EventCorrelator:
    """Pure decision half (upstream `EventCorrelator.EventCorrelate`): aggregate, observe, filter."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._aggregates = _LRU()
        self._observed = _LRU()
        self._spam = _LRU()

    def correlate(self, event: Obj) -> Correlated | None:
        """The write for `event`, or None when the spam filter drops it. `event` is not mutated."""
        now = self.clock()
        event, key = self._aggregate(event, now)
        result = self._observe(event, key)
        return None if self._filtered(result.event, now) else result

    def _aggregate(self, event: Obj, now: float) -> tuple[Obj, str]:
        agg_key = "\x00".join((*_ref_key(event), event.get("type", ""), event.get("reason", ""),
                               event.get("reportingComponent", ""), event.get("reportingInstance", "")))
        message = str(event.get("message", ""))
        record: _Aggregate | None = self._aggregates.get(agg_key)
        if record is None or now - record.last > AGGREGATE_INTERVAL_SECONDS:
            record = _Aggregate()
        record.messages.add(message)
        record.last = now
        self._aggregates.put(agg_key, record)
        if len(record.messages) < AGGREGATE_MAX_EVENTS:
            return event, agg_key + "\x00" + message
        combined = {**event, "message": COMBINED_PREFIX + message,
                    "metadata": {**event["metadata"], "name": _event_name(event, now)}}
        return combined, agg_key

    def _observe(self, event: Obj, key: str) -> Correlated:
        seen: _Observed | None = self._observed.get(key)
        if seen is None:
            self._observed.put(key, _Observed(event["metadata"]["name"], 1, event["firstTimestamp"]))
            return Correlated(event, None)
        seen.count += 1
        self._observed.put(key, seen)
        out = {**event, "metadata": {**event["metadata"], "name": seen.name},
               "count": seen.count, "firstTimestamp": seen.first_timestamp}
        patch = {"count": seen.count, "lastTimestamp": event["lastTimestamp"], "message": event["message"]}
        return Correlated(out, patch)

    def _filtered(self, event: Obj, now: float) -> bool:
        key = "\x00".join(_ref_key(event))
        bucket: _Bucket | None = self._spam.get(key)
        if bucket is None:
            bucket = _Bucket(float(SPAM_BURST), now)
        bucket.tokens = min(float(SPAM_BURST), bucket.tokens + (now - bucket.at) * SPAM_QPS)
        bucket.at = now
        self._spam.put(key, bucket)
        if bucket.tokens < 1.0:
            return True
        bucket.tokens -= 1.0
        return False


def _event_name(event: Obj, now: float) -> str:
    """`<object name>.<unix nanoseconds in hex>`, as upstream names events."""
    return f"{event['involvedObject'].get('name') or 'object'}.{int(now * 1e9):x}"


def make_event(obj: Obj, type_: str, reason: str, message: str, component: str, now: float, action: str = "") -> Obj:
    """A core/v1 Event about `obj` from `component` (upstream recorder.makeEvent)."""
    md = obj.get("metadata") or {}
    stamp = rfc3339()
    event: Obj = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": md.get("namespace") or "default"},
        "involvedObject": {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
                           "name": md.get("name", ""), "namespace": md.get("namespace", ""),
                           "uid": md.get("uid", ""), "resourceVersion": md.get("resourceVersion", "")},
        "reason": reason, "message": message, "type": type_,
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        "reportingComponent": component, "reportingInstance": component,
        "source": {"component": component},
    }
    if action:
        event["action"] = action
    event["metadata"]["name"] = _event_name(event, now)
    return event


class EventBroadcaster:
    """One writer of Events for a process's components (upstream EventBroadcaster + StartRecordingToSink)."""

    def __init__(self, client: Client, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock
        self.correlator = EventCorrelator(clock)
        self._queue: asyncio.Queue[Obj] | None = None

    async def record(self, obj: Obj, type_: str, reason: str, message: str, component: str, action: str = "") -> None:
        """Record an event about `obj`; best effort (failures are logged, never raised)."""
        event = make_event(obj, type_, reason, message, component, self.clock(), action)
        if self._queue is None:
            await self._write(event)
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.debug("event queue full: dropping %s for %s", reason, event["involvedObject"].get("name"))

    async def run(self) -> None:
        """Write recorded events in order until cancelled."""
        self._queue = asyncio.Queue(QUEUE_LENGTH)
        try:
            while True:
                await self._write(await self._queue.get())
        finally:
            self._queue = None

    async def _write(self, event: Obj) -> None:
        result = self.correlator.correlate(event)
        if result is None:
            return
        ev, ns = result.event, result.event["metadata"]["namespace"]
        component = ev["reportingComponent"]
        try:
            if result.patch is not None:
                try:
                    await self.client.patch(EVENTS, ns, ev["metadata"]["name"], Patch("strategic", result.patch),
                                            field_manager=component)
                    return
                except ApiError as e:
                    if e.code != 404:
                        raise
                    # The event was deleted (TTL or by hand): write it anew, as upstream's sink does.
            await self.client.create(EVENTS, ns, ev, field_manager=component)
        except Exception as e:  # events are advisory
            log.debug("event %s for %s not recorded: %s", ev.get("reason"), ev["involvedObject"].get("name"), e)
