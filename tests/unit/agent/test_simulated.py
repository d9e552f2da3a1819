"""Simulated nodes against a real ControlPlane over a temporary SQLite store, through the in-process client.

Waits poll the API until a condition holds; the cap only turns a hang into a failure (no timing is asserted).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from skiff.agent.simulated import SimulatedNodes
from skiff.api.errors import ApiError
from skiff.apiserver.local import LocalBackend
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import LEASES, NODES, PODS, DeleteOptions, Patch
from skiff.testing import start_control_plane

T = TypeVar("T")
HANG_GUARD = 30.0


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    """The first truthy result of `probe` (polled); fails the test if it never comes."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + HANG_GUARD
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > give_up:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


@dataclass
class Cluster:
    client: InProcessClient
    sim: SimulatedNodes


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    plane = await start_control_plane(tmp_path)
    store = plane.store
    client = InProcessClient(LocalBackend(plane))
    # Fast heartbeats so the lease test needs few rounds: a tick of 20 ms, leases every tick.
    sim = SimulatedNodes(client, 3, tick=0.02, lease_seconds=0.02, status_seconds=0.1)
    task = asyncio.create_task(sim.run())
    try:
        await asyncio.wait_for(sim.ready.wait(), HANG_GUARD)
        yield Cluster(client, sim)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()
        await store.close()


def pod_manifest(name: str, node: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx:1.25"}], **spec},
    }


async def get_pod(client: InProcessClient, name: str) -> dict[str, Any] | None:
    try:
        return await client.get(PODS, "default", name)
    except ApiError as e:
        if e.code == 404:
            return None
        raise


def condition(obj: dict[str, Any], type_: str) -> str:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return str(c.get("status"))
    return ""


async def test_nodes_register_ready_with_leases(cluster: Cluster) -> None:
    nodes = (await cluster.client.list(NODES))["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == ["sim-node-0", "sim-node-1", "sim-node-2"]
    for n in nodes:
        assert condition(n, "Ready") == "True"
        assert n["metadata"]["labels"]["type"] == "sim"
        assert n["status"]["allocatable"]["pods"] == "110"
    assert sorted(n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes) == [
        "zone-0",
        "zone-1",
        "zone-2",
    ]
    lease = await cluster.client.get(LEASES, "kube-node-lease", "sim-node-0")
    assert lease["spec"]["holderIdentity"] == "sim-node-0"
    assert lease["spec"]["leaseDurationSeconds"] == 40
    node0 = next(n for n in nodes if n["metadata"]["name"] == "sim-node-0")
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node0["metadata"]["uid"]


async def test_bound_pod_becomes_running_and_ready(cluster: Cluster) -> None:
    await cluster.client.create(PODS, "default", pod_manifest("web", "sim-node-0"))

    async def ready() -> dict[str, Any] | None:
        p = await get_pod(cluster.client, "web")
        return p if p and condition(p, "Ready") == "True" else None

    p = await eventually(ready, "pod web Ready")
    st = p["status"]
    assert st["phase"] == "Running"
    assert st["hostIP"] == "198.18.0.1"
    assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network("10.128.0.0/24")
    assert st["containerStatuses"][0]["state"]["running"]["startedAt"]
    assert st["containerStatuses"][0]["containerID"].startswith("sim://")
    assert st["qosClass"] == "BestEffort"  # the server's field survives the status patch


async def test_pods_on_one_node_get_distinct_ips(cluster: Cluster) -> None:
    names = [f"p{i}" for i in range(5)]
    for name in names:
        await cluster.client.create(PODS, "default", pod_manifest(name, "sim-node-2"))

    async def all_running() -> list[str] | None:
        ips = []
        for name in names:
            p = await get_pod(cluster.client, name)
            if not p or not (p.get("status") or {}).get("podIP"):
                return None
            ips.append(p["status"]["podIP"])
        return ips

    ips = await eventually(all_running, "five pods with IPs")
    assert len(set(ips)) == 5


async def test_host_network_pod_uses_the_node_ip(cluster: Cluster) -> None:
    await cluster.client.create(PODS, "default", pod_manifest("hostnet", "sim-node-1", hostNetwork=True))

    async def running() -> dict[str, Any] | None:
        p = await get_pod(cluster.client, "hostnet")
        return p if p and p["status"].get("phase") == "Running" else None

    p = await eventually(running, "host-network pod Running")
    assert p["status"]["podIP"] == p["status"]["hostIP"] == "198.18.0.2"


async def test_job_pod_succeeds(cluster: Cluster) -> None:
    manifest = pod_manifest("job-x", "sim-node-1", restartPolicy="Never")
    manifest["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "x",
            "uid": "1b3c2c1e-0000-4000-8000-000000000001",
            "controller": True,
        }
    ]
    await cluster.client.create(PODS, "default", manifest)

    async def succeeded() -> dict[str, Any] | None:
        p = await get_pod(cluster.client, "job-x")
        return p if p and p["status"].get("phase") == "Succeeded" else None

    p = await eventually(succeeded, "job pod Succeeded")
    term = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (0, "Completed")
    assert condition(p, "Ready") == "False"


