"""The Scheduler component against the real in-process client and informers over a temporary SQLite
ControlPlane: binding, events, the Unschedulable condition, and retry when a node appears."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sched_helpers import node, pod

from skiff.apiserver.local import LocalBackend
from skiff.client.factory import InformerFactory
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import EVENTS, NODES, PODS, DeleteOptions, ListOptions, Resource
from skiff.scheduler.plugins import default_framework
from skiff.scheduler.scheduler import Scheduler, responsible_for
from skiff.testing import start_control_plane

Obj = dict[str, Any]


@pytest.mark.parametrize(
    "p,want",
    [
        pytest.param(pod("p"), True, id="pending-default"),
        pytest.param(pod("p", node_name="n1"), False, id="already-bound"),
        pytest.param(pod("p", schedulerName="other"), False, id="other-scheduler"),
        pytest.param(pod("p", schedulerName="default-scheduler"), True, id="explicit-default"),
        pytest.param({**pod("p"), "status": {"phase": "Succeeded"}}, False, id="terminal"),
        pytest.param(
            {**pod("p"), "metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"}},
            False,
            id="deleting",
        ),
    ],
)
def test_responsible_for(p: Obj, want: bool) -> None:
    assert responsible_for(p) is want


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[InProcessClient]:
    plane = await start_control_plane(tmp_path)
    store = plane.store
    c = InProcessClient(LocalBackend(plane))
    try:
        yield c
    finally:
        await c.close()
        await store.close()


async def eventually(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll until `check()` returns something truthy (a deadline against hangs, not a speed assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = check()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return got
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


async def create_node(c: InProcessClient, n: Obj) -> None:
    created = await c.create(NODES, "", {"apiVersion": "v1", "kind": "Node", **n})
    if not (created.get("status") or {}).get("allocatable"):
        created["status"] = n["status"]
        await c.update(NODES, "", created, subresource="status")


async def events_for(c: InProcessClient, name: str) -> list[Obj]:
    lst = await c.list(EVENTS, "default")
    return [e for e in lst["items"] if e["involvedObject"]["name"] == name]


async def test_scheduler_binds_reports_and_retries(client: InProcessClient) -> None:
    await create_node(client, node("n1", cpu="2"))
    await create_node(
        client, node("n2", cpu="2", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])
    )
    await client.create(PODS, "default", {"apiVersion": "v1", "kind": "Pod", **pod("small", "1")})
    await client.create(PODS, "default", {"apiVersion": "v1", "kind": "Pod", **pod("big", "3")})
    await client.create(
        PODS, "default", {"apiVersion": "v1", "kind": "Pod", **pod("mine", schedulerName="other")}
    )

    factory = InformerFactory(client)
    sched = Scheduler(client, factory, default_framework(seed=0))
    task = asyncio.create_task(sched.run())
    try:

        async def bound(name: str) -> str:
            return str((await client.get(PODS, "default", name))["spec"].get("nodeName") or "")

        assert await eventually(lambda: bound("small"), "small bound") == "n1"
        scheduled = await eventually(
            lambda: _with_reason(events_for(client, "small"), "Scheduled"), "Scheduled event"
        )
        assert scheduled[0]["type"] == "Normal"
        assert scheduled[0]["message"] == "Successfully assigned default/small to n1"

        want = (
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {k: v}. "
            "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        )

        async def condition() -> Obj | None:
            p = await client.get(PODS, "default", "big")
            return next(
                (c for c in (p.get("status") or {}).get("conditions") or () if c["type"] == "PodScheduled"),
                None,
            )

        cond = await eventually(condition, "PodScheduled condition on big")
        assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", want)
        failed = await eventually(
            lambda: _with_reason(events_for(client, "big"), "FailedScheduling"), "event"
        )
        assert failed[0]["type"] == "Warning" and failed[0]["message"] == want

        # A node that fits arrives: the unschedulable pod is retried and bound there.
        await create_node(client, node("n3", cpu="4"))
        assert await eventually(lambda: bound("big"), "big bound after node added") == "n3"
        assert await bound("mine") == ""
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sched.close()
        await factory.stop()


async def test_scheduler_places_many_pods_within_capacity(client: InProcessClient) -> None:
    """Assumed pods count at once: 3 nodes x 4 pods of 500m fill the cluster, the 13th waits."""
    for n in ("a", "b", "c"):
        await create_node(client, node(n, cpu="2"))
    for i in range(13):
        await client.create(PODS, "default", {"apiVersion": "v1", "kind": "Pod", **pod(f"p{i}", "500m")})
    factory = InformerFactory(client)
    sched = Scheduler(client, factory, default_framework(seed=0))
    task = asyncio.create_task(sched.run())
    try:

        async def placement() -> dict[str, int] | None:
            lst = await client.list(PODS, "default", ListOptions())
            per: dict[str, int] = {}
            for p in lst["items"]:
                n = p["spec"].get("nodeName")
                if n:
                    per[n] = per.get(n, 0) + 1
            return per if sum(per.values()) == 12 and sched.failed >= 1 else None

        assert await eventually(placement, "12 pods bound") == {"a": 4, "b": 4, "c": 4}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sched.close()
        await factory.stop()


async def test_scheduler_preempts_lower_priority_pod(client: InProcessClient) -> None:
    await create_node(client, node("a", cpu="2"))
    low = {"apiVersion": "v1", "kind": "Pod", **pod("low", "2", node_name="a")}
    await client.create(PODS, "default", low)
    hi = {"apiVersion": "v1", "kind": "Pod", **pod("hi", "1")}
    await client.create(Resource("scheduling.k8s.io", "v1", "priorityclasses"), "", {"metadata": {"name": "high"}, "value": 1000})
    hi["spec"]["priorityClassName"] = "high"
    await client.create(PODS, "default", hi)
    factory = InformerFactory(client)
    sched = Scheduler(client, factory, default_framework(seed=0))
    task = asyncio.create_task(sched.run())
    try:

        async def status_of(name: str) -> Obj:
            return dict((await client.get(PODS, "default", name)).get("status") or {})

        async def nominated() -> str:
            return str((await status_of("hi")).get("nominatedNodeName") or "")

        assert await eventually(nominated, "hi nominated") == "a"

        async def victim_marked() -> Obj | None:
            try:
                got = await client.get(PODS, "default", "low")
            except Exception:
                return {"gone": True}
            conds = (got.get("status") or {}).get("conditions") or ()
            return next((c for c in conds if c["type"] == "DisruptionTarget"), None)

        cond = await eventually(victim_marked, "victim marked or deleted")
        if "gone" not in cond:
            assert cond["reason"] == "PreemptionByScheduler"
        preempted = await eventually(lambda: _with_reason(events_for(client, "low"), "Preempted"), "event")
        uid = (await client.get(PODS, "default", "hi"))["metadata"]["uid"]
        assert preempted[0]["message"] == f"Preempted by pod {uid} on node a"
        # No agent runs here to finish the graceful deletion: do it, then the preemptor is bound.
        with contextlib.suppress(Exception):
            await client.delete(PODS, "default", "low", DeleteOptions(grace_period_seconds=0))

        async def bound() -> str:
            return str((await client.get(PODS, "default", "hi"))["spec"].get("nodeName") or "")

        assert await eventually(bound, "hi bound after the victim is gone") == "a"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sched.close()
        await factory.stop()


async def _with_reason(events: Any, reason: str) -> list[Obj]:
    return [e for e in await events if e["reason"] == reason]
