"""StatefulSet planner, status and ControllerRevision history: table-driven, pure (no I/O)."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest

from skiff.controllers import history
from skiff.controllers.statefulset import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    claims_for,
    new_pod,
    plan_statefulset,
    statefulset_status,
)

Obj = dict[str, Any]
NOW = 1_800_000_000.0  # epoch seconds used as "now" everywhere
OLD, NEW = "web-old", "web-new"


def iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sts(**spec: Any) -> Obj:
    base: Obj = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "generation": 3},
        "spec": {
            "replicas": 3,
            "serviceName": "web-svc",
            "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": {"app": "web"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            },
        },
        "status": {},
    }
    status = spec.pop("status", None)
    base["spec"].update(spec)
    if status is not None:
        base["status"] = status
    return base


def revision(name: str, image: str) -> Obj:
    return {
        "metadata": {"name": name},
        "revision": 1,
        "data": {
            "spec": {
                "template": {
                    "$patch": "replace",
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": image}]},
                }
            }
        },
    }


CURRENT, UPDATE = revision(OLD, "nginx:1"), revision(NEW, "nginx:2")


def pod(ordinal: int, state: str = "ready", rev: str = NEW, *, ready_since: float = NOW - 3600) -> Obj:
    """state: ready | pending | running (not ready) | failed | succeeded | terminating."""
    p: Obj = {
        "metadata": {
            "name": f"web-{ordinal}",
            "namespace": "ns",
            "labels": {"app": "web", history.POD_REVISION_LABEL: rev},
        },
        "spec": {},
        "status": {"phase": "Running"},
    }
    if state == "ready" or state == "terminating":
        p["status"]["conditions"] = [
            {"type": "Ready", "status": "True", "lastTransitionTime": iso(ready_since)}
        ]
    if state == "pending":
        p["status"]["phase"] = "Pending"
    if state in ("failed", "succeeded"):
        p["status"]["phase"] = state.capitalize()
    if state == "terminating":
        p["metadata"]["deletionTimestamp"] = iso(NOW)
    return p


def names(plan_creates: list[Any]) -> list[tuple[str, str]]:
    return [
        (c.pod["metadata"]["name"], c.pod["metadata"]["labels"][history.POD_REVISION_LABEL])
        for c in plan_creates
    ]


PLAN_CASES = [
    pytest.param(sts(), [], [("web-0", NEW)], [], id="ordered: first pod created alone"),
    pytest.param(sts(), [pod(0)], [("web-1", NEW)], [], id="ordered: next after a ready predecessor"),
    pytest.param(sts(), [pod(0, "pending")], [], [], id="ordered: waits for a pending predecessor"),
    pytest.param(
        sts(), [pod(0, "running")], [], [], id="ordered: waits for a running but unready predecessor"
    ),
    pytest.param(sts(), [pod(0), pod(1, "terminating")], [], [], id="ordered: waits for a terminating pod"),
    pytest.param(sts(), [pod(0, "failed")], [], ["web-0"], id="failed pod deleted for recreation"),
    pytest.param(
        sts(), [pod(0), pod(1, "succeeded")], [], ["web-1"], id="succeeded pod deleted for recreation"
    ),
    pytest.param(sts(), [pod(1), pod(2)], [("web-0", NEW)], [], id="ordered: fills the lowest gap first"),
    pytest.param(
        sts(podManagementPolicy="Parallel"),
        [],
        [("web-0", NEW), ("web-1", NEW), ("web-2", NEW)],
        [],
        id="parallel: all created at once",
    ),
    pytest.param(
        sts(podManagementPolicy="Parallel"),
        [pod(0, "pending")],
        [("web-1", NEW), ("web-2", NEW)],
        [],
        id="parallel: does not wait for readiness",
    ),
    pytest.param(
        sts(replicas=1), [pod(0), pod(1), pod(2)], [], ["web-2"], id="ordered: scale down highest first"
    ),
    pytest.param(
        sts(replicas=1),
        [pod(0), pod(1), pod(2, "terminating")],
        [],
        [],
        id="ordered: scale down waits for the terminating pod",
    ),
    pytest.param(
        sts(replicas=1),
        [pod(0), pod(1), pod(2, "running")],
        [],
        ["web-2"],
        id="ordered: the first unhealthy condemned pod may go",
    ),
    pytest.param(
        sts(replicas=1),
        [pod(0), pod(1, "running"), pod(2)],
        [],
        ["web-2"],
        id="ordered: healthy highest goes before an unhealthy lower one",
    ),
    pytest.param(
        sts(replicas=2),
        [pod(0, "running"), pod(1), pod(2)],
        [],
        [],
        id="ordered: an unready replica blocks scale down",
    ),
    pytest.param(
        sts(replicas=0, podManagementPolicy="Parallel"),
        [pod(0), pod(1)],
        [],
        ["web-1", "web-0"],
        id="parallel: scale down all at once",
    ),
    pytest.param(
        sts(),
        [pod(0, rev=OLD), pod(1, rev=OLD), pod(2, rev=OLD)],
        [],
        ["web-2"],
        id="rolling: highest ordinal replaced first",
    ),
    pytest.param(
        sts(),
        [pod(0, rev=OLD), pod(1, rev=OLD), pod(2, "running")],
        [],
        [],
        id="rolling: waits for the updated pod to be ready",
    ),
    pytest.param(
        sts(),
        [pod(0, rev=OLD), pod(1, rev=OLD), pod(2)],
        [],
        ["web-1"],
        id="rolling: next lower once the updated one is ready",
    ),
    pytest.param(
        sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
        [pod(0, rev=OLD), pod(1, rev=OLD), pod(2)],
        [],
        [],
        id="rolling: partition stops the update",
    ),
    pytest.param(
        sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
        [pod(1, rev=OLD), pod(2)],
        [("web-0", OLD)],
        [],
        id="rolling: pod below the partition recreated at the current revision",
    ),
    pytest.param(
        sts(updateStrategy={"type": "OnDelete"}),
        [pod(0, rev=OLD), pod(1, rev=OLD), pod(2, rev=OLD)],
        [],
        [],
        id="ondelete: old pods are left alone",
    ),
    pytest.param(
        sts(updateStrategy={"type": "OnDelete"}),
        [pod(0, rev=OLD), pod(2, rev=OLD)],
        [("web-1", NEW)],
        [],
        id="ondelete: a deleted pod comes back at the update revision",
    ),
    pytest.param(
        sts(ordinals={"start": 5}, replicas=2),
        [pod(5)],
        [("web-6", NEW)],
        [],
        id="ordinals.start shifts the identities",
    ),
    pytest.param(
        sts(ordinals={"start": 5}, replicas=2),
        [pod(0), pod(5), pod(6)],
        [],
        ["web-0"],
        id="ordinals.start condemns pods below the start",
    ),
    pytest.param(
        sts(minReadySeconds=60),
        [pod(0, ready_since=NOW - 10)],
        [],
        [],
        id="ordered: waits for minReadySeconds",
    ),
    pytest.param(
        sts(minReadySeconds=60),
        [pod(0, ready_since=NOW - 61)],
        [("web-1", NEW)],
        [],
        id="ordered: proceeds once available",
    ),
]


@pytest.mark.parametrize(("set_", "pods", "creates", "deletes"), PLAN_CASES)
def test_plan_statefulset(
    set_: Obj, pods: list[Obj], creates: list[tuple[str, str]], deletes: list[str]
) -> None:
    before = copy.deepcopy((set_, pods))
    plan = plan_statefulset(set_, pods, CURRENT, UPDATE, {}, NOW)
    assert names(plan.creates) == creates
    assert plan.deletes == deletes
    assert (set_, pods) == before  # pure: inputs untouched


def test_plan_requeues_for_min_ready_seconds() -> None:
    plan = plan_statefulset(sts(minReadySeconds=60), [pod(0, ready_since=NOW - 10)], CURRENT, UPDATE, {}, NOW)
    assert plan.requeue_after == pytest.approx(50)


def test_plan_does_nothing_while_the_set_is_deleted() -> None:
    s = sts()
    s["metadata"]["deletionTimestamp"] = iso(NOW)
    assert plan_statefulset(s, [], CURRENT, UPDATE, {}, NOW).empty


def test_plan_uses_the_revision_template() -> None:
    plan = plan_statefulset(sts(), [], CURRENT, UPDATE, {}, NOW)
    assert plan.creates[0].pod["spec"]["containers"][0]["image"] == "nginx:2"


CLAIM_TEMPLATE = {
    "metadata": {"name": "data", "labels": {"tier": "db"}},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
}


def test_new_pod_identity_and_volumes() -> None:
    s = sts(volumeClaimTemplates=[CLAIM_TEMPLATE])
    s["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "emptyDir": {}},
        {"name": "cfg", "emptyDir": {}},
    ]
    p = new_pod(s, s["spec"]["template"], 2, NEW)
    assert p["metadata"]["name"] == "web-2"
    assert p["metadata"]["labels"] == {
        "app": "web",
        POD_NAME_LABEL: "web-2",
        POD_INDEX_LABEL: "2",
        history.POD_REVISION_LABEL: NEW,
    }
    assert p["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": "web",
            "uid": "u1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert (p["spec"]["hostname"], p["spec"]["subdomain"]) == ("web-2", "web-svc")
    assert p["spec"]["volumes"] == [
        {"name": "cfg", "emptyDir": {}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2"}},
    ]
    assert (
        "volumes" not in s["spec"]["template"]["spec"] or len(s["spec"]["template"]["spec"]["volumes"]) == 2
    )


def test_claims_named_per_ordinal_with_selector_labels() -> None:
    [claim] = claims_for(sts(volumeClaimTemplates=[CLAIM_TEMPLATE]), 1)
    assert claim["metadata"] == {
        "name": "data-web-1",
        "namespace": "ns",
        "labels": {"tier": "db", "app": "web"},
    }
    assert claim["spec"]["resources"] == {"requests": {"storage": "1Gi"}}


@pytest.mark.parametrize(
    ("existing", "want"),
    [
        pytest.param({}, ["data-web-0"], id="missing claim created before the pod"),
        pytest.param({"data-web-0": {"metadata": {"name": "data-web-0"}}}, [], id="existing claim reused"),
    ],
)
def test_plan_creates_only_missing_claims(existing: dict[str, Obj], want: list[str]) -> None:
    plan = plan_statefulset(sts(volumeClaimTemplates=[CLAIM_TEMPLATE]), [], CURRENT, UPDATE, existing, NOW)
    assert [c["metadata"]["name"] for c in plan.creates[0].claims] == want


SET_REF = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u1"}
OTHER_REF = {"apiVersion": "v1", "kind": "ConfigMap", "name": "keep", "uid": "c9"}


def pod_ref(ordinal: int) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "name": f"web-{ordinal}", "uid": f"p{ordinal}"}


def with_uid(p: Obj, ordinal: int) -> Obj:
    p["metadata"]["uid"] = f"p{ordinal}"
    return p


def claim(ordinal: int, *refs: Obj) -> Obj:
    md: Obj = {"name": f"data-web-{ordinal}", "namespace": "ns"}
    if refs:
        md["ownerReferences"] = list(refs)
    return {"metadata": md}


def retained(when_deleted: str, when_scaled: str, replicas: int = 1) -> Obj:
    return sts(
        replicas=replicas,
        volumeClaimTemplates=[CLAIM_TEMPLATE],
        persistentVolumeClaimRetentionPolicy={"whenDeleted": when_deleted, "whenScaled": when_scaled},
    )


RETENTION_CASES = [
    pytest.param(retained("Retain", "Retain"), [claim(0), claim(1)], [], id="retain/retain: no owners"),
    pytest.param(
        retained("Retain", "Retain"),
        [claim(0, SET_REF, OTHER_REF), claim(1)],
        [("data-web-0", [OTHER_REF])],
        id="retain/retain: our stale owner removed, others kept",
    ),
    pytest.param(
        retained("Delete", "Retain"),
        [claim(0), claim(1)],
        [("data-web-0", [SET_REF]), ("data-web-1", [SET_REF])],
        id="whenDeleted: the set owns every claim",
    ),
    pytest.param(
        retained("Retain", "Delete"),
        [claim(0), claim(1)],
        [("data-web-1", [pod_ref(1)])],
        id="whenScaled: a scaled-away pod owns its claim",
    ),
    pytest.param(
        retained("Delete", "Delete"),
        [claim(0), claim(1, SET_REF)],
        [("data-web-0", [SET_REF]), ("data-web-1", [pod_ref(1)])],
        id="both: set in range, pod when scaled away",
    ),
    pytest.param(
        retained("Delete", "Delete"),
        [claim(0, SET_REF), claim(1, pod_ref(1))],
        [],
        id="both: already right, nothing to do",
    ),
]


@pytest.mark.parametrize(("set_", "claims", "want"), RETENTION_CASES)
def test_plan_sets_claim_owners_for_the_retention_policy(
    set_: Obj, claims: list[Obj], want: list[tuple[str, list[Obj]]]
) -> None:
    pods = [with_uid(pod(0), 0), with_uid(pod(1), 1)]
    existing = {c["metadata"]["name"]: c for c in claims}
    plan = plan_statefulset(set_, pods, CURRENT, UPDATE, existing, NOW)
    assert plan.claim_owners == want
    assert plan.deletes == ["web-1"]  # the scale down proceeds in the same step, after the owners


def test_new_claims_owned_by_the_set_when_deleted_is_delete() -> None:
    [c] = claims_for(retained("Delete", "Retain"), 0)
    assert c["metadata"]["ownerReferences"] == [SET_REF]
    [c] = claims_for(retained("Retain", "Delete"), 0)
    assert "ownerReferences" not in c["metadata"]


STATUS_CASES = [
    pytest.param(
        sts(),
        [],
        {
            "replicas": 0,
            "readyReplicas": 0,
            "currentReplicas": 0,
            "updatedReplicas": 0,
            "availableReplicas": 0,
            "currentRevision": NEW,
        },
        id="no pods: rollout trivially done",
    ),
    pytest.param(
        sts(),
        [pod(0, rev=OLD), pod(1, rev=OLD), pod(2)],
        {
            "replicas": 3,
            "readyReplicas": 3,
            "currentReplicas": 2,
            "updatedReplicas": 1,
            "availableReplicas": 3,
            "currentRevision": OLD,
        },
        id="mid rollout",
    ),
    pytest.param(
        sts(),
        [pod(0), pod(1), pod(2)],
        {
            "replicas": 3,
            "readyReplicas": 3,
            "currentReplicas": 3,
            "updatedReplicas": 3,
            "availableReplicas": 3,
            "currentRevision": NEW,
        },
        id="rollout complete: current becomes update",
    ),
    pytest.param(
        sts(),
        [pod(0), pod(1, "pending")],
        {
            "replicas": 2,
            "readyReplicas": 1,
            "currentReplicas": 0,
            "updatedReplicas": 2,
            "availableReplicas": 1,
            "currentRevision": OLD,
        },
        id="unready pod keeps the current revision",
    ),
    pytest.param(
        sts(),
        [pod(0), pod(1, "terminating")],
        {
            "replicas": 2,
            "readyReplicas": 2,
            "currentReplicas": 0,
            "updatedReplicas": 1,
            "availableReplicas": 2,
            "currentRevision": OLD,
        },
        id="terminating pods are not current/updated",
    ),
    pytest.param(
        sts(updateStrategy={"type": "OnDelete"}),
        [pod(0), pod(1)],
        {
            "replicas": 2,
            "readyReplicas": 2,
            "currentReplicas": 0,
            "updatedReplicas": 2,
            "availableReplicas": 2,
            "currentRevision": OLD,
        },
        id="ondelete never completes a rollout",
    ),
    pytest.param(
        sts(minReadySeconds=60),
        [pod(0, ready_since=NOW - 10), pod(1)],
        {
            "replicas": 2,
            "readyReplicas": 2,
            "currentReplicas": 2,
            "updatedReplicas": 2,
            "availableReplicas": 1,
            "currentRevision": NEW,
        },
        id="minReadySeconds gates availability",
    ),
]


@pytest.mark.parametrize(("set_", "pods", "want"), STATUS_CASES)
def test_statefulset_status(set_: Obj, pods: list[Obj], want: Obj) -> None:
    status = statefulset_status(set_, pods, OLD, NEW, 0, NOW)
    assert {k: status[k] for k in want} == want
    assert (status["updateRevision"], status["observedGeneration"], status["collisionCount"]) == (NEW, 3, 0)


# ---- ControllerRevision history ------------------------------------------------------------------------


def test_template_patch_is_what_rollout_undo_applies() -> None:
    s = sts()
    assert history.template_patch(s) == {"spec": {"template": {**s["spec"]["template"], "$patch": "replace"}}}
    assert "$patch" not in s["spec"]["template"]


@pytest.mark.parametrize(
    ("data", "want"),
    [
        pytest.param(b"", 0x811C9DC5, id="offset basis"),
        pytest.param(b"a", 0x050C5D7E, id="FNV-1 of 'a'"),
    ],
)
def test_fnv32(data: bytes, want: int) -> None:
    assert history.fnv32(data) == want


def test_revision_identity() -> None:
    rev = history.new_revision(sts(), "StatefulSet", 4, 0)
    hash_ = rev["metadata"]["labels"][history.HASH_LABEL]
    assert rev["metadata"]["name"] == f"web-{hash_}"
    assert set(hash_) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert rev["revision"] == 4 and rev["metadata"]["labels"]["app"] == "web"
    assert rev["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert history.new_revision(sts(), "StatefulSet", 9, 0)["metadata"]["name"] == rev["metadata"]["name"]
    assert history.new_revision(sts(), "StatefulSet", 4, 1)["metadata"]["name"] != rev["metadata"]["name"]
    other = sts()
    other["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert history.new_revision(other, "StatefulSet", 4, 0)["metadata"]["name"] != rev["metadata"]["name"]
    assert history.template_of_revision(rev) == sts()["spec"]["template"]


def _with_image(image: str) -> Obj:
    s = sts()
    s["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return s


def _stored(image: str, number: int) -> Obj:
    return history.new_revision(_with_image(image), "StatefulSet", number)


@pytest.mark.parametrize(
    ("image", "stored", "create", "renumber", "number"),
    [
        pytest.param("nginx:1", [], True, False, 1, id="first revision"),
        pytest.param("nginx:2", [_stored("nginx:1", 1)], True, False, 2, id="new template: next number"),
        pytest.param(
            "nginx:2",
            [_stored("nginx:1", 1), _stored("nginx:2", 2)],
            False,
            False,
            2,
            id="unchanged template reuses the newest",
        ),
        pytest.param(
            "nginx:1",
            [_stored("nginx:1", 1), _stored("nginx:2", 2)],
            False,
            True,
            3,
            id="rollback renumbers the old revision",
        ),
    ],
)
def test_plan_update_revision(
    image: str, stored: list[Obj], create: bool, renumber: bool, number: int
) -> None:
    plan = history.plan_update_revision(_with_image(image), "StatefulSet", stored, 0)
    assert (plan.create, plan.renumber, plan.update["revision"]) == (create, renumber, number)
    assert history.template_of_revision(plan.update)["spec"]["containers"][0]["image"] == image
    assert [r["revision"] for r in stored] == sorted(r["revision"] for r in stored)  # inputs untouched


@pytest.mark.parametrize(
    ("numbers", "keep", "limit", "want"),
    [
        pytest.param([1, 2, 3], set(), 5, [], id="under the limit"),
        pytest.param([1, 2, 3, 4], set(), 2, ["r1", "r2"], id="oldest pruned first"),
        pytest.param([1, 2, 3, 4], {"r1", "r4"}, 1, ["r2"], id="live revisions neither count nor go"),
        pytest.param([3, 1, 2], set(), 0, ["r1", "r2", "r3"], id="limit zero keeps only live ones"),
    ],
)
def test_revisions_to_prune(numbers: list[int], keep: set[str], limit: int, want: list[str]) -> None:
    revs = [{"metadata": {"name": f"r{n}"}, "revision": n} for n in numbers]
    assert history.revisions_to_prune(revs, keep, limit) == want


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
    import asyncio

    async with asyncio.timeout(20):
        while not (result := await check()):
            await asyncio.sleep(0.02)
    return result


async def test_controller_rolls_out_in_order_and_undo_restores_the_template(cluster: Any) -> None:
    import asyncio

    from skiff.api.errors import ApiError
    from skiff.client.interface import CONTROLLERREVISIONS, PODS, PVCS, STATEFULSETS, ListOptions, Patch
    from skiff.controllers.base import ControllerContext
    from skiff.controllers.statefulset import StatefulSetController

    client, informers = cluster
    ctrl = StatefulSetController(ControllerContext(client, informers, informers.new_queue))
    ctrl.setup()
    task = asyncio.create_task(ctrl.run())
    try:
        body = sts(replicas=2, volumeClaimTemplates=[CLAIM_TEMPLATE])
        body["metadata"] = {"name": "web", "namespace": "default"}
        del body["status"]
        await client.create(STATEFULSETS, "default", body)

        async def pod_names() -> set[str]:
            items = (await client.list(PODS, "default"))["items"]
            return {p["metadata"]["name"] for p in items}

        async def ready(name: str) -> None:
            now = history_now()
            await client.patch(
                PODS,
                "default",
                name,
                Patch(
                    "merge",
                    {
                        "status": {
                            "phase": "Running",
                            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
                        }
                    },
                ),
                subresource="status",
            )

        assert await eventually(lambda: _has(pod_names, {"web-0"}))
        claim = await client.get(PVCS, "default", "data-web-0")
        assert claim["metadata"]["labels"] == {"tier": "db", "app": "web"}
        web0 = await client.get(PODS, "default", "web-0")
        assert web0["spec"]["hostname"] == "web-0" and web0["spec"]["subdomain"] == "web-svc"
        assert await pod_names() == {"web-0"}  # OrderedReady: web-1 waits for web-0
        await ready("web-0")
        assert await eventually(lambda: _has(pod_names, {"web-0", "web-1"}))
        await ready("web-1")

        async def status() -> Obj | None:
            s = (await client.get(STATEFULSETS, "default", "web")).get("status") or {}
            return s if s.get("readyReplicas") == 2 and s.get("updatedReplicas") == 2 else None

        first = await eventually(status)
        assert first["currentRevision"] == first["updateRevision"]
        [rev1] = (await client.list(CONTROLLERREVISIONS, "default"))["items"]
        assert rev1["metadata"]["name"] == first["updateRevision"] and rev1["revision"] == 1

        # a template change: a second revision, the highest ordinal replaced first
        await client.patch(
            STATEFULSETS,
            "default",
            "web",
            Patch(
                "merge", {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}}
            ),
        )

        async def two_revisions() -> list[Obj] | None:
            items = (await client.list(CONTROLLERREVISIONS, "default"))["items"]
            return items if len(items) == 2 else None

        revs = await eventually(two_revisions)
        assert sorted(r["revision"] for r in revs) == [1, 2]

        async def web1_updated() -> bool:
            try:
                p = await client.get(PODS, "default", "web-1")
            except ApiError:
                return False
            return p["spec"]["containers"][0]["image"] == "nginx:2"

        assert await eventually(web1_updated)
        assert (await client.get(PODS, "default", "web-0"))["spec"]["containers"][0]["image"] == "nginx:1"

        # `kubectl rollout undo --to-revision=1`: a strategic merge patch of revision 1's data
        await client.patch(STATEFULSETS, "default", "web", Patch("strategic", rev1["data"]))
        template = (await client.get(STATEFULSETS, "default", "web"))["spec"]["template"]
        assert template["spec"]["containers"][0]["image"] == "nginx:1"

        async def renumbered() -> bool:
            items = (await client.list(CONTROLLERREVISIONS, "default", ListOptions()))["items"]
            by_name = {r["metadata"]["name"]: r["revision"] for r in items}
            return by_name.get(rev1["metadata"]["name"]) == 3

        assert await eventually(renumbered)  # the old revision is reused with the next number
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def _has(names: Any, want: set[str]) -> bool:
    return want <= await names()


def history_now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _candidate(name: str, labels: Obj, *, owner: bool = False, deleting: bool = False) -> Obj:
    md: Obj = {"name": name, "uid": f"uid-{name}", "labels": labels}
    if owner:
        md["ownerReferences"] = [{"kind": "StatefulSet", "name": "x", "uid": "other", "controller": True}]
    if deleting:
        md["deletionTimestamp"] = iso(NOW)
    return {"metadata": md}


@pytest.mark.parametrize(
    ("candidate", "adopted"),
    [
        pytest.param(_candidate("web-0", {"app": "web"}), True, id="matching orphan adopted"),
        pytest.param(_candidate("web-0", {"app": "db"}), False, id="selector mismatch"),
        pytest.param(_candidate("web-0", {"app": "web"}, owner=True), False, id="another controller's"),
        pytest.param(_candidate("web-0", {"app": "web"}, deleting=True), False, id="being deleted"),
    ],
)
def test_orphans_to_adopt(candidate: Obj, adopted: bool) -> None:
    assert history.orphans_to_adopt(sts(), [candidate]) == ([candidate] if adopted else [])


def test_adoption_patch_keeps_other_owners_and_guards_the_uid() -> None:
    orphan = _candidate("web-0", {"app": "web"})
    orphan["metadata"]["ownerReferences"] = [OTHER_REF]
    patch = history.adoption_patch(sts(), "StatefulSet", orphan)
    assert patch["metadata"]["uid"] == "uid-web-0"
    assert patch["metadata"]["ownerReferences"] == [
        OTHER_REF,
        {**SET_REF, "controller": True, "blockOwnerDeletion": True},
    ]
    assert orphan["metadata"]["ownerReferences"] == [OTHER_REF]


def test_nothing_adopted_by_a_set_being_deleted() -> None:
    s = sts()
    s["metadata"]["deletionTimestamp"] = iso(NOW)
    assert history.orphans_to_adopt(s, [_candidate("web-0", {"app": "web"})]) == []


async def test_controller_adopts_an_orphaned_member(cluster: Any) -> None:
    import asyncio

    from skiff.client.interface import PODS, STATEFULSETS, Patch
    from skiff.controllers.base import ControllerContext
    from skiff.controllers.statefulset import StatefulSetController

    client, informers = cluster
    orphan = {
        "metadata": {"name": "web-0", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
    }
    await client.create(PODS, "default", orphan)
    await client.patch(
        PODS,
        "default",
        "web-0",
        Patch(
            "merge",
            {
                "status": {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": history_now()}],
                }
            },
        ),
        subresource="status",
    )
    ctrl = StatefulSetController(ControllerContext(client, informers, informers.new_queue))
    ctrl.setup()
    task = asyncio.create_task(ctrl.run())
    try:
        body = sts(replicas=2)
        body["metadata"] = {"name": "web", "namespace": "default"}
        del body["status"]
        created = await client.create(STATEFULSETS, "default", body)

        async def web1() -> bool:
            items = (await client.list(PODS, "default"))["items"]
            return "web-1" in {p["metadata"]["name"] for p in items}

        assert await eventually(web1)  # web-0 (adopted, ready) counts as the predecessor
        refs = (await client.get(PODS, "default", "web-0"))["metadata"]["ownerReferences"]
        assert [(r["kind"], r["uid"], r["controller"]) for r in refs] == [
            ("StatefulSet", created["metadata"]["uid"], True)
        ]
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
