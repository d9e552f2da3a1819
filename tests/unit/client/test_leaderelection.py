"""Leader election: the pure acquire/renew rules, and two electors over one in-process API."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable

import pytest

from skiff.api.errors import ApiError
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import LEASES, Client, Obj, Patch, Resource
from skiff.client.leaderelection import LeaderElector, Observation, can_acquire, lease_spec, released_spec

GUARD = 30.0
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)
T0_TEXT = "2026-01-02T03:04:05.123456Z"


@pytest.mark.parametrize(
    ("obs", "now", "want"),
    [
        pytest.param(None, 0.0, True, id="no-lease"),
        pytest.param(Observation("", "t", 15, 100.0), 100.0, True, id="released"),
        pytest.param(Observation("me", "t", 15, 100.0), 100.0, True, id="ours-renew"),
        pytest.param(Observation("other", "t", 15, 100.0), 114.9, False, id="other-fresh"),
        pytest.param(Observation("other", "t", 15, 100.0), 115.0, True, id="other-expired-by-our-clock"),
    ],
)
def test_can_acquire(obs: Observation | None, now: float, want: bool) -> None:
    assert can_acquire(obs, "me", now) is want


@pytest.mark.parametrize(
    ("current", "acquire", "transitions"),
    [
        pytest.param(None, T0_TEXT, 0, id="create"),
        pytest.param(
            {"holderIdentity": "me", "acquireTime": "A", "leaseTransitions": 3}, "A", 3, id="renew-keeps"
        ),
        pytest.param(
            {"holderIdentity": "other", "acquireTime": "A", "leaseTransitions": 3}, T0_TEXT, 4, id="take-over"
        ),
        pytest.param(
            {"holderIdentity": "", "acquireTime": "A", "leaseTransitions": 4}, T0_TEXT, 5, id="after-release"
        ),
    ],
)
def test_lease_spec(current: dict[str, object] | None, acquire: str, transitions: int) -> None:
    spec = lease_spec(current, "me", 15, T0)
    assert spec == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 15,
        "acquireTime": acquire,
        "renewTime": T0_TEXT,
        "leaseTransitions": transitions,
    }


def test_released_spec() -> None:
    assert released_spec({"holderIdentity": "me", "leaseTransitions": 2}, T0) == {
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "acquireTime": T0_TEXT,
        "renewTime": T0_TEXT,
        "leaseTransitions": 2,
    }


def test_timing_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        LeaderElector(None, "ns", "l", "me", lease_duration=5, renew_deadline=5, retry_period=1)  # type: ignore[arg-type]


async def wait_until(cond: object) -> None:
    async def poll() -> None:
        while not cond():  # type: ignore[operator]
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), GUARD)


def elector(client: Client, identity: str) -> LeaderElector:
    return LeaderElector(
        client,
        "kube-system",
        "skiff-test",
        identity,
        lease_duration=1.0,
        renew_deadline=0.6,
        retry_period=0.05,
    )


class Tracker:
    """Leading work per identity that records start/stop order and any overlap."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.leading: set[str] = set()
        self.overlaps: list[set[str]] = []

    def work(self, identity: str) -> Callable[[], Awaitable[None]]:
        async def lead() -> None:
            self.leading.add(identity)
            if len(self.leading) > 1:
                self.overlaps.append(set(self.leading))
            self.log.append(f"start {identity}")
            try:
                await asyncio.Event().wait()  # lead until cancelled
            finally:
                self.leading.discard(identity)
                self.log.append(f"stop {identity}")

        return lead


class PartitionableClient(InProcessClient):
    """An in-process client that can be cut off from the API (every call fails with 503)."""

    def __init__(self, inner: InProcessClient) -> None:
        super().__init__(inner.backend)
        self.partitioned = False

    async def get(self, res: Resource, namespace: str, name: str) -> Obj:
        if self.partitioned:
            raise ApiError(503, "ServiceUnavailable", "partitioned")
        return await super().get(res, namespace, name)

    async def update(
        self, res: Resource, namespace: str, obj: Obj, *, subresource: str = "", field_manager: str = ""
    ) -> Obj:
        if self.partitioned:
            raise ApiError(503, "ServiceUnavailable", "partitioned")
        return await super().update(res, namespace, obj, subresource=subresource, field_manager=field_manager)


