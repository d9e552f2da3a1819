"""Node lifecycle and taint eviction: table-driven planners, then the controllers over a real in-process
control plane (temporary SQLite) with an injected clock; also the DefaultTolerationSeconds admission
those evictions rely on."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from skiff.api.errors import ApiError
from skiff.api.meta import Obj, rfc3339
from skiff.apiserver.local import LocalBackend
from skiff.apiserver.registry.core.pods import PodStrategy
from skiff.client.factory import InformerFactory
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import EVENTS, LEASES, NODES, PODS, Informer, ListOptions
from skiff.controllers import nodelifecycle as nl
from skiff.controllers.base import ControllerContext
from skiff.testing import start_control_plane

WALL = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
T = rfc3339(WALL)
OLD = "2025-12-31T00:00:00Z"


def node(ready: str | None = "True", taints: list[Obj] | None = None, heartbeat: str = OLD) -> Obj:
    conditions = []
    if ready is not None:
        conditions = [
            {
                "type": "Ready",
                "status": ready,
                "reason": "KubeletReady",
                "message": "ok",
                "lastHeartbeatTime": heartbeat,
                "lastTransitionTime": OLD,
            }
        ]
        conditions += [
            {
                "type": t,
                "status": "False",
                "reason": "KubeletHasNo" + t,
                "message": "ok",
                "lastHeartbeatTime": heartbeat,
                "lastTransitionTime": OLD,
            }
            for t in ("MemoryPressure", "DiskPressure", "PIDPressure")
        ]
    spec: Obj = {"taints": taints} if taints else {}
    return {
        "metadata": {"name": "n1", "creationTimestamp": OLD},
        "spec": spec,
        "status": {"conditions": conditions},
    }


def all_unknown(obj: Obj) -> Obj:
    for cond in obj["status"]["conditions"]:
        cond["status"] = "Unknown"
    return obj


def lease(renew: str) -> Obj:
    return {"metadata": {"name": "n1", "namespace": "kube-node-lease"}, "spec": {"renewTime": renew}}


# --- observe_health -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("saved", "obj", "lse", "now", "want_probe"),
    [
        pytest.param(None, node(), None, 5.0, 5.0, id="first-look-starts-grace"),
        pytest.param(nl.NodeHealth(1.0, None, OLD), node(), None, 5.0, 1.0, id="nothing-new"),
        pytest.param(
            nl.NodeHealth(1.0, None, OLD), node(heartbeat=T), None, 5.0, 5.0, id="ready-heartbeat-changed"
        ),
        pytest.param(
            nl.NodeHealth(1.0, WALL, OLD),
            node(),
            lease(rfc3339(WALL + dt.timedelta(seconds=10))),
            5.0,
            5.0,
            id="lease-renewed",
        ),
        pytest.param(nl.NodeHealth(1.0, WALL, OLD), node(), lease(T), 5.0, 1.0, id="lease-not-renewed"),
        pytest.param(nl.NodeHealth(1.0, None, OLD), node(), lease(T), 5.0, 5.0, id="first-lease"),
    ],
)
def test_observe_health(
    saved: nl.NodeHealth | None, obj: Obj, lse: Obj | None, now: float, want_probe: float
) -> None:
    assert nl.observe_health(saved, obj, lse, now).probe == want_probe


# --- plan_node ------------------------------------------------------------------------------------------

UNREACHABLE_TAINTS = [
    {"key": nl.UNREACHABLE, "effect": "NoSchedule"},
    {"key": nl.UNREACHABLE, "effect": "NoExecute", "timeAdded": T},
]
NOT_READY_TAINTS = [
    {"key": nl.NOT_READY, "effect": "NoSchedule"},
    {"key": nl.NOT_READY, "effect": "NoExecute", "timeAdded": T},
]
OTHER_TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("obj", "probe", "now", "want_ready", "want_taints", "want_mark", "want_recheck"),
    [
        pytest.param(node(), 0.0, 10.0, None, None, False, 30.001, id="fresh-ready-node"),
        pytest.param(node(), 0.0, 41.0, "Unknown", UNREACHABLE_TAINTS, True, None, id="lease-expired"),
        pytest.param(node(), 0.0, 40.0, None, None, False, 0.001, id="exactly-at-grace"),
        pytest.param(
            node(ready="False"),
            0.0,
            10.0,
            None,
            NOT_READY_TAINTS,
            True,
            30.001,
            id="kubelet-reports-not-ready",
        ),
        pytest.param(
            node(ready="False", taints=UNREACHABLE_TAINTS),
            0.0,
            10.0,
            None,
            NOT_READY_TAINTS,
            True,
            30.001,
            id="unreachable-swapped-for-not-ready",
        ),
        pytest.param(
            node(taints=[*UNREACHABLE_TAINTS, OTHER_TAINT]),
            0.0,
            10.0,
            None,
            [OTHER_TAINT],
            False,
            30.001,
            id="renewed-removes-taints-keeps-others",
        ),
        pytest.param(
            all_unknown(node(ready="Unknown", taints=UNREACHABLE_TAINTS)),
            0.0,
            100.0,
            None,
            None,
            True,
            None,
            id="already-unknown-and-tainted",
        ),
        pytest.param(
            node(ready=None), 0.0, 50.0, None, None, False, 10.001, id="startup-grace-without-ready"
        ),
        pytest.param(
            node(ready=None),
            0.0,
            61.0,
            "Unknown",
            UNREACHABLE_TAINTS,
            True,
            None,
            id="never-posted-after-startup-grace",
        ),
    ],
)
def test_plan_node(
    obj: Obj,
    probe: float,
    now: float,
    want_ready: str | None,
    want_taints: list[Obj] | None,
    want_mark: bool,
    want_recheck: float | None,
) -> None:
    plan = nl.plan_node(obj, nl.NodeHealth(probe), now, WALL, 40.0, 60.0)
    if want_ready is None:
        assert plan.conditions is None
    else:
        assert plan.conditions is not None
        ready = next(c for c in plan.conditions if c["type"] == "Ready")
        assert ready["status"] == want_ready
        assert {c["type"] for c in plan.conditions} == set(nl.NODE_CONDITIONS)
    assert plan.taints == want_taints
    assert plan.mark_pods_not_ready is want_mark
    assert plan.recheck_after == (pytest.approx(want_recheck) if want_recheck is not None else None)


def test_expired_conditions_follow_upstream() -> None:
    obj = node()
    obj["status"]["conditions"] = obj["status"]["conditions"][:2]  # no DiskPressure / PIDPressure
    plan = nl.plan_node(obj, nl.NodeHealth(0.0), 41.0, WALL)
    assert plan.conditions is not None
    by_type = {c["type"]: c for c in plan.conditions}
    assert by_type["Ready"] == {
        "type": "Ready",
        "status": "Unknown",
        "reason": "NodeStatusUnknown",
        "message": "Kubelet stopped posting node status.",
        "lastHeartbeatTime": OLD,
        "lastTransitionTime": T,
    }
    assert by_type["PIDPressure"] == {
        "type": "PIDPressure",
        "status": "Unknown",
        "reason": "NodeStatusNeverUpdated",
        "message": "Kubelet never posted node status.",
        "lastHeartbeatTime": OLD,
        "lastTransitionTime": T,
    }
    assert plan.events == [("Normal", "NodeNotReady", "Node n1 status is now: NodeNotReady")]
    assert obj["status"]["conditions"][0]["status"] == "True"  # input not mutated


@pytest.mark.parametrize(
    ("pod", "want"),
    [
        pytest.param({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, "False", id="ready"),
        pytest.param(
            {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, None, id="already-not-ready"
        ),
        pytest.param({"status": {"phase": "Pending"}}, None, id="no-ready-condition"),
    ],
)
def test_pod_not_ready(pod: Obj, want: str | None) -> None:
    new = nl.pod_not_ready(pod, WALL)
    assert (new["status"]["conditions"][0]["status"] if new else None) == want


# --- taint eviction -------------------------------------------------------------------------------------

NOEXEC = {"key": nl.UNREACHABLE, "effect": "NoExecute"}
DEFAULT_TOL = {"key": nl.UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}


@pytest.mark.parametrize(
    ("tol", "taint", "want"),
    [
        pytest.param(
            {"key": "k", "operator": "Exists"},
            {"key": "k", "effect": "NoExecute"},
            True,
            id="exists-any-effect",
        ),
        pytest.param(
            {"operator": "Exists"}, {"key": "k", "effect": "NoExecute"}, True, id="empty-key-exists"
        ),
        pytest.param(
            {"key": "k", "value": "v"},
            {"key": "k", "value": "v", "effect": "NoExecute"},
            True,
            id="equal-default",
        ),
        pytest.param(
            {"key": "k", "value": "w"},
            {"key": "k", "value": "v", "effect": "NoExecute"},
            False,
            id="value-differs",
        ),
        pytest.param(
            {"key": "k", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "k", "effect": "NoExecute"},
            False,
            id="effect-differs",
        ),
        pytest.param(
            {"key": "j", "operator": "Exists"}, {"key": "k", "effect": "NoExecute"}, False, id="key-differs"
        ),
    ],
)
def test_tolerates(tol: Obj, taint: Obj, want: bool) -> None:
    assert nl.tolerates(tol, taint) is want


@pytest.mark.parametrize(
    ("taints", "tols", "since", "now", "want"),
    [
        pytest.param([], [], None, 0.0, nl.TaintDecision(), id="no-taints"),
        pytest.param([], [], 3.0, 5.0, nl.TaintDecision(cancelled=True), id="taints-removed-cancels"),
        pytest.param(
            [NOEXEC], [], None, 0.0, nl.TaintDecision(evict=True, since=0.0), id="not-tolerated-evict-now"
        ),
        pytest.param(
            [NOEXEC],
            [DEFAULT_TOL],
            None,
            10.0,
            nl.TaintDecision(since=10.0, recheck_after=300.0),
            id="tolerated-for-a-while",
        ),
        pytest.param(
            [NOEXEC],
            [DEFAULT_TOL],
            10.0,
            100.0,
            nl.TaintDecision(since=10.0, recheck_after=210.0),
            id="period-keeps-its-start",
        ),
        pytest.param(
            [NOEXEC], [DEFAULT_TOL], 10.0, 310.0, nl.TaintDecision(evict=True, since=10.0), id="period-over"
        ),
        pytest.param(
            [NOEXEC],
            [{"operator": "Exists"}],
            10.0,
            310.0,
            nl.TaintDecision(cancelled=True),
            id="tolerated-forever",
        ),
        pytest.param(
            [NOEXEC],
            [{**DEFAULT_TOL, "tolerationSeconds": -5}],
            None,
            1.0,
            nl.TaintDecision(evict=True, since=1.0),
            id="negative-seconds-is-zero",
        ),
        pytest.param(
            [NOEXEC, {"key": "x", "effect": "NoExecute"}],
            [DEFAULT_TOL, {"key": "x", "operator": "Exists", "tolerationSeconds": 30}],
            None,
            0.0,
            nl.TaintDecision(since=0.0, recheck_after=30.0),
            id="smallest-seconds-wins",
        ),
        pytest.param(
            [NOEXEC, {"key": "x", "effect": "NoExecute"}],
            [DEFAULT_TOL],
            None,
            0.0,
            nl.TaintDecision(evict=True, since=0.0),
            id="one-untolerated-taint",
        ),
    ],
)
def test_plan_taint_eviction(
    taints: list[Obj], tols: list[Obj], since: float | None, now: float, want: nl.TaintDecision
) -> None:
    assert nl.plan_taint_eviction(taints, tols, since, now) == want


# --- DefaultTolerationSeconds admission (pods.py prepare_for_create) -----------------------------------

NOT_READY_TOL = {"key": nl.NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}


@pytest.mark.parametrize(
    ("given", "want"),
    [
        pytest.param([], [NOT_READY_TOL, DEFAULT_TOL], id="none"),
        pytest.param(
            [{"key": nl.NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}],
            [
                {"key": nl.NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
                DEFAULT_TOL,
            ],
            id="not-ready-given",
        ),
        pytest.param([{"operator": "Exists"}], [{"operator": "Exists"}], id="tolerate-everything"),
        pytest.param(
            [{"key": nl.UNREACHABLE, "operator": "Exists"}],
            [{"key": nl.UNREACHABLE, "operator": "Exists"}, NOT_READY_TOL],
            id="any-effect-counts",
        ),
        pytest.param(
            [{"key": nl.UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}],
            [
                {"key": nl.UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"},
                NOT_READY_TOL,
                DEFAULT_TOL,
            ],
            id="noschedule-does-not-count",
        ),
    ],
)
def test_default_toleration_seconds(given: list[Obj], want: list[Obj]) -> None:
    pod: Obj = {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "i"}], "tolerations": given},
    }
    PodStrategy().prepare_for_create(pod)
    assert pod["spec"]["tolerations"] == want


# --- the controllers over a real control plane ----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class RecordingQueue:
    """The WorkQueue contract, recording delayed adds instead of timing them (sync is called directly)."""

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


async def assert_evicted(client: InProcessClient, name: str) -> None:
    """Deleted: gone, or terminating (graceful deletion of a bound pod) with the DisruptionTarget condition."""
    try:
        pod = await client.get(PODS, "default", name)
    except ApiError as e:
        assert e.code == 404
        return
    assert pod["metadata"].get("deletionTimestamp")
    assert {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "DeletionByTaintManager",
        "message": "Taint manager: deleting due to NoExecute taint",
        "lastTransitionTime": T,
    } in pod["status"]["conditions"]


async def test_node_lifecycle_against_the_store(cluster: tuple[InProcessClient, InformerFactory]) -> None:
    client, informers = cluster
    clock = Clock()
    ctx = ControllerContext(client, informers, lambda name: RecordingQueue(), clock)
    ctl = nl.NodeLifecycleController(ctx, grace_period=40.0, wall_clock=lambda: WALL)
    ctl.setup()
    created = await client.create(NODES, "", {"metadata": {"name": "n1"}, "spec": {}})
    created["status"] = node()["status"]
    n = await client.update(NODES, "", created, subresource="status")
    lse = await client.create(LEASES, "kube-node-lease", lease(T))
    pod = await client.create(
        PODS,
        "default",
        {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}},
    )
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    pod = await client.update(PODS, "default", pod, subresource="status")
    await until(
        lambda: (
            cached_rv(ctl.nodes, "", "n1") == n["metadata"]["resourceVersion"]
            and ctl.leases.get("kube-node-lease", "n1") is not None
            and cached_rv(ctl.pods, "default", "p") == pod["metadata"]["resourceVersion"]
        ),
        "caches",
    )

    await ctl.sync("n1")  # first look: healthy, check again when the grace period would end
    assert isinstance(ctl.queue, RecordingQueue)
    assert ctl.queue.after["n1"] == pytest.approx(40.001)
    assert "taints" not in (await client.get(NODES, "", "n1"))["spec"]

    clock.t += 41  # no renewal within the grace period
    await ctl.sync("n1")
    got = await client.get(NODES, "", "n1")
    ready = next(c for c in got["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
    assert {(t["key"], t["effect"]) for t in got["spec"]["taints"]} == {
        (nl.UNREACHABLE, "NoSchedule"),
        (nl.UNREACHABLE, "NoExecute"),
    }
    p = await client.get(PODS, "default", "p")
    assert next(c for c in p["status"]["conditions"] if c["type"] == "Ready")["status"] == "False"
    events = (await client.list(EVENTS, "default", ListOptions()))["items"]
    assert sorted(
        (e["reason"], e["involvedObject"]["kind"], e["involvedObject"]["name"]) for e in events
    ) == [("NodeNotReady", "Node", "n1"), ("NodeNotReady", "Pod", "p")]

    # The kubelet comes back: renews its lease and posts Ready again.
    got["status"]["conditions"] = node(heartbeat=T)["status"]["conditions"]
    got = await client.update(NODES, "", got, subresource="status")
    lse["spec"]["renewTime"] = rfc3339(WALL + dt.timedelta(seconds=50))
    lse = await client.update(LEASES, "kube-node-lease", lse)
    await until(
        lambda: (
            cached_rv(ctl.nodes, "", "n1") == got["metadata"]["resourceVersion"]
            and cached_rv(ctl.leases, "kube-node-lease", "n1") == lse["metadata"]["resourceVersion"]
        ),
        "renewal",
    )
    clock.t += 5
    await ctl.sync("n1")
    assert "taints" not in (await client.get(NODES, "", "n1"))["spec"]


async def test_taint_eviction_against_the_store(cluster: tuple[InProcessClient, InformerFactory]) -> None:
    client, informers = cluster
    clock = Clock()
    ctx = ControllerContext(client, informers, lambda name: RecordingQueue(), clock)
    ctl = nl.TaintEvictionController(ctx, wall_clock=lambda: WALL)
    ctl.setup()
    n = await client.create(
        NODES, "", {"metadata": {"name": "n1"}, "spec": {"taints": [{**NOEXEC, "timeAdded": T}]}}
    )
    spec: Obj = {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}
    patient = await client.create(PODS, "default", {"metadata": {"name": "patient"}, "spec": spec})
    impatient = await client.create(
        PODS,
        "default",
        {"metadata": {"name": "impatient"}, "spec": {**spec, "tolerations": [{"operator": "Exists"}]}},
    )
    del impatient  # tolerates everything forever
    bare = await client.create(
        PODS,
        "default",
        {
            "metadata": {"name": "bare"},
            "spec": {**spec, "tolerations": [{"key": "other", "operator": "Exists"}]},
        },
    )
    assert {t["key"] for t in patient["spec"]["tolerations"]} == {nl.NOT_READY, nl.UNREACHABLE}  # admission
    await until(lambda: ctl.nodes.get("", "n1") is not None and len(ctl.pods.list("default")) == 3, "caches")
    del n, bare

    await ctl.sync("default/bare")  # bare's tolerations (with the defaults) still cover the taint: waits
    await ctl.sync("default/impatient")
    await ctl.sync("default/patient")
    assert isinstance(ctl.queue, RecordingQueue)
    assert ctl.queue.after == {"default/bare": 300.0, "default/patient": 300.0}

    clock.t += 300
    await ctl.sync("default/patient")
    await assert_evicted(client, "patient")
    assert not (await client.get(PODS, "default", "impatient"))["metadata"].get("deletionTimestamp")
    events = (await client.list(EVENTS, "default", ListOptions()))["items"]
    assert [(e["reason"], e["message"]) for e in events] == [
        ("TaintManagerEviction", "Marking for deletion Pod default/patient")
    ]


async def test_untolerated_taint_evicts_at_once(cluster: tuple[InProcessClient, InformerFactory]) -> None:
    client, informers = cluster
    ctx = ControllerContext(client, informers, lambda name: RecordingQueue(), Clock())
    ctl = nl.TaintEvictionController(ctx, wall_clock=lambda: WALL)
    ctl.setup()
    await client.create(
        NODES,
        "",
        {"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "maintenance", "effect": "NoExecute"}]}},
    )
    await client.create(
        PODS,
        "default",
        {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}},
    )
    await until(
        lambda: ctl.nodes.get("", "n1") is not None and ctl.pods.get("default", "p") is not None, "caches"
    )
    await ctl.sync("default/p")
    await assert_evicted(client, "p")


async def test_controllers_run_end_to_end(cluster: tuple[InProcessClient, InformerFactory]) -> None:
    """The real loop (handlers, rate-limited queue, delayed re-checks): a node whose lease stops being
    renewed gets tainted, and the taint manager deletes a pod that does not tolerate the taint."""
    client, informers = cluster
    ctx = ControllerContext(client, informers, InformerFactory.new_queue)
    lifecycle = nl.NodeLifecycleController(ctx, grace_period=0.2)
    eviction = nl.TaintEvictionController(ctx)
    created = await client.create(NODES, "", {"metadata": {"name": "n1"}, "spec": {}})
    created["status"] = node()["status"]
    await client.update(NODES, "", created, subresource="status")
    await client.create(LEASES, "kube-node-lease", lease(T))
    # Covers the unreachable key for the admission (no default added) without tolerating the taint.
    await client.create(
        PODS,
        "default",
        {
            "metadata": {"name": "q"},
            "spec": {
                "nodeName": "n1",
                "containers": [{"name": "c", "image": "i"}],
                "tolerations": [
                    {"key": nl.UNREACHABLE, "operator": "Equal", "value": "x", "effect": "NoExecute"},
                    {"key": nl.NOT_READY, "operator": "Exists"},
                ],
            },
        },
    )
    for ctl in (lifecycle, eviction):
        ctl.setup()
    tasks = [asyncio.create_task(lifecycle.run()), asyncio.create_task(eviction.run())]
    try:
        for _ in range(2000):
            got = await client.get(NODES, "", "n1")
            if any(t["key"] == nl.UNREACHABLE for t in got["spec"].get("taints") or []):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("node never tainted")
        for _ in range(2000):
            q = await client.get(PODS, "default", "q")
            if q["metadata"].get("deletionTimestamp"):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("pod never evicted")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
