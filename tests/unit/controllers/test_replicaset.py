"""ReplicaSet controller: pure pod helpers and planners (table-driven), plus sync over fakes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from skiff.api.errors import ApiError
from skiff.client.informer import index_owner
from skiff.client.interface import PODS, REPLICASETS, Patch, Resource
from skiff.controllers.base import ControllerContext
from skiff.controllers.podcontrol import (
    Expectations,
    claim,
    deletion_sort_key,
    is_pod_active,
    is_pod_available,
    pod_from_template,
    pods_to_delete,
    slow_start_batches,
)
from skiff.controllers.replicaset import (
    ReplicaSetController,
    ReplicationManager,
    compute_status,
    plan_replicas,
    selector_matcher,
)

Obj = dict[str, Any]
NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def ts(seconds_ago: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    name: str,
    *,
    node: str = "n1",
    phase: str = "Running",
    ready: bool | None = True,
    ready_for: float = 3600,
    created: float = 7200,
    restarts: int = 0,
    owner: str | None = "uid-rs",
    labels: dict[str, str] | None = None,
    deleting: bool = False,
    cost: int | None = None,
) -> Obj:
    md: Obj = {
        "name": name,
        "namespace": "default",
        "uid": f"uid-{name}",
        "labels": {"app": "web"} if labels is None else labels,
        "creationTimestamp": ts(created),
    }
    if owner:
        md["ownerReferences"] = [{"kind": "ReplicaSet", "name": "web", "uid": owner, "controller": True}]
    if deleting:
        md["deletionTimestamp"] = ts(0)
    if cost is not None:
        md["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    status: Obj = {"phase": phase, "containerStatuses": [{"name": "c", "restartCount": restarts}]}
    if ready is not None:
        status["conditions"] = [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ts(ready_for)}
        ]
    return {"metadata": md, "spec": {"nodeName": node} if node else {}, "status": status}


def rs(replicas: int = 3, min_ready: int = 0, status: Obj | None = None, generation: int = 1) -> Obj:
    return {
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-rs", "generation": generation},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "fe"}},
                "spec": {"containers": [{"name": "c"}]},
            },
        },
        "status": status or {},
    }


# ---- pure helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "batches"),
    [
        pytest.param(0, [], id="nothing"),
        pytest.param(1, [1], id="one"),
        pytest.param(3, [1, 2], id="three"),
        pytest.param(10, [1, 2, 4, 3], id="ten"),
        pytest.param(15, [1, 2, 4, 8], id="exact-powers"),
    ],
)
def test_slow_start_batches(count: int, batches: list[int]) -> None:
    assert slow_start_batches(count) == batches
    assert sum(batches) == count


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(pod("a", node=""), pod("b"), id="unassigned-before-assigned"),
        pytest.param(pod("a", phase="Pending"), pod("b", phase="Unknown"), id="pending-before-unknown"),
        pytest.param(pod("a", phase="Unknown"), pod("b", phase="Running"), id="unknown-before-running"),
        pytest.param(pod("a", ready=False), pod("b"), id="not-ready-before-ready"),
        pytest.param(pod("a", cost=-5), pod("b", cost=10), id="lower-deletion-cost-first"),
        pytest.param(pod("a", ready_for=10), pod("b", ready_for=100000), id="ready-shorter-first"),
        pytest.param(pod("a", restarts=5), pod("b", restarts=0), id="more-restarts-first"),
        pytest.param(
            pod("a", created=10, ready=False), pod("b", created=100000, ready=False), id="newer-first"
        ),
    ],
)
def test_deletion_ranking(first: Obj, second: Obj) -> None:
    assert deletion_sort_key(first, 1, NOW) < deletion_sort_key(second, 1, NOW)
    assert pods_to_delete([second, first], [], 1, NOW) == [first]


def test_deletion_prefers_doubled_up_nodes() -> None:
    lonely, crowded = pod("a", node="n1"), pod("b", node="n2")
    related = [lonely, crowded, pod("c", node="n2"), pod("d", node="n2")]
    assert pods_to_delete([lonely, crowded], related, 1, NOW) == [crowded]


@pytest.mark.parametrize(
    ("p", "min_ready", "available"),
    [
        pytest.param(pod("a"), 0, True, id="ready"),
        pytest.param(pod("a", ready=False), 0, False, id="not-ready"),
        pytest.param(pod("a", ready=None), 0, False, id="no-condition"),
        pytest.param(pod("a", ready_for=5), 10, False, id="ready-too-briefly"),
        pytest.param(pod("a", ready_for=10), 10, False, id="exactly-min-ready-is-not-enough"),
        pytest.param(pod("a", ready_for=11), 10, True, id="ready-long-enough"),
    ],
)
def test_is_pod_available(p: Obj, min_ready: int, available: bool) -> None:
    assert is_pod_available(p, min_ready, NOW) is available


@pytest.mark.parametrize(
    ("p", "active"),
    [
        pytest.param(pod("a"), True, id="running"),
        pytest.param(pod("a", phase="Succeeded"), False, id="succeeded"),
        pytest.param(pod("a", phase="Failed"), False, id="failed"),
        pytest.param(pod("a", deleting=True), False, id="terminating"),
    ],
)
def test_is_pod_active(p: Obj, active: bool) -> None:
    assert is_pod_active(p) is active


@pytest.mark.parametrize(
    ("p", "owner_deleting", "outcome"),
    [
        pytest.param(pod("a"), False, "owned", id="ours-matching"),
        pytest.param(pod("a", labels={"app": "db"}), False, "release", id="ours-not-matching"),
        pytest.param(pod("a", labels={"app": "db"}), True, None, id="ours-not-matching-owner-deleting"),
        pytest.param(pod("a", owner=None), False, "adopt", id="orphan-matching"),
        pytest.param(pod("a", owner=None), True, None, id="orphan-owner-deleting"),
        pytest.param(pod("a", owner=None, deleting=True), False, None, id="orphan-terminating"),
        pytest.param(pod("a", owner=None, labels={"app": "db"}), False, None, id="orphan-not-matching"),
        pytest.param(pod("a", owner="uid-other"), False, None, id="someone-elses"),
    ],
)
def test_claim(p: Obj, owner_deleting: bool, outcome: str | None) -> None:
    owner = rs()
    if owner_deleting:
        owner["metadata"]["deletionTimestamp"] = ts(0)
    c = claim(owner, selector_matcher(owner, False), [p])
    got = [name for name in ("owned", "adopt", "release") if getattr(c, name)]
    assert got == ([outcome] if outcome else [])


@pytest.mark.parametrize(
    ("sel", "map_selector", "labels", "matches"),
    [
        pytest.param(
            {"matchLabels": {"app": "web"}}, False, {"app": "web", "x": "y"}, True, id="label-selector"
        ),
        pytest.param({}, False, {"app": "web"}, False, id="empty-label-selector-matches-nothing"),
        pytest.param({"app": "web"}, True, {"app": "web"}, True, id="rc-map"),
        pytest.param({"app": "web"}, True, {"app": "db"}, False, id="rc-map-mismatch"),
        pytest.param({}, True, {"app": "web"}, False, id="rc-empty-map"),
    ],
)
def test_selector_matcher(sel: Obj, map_selector: bool, labels: dict[str, str], matches: bool) -> None:
    assert selector_matcher({"spec": {"selector": sel}}, map_selector)(labels) is matches


def test_pod_from_template() -> None:
    owner = rs()
    owner["spec"]["template"]["metadata"]["annotations"] = {"a": "b"}
    p = pod_from_template(owner["spec"]["template"], owner, "apps/v1", "ReplicaSet")
    assert p["metadata"]["generateName"] == "web-"
    assert p["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    assert p["metadata"]["annotations"] == {"a": "b"}
    assert p["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web",
            "uid": "uid-rs",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    p["spec"]["containers"].append({"name": "x"})
    assert len(owner["spec"]["template"]["spec"]["containers"]) == 1  # the template is not shared


# ---- planner and status -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("desired", "have", "create", "delete"),
    [
        pytest.param(3, 3, 0, 0, id="steady"),
        pytest.param(3, 1, 2, 0, id="scale-up"),
        pytest.param(1, 3, 0, 2, id="scale-down"),
        pytest.param(0, 2, 0, 2, id="to-zero"),
        pytest.param(900, 0, 500, 0, id="burst-capped"),
    ],
)
def test_plan_replicas(desired: int, have: int, create: int, delete: int) -> None:
    pods = [pod(f"p{i}") for i in range(have)]
    plan = plan_replicas(desired, pods, pods, NOW)
    assert (plan.create, len(plan.delete)) == (create, delete)


def test_plan_replicas_deletes_the_least_valuable_pods() -> None:
    keep = [pod("ready1"), pod("ready2")]
    drop = [pod("pending", phase="Pending", ready=False), pod("unassigned", node="", ready=False)]
    plan = plan_replicas(2, keep + drop, keep + drop, NOW)
    assert {p["metadata"]["name"] for p in plan.delete} == {"pending", "unassigned"}


@pytest.mark.parametrize(
    ("pods", "min_ready", "expect"),
    [
        pytest.param([], 0, {"replicas": 0, "observedGeneration": 2}, id="none"),
        pytest.param(
            [pod("a"), pod("b", ready=False)],
            0,
            {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1, "observedGeneration": 2},
            id="ready-and-not",
        ),
        pytest.param(
            [pod("a", ready_for=5), pod("b", ready_for=60)],
            30,
            {"replicas": 2, "readyReplicas": 2, "availableReplicas": 1, "observedGeneration": 2},
            id="min-ready-seconds",
        ),
        pytest.param(
            [pod("a", labels={"app": "web", "tier": "fe"})],
            0,
            {
                "replicas": 1,
                "fullyLabeledReplicas": 1,
                "readyReplicas": 1,
                "availableReplicas": 1,
                "observedGeneration": 2,
            },
            id="fully-labeled",
        ),
    ],
)
def test_compute_status(pods: list[Obj], min_ready: int, expect: Obj) -> None:
    assert compute_status(rs(min_ready=min_ready, generation=2), pods, None, 0, NOW) == expect


def test_replica_failure_condition_added_then_cleared() -> None:
    failed = compute_status(rs(), [], "pods is forbidden: quota", -3, NOW)
    (cond,) = failed["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("ReplicaFailure", "True", "FailedCreate")
    assert cond["message"] == "pods is forbidden: quota"
    again = compute_status(rs(status=failed), [], "other error", -3, NOW)
    assert again["conditions"] == [cond]  # an existing failure condition is kept as is
    cleared = compute_status(rs(status=failed), [pod("a")], None, 0, NOW)
    assert "conditions" not in cleared


def test_expectations() -> None:
    t = [0.0]
    e = Expectations(lambda: t[0])
    assert e.satisfied("ns/rs")
    e.expect("ns/rs", adds=2)
    e.creation_observed("ns/rs")
    assert not e.satisfied("ns/rs")
    e.creation_observed("ns/rs")
    assert e.satisfied("ns/rs")
    e.expect("ns/rs", deletes=["ns/p1"])
    assert not e.satisfied("ns/rs")
    t[0] = 301.0
    assert e.satisfied("ns/rs")  # expired: a lost event cannot wedge the owner


# ---- sync over fakes ----------------------------------------------------------------------------------


class FakeInformer:
    """A dict-backed Informer with the built-in "owner" index and add_index (indexes computed on read)."""

    def __init__(self) -> None:
        self.objs: dict[tuple[str, str], Obj] = {}
        self.handlers: list[Callable[[str, Obj | None, Obj | None], None]] = []
        self.indexes: dict[str, Callable[[Obj], Sequence[str]]] = {"owner": index_owner}

    def get(self, namespace: str, name: str) -> Obj | None:
        return self.objs.get((namespace, name))

    def list(self, namespace: str = "") -> Sequence[Obj]:
        return [o for (ns, _), o in self.objs.items() if not namespace or ns == namespace]

    def by_index(self, index: str, value: str) -> Sequence[Obj]:
        return [o for o in self.objs.values() if value in self.indexes[index](o)]

    def add_index(self, name: str, fn: Callable[[Obj], Sequence[str]]) -> None:
        if name in self.indexes:
            raise ValueError(name)
        self.indexes[name] = fn

    def add_handler(self, handler: Callable[[str, Obj | None, Obj | None], None]) -> None:
        self.handlers.append(handler)

    @property
    def synced(self) -> bool:
        return True

    def put(self, obj: Obj) -> None:
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        old = self.objs.get(key)
        self.objs[key] = obj
        for h in self.handlers:
            h("MODIFIED" if old else "ADDED", old, obj)


class FakeQueue:
    def __init__(self) -> None:
        self.added: list[str] = []
        self.after: list[tuple[str, float]] = []

    def add(self, key: str) -> None:
        self.added.append(key)

    def add_after(self, key: str, delay: float) -> None:
        self.after.append((key, delay))

    def add_rate_limited(self, key: str) -> None:
        self.added.append(key)

    def forget(self, key: str) -> None: ...

    async def get(self) -> str | None:
        return None

    def done(self, key: str) -> None: ...

    def shutdown(self) -> None: ...


class FakeClient:
    """Records writes; pod creates fail once `fail_after` pods were created."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.created: list[Obj] = []
        self.deleted: list[str] = []
        self.statuses: list[Obj] = []
        self.patches: list[tuple[str, Obj]] = []
        self.fail_after = fail_after
        self.pods: FakeInformer | None = None

    async def get(self, res: Resource, namespace: str, name: str) -> Obj:
        return rs()

    async def create(self, res: Resource, namespace: str, obj: Obj, **kw: Any) -> Obj:
        if res == PODS:
            if self.fail_after is not None and len(self.created) >= self.fail_after:
                raise ApiError(403, "Forbidden", "exceeded quota")
            n = len(self.created)
            obj = {**obj, "metadata": {**obj["metadata"], "name": f"web-{n}", "uid": f"uid-new{n}"}}
            self.created.append(obj)
        return obj

    async def update(self, res: Resource, namespace: str, obj: Obj, **kw: Any) -> Obj:
        self.statuses.append(obj["status"])
        return obj

    async def patch(self, res: Resource, namespace: str, name: str, patch: Patch, **kw: Any) -> Obj:
        self.patches.append((name, patch.body))
        current = self.pods.get(namespace, name) if self.pods is not None else None
        obj = dict(current or {"metadata": {"name": name, "namespace": namespace}})
        obj["metadata"] = {**obj["metadata"], "ownerReferences": patch.body["metadata"]["ownerReferences"]}
        return obj

    async def delete(self, res: Resource, namespace: str, name: str, opts: Any = None) -> Obj | None:
        self.deleted.append(name)
        return None

    def watch(self, *a: Any, **kw: Any) -> Any: ...

    async def list(self, *a: Any, **kw: Any) -> Obj:
        return {"items": []}

    async def close(self) -> None: ...


