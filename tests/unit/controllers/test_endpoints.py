"""Endpoints and EndpointSlice planners (pkg/controller/endpoint, pkg/controller/endpointslice)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.apiserver.local import LocalBackend
from skiff.client.factory import InformerFactory
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import ENDPOINTS, ENDPOINTSLICES, PODS, SERVICES, ListOptions
from skiff.controllers.base import ControllerContext
from skiff.controllers.endpoints import (
    HEADLESS_LABEL,
    TRIGGER_TIME_ANNOTATION,
    EndpointsController,
    TriggerTimeTracker,
    desired_subsets,
    find_port,
    plan_endpoints,
    pod_in_endpoints,
    selected_pods,
    services_for_pod,
)
from skiff.controllers.endpointslice import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    MAX_ENDPOINTS_PER_SLICE,
    SERVICE_NAME_LABEL,
    EndpointSliceController,
    cache_is_stale,
    plan_slices,
    pod_endpoint,
)
from skiff.testing import eventually, start_control_plane

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:00:05Z"


def pod(
    name: str,
    ip: str = "10.0.0.1",
    *,
    ready: bool = True,
    labels: dict[str, str] | None = None,
    node: str = "n1",
    deleting: bool = False,
    phase: str = "Running",
    ports: list[Obj] | None = None,
    hostname: str = "",
    subdomain: str = "",
    ready_at: str = T0,
) -> Obj:
    md: Obj = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": labels or {"app": "web"}}
    if deleting:
        md["deletionTimestamp"] = T1
    spec: Obj = {
        "nodeName": node,
        "containers": [{"name": "c", "ports": ports or [{"name": "http", "containerPort": 8080}]}],
    }
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    status: Obj = {
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ready_at}
        ],
    }
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {"metadata": md, "spec": spec, "status": status}


def service(
    name: str = "web",
    *,
    ports: list[Obj] | None = None,
    cluster_ip: str = "10.96.0.10",
    publish_not_ready: bool = False,
    labels: dict[str, str] | None = None,
    selector: dict[str, str] | None = None,
) -> Obj:
    spec: Obj = {
        "selector": {"app": "web"} if selector is None else selector,
        "clusterIP": cluster_ip,
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
        if ports is None
        else ports,
    }
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": "svc-uid",
            "labels": labels or {},
            "creationTimestamp": T0,
        },
        "spec": spec,
    }


def addr(name: str, ip: str, node: str = "n1", **extra: Any) -> Obj:
    a: Obj = {
        "ip": ip,
        **extra,
        "nodeName": node,
        "targetRef": {"kind": "Pod", "namespace": "ns", "name": name, "uid": f"uid-{name}"},
    }
    return a


HTTP = {"name": "http", "port": 8080, "protocol": "TCP"}


@pytest.mark.parametrize(
    ("p", "include_terminating", "expected"),
    [
        pytest.param(pod("a"), False, True, id="running-with-ip"),
        pytest.param(pod("a", ip=""), False, False, id="no-ip-yet"),
        pytest.param(pod("a", deleting=True), False, False, id="terminating-excluded"),
        pytest.param(pod("a", deleting=True), True, True, id="terminating-included-for-slices"),
        pytest.param(pod("a", phase="Succeeded"), True, False, id="succeeded"),
        pytest.param(pod("a", phase="Failed"), False, False, id="failed"),
        pytest.param(pod("a", ip="fd00::1"), False, False, id="ipv6-only"),
    ],
)
def test_pod_in_endpoints(p: Obj, include_terminating: bool, expected: bool) -> None:
    assert pod_in_endpoints(p, include_terminating) is expected


@pytest.mark.parametrize(
    ("service_port", "expected"),
    [
        pytest.param({"port": 80, "targetPort": 9090}, 9090, id="number"),
        pytest.param({"port": 80, "targetPort": "http"}, 8080, id="by-name"),
        pytest.param(
            {"port": 80, "targetPort": "http", "protocol": "UDP"}, None, id="name-protocol-mismatch"
        ),
        pytest.param({"port": 80, "targetPort": "metrics"}, None, id="unknown-name"),
        pytest.param({"port": 80}, 80, id="defaults-to-port"),
    ],
)
def test_find_port(service_port: Obj, expected: int | None) -> None:
    assert find_port(pod("a"), service_port) == expected


@pytest.mark.parametrize(
    ("svc", "pods", "expected"),
    [
        pytest.param(service(), [], [], id="no-pods"),
        pytest.param(
            service(),
            [pod("b", "10.0.0.2"), pod("a", "10.0.0.1")],
            [{"addresses": [addr("a", "10.0.0.1"), addr("b", "10.0.0.2")], "ports": [HTTP]}],
            id="ready-pods-sorted-by-ip",
        ),
        pytest.param(
            service(),
            [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", ready=False)],
            [
                {
                    "addresses": [addr("a", "10.0.0.1")],
                    "notReadyAddresses": [addr("b", "10.0.0.2")],
                    "ports": [HTTP],
                }
            ],
            id="not-ready-pod-in-notReadyAddresses",
        ),
        pytest.param(
            service(publish_not_ready=True),
            [pod("b", "10.0.0.2", ready=False)],
            [{"addresses": [addr("b", "10.0.0.2")], "ports": [HTTP]}],
            id="publishNotReadyAddresses",
        ),
        pytest.param(service(), [pod("a", deleting=True)], [], id="terminating-pod-dropped"),
        pytest.param(service(), [pod("a", ip="")], [], id="pod-without-ip-dropped"),
        pytest.param(
            service(ports=[{"name": "m", "port": 9, "targetPort": "metrics", "protocol": "TCP"}]),
            [pod("a")],
            [],
            id="unresolvable-port-dropped",
        ),
        pytest.param(
            service(ports=[{"port": 80, "targetPort": "http", "protocol": "TCP"}]),
            [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", ports=[{"name": "http", "containerPort": 9000}])],
            [
                {"addresses": [addr("a", "10.0.0.1")], "ports": [{"port": 8080, "protocol": "TCP"}]},
                {"addresses": [addr("b", "10.0.0.2")], "ports": [{"port": 9000, "protocol": "TCP"}]},
            ],
            id="named-target-port-differs-per-pod",
        ),
        pytest.param(
            service(
                ports=[
                    {"name": "a", "port": 1, "targetPort": 1, "protocol": "TCP"},
                    {"name": "b", "port": 2, "targetPort": 2, "protocol": "UDP"},
                ]
            ),
            [pod("a")],
            [
                {
                    "addresses": [addr("a", "10.0.0.1")],
                    "ports": [
                        {"name": "a", "port": 1, "protocol": "TCP"},
                        {"name": "b", "port": 2, "protocol": "UDP"},
                    ],
                }
            ],
            id="two-ports-one-subset",
        ),
        pytest.param(
            service(cluster_ip="None", ports=[]),
            [pod("a")],
            [{"addresses": [addr("a", "10.0.0.1")]}],
            id="headless-without-ports",
        ),
        pytest.param(service(ports=[]), [pod("a")], [], id="clusterip-without-ports"),
        pytest.param(
            service(),
            [pod("a", hostname="h", subdomain="web")],
            [{"addresses": [addr("a", "10.0.0.1", hostname="h")], "ports": [HTTP]}],
            id="hostname-subdomain",
        ),
    ],
)
def test_desired_subsets(svc: Obj, pods: list[Obj], expected: list[Obj]) -> None:
    assert desired_subsets(svc, pods) == expected


def test_selection() -> None:
    pods = [pod("a"), pod("b", labels={"app": "db"})]
    assert [p["metadata"]["name"] for p in selected_pods(service(), pods)] == ["a"]
    assert services_for_pod([service("web"), service("db", selector={"app": "db"})], pods[1]) == ["ns/db"]


@pytest.mark.parametrize(
    ("svc", "pods", "current", "trigger", "expected"),
    [
        pytest.param(
            service(),
            [pod("a")],
            None,
            T0,
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {
                    "name": "web",
                    "namespace": "ns",
                    "labels": {},
                    "annotations": {TRIGGER_TIME_ANNOTATION: T0},
                },
                "subsets": [{"addresses": [addr("a", "10.0.0.1")], "ports": [HTTP]}],
            },
            id="create",
        ),
        pytest.param(
            service(),
            [pod("a")],
            {
                "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "5", "labels": {}},
                "subsets": [{"addresses": [addr("a", "10.0.0.1")], "ports": [HTTP]}],
            },
            "",
            None,
            id="up-to-date",
        ),
        pytest.param(
            service(),
            [],
            {
                "metadata": {
                    "name": "web",
                    "namespace": "ns",
                    "resourceVersion": "5",
                    "labels": {},
                    "annotations": {TRIGGER_TIME_ANNOTATION: T0},
                },
                "subsets": [{"addresses": [addr("a", "10.0.0.1")], "ports": [HTTP]}],
            },
            "",
            {
                "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "5", "labels": {}},
                "subsets": [],
            },
            id="pod-gone-update-keeps-rv-and-clears-trigger",
        ),
        pytest.param(
            service(cluster_ip="None", labels={"tier": "x"}),
            [],
            {"metadata": {"name": "web", "namespace": "ns", "resourceVersion": "5"}, "subsets": []},
            "",
            {
                "metadata": {
                    "name": "web",
                    "namespace": "ns",
                    "resourceVersion": "5",
                    "labels": {"tier": "x", HEADLESS_LABEL: ""},
                },
                "subsets": [],
            },
            id="labels-follow-service-plus-headless",
        ),
    ],
)
def test_plan_endpoints(
    svc: Obj, pods: list[Obj], current: Obj | None, trigger: str, expected: Obj | None
) -> None:
    before = repr(current)
    assert plan_endpoints(svc, pods, current, trigger) == expected
    assert repr(current) == before  # inputs are read-only


def test_plan_endpoints_truncates_over_capacity() -> None:
    pods = [pod(f"p{i}", f"10.0.{i // 250}.{i % 250}") for i in range(1001)]
    new = plan_endpoints(service(), pods, None)
    assert new is not None
    assert sum(len(s.get("addresses") or []) for s in new["subsets"]) == 1000
    assert new["metadata"]["annotations"]["endpoints.kubernetes.io/over-capacity"] == "truncated"


def test_trigger_time_tracker_reports_oldest_unseen_change() -> None:
    tracker = TriggerTimeTracker()
    svc = service()
    assert tracker.compute(svc, [pod("a", ready_at=T1)]) == T0  # first sight: the service creation
    assert tracker.compute(svc, [pod("a", ready_at=T1)]) == ""  # nothing changed since
    assert (
        tracker.compute(svc, [pod("a", ready_at=T1), pod("b", ready_at="2026-01-01T00:00:09Z")])
        == "2026-01-01T00:00:09Z"
    )
    tracker.forget("ns/web")
    assert tracker.compute(svc, []) == T0


# --- EndpointSlices ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "svc", "conditions"),
    [
        pytest.param(pod("a"), service(), {"ready": True, "serving": True, "terminating": False}, id="ready"),
        pytest.param(
            pod("a", ready=False),
            service(),
            {"ready": False, "serving": False, "terminating": False},
            id="not-ready",
        ),
        pytest.param(
            pod("a", deleting=True),
            service(),
            {"ready": False, "serving": True, "terminating": True},
            id="terminating-serving",
        ),
        pytest.param(
            pod("a", ready=False),
            service(publish_not_ready=True),
            {"ready": True, "serving": False, "terminating": False},
            id="publishNotReadyAddresses",
        ),
    ],
)
def test_pod_endpoint_conditions(p: Obj, svc: Obj, conditions: Obj) -> None:
    assert pod_endpoint(svc, p, {})["conditions"] == conditions


def test_pod_endpoint_fields() -> None:
    assert pod_endpoint(service(), pod("a", hostname="h", subdomain="web"), {"n1": "z1"}) == {
        "addresses": ["10.0.0.1"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "hostname": "h",
        "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"},
        "nodeName": "n1",
        "zone": "z1",
    }


def managed(
    name: str,
    ports: list[Obj],
    endpoints: list[Obj],
    *,
    rv: str = "1",
    address_type: str = "IPv4",
    labels: dict[str, str] | None = None,
) -> Obj:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "resourceVersion": rv,
            "labels": labels or {SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME},
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "name": "web",
                    "uid": "svc-uid",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "addressType": address_type,
        "ports": ports,
        "endpoints": endpoints,
    }


SLICE_PORT = {"name": "http", "port": 8080, "protocol": "TCP"}


def ep(name: str, ip: str) -> Obj:
    return pod_endpoint(service(), pod(name, ip), {})


def summary(plan: Any) -> tuple[list[tuple[str, int, int]], list[tuple[str, int]], list[str]]:
    def key(s: Obj) -> tuple[str, int, int]:
        return (
            s["metadata"].get("name") or s["metadata"]["generateName"],
            len(s["ports"]),
            len(s["endpoints"]),
        )

    return (
        [key(s) for s in plan.create],
        [(s["metadata"]["name"], len(s["endpoints"])) for s in plan.update],
        plan.delete,
    )


@pytest.mark.parametrize(
    ("pods", "existing", "expected"),
    [
        pytest.param([], [], ([("web-", 0, 0)], [], []), id="placeholder-when-no-endpoints"),
        pytest.param([pod("a")], [], ([("web-", 1, 1)], [], []), id="create-one"),
        pytest.param(
            [pod("a")], [managed("web-x", [SLICE_PORT], [ep("a", "10.0.0.1")])], ([], [], []), id="up-to-date"
        ),
        pytest.param(
            [pod("a"), pod("b", "10.0.0.2")],
            [managed("web-x", [SLICE_PORT], [ep("a", "10.0.0.1")])],
            ([], [("web-x", 2)], []),
            id="update-in-place",
        ),
        pytest.param(
            [pod("a")],
            [managed("web-x", [], [])],
            ([("web-", 1, 1)], [], ["web-x"]),
            id="placeholder-replaced",
        ),
        pytest.param(
            [pod("a")],
            [managed("web-x", [SLICE_PORT], [ep("a", "10.0.0.1")]), managed("web-y", [SLICE_PORT], [])],
            ([], [], ["web-y"]),
            id="extra-slice-deleted",
        ),
        pytest.param(
            [pod("a")],
            [managed("web-x", [SLICE_PORT], [ep("a", "10.0.0.1")], address_type="IPv6")],
            ([("web-", 1, 1)], [], ["web-x"]),
            id="ipv6-slice-deleted",
        ),
        pytest.param(
            [pod(f"p{i:03}", f"10.0.1.{i}") for i in range(MAX_ENDPOINTS_PER_SLICE + 1)],
            [],
            ([("web-", 1, 100), ("web-", 1, 1)], [], []),
            id="split-at-100",
        ),
    ],
)
def test_plan_slices(pods: list[Obj], existing: list[Obj], expected: Any) -> None:
    before = repr(existing)
    assert summary(plan_slices(service(), pods, {}, existing)) == expected
    assert repr(existing) == before


def test_new_slice_shape() -> None:
    plan = plan_slices(service(cluster_ip="None", labels={"tier": "x"}), [pod("a")], {"n1": "z"}, [], T0)
    (s,) = plan.create
    assert s["addressType"] == "IPv4"
    assert s["metadata"]["labels"] == {
        "tier": "x",
        SERVICE_NAME_LABEL: "web",
        MANAGED_BY_LABEL: CONTROLLER_NAME,
        HEADLESS_LABEL: "",
    }
    assert s["metadata"]["ownerReferences"][0]["uid"] == "svc-uid"
    assert s["metadata"]["annotations"] == {TRIGGER_TIME_ANNOTATION: T0}
    assert s["ports"] == [SLICE_PORT]
    assert s["endpoints"][0]["zone"] == "z"


@pytest.mark.parametrize(
    ("expected", "cached", "stale"),
    [
        pytest.param({}, [], False, id="nothing-written"),
        pytest.param({"web-a": 5}, [], True, id="created-not-seen"),
        pytest.param({"web-a": 5}, [managed("web-a", [], [], rv="4")], True, id="update-not-seen"),
        pytest.param({"web-a": 5}, [managed("web-a", [], [], rv="5")], False, id="seen"),
        pytest.param({"web-a": None}, [managed("web-a", [], [])], True, id="delete-not-seen"),
        pytest.param({"web-a": None}, [], False, id="delete-seen"),
    ],
)
def test_cache_is_stale(expected: dict[str, int | None], cached: list[Obj], stale: bool) -> None:
    assert cache_is_stale(expected, cached) is stale


def test_one_slice_per_port_set() -> None:
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}])
    plan = plan_slices(
        svc, [pod("a"), pod("b", "10.0.0.2", ports=[{"name": "http", "containerPort": 9000}])], {}, []
    )
    assert sorted((s["ports"][0]["port"], s["endpoints"][0]["targetRef"]["name"]) for s in plan.create) == [
        (8080, "a"),
        (9000, "b"),
    ]


# --- integration: both controllers over a real ControlPlane (temporary SQLite), in-process client ---





@pytest.fixture
async def ep_client(tmp_path: Path) -> AsyncIterator[InProcessClient]:
    plane = await start_control_plane(tmp_path)
    store = plane.store
    client = InProcessClient(LocalBackend(plane))
    factory = InformerFactory(client)
    ctx = ControllerContext(client, factory, factory.new_queue)
    controllers = [EndpointsController(ctx), EndpointSliceController(ctx)]
    for c in controllers:
        c.setup()
    tasks = [asyncio.create_task(c.run()) for c in controllers]
    try:
        yield client
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await factory.stop()
        await client.close()
        await store.close()


async def set_ready(c: InProcessClient, name: str, ip: str, ready: bool) -> None:
    p = copy.deepcopy(await c.get(PODS, "default", name))
    p["status"] = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
    }
    await c.update(PODS, "default", p, subresource="status")


async def test_endpoints_follow_pod_readiness(ep_client: InProcessClient) -> None:
    c = ep_client
    await c.create(
        SERVICES,
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
    )
    await c.create(
        PODS,
        "default",
        {
            "metadata": {"name": "web-1", "labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]}
                ]
            },
        },
    )
    await set_ready(c, "web-1", "10.1.0.5", ready=False)

    async def endpoints(field: str) -> list[str]:
        try:
            e = await c.get(ENDPOINTS, "default", "web")
        except ApiError:
            return []
        return [
            a["ip"]
            for s in e.get("subsets") or []
            for a in s.get(field) or []
            if s.get("ports") == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        ]

    async def slice_conditions() -> list[Obj]:
        lst = await c.list(ENDPOINTSLICES, "default", ListOptions(label_selector=f"{SERVICE_NAME_LABEL}=web"))
        return [e["conditions"] for s in lst["items"] for e in s.get("endpoints") or []]

    assert await eventually(lambda: endpoints("notReadyAddresses"), "not-ready address") == ["10.1.0.5"]
    assert await eventually(slice_conditions, "slice endpoint") == [
        {"ready": False, "serving": False, "terminating": False}
    ]

    await set_ready(c, "web-1", "10.1.0.5", ready=True)
    assert await eventually(lambda: endpoints("addresses"), "ready address") == ["10.1.0.5"]
    assert await endpoints("notReadyAddresses") == []

    async def slice_ready() -> bool:
        return await slice_conditions() == [{"ready": True, "serving": True, "terminating": False}]

    await eventually(slice_ready, "slice endpoint ready")

    await c.delete(PODS, "default", "web-1")

    async def emptied() -> bool:
        e = await c.get(ENDPOINTS, "default", "web")
        return not e.get("subsets") and await slice_conditions() == []

    await eventually(emptied, "endpoints emptied after the pod went")
    slices = (
        await c.list(ENDPOINTSLICES, "default", ListOptions(label_selector=f"{SERVICE_NAME_LABEL}=web"))
    )["items"]
    assert len(slices) == 1  # the placeholder: never more than one slice for one small service

    await c.delete(SERVICES, "default", "web")

    async def endpoints_gone() -> bool:
        try:
            await c.get(ENDPOINTS, "default", "web")
        except ApiError as e:
            return e.code == 404
        return False

    await eventually(endpoints_gone, "Endpoints deleted with the service")
