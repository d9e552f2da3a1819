"""DaemonSet eligibility, planner and status: table-driven, pure (no I/O)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
from typing import Any

import pytest

from skiff.controllers.daemonset import (
    daemonset_status,
    int_or_percent,
    new_pod,
    node_should_run,
    plan_daemonset,
    target_node,
    tolerates,
)
from skiff.controllers.history import POD_REVISION_LABEL

Obj = dict[str, Any]
NOW = 1_800_000_000.0
H_OLD, H_NEW = "old", "new"


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ds(strategy: Obj | None = None, **pod_spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "kube-system", "uid": "d1", "generation": 2},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": strategy
            or {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c", "image": "a:1"}], **pod_spec},
            },
        },
    }


def node(name: str, labels: Obj | None = None, *taints: tuple[str, str]) -> Obj:
    n: Obj = {"metadata": {"name": name, "labels": labels or {}}, "spec": {}}
    if taints:
        n["spec"]["taints"] = [{"key": k, "effect": e} for k, e in taints]
    return n


def pod(
    name: str,
    node_name: str,
    state: str = "ready",
    hash_: str = H_NEW,
    created: int = 0,
    ready_since: float = NOW - 3600,
) -> Obj:
    p: Obj = {
        "metadata": {
            "name": name,
            "labels": {"app": "agent", POD_REVISION_LABEL: hash_},
            "creationTimestamp": iso(NOW - 10_000 + created),
        },
        "spec": {"nodeName": node_name},
        "status": {"phase": "Running"},
    }
    if state in ("ready", "terminating"):
        p["status"]["conditions"] = [
            {"type": "Ready", "status": "True", "lastTransitionTime": iso(ready_since)}
        ]
    if state == "failed":
        p["status"]["phase"] = "Failed"
    if state == "terminating":
        p["metadata"]["deletionTimestamp"] = iso(NOW)
    return p


NOT_READY = ("node.kubernetes.io/not-ready", "NoExecute")
UNSCHEDULABLE = ("node.kubernetes.io/unschedulable", "NoSchedule")
NET_UNAVAILABLE = ("node.kubernetes.io/network-unavailable", "NoSchedule")
DEDICATED_NS = ("dedicated", "NoSchedule")
DEDICATED_NE = ("dedicated", "NoExecute")


def affinity(*terms: Obj) -> Obj:
    return {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}
    }


ELIGIBILITY_CASES = [
    pytest.param(ds(), node("n1"), (True, True), id="plain node"),
    pytest.param(
        ds(nodeSelector={"disk": "ssd"}), node("n1", {"disk": "ssd"}), (True, True), id="selector match"
    ),
    pytest.param(
        ds(nodeSelector={"disk": "ssd"}), node("n1", {"disk": "hdd"}), (False, False), id="selector mismatch"
    ),
    pytest.param(
        ds(affinity=affinity({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]})),
        node("n1", {"zone": "a"}),
        (True, True),
        id="required affinity In",
    ),
    pytest.param(
        ds(affinity=affinity({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]})),
        node("n1", {"zone": "a"}),
        (False, False),
        id="required affinity NotIn",
    ),
    pytest.param(
        ds(
            affinity=affinity(
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
            )
        ),
        node("n1", {"zone": "a"}),
        (True, True),
        id="terms are ORed, matchFields on the name",
    ),
    pytest.param(ds(affinity=affinity({})), node("n1"), (False, False), id="an empty term matches nothing"),
    pytest.param(
        ds(affinity=affinity({"matchExpressions": [{"key": "cpus", "operator": "Gt", "values": ["4"]}]})),
        node("n1", {"cpus": "8"}),
        (True, True),
        id="Gt",
    ),
    pytest.param(
        ds(), node("n1", None, DEDICATED_NS), (False, True), id="untolerated NoSchedule: keep, not place"
    ),
    pytest.param(ds(), node("n1", None, DEDICATED_NE), (False, False), id="untolerated NoExecute: evict"),
    pytest.param(
        ds(), node("n1", None, ("dedicated", "PreferNoSchedule")), (True, True), id="PreferNoSchedule ignored"
    ),
    pytest.param(
        ds(tolerations=[{"key": "dedicated", "operator": "Exists"}]),
        node("n1", None, DEDICATED_NE),
        (True, True),
        id="tolerated by the template",
    ),
    pytest.param(ds(), node("n1", None, NOT_READY), (True, True), id="default toleration: not-ready"),
    pytest.param(ds(), node("n1", None, UNSCHEDULABLE), (True, True), id="default toleration: unschedulable"),
    pytest.param(
        ds(),
        node("n1", None, ("node.kubernetes.io/memory-pressure", "NoSchedule")),
        (True, True),
        id="default toleration: memory-pressure",
    ),
    pytest.param(
        ds(), node("n1", None, NET_UNAVAILABLE), (False, True), id="network-unavailable not tolerated"
    ),
    pytest.param(
        ds(hostNetwork=True),
        node("n1", None, NET_UNAVAILABLE),
        (True, True),
        id="network-unavailable tolerated for hostNetwork",
    ),
    pytest.param(ds(nodeName="n2"), node("n1"), (False, False), id="template nodeName elsewhere"),
]


@pytest.mark.parametrize(("set_", "node_", "want"), ELIGIBILITY_CASES)
def test_node_should_run(set_: Obj, node_: Obj, want: tuple[bool, bool]) -> None:
    assert node_should_run(set_, node_) == want


@pytest.mark.parametrize(
    ("toleration", "taint", "want"),
    [
        pytest.param(
            {"operator": "Exists"},
            {"key": "k", "value": "v", "effect": "NoExecute"},
            True,
            id="empty key Exists tolerates all",
        ),
        pytest.param(
            {"key": "k", "value": "v"},
            {"key": "k", "value": "v", "effect": "NoSchedule"},
            True,
            id="Equal by default",
        ),
        pytest.param(
            {"key": "k", "value": "w"},
            {"key": "k", "value": "v", "effect": "NoSchedule"},
            False,
            id="value mismatch",
        ),
        pytest.param(
            {"key": "k", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "k", "effect": "NoExecute"},
            False,
            id="effect mismatch",
        ),
        pytest.param(
            {"key": "j", "operator": "Exists"}, {"key": "k", "effect": "NoExecute"}, False, id="key mismatch"
        ),
    ],
)
def test_tolerates(toleration: Obj, taint: Obj, want: bool) -> None:
    assert tolerates(toleration, taint) is want


SURGE = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
N3 = [node("n1"), node("n2"), node("n3")]
OLD3 = [pod("p1", "n1", hash_=H_OLD), pod("p2", "n2", hash_=H_OLD), pod("p3", "n3", hash_=H_OLD)]

PLAN_CASES = [
    pytest.param(
        ds(),
        [node("n1"), node("n2"), node("n3", None, DEDICATED_NS)],
        [],
        ["n1", "n2"],
        [],
        id="a pod per eligible node",
    ),
    pytest.param(ds(), [node("n1"), node("n2")], [pod("p1", "n1")], ["n2"], [], id="only missing nodes"),
    pytest.param(
        ds(),
        [node("n1", None, DEDICATED_NE)],
        [pod("p1", "n1")],
        [],
        ["p1"],
        id="pod on a NoExecute-tainted node deleted",
    ),
    pytest.param(
        ds(),
        [node("n1", None, DEDICATED_NS)],
        [pod("p1", "n1")],
        [],
        [],
        id="pod kept under a NoSchedule taint",
    ),
    pytest.param(ds(), [node("n1")], [pod("p1", "n1", "failed")], [], ["p1"], id="failed pod deleted"),
    pytest.param(
        ds(),
        [node("n1")],
        [pod("p1", "n1", "terminating")],
        [],
        [],
        id="terminating pod: wait before replacing",
    ),
    pytest.param(
        ds(),
        [node("n1")],
        [pod("p2", "n1", created=5), pod("p1", "n1")],
        [],
        ["p2"],
        id="surplus pod: newest deleted",
    ),
    pytest.param(
        ds(),
        [node("n1")],
        [pod("p1", "n1"), pod("p9", "gone")],
        [],
        ["p9"],
        id="pod on a vanished node deleted",
    ),
    pytest.param(ds(), N3, OLD3, [], ["p1"], id="rolling: one old pod replaced (maxUnavailable 1)"),
    pytest.param(
        ds(),
        N3,
        [pod("p1", "n1", "running"), OLD3[1], OLD3[2]],
        [],
        [],
        id="rolling: waits while a new pod is unavailable",
    ),
    pytest.param(
        ds(),
        N3,
        [pod("p1", "n1", "running", hash_=H_OLD), OLD3[1], OLD3[2]],
        [],
        ["p1"],
        id="rolling: an unavailable old pod is replaced and uses the budget",
    ),
    pytest.param(
        ds({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}),
        N3,
        [OLD3[0], pod("p2", "n2", "running", hash_=H_OLD), OLD3[2]],
        [],
        ["p2", "p1"],
        id="rolling: unavailable old pods go first, then candidates within the budget",
    ),
    pytest.param(
        ds({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%"}}),
        N3,
        OLD3,
        [],
        ["p1", "p2"],
        id="rolling: maxUnavailable percent rounds up",
    ),
    pytest.param(ds({"type": "OnDelete"}), N3, OLD3, [], [], id="ondelete: old pods left alone"),
    pytest.param(ds(SURGE), N3, OLD3, ["n1"], [], id="surge: new pod first, one node at a time"),
    pytest.param(
        ds(SURGE),
        N3,
        [pod("p1", "n1", hash_=H_OLD), pod("q1", "n1", "running", created=9), OLD3[1], OLD3[2]],
        [],
        [],
        id="surge: waits for the surged pod",
    ),
    pytest.param(
        ds(SURGE),
        N3,
        [pod("p1", "n1", hash_=H_OLD), pod("q1", "n1", created=9), OLD3[1], OLD3[2]],
        [],
        ["p1"],
        id="surge: old pod deleted once the new one is available",
    ),
    pytest.param(
        ds(SURGE),
        N3,
        [pod("p1", "n1", "running", hash_=H_OLD), OLD3[1], OLD3[2]],
        ["n1", "n2"],
        [],
        id="surge: unavailable old pod replaced at once",
    ),
]


@pytest.mark.parametrize(("set_", "nodes", "pods", "create_on", "deletes"), PLAN_CASES)
def test_plan_daemonset(
    set_: Obj, nodes: list[Obj], pods: list[Obj], create_on: list[str], deletes: list[str]
) -> None:
    before = copy.deepcopy((set_, nodes, pods))
    plan = plan_daemonset(set_, nodes, pods, H_NEW, NOW)
    assert (plan.create_on, plan.deletes) == (create_on, deletes)
    assert (set_, nodes, pods) == before


def test_plan_requeues_until_min_ready_seconds() -> None:
    set_ = ds()
    set_["spec"]["minReadySeconds"] = 30
    plan = plan_daemonset(set_, [node("n1")], [pod("p1", "n1", ready_since=NOW - 10)], H_NEW, NOW)
    assert plan.requeue_after == pytest.approx(20)


def test_new_pod_is_pinned_by_affinity_not_node_name() -> None:
    set_ = ds(
        hostNetwork=True,
        affinity=affinity({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}),
        tolerations=[
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 5,
            }
        ],
    )
    p = new_pod(set_, "n7", H_NEW)
    assert "nodeName" not in p["spec"]
    assert target_node(p) == "n7"
    assert p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]
    }
    keys = [(t["key"], t["effect"]) for t in p["spec"]["tolerations"]]
    assert keys == [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ("node.kubernetes.io/network-unavailable", "NoSchedule"),
    ]
    assert p["spec"]["tolerations"][0]["tolerationSeconds"] == 5  # the template's own toleration kept
    assert p["metadata"]["labels"] == {
        "app": "agent",
        POD_REVISION_LABEL: H_NEW,
        "pod-template-generation": "2",
    }
    assert p["metadata"]["generateName"] == "agent-"
    assert p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert (
        "tolerations" in set_["spec"]["template"]["spec"]
        and len(set_["spec"]["template"]["spec"]["tolerations"]) == 1
    )


@pytest.mark.parametrize(
    ("value", "total", "want"),
    [
        pytest.param(2, 10, 2, id="int"),
        pytest.param("25%", 10, 3, id="percent rounds up"),
        pytest.param("0%", 10, 0, id="zero percent"),
        pytest.param(None, 10, 1, id="default"),
    ],
)
def test_int_or_percent(value: Any, total: int, want: int) -> None:
    assert int_or_percent(value, total, 1) == want


STATUS_CASES = [
    pytest.param(
        N3,
        [],
        {
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 0,
            "numberReady": 0,
            "numberAvailable": 0,
            "numberUnavailable": 3,
            "updatedNumberScheduled": 0,
            "numberMisscheduled": 0,
        },
        id="nothing scheduled yet",
    ),
    pytest.param(
        N3,
        [pod("p1", "n1"), pod("p2", "n2", hash_=H_OLD), pod("p3", "n3", "running")],
        {
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3,
            "numberReady": 2,
            "numberAvailable": 2,
            "numberUnavailable": 1,
            "updatedNumberScheduled": 2,
            "numberMisscheduled": 0,
        },
        id="mixed",
    ),
    pytest.param(
        [node("n1"), node("n2", None, DEDICATED_NS)],
        [pod("p1", "n1"), pod("p2", "n2")],
        {"desiredNumberScheduled": 1, "currentNumberScheduled": 1, "numberMisscheduled": 1},
        id="pod on an ineligible node is misscheduled",
    ),
    pytest.param(
        [node("n1")],
        [pod("p2", "n1", "running", created=5), pod("p1", "n1")],
        {"currentNumberScheduled": 1, "numberReady": 1},
        id="the oldest pod of a node counts",
    ),
]


@pytest.mark.parametrize(("nodes", "pods", "want"), STATUS_CASES)
def test_daemonset_status(nodes: list[Obj], pods: list[Obj], want: Obj) -> None:
    status = daemonset_status(ds(), nodes, pods, H_NEW, 0, NOW)
    assert {k: status[k] for k in want} == want
    assert status["observedGeneration"] == 2


# ---- integration: the controller over a real ControlPlane (temporary SQLite), in-process client ----------


@pytest.fixture
async def cluster(tmp_path: Any) -> Any:
    from skiff.apiserver.certs import bootstrap
    from skiff.apiserver.local import LocalBackend
    from skiff.apiserver.server import ControlPlane
    from skiff.client.factory import InformerFactory
    from skiff.client.inprocess import InProcessClient
    from skiff.storage.sqlite import SQLiteStore
    from skiff.testing import free_port

    store = SQLiteStore(str(tmp_path / "state.db"))
    await store.start()
    plane = ControlPlane(store, bootstrap(tmp_path, "127.0.0.1", free_port()))
    await plane.seed()
    client = InProcessClient(LocalBackend(plane))
    informers = InformerFactory(client)
    try:
        yield client, informers
    finally:
        await informers.stop()
        await client.close()
        await store.close()


async def eventually(check: Any) -> Any:
    """Poll an async check until it returns a truthy value (the timeout only guards against a hang)."""
    async with asyncio.timeout(20):
        while not (result := await check()):
            await asyncio.sleep(0.02)
    return result


async def test_controller_follows_nodes_and_rolls_out(cluster: Any) -> None:
    from skiff.client.interface import CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS, Patch
    from skiff.controllers.base import ControllerContext
    from skiff.controllers.daemonset import DaemonSetController

    client, informers = cluster
    await client.create(NODES, "", node("n1"))
    await client.create(NODES, "", node("n2", None, DEDICATED_NS))
    ctrl = DaemonSetController(ControllerContext(client, informers, informers.new_queue))
    ctrl.setup()
    task = asyncio.create_task(ctrl.run())
    try:
        body = ds()
        body["metadata"] = {"name": "agent", "namespace": "default"}
        await client.create(DAEMONSETS, "default", body)

        async def pods_by_node() -> dict[str, Obj]:
            items = (await client.list(PODS, "default"))["items"]
            return {target_node(p): p for p in items if not p["metadata"].get("deletionTimestamp")}

        async def status_desired(n: int) -> Obj | None:
            s = (await client.get(DAEMONSETS, "default", "agent")).get("status") or {}
            return (
                s if s.get("desiredNumberScheduled") == n and s.get("currentNumberScheduled") == n else None
            )

        placed = await eventually(pods_by_node)
        assert set(placed) == {"n1"}  # n2's NoSchedule taint is not tolerated
        assert "nodeName" not in placed["n1"]["spec"]  # the scheduler binds it
        status = await eventually(lambda: status_desired(1))
        assert status["numberMisscheduled"] == 0 and status["updatedNumberScheduled"] == 1

        await client.patch(NODES, "", "n2", Patch("merge", {"spec": {"taints": None}}))
        placed = await eventually(lambda: _nodes_are(pods_by_node, {"n1", "n2"}))
        await eventually(lambda: status_desired(2))

        # new template: the pods (never ready here, so unavailable) are replaced at once
        await client.patch(
            DAEMONSETS,
            "default",
            "agent",
            Patch("merge", {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a:2"}]}}}}),
        )

        async def all_new() -> dict[str, Obj] | None:
            by_node = await pods_by_node()
            ok = set(by_node) == {"n1", "n2"} and all(
                p["spec"]["containers"][0]["image"] == "a:2" for p in by_node.values()
            )
            return by_node if ok else None

        updated = await eventually(all_new)
        revs = (await client.list(CONTROLLERREVISIONS, "default"))["items"]
        assert sorted(r["revision"] for r in revs) == [1, 2]
        newest = max(revs, key=lambda r: r["revision"])
        assert {p["metadata"]["labels"][POD_REVISION_LABEL] for p in updated.values()} == {
            newest["metadata"]["labels"][POD_REVISION_LABEL]
        }
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def _nodes_are(pods_by_node: Any, want: set[str]) -> dict[str, Obj] | None:
    got = await pods_by_node()
    return got if set(got) == want else None


# ---- expectations: a stale pod cache never places a second pod on a node ---------------------------------


class FakeInformer:
    def __init__(self, items: list[Obj] | None = None) -> None:
        self.items = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in items or []}
        self.handlers: list[Any] = []

    def get(self, namespace: str, name: str) -> Obj | None:
        return self.items.get((namespace, name))

    def list(self, namespace: str = "") -> list[Obj]:
        return [o for (ns, _), o in self.items.items() if not namespace or ns == namespace]

    def by_index(self, index: str, value: str) -> list[Obj]:
        assert index == "owner"
        return [
            o
            for o in self.items.values()
            if any(r.get("uid") == value for r in o["metadata"].get("ownerReferences") or [])
        ]

    def add_handler(self, handler: Any) -> None:
        self.handlers.append(handler)

    def put(self, obj: Obj) -> None:
        self.items[(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj

    synced = True


class FakeClient:
    def __init__(self) -> None:
        self.created: list[Obj] = []

    async def create(self, res: Any, namespace: str, obj: Obj, **kw: Any) -> Obj:
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("name", f"{obj['metadata'].get('generateName', 'x-')}{len(self.created)}")
        obj["metadata"]["namespace"] = namespace
        if obj.get("kind") == "Pod":
            self.created.append(obj)
        return obj

    async def patch(self, *a: Any, **kw: Any) -> Obj:
        return {}

    async def delete(self, *a: Any, **kw: Any) -> None:
        return None


async def test_sync_waits_for_created_pods_to_reach_the_cache() -> None:
    from skiff.client.interface import CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS
    from skiff.controllers.base import ControllerContext
    from skiff.controllers.daemonset import DaemonSetController

    set_ = ds()
    informers = {
        DAEMONSETS: FakeInformer([set_]),
        PODS: FakeInformer(),
        NODES: FakeInformer([node("n1")]),
        CONTROLLERREVISIONS: FakeInformer(),
    }
    factory = type("F", (), {"informer": lambda self, res: informers[res]})()
    client = FakeClient()
    ctrl = DaemonSetController(
        ControllerContext(client, factory, lambda name: FakeQueue(), clock=lambda: 0.0)
    )  # type: ignore[arg-type]
    await ctrl.sync("kube-system/agent")
    assert [target_node(p) for p in client.created] == ["n1"]
    await ctrl.sync("kube-system/agent")  # the pod cache has not seen the new pod yet
    assert len(client.created) == 1
    informers[PODS].put(client.created[0])
    await ctrl.sync("kube-system/agent")  # observed: nothing more to do
    assert len(client.created) == 1
    del informers[PODS].items[("kube-system", client.created[0]["metadata"]["name"])]
    await ctrl.sync("kube-system/agent")  # the pod is gone: replaced
    assert len(client.created) == 2


class FakeQueue:
    def add(self, key: str) -> None: ...

    def add_after(self, key: str, delay: float) -> None: ...

    def add_rate_limited(self, key: str) -> None: ...

    def shutdown(self) -> None: ...
