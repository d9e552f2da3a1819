"""ResourceQuota controller (pkg/controller/resourcequota): status.hard from spec, status.used recounted."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from skiff.api.meta import Obj
from skiff.api.quota import calculate_usage, quota_status
from skiff.apiserver.local import LocalBackend
from skiff.client.factory import InformerFactory
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import PODS, Resource
from skiff.controllers.base import ControllerContext
from skiff.controllers.resourcequota import (
    RESOURCEQUOTAS,
    ResourceQuotaController,
    quota_needs_sync,
    releases_usage,
)
from skiff.testing import eventually, start_control_plane


def quota(hard: dict[str, str], status: dict[str, Any] | None = None, **spec: Any) -> Obj:
    out: Obj = {"metadata": {"name": "q", "namespace": "default"}, "spec": {"hard": hard, **spec}}
    if status is not None:
        out["status"] = status
    return out


def pod(name: str, cpu: str = "", phase: str = "Running", **spec: Any) -> Obj:
    c: dict[str, Any] = {"name": "app", "image": "nginx"}
    if cpu:
        c["resources"] = {"requests": {"cpu": cpu, "memory": "64Mi"}, "limits": {"cpu": cpu}}
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [c], **spec},
        "status": {"phase": phase},
    }


PODS_IN_NS = [
    pod("a", "500m"),
    pod("b", "250m", activeDeadlineSeconds=60),
    pod("c"),
    pod("done", "1", "Succeeded"),
]


@pytest.mark.parametrize(
    ("q", "objects", "expected"),
    [
        pytest.param(
            quota({"pods": "10", "requests.cpu": "4", "requests.memory": "1Gi", "count/pods": "10"}),
            {("", "pods"): PODS_IN_NS},
            {"pods": "3", "count/pods": "4", "requests.cpu": "750m", "requests.memory": "128Mi"},
            id="terminal-pods-only-in-object-count",
        ),
        pytest.param(
            quota({"pods": "10"}, scopes=["BestEffort"]),
            {("", "pods"): PODS_IN_NS},
            {"pods": "1"},
            id="besteffort-scope",
        ),
        pytest.param(
            quota({"pods": "10"}, scopes=["Terminating"]),
            {("", "pods"): PODS_IN_NS},
            {"pods": "1"},
            id="terminating-scope",
        ),
        pytest.param(quota({"limits.cpu": "4"}), {("", "pods"): []}, {"limits.cpu": "0"}, id="nothing-yet"),
        pytest.param(
            quota(
                {"services": "5", "services.nodeports": "4", "configmaps": "3", "count/deployments.apps": "2"}
            ),
            {
                ("", "services"): [
                    {"spec": {"type": "NodePort", "ports": [{"port": 1}, {"port": 2}]}},
                    {"spec": {"type": "ClusterIP"}},
                ],
                ("", "configmaps"): [{}, {}],
                ("apps", "deployments"): [{}],
            },
            {"services": "2", "services.nodeports": "2", "configmaps": "2", "count/deployments.apps": "1"},
            id="object-counts",
        ),
        pytest.param(
            quota({"example.com/unknown": "1", "pods": "1"}),
            {("", "pods"): []},
            {"pods": "0"},
            id="untracked-names-not-counted",
        ),
    ],
)
def test_calculate_usage(
    q: Obj, objects: dict[tuple[str, str], Sequence[Obj]], expected: dict[str, str]
) -> None:
    usage = calculate_usage(q, lambda g, p: objects.get((g, p), []))
    assert usage is not None
    assert {k: str(v) for k, v in usage.items()} == expected


def test_calculate_usage_waits_for_unknown_objects() -> None:
    assert calculate_usage(quota({"pods": "1"}), lambda g, p: None) is None


@pytest.mark.parametrize(
    ("q", "usage", "expected"),
    [
        pytest.param(
            quota({"pods": "2"}),
            {"pods": "1"},
            {"hard": {"pods": "2"}, "used": {"pods": "1"}},
            id="first-sync",
        ),
        pytest.param(
            quota({"pods": "2"}, {"hard": {"pods": "2"}, "used": {"pods": "1"}}),
            {"pods": "1"},
            None,
            id="unchanged",
        ),
        pytest.param(
            quota({"pods": "2"}, {"hard": {"pods": "2"}, "used": {"pods": "2"}}),
            {"pods": "1"},
            {"hard": {"pods": "2"}, "used": {"pods": "1"}},
            id="used-changed",
        ),
        pytest.param(
            quota({"pods": "3"}, {"hard": {"pods": "2"}, "used": {"pods": "1"}}),
            {"pods": "1"},
            {"hard": {"pods": "3"}, "used": {"pods": "1"}},
            id="hard-changed",
        ),
        pytest.param(
            quota(
                {"pods": "3"}, {"hard": {"pods": "3", "secrets": "1"}, "used": {"pods": "1", "secrets": "0"}}
            ),
            {"pods": "1"},
            {"hard": {"pods": "3"}, "used": {"pods": "1"}},
            id="removed-resource-dropped",
        ),
        pytest.param(
            quota({"cpu": "1000m"}, {"hard": {"cpu": "1"}, "used": {"cpu": "0"}}),
            {"cpu": "0"},
            None,
            id="semantic-equality",
        ),
    ],
)
def test_quota_status(q: Obj, usage: dict[str, str], expected: dict[str, Any] | None) -> None:
    from skiff.api.quota import parse_list

    assert quota_status(q, parse_list(usage)) == expected


SYNCED = {"hard": {"pods": "2"}, "used": {"pods": "1"}}


@pytest.mark.parametrize(
    ("type_", "old", "new", "expected"),
    [
        pytest.param("ADDED", None, quota({"pods": "2"}), True, id="added"),
        pytest.param("DELETED", quota({"pods": "2"}, SYNCED), None, True, id="deleted"),
        pytest.param(
            "MODIFIED",
            quota({"pods": "2"}, SYNCED),
            quota({"pods": "2"}, {**SYNCED, "used": {"pods": "2"}}),
            False,
            id="status-only-charge",
        ),
        pytest.param(
            "MODIFIED", quota({"pods": "2"}, SYNCED), quota({"pods": "3"}, SYNCED), True, id="spec-hard"
        ),
        pytest.param(
            "MODIFIED",
            quota({"pods": "2"}),
            quota({"pods": "2"}, {"hard": {"pods": "2"}}),
            True,
            id="never-synced",
        ),
    ],
)
def test_quota_needs_sync(type_: str, old: Obj | None, new: Obj | None, expected: bool) -> None:
    assert quota_needs_sync(type_, old, new) is expected


def svc(kind: str) -> Obj:
    return {"spec": {"type": kind}}


def claim(storage: str) -> Obj:
    return {"spec": {"resources": {"requests": {"storage": storage}}}}


@pytest.mark.parametrize(
    ("plural", "type_", "old", "new", "expected"),
    [
        pytest.param("pods", "ADDED", None, pod("a"), False, id="pod-added-already-charged"),
        pytest.param("pods", "DELETED", pod("a"), None, True, id="pod-deleted"),
        pytest.param("pods", "MODIFIED", pod("a"), pod("a", phase="Succeeded"), True, id="pod-finished"),
        pytest.param("pods", "MODIFIED", pod("a", phase="Pending"), pod("a"), False, id="pod-started"),
        pytest.param("services", "MODIFIED", svc("LoadBalancer"), svc("ClusterIP"), True, id="service-type"),
        pytest.param(
            "services", "MODIFIED", svc("ClusterIP"), svc("ClusterIP"), False, id="service-same-type"
        ),
        pytest.param(
            "persistentvolumeclaims", "MODIFIED", claim("1Gi"), claim("2Gi"), True, id="claim-storage"
        ),
        pytest.param("configmaps", "MODIFIED", {}, {"data": {"a": "b"}}, False, id="configmap-update"),
        pytest.param("configmaps", "DELETED", {}, None, True, id="configmap-deleted"),
    ],
)
def test_releases_usage(plural: str, type_: str, old: Obj | None, new: Obj | None, expected: bool) -> None:
    assert releases_usage(plural, type_, old, new) is expected


# --- the controller over a real ControlPlane, in-process client ---------------------------------------------


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[InProcessClient]:
    plane = await start_control_plane(tmp_path)
    c = InProcessClient(LocalBackend(plane))
    factory = InformerFactory(c)
    controller = ResourceQuotaController(ControllerContext(c, factory, factory.new_queue))
    controller.setup()
    task = asyncio.create_task(controller.run())
    try:
        yield c
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await factory.stop()
        await c.close()
        await plane.store.close()


async def status_is(c: InProcessClient, used: dict[str, str]) -> bool:
    status = (await c.get(RESOURCEQUOTAS, "default", "q")).get("status") or {}
    return status.get("used") == used


async def test_controller_syncs_hard_and_used(client: InProcessClient) -> None:
    c = client
    await c.create(PODS, "default", pod("a", "500m"))
    await c.create(RESOURCEQUOTAS, "default", quota({"pods": "5", "requests.cpu": "2", "configmaps": "3"}))
    await eventually(
        lambda: status_is(c, {"pods": "1", "requests.cpu": "500m", "configmaps": "0"}), "first sync"
    )
    status = (await c.get(RESOURCEQUOTAS, "default", "q"))["status"]
    assert status["hard"] == {"pods": "5", "requests.cpu": "2", "configmaps": "3"}

    # Admission charges new objects at once; the controller's recount agrees.
    await c.create(PODS, "default", pod("b", "250m"))
    await c.create(Resource("", "v1", "configmaps"), "default", {"metadata": {"name": "cm"}})
    await eventually(
        lambda: status_is(c, {"pods": "2", "requests.cpu": "750m", "configmaps": "1"}), "charged"
    )

    # Usage is released when a pod finishes and when objects are deleted (admission never releases).
    done = copy.deepcopy(await c.get(PODS, "default", "a"))
    done["status"] = {"phase": "Succeeded"}
    await c.update(PODS, "default", done, subresource="status")
    await c.delete(Resource("", "v1", "configmaps"), "default", "cm")
    await eventually(
        lambda: status_is(c, {"pods": "1", "requests.cpu": "250m", "configmaps": "0"}), "released"
    )


async def test_controller_follows_spec_changes(client: InProcessClient) -> None:
    c = client
    await c.create(RESOURCEQUOTAS, "default", quota({"pods": "5"}))
    await eventually(lambda: status_is(c, {"pods": "0"}), "first sync")
    q = copy.deepcopy(await c.get(RESOURCEQUOTAS, "default", "q"))
    q["spec"]["hard"] = {"pods": "5", "count/deployments.apps": "2"}
    await c.update(RESOURCEQUOTAS, "default", q)
    await eventually(lambda: status_is(c, {"pods": "0", "count/deployments.apps": "0"}), "resynced")
    assert (await c.get(RESOURCEQUOTAS, "default", "q"))["status"]["hard"] == q["spec"]["hard"]
