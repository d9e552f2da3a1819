"""Event correlation as client-go's record package does it: aggregate, count, spam-filter; background writes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from skiff.api.meta import Obj
from skiff.apiserver.local import LocalBackend
from skiff.client.events import (
    AGGREGATE_MAX_EVENTS,
    COMBINED_PREFIX,
    SPAM_BURST,
    EventBroadcaster,
    EventCorrelator,
    make_event,
)
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import EVENTS, ListOptions
from skiff.testing import start_control_plane


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


RS: Obj = {"kind": "ReplicaSet", "apiVersion": "apps/v1",
           "metadata": {"name": "web-1", "namespace": "default", "uid": "u1"}}


def event(clock: Clock, message: str, reason: str = "SuccessfulCreate", obj: Obj = RS) -> Obj:
    return make_event(obj, "Normal", reason, message, "replicaset-controller", clock())


def test_identical_events_become_a_count_patch_of_the_first() -> None:
    clock = Clock()
    c = EventCorrelator(clock)
    first = c.correlate(event(clock, "Created pod: a"))
    clock.t += 1
    second = c.correlate(event(clock, "Created pod: a"))
    assert first is not None and first.patch is None
    assert second is not None and second.patch is not None
    assert second.event["metadata"]["name"] == first.event["metadata"]["name"]
    assert second.patch["count"] == 2 and second.event["count"] == 2
    assert second.event["firstTimestamp"] == first.event["firstTimestamp"]


def test_similar_events_fold_into_one_combined_event_from_the_tenth_message() -> None:
    clock = Clock()
    c = EventCorrelator(clock)
    results = []
    for i in range(AGGREGATE_MAX_EVENTS + 2):
        clock.t += 0.001
        results.append(c.correlate(event(clock, f"Created pod: p{i}")))
    assert all(r is not None for r in results)
    plain = [r for r in results if r is not None and not r.event["message"].startswith(COMBINED_PREFIX)]
    combined = [r for r in results if r is not None and r.event["message"].startswith(COMBINED_PREFIX)]
    assert len(plain) == AGGREGATE_MAX_EVENTS - 1
    assert [r.patch is None for r in combined] == [True, False, False]
    assert len({r.event["metadata"]["name"] for r in combined}) == 1
    assert combined[-1].event["count"] == 3
    assert combined[-1].event["message"] == COMBINED_PREFIX + f"Created pod: p{AGGREGATE_MAX_EVENTS + 1}"


@pytest.mark.parametrize(
    ("seconds_between", "expected_written"),
    [
        pytest.param(0.0, SPAM_BURST, id="burst-then-dropped"),
        pytest.param(300.0, 100, id="one-token-per-five-minutes-keeps-up"),
    ],
)
def test_spam_filter_is_a_token_bucket_per_source_and_object(seconds_between: float, expected_written: int) -> None:
    clock = Clock()
    c = EventCorrelator(clock)
    written = 0
    for i in range(100):
        clock.t += seconds_between
        if c.correlate(event(clock, f"Created pod: p{i}")) is not None:
            written += 1
    assert written == expected_written


def test_spam_filter_counts_objects_separately() -> None:
    clock = Clock()
    c = EventCorrelator(clock)
    pods = [{"kind": "Pod", "apiVersion": "v1", "metadata": {"name": f"p{i}", "namespace": "default", "uid": f"u{i}"}}
            for i in range(SPAM_BURST * 3)]
    assert all(c.correlate(event(clock, "Successfully assigned", "Scheduled", p)) is not None for p in pods)


async def test_broadcaster_writes_in_the_background_and_counts_repeats(tmp_path: Path) -> None:
    plane = await start_control_plane(tmp_path)
    client = InProcessClient(LocalBackend(plane))
    try:
        b = EventBroadcaster(client)
        runner = asyncio.create_task(b.run())
        await asyncio.sleep(0)
        for _ in range(3):
            await b.record(RS, "Warning", "FailedCreate", "quota exceeded", "replicaset-controller")
        for _ in range(100):
            items = (await client.list(EVENTS, "default", ListOptions()))["items"]
            if items and items[0].get("count") == 3:
                break
            await asyncio.sleep(0.01)
        runner.cancel()
        assert len(items) == 1
        ev = items[0]
        assert ev["count"] == 3 and ev["reason"] == "FailedCreate"
        assert ev["metadata"]["name"].startswith("web-1.")
        assert ev["involvedObject"]["uid"] == "u1" and ev["source"] == {"component": "replicaset-controller"}
    finally:
        await plane.store.close()