class FakeFactory:
    def __init__(self) -> None:
        self.by_res: dict[Resource, FakeInformer] = {}

    def informer(self, res: Resource) -> FakeInformer:
        return self.by_res.setdefault(res, FakeInformer())


def controller(
    client: FakeClient, cls: type[ReplicaSetController] = ReplicaSetController
) -> tuple[ReplicaSetController, FakeFactory]:
    factory = FakeFactory()
    ctx = ControllerContext(
        client=client, informers=factory, new_queue=lambda name: FakeQueue(), clock=lambda: 0.0
    )
    c = cls(ctx)
    client.pods = factory.informer(PODS)
    c.setup()
    c.now = lambda: NOW
    return c, factory


async def test_sync_creates_missing_pods_once_until_observed() -> None:
    client = FakeClient()
    c, f = controller(client)
    f.informer(REPLICASETS).put(rs(replicas=3))
    await c.sync("default/web")
    assert len(client.created) == 3
    assert client.created[0]["metadata"]["generateName"] == "web-"
    await c.sync("default/web")
    assert len(client.created) == 3  # expectations: the informer has not seen them yet
    for p in client.created[:2]:
        f.informer(PODS).put(p)
    await c.sync("default/web")
    assert len(client.created) == 3  # one still unobserved
    f.informer(PODS).put(client.created[2])
    await c.sync("default/web")
    assert len(client.created) == 3  # all three exist now
    assert client.statuses[-1]["replicas"] == 3