async def test_deleted_pod_is_confirmed_and_gone(cluster: Cluster) -> None:
    await cluster.client.create(PODS, "default", pod_manifest("doomed", "sim-node-0"))

    async def running() -> bool:
        p = await get_pod(cluster.client, "doomed")
        return bool(p and condition(p, "Ready") == "True")

    await eventually(running, "pod doomed Ready")
    pending = await cluster.client.delete(PODS, "default", "doomed", DeleteOptions())
    assert pending is not None and pending["metadata"]["deletionTimestamp"]  # the kubelet has to confirm

    async def gone() -> bool:
        return await get_pod(cluster.client, "doomed") is None

    await eventually(gone, "pod doomed deleted")


async def renew_time(client: InProcessClient, node: str) -> str:
    return str((await client.get(LEASES, "kube-node-lease", node))["spec"]["renewTime"])


async def renewals(client: InProcessClient, node: str, n: int) -> None:
    """Wait until `node`'s lease has been renewed `n` more times (i.e. `n` heartbeat ticks went by)."""
    for _ in range(n):
        before = await renew_time(client, node)

        async def changed(before: str = before) -> bool:
            return await renew_time(client, node) != before

        await eventually(changed, f"lease of {node} renewed")


async def test_stopped_node_stops_renewing_and_handling_pods_until_started(cluster: Cluster) -> None:
    client, sim = cluster.client, cluster.sim
    sim.stop_node("sim-node-1")
    await renewals(client, "sim-node-0", 2)  # a full tick has passed since the stop: nothing in flight
    frozen = await renew_time(client, "sim-node-1")
    await client.create(PODS, "default", pod_manifest("waits", "sim-node-1"))
    await renewals(client, "sim-node-0", 3)
    assert await renew_time(client, "sim-node-1") == frozen
    p = await get_pod(client, "waits")
    assert p is not None and p["status"]["phase"] == "Pending"

    sim.start_node("sim-node-1")

    async def renewed() -> bool:
        return await renew_time(client, "sim-node-1") != frozen

    await eventually(renewed, "lease of the restarted node renewed")

    async def running() -> bool:
        p = await get_pod(client, "waits")
        return bool(p and p["status"].get("phase") == "Running")

    await eventually(running, "pod on the restarted node Running")


async def test_restarted_node_reports_ready_again_after_being_marked_unknown(cluster: Cluster) -> None:
    client, sim = cluster.client, cluster.sim
    sim.status_slots = 10**9  # no periodic status: only the resume may post it
    sim.stop_node("sim-node-2")
    await renewals(client, "sim-node-0", 2)
    later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    sim.clock = lambda: later  # tells a transition written now from one remembered from registration
    # What the node lifecycle controller does once the lease expired.
    node = await client.get(NODES, "", "sim-node-2")
    conditions = [
        {
            **c,
            "status": "Unknown",
            "reason": "NodeStatusUnknown",
            "lastTransitionTime": "2020-01-01T00:00:00Z",
        }
        for c in node["status"]["conditions"]
    ]
    await client.patch(
        NODES, "", "sim-node-2", Patch("merge", {"status": {"conditions": conditions}}), subresource="status"
    )
    sim.start_node("sim-node-2")

    async def ready() -> dict[str, Any] | None:
        n = await client.get(NODES, "", "sim-node-2")
        return n if condition(n, "Ready") == "True" else None

    n = await eventually(ready, "restarted node Ready")
    ready_cond = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
    assert ready_cond["reason"] == "KubeletReady"
    assert ready_cond["lastTransitionTime"] == ready_cond["lastHeartbeatTime"] == "2030-01-01T00:00:00Z"