async def cancel(*tasks: asyncio.Task[None]) -> None:
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await t


async def test_two_electors_never_lead_at_once(local: InProcessClient) -> None:
    tr = Tracker()
    a, b = elector(local, "a"), elector(local, "b")
    ta = asyncio.create_task(a.run(tr.work("a")))
    tb: asyncio.Task[None] | None = None
    try:
        await wait_until(lambda: "start a" in tr.log)
        tb = asyncio.create_task(b.run(tr.work("b")))
        start = b.attempts
        await wait_until(lambda: b.attempts >= start + 10)  # b campaigned many rounds while a renewed
        assert tr.log == ["start a"] and b.leader == "a" and not b.leading
        lease = await local.get(LEASES, "kube-system", "skiff-test")
        assert lease["spec"]["holderIdentity"] == "a" and lease["spec"]["leaseTransitions"] == 0

        await cancel(ta)  # a steps down and releases the lease: b takes over without waiting for expiry
        await wait_until(lambda: "start b" in tr.log)
        assert tr.log == ["start a", "stop a", "start b"]
        lease = await local.get(LEASES, "kube-system", "skiff-test")
        assert lease["spec"]["holderIdentity"] == "b"
        assert lease["spec"]["leaseTransitions"] == 1  # a released; b is the first new holder
    finally:
        await cancel(ta, *([tb] if tb else []))
    assert tr.overlaps == []


async def test_partitioned_leader_stops_before_the_other_takes_over(local: InProcessClient) -> None:
    tr = Tracker()
    cut = PartitionableClient(local)
    a, b = elector(cut, "a"), elector(local, "b")
    ta = asyncio.create_task(a.run(tr.work("a")))
    tb: asyncio.Task[None] | None = None
    try:
        await wait_until(lambda: a.leading)
        tb = asyncio.create_task(b.run(tr.work("b")))
        cut.partitioned = True  # a can neither renew nor release; b must wait for the lease to expire
        await wait_until(lambda: "start b" in tr.log)
        assert tr.log == ["start a", "stop a", "start b"]
        await asyncio.wait_for(ta, GUARD)  # a's run returned after its renew deadline
    finally:
        await cancel(ta, *([tb] if tb else []))
    assert tr.overlaps == []


async def test_leader_that_cannot_renew_stops_leading(local: InProcessClient) -> None:
    stopped = asyncio.Event()

    async def lead() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    a = elector(local, "a")
    run = asyncio.create_task(a.run(lead))
    await wait_until(lambda: a.leading)
    # Someone else takes the lease over (as after a network partition): a's renewals now fail.
    await local.patch(
        LEASES,
        "kube-system",
        "skiff-test",
        Patch(
            "merge",
            {
                "spec": {
                    "holderIdentity": "intruder",
                    "leaseDurationSeconds": 3600,
                    "renewTime": "2026-01-01T00:00:00.000000Z",
                }
            },
        ),
    )
    await asyncio.wait_for(run, GUARD)  # run returns once the renew deadline passes
    assert stopped.is_set() and not a.leading
    lease = await local.get(LEASES, "kube-system", "skiff-test")
    assert lease["spec"]["holderIdentity"] == "intruder"  # a did not release what it no longer holds


async def test_leading_work_that_returns_ends_run_and_releases(local: InProcessClient) -> None:
    async def lead() -> None:
        return None

    a = elector(local, "a")
    await asyncio.wait_for(a.run(lead), GUARD)
    lease = await local.get(LEASES, "kube-system", "skiff-test")
    assert lease["spec"]["holderIdentity"] == ""