async def test_sync_create_failure_stops_batches_and_sets_condition() -> None:
    client = FakeClient(fail_after=1)
    c, f = controller(client)
    f.informer(REPLICASETS).put(rs(replicas=10))
    with pytest.raises(ApiError):
        await c.sync("default/web")
    assert len(client.created) == 1  # batch 1 succeeded, batch 2 (2 pods) failed, the rest skipped
    assert client.statuses[-1]["conditions"][0]["reason"] == "FailedCreate"
    assert c.expectations.satisfied("default/web") is False  # the one created pod is still awaited
    f.informer(PODS).put(client.created[0])
    assert c.expectations.satisfied("default/web")


async def test_sync_deletes_surplus_and_adopts_orphans() -> None:
    client = FakeClient()
    c, f = controller(client)
    f.informer(REPLICASETS).put(rs(replicas=1))
    f.informer(PODS).put(pod("old", ready_for=100000))
    f.informer(PODS).put(pod("young", ready_for=5))
    f.informer(PODS).put(pod("orphan", owner=None, labels={"app": "web"}, ready=False, phase="Pending"))
    await c.sync("default/web")
    assert client.patches[0][0] == "orphan"
    assert client.patches[0][1]["metadata"]["ownerReferences"][0]["uid"] == "uid-rs"
    assert sorted(client.deleted) == ["orphan", "young"]


async def test_replication_manager_uses_map_selector() -> None:
    client = FakeClient()
    c, f = controller(client, ReplicationManager)
    rc = rs(replicas=2)
    rc["spec"]["selector"] = {"app": "web"}
    f.informer(Resource("", "v1", "replicationcontrollers")).put(rc)
    await c.sync("default/web")
    assert len(client.created) == 2
    assert client.created[0]["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"
    assert client.created[0]["metadata"]["ownerReferences"][0]["apiVersion"] == "v1"
