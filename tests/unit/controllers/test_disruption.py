"""Disruption controller: expected scale from the pods' controllers, the per-sync plan, and the
controller over a real in-process control plane (temporary SQLite)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from skiff.api.meta import Obj, rfc3339
from skiff.apiserver.local import LocalBackend
from skiff.client.factory import InformerFactory
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import PDBS, PODS, REPLICASETS, Informer
from skiff.controllers import disruption as dc
from skiff.controllers.base import ControllerContext
from skiff.testing import start_control_plane

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def owned(kind: str, name: str, uid: str, api_version: str = "apps/v1") -> list[Obj]:
    return [{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": True}]


def workload(kind: str, name: str, uid: str, replicas: int | None, owners: list[Obj] | None = None) -> Obj:
    md: Obj = {"name": name, "namespace": "ns", "uid": uid}
    if owners:
        md["ownerReferences"] = owners
    return {"kind": kind, "metadata": md, "spec": {} if replicas is None else {"replicas": replicas}}


def pod(
    name: str, owners: list[Obj] | None = None, ready: bool = True, labels: dict[str, str] | None = None
) -> Obj:
    md: Obj = {"name": name, "namespace": "ns", "labels": {"app": "a"} if labels is None else labels}
    if owners:
        md["ownerReferences"] = owners
    return {
        "metadata": md,
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


DEPLOY = workload("Deployment", "web", "d1", 5)
RS_OF_DEPLOY = workload("ReplicaSet", "web-abc", "r1", 3, owned("Deployment", "web", "d1"))
RS_ALONE = workload("ReplicaSet", "solo", "r2", 4)
STS = workload("StatefulSet", "db", "s1", None)  # replicas defaults to 1
RC = workload("ReplicationController", "old", "c1", 2)
WORLD = {
    ("Deployment", "web"): DEPLOY,
    ("ReplicaSet", "web-abc"): RS_OF_DEPLOY,
    ("ReplicaSet", "solo"): RS_ALONE,
    ("StatefulSet", "db"): STS,
    ("ReplicationController", "old"): RC,
}


def lookup(kind: str, namespace: str, name: str) -> Obj | None:
    assert namespace == "ns"
    return WORLD.get((kind, name))


@pytest.mark.parametrize(
    ("ref", "want"),
    [
        pytest.param(owned("ReplicaSet", "web-abc", "r1")[0], ("d1", 5), id="deployment-via-replicaset"),
        pytest.param(owned("ReplicaSet", "solo", "r2")[0], ("r2", 4), id="bare-replicaset"),
        pytest.param(owned("StatefulSet", "db", "s1")[0], ("s1", 1), id="statefulset-default-replicas"),
        pytest.param(
            owned("ReplicationController", "old", "c1", "v1")[0], ("c1", 2), id="replication-controller"
        ),
        pytest.param(owned("ReplicaSet", "solo", "other-uid")[0], None, id="uid-mismatch"),
        pytest.param(owned("ReplicaSet", "missing", "r9")[0], None, id="not-found"),
        pytest.param(owned("Job", "j", "j1", "batch/v1")[0], None, id="no-finder-for-kind"),
    ],
)
def test_controller_scale(ref: Obj, want: tuple[str, int] | None) -> None:
    assert dc.controller_scale(ref, "ns", lookup) == want


def test_expected_scale_sums_distinct_controllers() -> None:
    pods = [
        pod("a", owned("ReplicaSet", "web-abc", "r1")),
        pod("b", owned("ReplicaSet", "web-abc", "r1")),
        pod("c", owned("StatefulSet", "db", "s1")),
        pod("loose"),
    ]
    assert dc.expected_scale(pods, lookup) == (6, ["loose"])


def test_expected_scale_missing_controller() -> None:
    with pytest.raises(dc.NoControllerError, match='found no controllers for pod "a"'):
        dc.expected_scale([pod("a", owned("Job", "j", "j1", "batch/v1"))], lookup)


def pdb(generation: int = 1, status: Obj | None = None, selector: Any = None, **spec: Any) -> Obj:
    spec["selector"] = {"matchLabels": {"app": "a"}} if selector is None else selector
    return {
        "metadata": {"name": "p", "namespace": "ns", "generation": generation},
        "spec": spec,
        "status": status or {},
    }


@pytest.mark.parametrize(
    ("budget", "pods", "want"),
    [
        pytest.param(pdb(selector={}), [pod("a"), pod("b", labels={})], ["a", "b"], id="empty-selects-all"),
        pytest.param({"metadata": {"name": "p"}, "spec": {}}, [pod("a")], [], id="null-selects-none"),
        pytest.param(pdb(), [pod("a"), pod("b", labels={"app": "z"})], ["a"], id="match-labels"),
    ],
)
def test_pods_for_pdb(budget: Obj, pods: list[Obj], want: list[str]) -> None:
    assert [p["metadata"]["name"] for p in dc.pods_for_pdb(budget, pods)] == want


WEB_PODS = [pod(n, owned("ReplicaSet", "web-abc", "r1")) for n in ("a", "b", "c", "d")]
CURRENT = {
    "currentHealthy": 4,
    "desiredHealthy": 2,
    "expectedPods": 4,
    "disruptionsAllowed": 2,
    "observedGeneration": 1,
    "conditions": [
        {
            "type": "DisruptionAllowed",
            "status": "True",
            "reason": "SufficientPods",
            "message": "",
            "observedGeneration": 1,
            "lastTransitionTime": rfc3339(NOW),
        }
    ],
}


@pytest.mark.parametrize(
    ("budget", "pods", "want_status", "want_events", "want_recheck"),
    [
        pytest.param(
            pdb(minAvailable=2),
            WEB_PODS,
            {"currentHealthy": 4, "desiredHealthy": 2, "expectedPods": 4, "disruptionsAllowed": 2},
            [],
            None,
            id="int-min-available",
        ),
        pytest.param(
            pdb(minAvailable=2, status=CURRENT), WEB_PODS, None, [], None, id="up-to-date-writes-nothing"
        ),
        pytest.param(
            pdb(maxUnavailable="20%"),
            WEB_PODS,
            {"currentHealthy": 4, "desiredHealthy": 4, "expectedPods": 5, "disruptionsAllowed": 0},
            [],
            None,
            id="scale-from-deployment",
        ),
        pytest.param(
            pdb(minAvailable=1),
            [],
            {"currentHealthy": 0, "desiredHealthy": 1, "expectedPods": 0, "disruptionsAllowed": 0},
            ["NoPods"],
            None,
            id="no-pods",
        ),
        pytest.param(
            pdb(maxUnavailable=1),
            [*WEB_PODS, pod("loose")],
            {"currentHealthy": 5, "desiredHealthy": 4, "expectedPods": 5, "disruptionsAllowed": 1},
            ["UnmanagedPods"],
            None,
            id="unmanaged-pods-reported",
        ),
        pytest.param(
            pdb(maxUnavailable=1),
            [pod("a", owned("Job", "j", "j1", "batch/v1"))],
            {"disruptionsAllowed": 0},
            ["CalculateExpectedPodCountFailed"],
            None,
            id="fail-safe",
        ),
        pytest.param(
            pdb(minAvailable=1, status={"disruptedPods": {"a": rfc3339(NOW - dt.timedelta(seconds=20))}}),
            WEB_PODS,
            {"currentHealthy": 3, "disruptionsAllowed": 2},
            [],
            100.0,
            id="recheck-evicted-pod",
        ),
    ],
)
def test_plan_pdb(
    budget: Obj, pods: list[Obj], want_status: Obj | None, want_events: list[str], want_recheck: float | None
) -> None:
    plan = dc.plan_pdb(budget, pods, lookup, NOW)
    if want_status is None:
        assert plan.status is None
    else:
        assert plan.status is not None
        assert {k: plan.status[k] for k in want_status} == want_status
    assert [reason for _, reason, _ in plan.events] == want_events
    assert plan.recheck_after == want_recheck


def test_fail_safe_condition() -> None:
    plan = dc.plan_pdb(pdb(maxUnavailable=1), [pod("a", owned("Job", "j", "j1", "batch/v1"))], lookup, NOW)
    assert plan.status is not None
    assert plan.status["conditions"] == [
        {
            "type": "DisruptionAllowed",
            "status": "False",
            "reason": "SyncFailed",
            "message": 'found no controllers for pod "a"',
            "observedGeneration": 0,
            "lastTransitionTime": rfc3339(NOW),
        }
    ]
    again = dc.plan_pdb(
        pdb(maxUnavailable=1, status=plan.status),
        [pod("a", owned("Job", "j", "j1", "batch/v1"))],
        lookup,
        NOW,
    )
    assert again.status is None


# --- the controller over a real control plane -----------------------------------------------------------


class RecordingQueue:
    def __init__(self) -> None:
        self.added: list[str] = []
        self.after: dict[str, float] = {}

    def add(self, key: str) -> None:
        self.added.append(key)

    def add_after(self, key: str, delay: float) -> None:
        self.after[key] = delay

    def add_rate_limited(self, key: str) -> None:
        self.added.append(key)

    def forget(self, key: str) -> None:
        pass

    async def get(self) -> str | None:
        return None

    def done(self, key: str) -> None:
        pass

    def shutdown(self) -> None:
        pass


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[InProcessClient, InformerFactory]]:
    plane = await start_control_plane(tmp_path)
    store = plane.store
    client = InProcessClient(LocalBackend(plane))
    informers = InformerFactory(client)
    try:
        yield client, informers
    finally:
        await informers.stop()
        await client.close()
        await store.close()


async def until(cond: Callable[[], Any], what: str) -> None:
    """Wait for the informer caches to catch up with a write (a condition, not a timing)."""
    for _ in range(2000):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


def cached_rv(inf: Informer, ns: str, name: str) -> str:
    return str(((inf.get(ns, name) or {}).get("metadata") or {}).get("resourceVersion") or "")


async def test_disruption_controller_against_the_store(
    cluster: tuple[InProcessClient, InformerFactory],
) -> None:
    client, informers = cluster
    ctx = ControllerContext(client, informers, lambda name: RecordingQueue(), lambda: 0.0)
    ctl = dc.DisruptionController(ctx, wall_clock=lambda: NOW)
    ctl.setup()
    template = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    rs = await client.create(
        REPLICASETS,
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "a"}}, "template": template},
        },
    )
    ref = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web",
        "uid": rs["metadata"]["uid"],
        "controller": True,
    }
    last: Obj = {}
    for i, ready in enumerate((True, True, False)):
        p = await client.create(
            PODS,
            "default",
            {
                "metadata": {"name": f"web-{i}", "labels": {"app": "a"}, "ownerReferences": [ref]},
                "spec": template["spec"],
            },
        )
        p["status"] = {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }
        last = await client.update(PODS, "default", p, subresource="status")
    budget = await client.create(
        PDBS,
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "a"}}},
        },
    )
    await until(
        lambda: (
            cached_rv(ctl.pods, "default", "web-2") == last["metadata"]["resourceVersion"]
            and ctl.pdbs.get("default", "web") is not None
            and ctl.workloads["ReplicaSet"].get("default", "web")
        ),
        "caches",
    )
    assert isinstance(ctl.queue, RecordingQueue)
    assert "default/web" in ctl.queue.added  # the PDB handler enqueued it

    await ctl.sync("default/web")
    got = await client.get(PDBS, "default", "web")
    status = got["status"]
    assert {
        k: status[k]
        for k in (
            "currentHealthy",
            "desiredHealthy",
            "expectedPods",
            "disruptionsAllowed",
            "observedGeneration",
        )
    } == {
        "currentHealthy": 2,
        "desiredHealthy": 2,
        "expectedPods": 3,
        "disruptionsAllowed": 0,
        "observedGeneration": budget["metadata"].get("generation", 1),
    }
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("DisruptionAllowed", "False", "InsufficientPods")
    ]

    # A pod turning ready enqueues the PDB and the next sync allows one disruption.
    await until(lambda: cached_rv(ctl.pdbs, "default", "web") == got["metadata"]["resourceVersion"], "status")
    ctl.queue.added.clear()
    p = await client.get(PODS, "default", "web-2")
    p["status"]["conditions"][0]["status"] = "True"
    p = await client.update(PODS, "default", p, subresource="status")
    await until(
        lambda: cached_rv(ctl.pods, "default", "web-2") == p["metadata"]["resourceVersion"], "ready pod"
    )
    assert ctl.queue.added == ["default/web"]
    await ctl.sync("default/web")
    status = (await client.get(PDBS, "default", "web"))["status"]
    assert (status["currentHealthy"], status["disruptionsAllowed"]) == (3, 1)
    assert status["conditions"][0]["reason"] == "SufficientPods"
