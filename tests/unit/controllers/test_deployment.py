"""Deployment controller: the pure planners, table-driven, and a simulated rollout."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from skiff.api.errors import ApiError
from skiff.api.meta import rfc3339
from skiff.apiserver.local import LocalBackend
from skiff.client.factory import InformerFactory
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import DEPLOYMENTS, PODS, REPLICASETS, DeleteOptions, Patch
from skiff.controllers.base import ControllerContext
from skiff.controllers.deployment import (
    HASH_LABEL,
    DeploymentController,
    compute_hash,
    equal_ignore_hash,
    find_active_or_latest,
    find_new_rs,
    is_scaling_event,
    new_replica_set,
    new_rs_new_replicas,
    paused_condition,
    plan_cleanup,
    plan_recreate_step,
    plan_rolling_step,
    plan_scale,
    requeue_after,
    resolve_fenceposts,
    rollout_status,
    safe_encode_string,
    scaled_value,
    set_new_rs_annotations,
)
from skiff.controllers.replicaset import ReplicaSetController
from skiff.testing import start_control_plane

Obj = dict[str, Any]
NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
TEMPLATE: Obj = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
}


def ts(seconds_ago: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(
    replicas: int = 10,
    surge: int | str = "25%",
    unavailable: int | str = "25%",
    strategy: str = "RollingUpdate",
    status: Obj | None = None,
    **spec: Any,
) -> Obj:
    strat: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        strat["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-d", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": copy.deepcopy(TEMPLATE),
            "strategy": strat,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            **spec,
        },
        "status": status or {},
    }


def replicaset(
    name: str,
    replicas: int,
    available: int | None = None,
    created: float = 100,
    revision: int = 1,
    desired: int | None = None,
    max_replicas: int | None = None,
    image: str = "nginx:0",
) -> Obj:
    ann = {"deployment.kubernetes.io/revision": str(revision)}
    if desired is not None:
        ann["deployment.kubernetes.io/desired-replicas"] = str(desired)
    if max_replicas is not None:
        ann["deployment.kubernetes.io/max-replicas"] = str(max_replicas)
    avail = replicas if available is None else available
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "creationTimestamp": ts(created),
            "annotations": ann,
            "generation": 1,
        },
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {"labels": {"app": "web", HASH_LABEL: name}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
        "status": {
            "replicas": replicas,
            "readyReplicas": avail,
            "availableReplicas": avail,
            "observedGeneration": 1,
        },
    }


# ---- hashing ----------------------------------------------------------------------------------------


def test_safe_encode_string() -> None:
    # apimachinery rand.SafeEncodeString: byte % 27 into "bcdfghjklmnpqrstvwxz2456789"
    assert safe_encode_string("0123456789") == "456789bcdf"


def test_compute_hash_is_stable() -> None:
    h = compute_hash(TEMPLATE, None)
    assert h == compute_hash(copy.deepcopy(TEMPLATE), None)
    assert h == "79bfd649dc"  # golden: must never change across versions, or every RS would be replaced
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")


@pytest.mark.parametrize(
    ("other", "same"),
    [
        pytest.param(
            {**TEMPLATE, "metadata": {**TEMPLATE["metadata"], "creationTimestamp": None}},
            True,
            id="null-field-ignored",
        ),
        pytest.param(
            {**TEMPLATE, "metadata": {**TEMPLATE["metadata"], "annotations": {}}},
            True,
            id="empty-map-ignored",
        ),
        pytest.param(
            {"spec": TEMPLATE["spec"], "metadata": TEMPLATE["metadata"]}, True, id="key-order-ignored"
        ),
        pytest.param(
            {**TEMPLATE, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}},
            False,
            id="image-change",
        ),
    ],
)
def test_compute_hash_equivalence(other: Obj, same: bool) -> None:
    assert (compute_hash(other, None) == compute_hash(TEMPLATE, None)) is same


def test_collision_count_changes_hash() -> None:
    assert len({compute_hash(TEMPLATE, None), compute_hash(TEMPLATE, 0), compute_hash(TEMPLATE, 1)}) == 3


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        pytest.param(
            TEMPLATE,
            {"metadata": {"labels": {"app": "web", HASH_LABEL: "x"}}, "spec": TEMPLATE["spec"]},
            True,
            id="hash-label-ignored",
        ),
        pytest.param(
            TEMPLATE,
            {"metadata": {"labels": {"app": "web", "v": "2"}}, "spec": TEMPLATE["spec"]},
            False,
            id="other-label-counts",
        ),
        pytest.param(
            TEMPLATE, {"metadata": TEMPLATE["metadata"], "spec": {"containers": []}}, False, id="spec-counts"
        ),
    ],
)
def test_equal_ignore_hash(a: Obj, b: Obj, equal: bool) -> None:
    assert equal_ignore_hash(a, b) is equal
    assert TEMPLATE["metadata"]["labels"] == {"app": "web"}  # not mutated


# ---- surge / unavailable ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expect"),
    [
        pytest.param("25%", "25%", 10, (3, 2), id="percent-rounds-surge-up-unavailable-down"),
        pytest.param("25%", "25%", 1, (1, 0), id="one-replica"),
        pytest.param(0, 0, 5, (0, 1), id="both-zero-becomes-unavailable-1"),
        pytest.param("0%", "0%", 5, (0, 1), id="both-zero-percent"),
        pytest.param(2, 1, 10, (2, 1), id="ints"),
        pytest.param("100%", "0%", 3, (3, 0), id="blue-green"),
        pytest.param("3", 0, 3, (3, 0), id="numeric-string"),
    ],
)
def test_resolve_fenceposts(
    surge: int | str, unavailable: int | str, desired: int, expect: tuple[int, int]
) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expect


@pytest.mark.parametrize(
    ("value", "total", "up", "expect"),
    [
        pytest.param("33%", 10, True, 4, id="up"),
        pytest.param("33%", 10, False, 3, id="down"),
        pytest.param(None, 10, True, 0, id="none"),
    ],
)
def test_scaled_value(value: str | None, total: int, up: bool, expect: int) -> None:
    assert scaled_value(value, total, up) == expect


# ---- rolling update ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "old", "new", "expect"),
    [
        pytest.param(deployment(10), [10], 0, 3, id="surge-3-from-old-10"),
        pytest.param(deployment(10), [10], 3, 3, id="at-max-total"),
        pytest.param(deployment(10), [5], 3, 8, id="room-after-old-shrank"),
        pytest.param(deployment(10), [0], 8, 10, id="never-above-replicas"),
        pytest.param(deployment(10, strategy="Recreate"), [10], 0, 10, id="recreate-full-size"),
    ],
)
def test_new_rs_new_replicas(d: Obj, old: list[int], new: int, expect: int) -> None:
    olds = [replicaset(f"old{i}", n) for i, n in enumerate(old)]
    new_rs = replicaset("new", new)
    assert new_rs_new_replicas(d, [*olds, new_rs], new_rs) == expect


@pytest.mark.parametrize(
    ("d", "old", "new", "expect"),
    [
        pytest.param(deployment(10), [(10, 10)], (0, 0), {"new": 3}, id="first-step-surges"),
        pytest.param(deployment(10), [(10, 10)], (3, 0), {"old0": 8}, id="old-down-by-max-unavailable"),
        pytest.param(deployment(10), [(8, 8)], (3, 3), {"new": 5}, id="new-up-after-old-down"),
        pytest.param(deployment(10), [(8, 8)], (5, 0), {}, id="blocked-until-new-available"),
        pytest.param(deployment(10), [(8, 8)], (5, 3), {"old0": 5}, id="old-down-as-new-becomes-available"),
        pytest.param(deployment(10), [(5, 2)], (8, 5), {"old0": 3}, id="unhealthy-old-pods-go-first"),
        pytest.param(deployment(10, surge=0, unavailable=1), [(10, 10)], (0, 0), {"old0": 9}, id="no-surge"),
        pytest.param(deployment(10), [(0, 0)], (10, 10), {}, id="done"),
        pytest.param(deployment(4), [(0, 0)], (6, 6), {"new": 4}, id="new-above-replicas-scales-down"),
        pytest.param(deployment(10), [(5, 5), (5, 5)], (3, 3), {"old0": 0}, id="oldest-old-rs-shrinks-first"),
    ],
)
def test_plan_rolling_step(
    d: Obj, old: list[tuple[int, int]], new: tuple[int, int], expect: dict[str, int]
) -> None:
    olds = [replicaset(f"old{i}", n, a, created=1000 - i) for i, (n, a) in enumerate(old)]
    assert plan_rolling_step(d, replicaset("new", new[0], new[1], created=1), olds) == expect


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "lag"),
    [
        pytest.param(10, "25%", "25%", 1, id="defaults"),
        pytest.param(10, 0, 1, 1, id="no-surge"),
        pytest.param(10, 1, 0, 2, id="no-unavailability-slow-pods"),
        pytest.param(3, "100%", 0, 1, id="blue-green"),
        pytest.param(7, "30%", "10%", 3, id="odd-percentages"),
        pytest.param(1, 0, 1, 1, id="single-replica"),
    ],
)
def test_rolling_update_invariants(replicas: int, surge: int | str, unavailable: int | str, lag: int) -> None:
    """Simulate a rollout where new pods need `lag` ticks to become available and scale-downs
    remove unavailable pods first: never more than replicas + maxSurge pods, never fewer available
    than replicas - maxUnavailable, and the rollout finishes."""
    d = deployment(replicas, surge, unavailable)
    max_surge, max_unavail = resolve_fenceposts(surge, unavailable, replicas)
    # per RS: spec size and the ages (in ticks) of its pods; available = age >= lag
    old = replicaset("old", replicas, created=1000)
    new = replicaset("new", 0, 0, created=1)
    pods: dict[str, list[int]] = {"old": [lag] * replicas, "new": []}
    rses = {"old": old, "new": new}
    for _tick in range(200):
        scales = plan_rolling_step(d, rses["new"], [rses["old"]])
        for name, size in scales.items():
            rses[name]["spec"]["replicas"] = size
            ages = sorted(pods[name], reverse=True)  # unavailable (young) pods are deleted first
            pods[name] = ages[:size] + [0] * max(0, size - len(ages))
        total = sum(len(p) for p in pods.values())
        available = sum(1 for p in pods.values() for age in p if age >= lag)
        assert total <= replicas + max_surge
        assert available >= replicas - max_unavail
        for name, ages in pods.items():
            pods[name] = [a + 1 for a in ages]
            st = rses[name]["status"]
            st["replicas"] = len(ages)
            st["availableReplicas"] = st["readyReplicas"] = sum(1 for a in pods[name] if a >= lag)
        if (
            not scales
            and rses["old"]["spec"]["replicas"] == 0
            and rses["new"]["status"]["availableReplicas"] == replicas
        ):
            break
    else:
        pytest.fail("rollout did not finish")
    assert rses["new"]["spec"]["replicas"] == replicas


# ---- recreate -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "running", "expect_scales", "create"),
    [
        pytest.param([3], None, True, {"old0": 0}, False, id="old-down-first"),
        pytest.param([0], None, True, {}, False, id="wait-for-old-pods"),
        pytest.param([0], None, False, {}, True, id="then-create-new"),
        pytest.param([0], 0, False, {"new": 3}, False, id="scale-existing-new"),
        pytest.param([0], 3, False, {}, False, id="done"),
    ],
)
def test_plan_recreate_step(
    old: list[int], new: int | None, running: bool, expect_scales: dict[str, int], create: bool
) -> None:
    olds = [replicaset(f"old{i}", n) for i, n in enumerate(old)]
    new_rs = replicaset("new", new) if new is not None else None
    step = plan_recreate_step(deployment(3, strategy="Recreate"), new_rs, olds, running)
    assert (step.scales, step.create_new) == (expect_scales, create)


# ---- scaling ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "old", "new", "expect"),
    [
        pytest.param(
            deployment(5), [(3, None, None)], None, {"old0": 5}, id="single-active-rs-takes-new-size"
        ),
        pytest.param(deployment(3), [(3, None, None)], None, {}, id="already-right"),
        pytest.param(
            deployment(20, surge=3, unavailable=2),
            [(8, 10, 13)],
            (5, 10, 13),
            {"old0": 14, "new": 9},
            id="proportional-up-10-to-20",
        ),
        pytest.param(
            deployment(5, surge=3, unavailable=2),
            [(8, 10, 13)],
            (5, 10, 13),
            {"old0": 5, "new": 3},
            id="proportional-down-10-to-5",
        ),
        pytest.param(deployment(0), [(8, 10, 13)], (5, 10, 13), {"old0": 0, "new": 0}, id="to-zero"),
    ],
)
def test_plan_scale(
    d: Obj,
    old: list[tuple[int, int | None, int | None]],
    new: tuple[int, int | None, int | None] | None,
    expect: dict[str, int],
) -> None:
    olds = [
        replicaset(f"old{i}", n, 0, created=1000 - i, desired=des, max_replicas=mx)
        for i, (n, des, mx) in enumerate(old)
    ]
    new_rs = replicaset("new", new[0], 0, created=1, desired=new[1], max_replicas=new[2]) if new else None
    assert plan_scale(d, new_rs, olds) == expect


def test_plan_scale_saturated_new_rs_drops_old() -> None:
    new_rs = replicaset("new", 5, 5, created=1, desired=5)
    assert plan_scale(deployment(5), new_rs, [replicaset("old", 2, 2, created=100)]) == {"old": 0}


@pytest.mark.parametrize(
    ("rses", "scaling"),
    [
        pytest.param([replicaset("a", 3, desired=3)], True, id="annotation-differs"),
        pytest.param([replicaset("a", 5, desired=5)], False, id="annotation-matches"),
        pytest.param([replicaset("a", 0, desired=3)], False, id="inactive-ignored"),
        pytest.param([replicaset("a", 3)], False, id="no-annotation"),
    ],
)
def test_is_scaling_event(rses: list[Obj], scaling: bool) -> None:
    assert is_scaling_event(deployment(5), rses) is scaling


def test_find_active_or_latest() -> None:
    a, b = replicaset("a", 0, created=200), replicaset("b", 0, created=100)
    assert find_active_or_latest(None, [a, b]) is b  # none active: the newest
    c = replicaset("c", 2)
    assert find_active_or_latest(None, [a, c]) is c
    assert find_active_or_latest(replicaset("n", 1), [c]) is None


# ---- new RS, annotations, history ---------------------------------------------------------------------


def test_new_replica_set() -> None:
    d = deployment(10, minReadySeconds=5)
    d["metadata"]["annotations"] = {
        "kubernetes.io/change-cause": "kubectl set image",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    rs = new_replica_set(d, None, 3, [replicaset("old", 10)])
    h = compute_hash(d["spec"]["template"], None)
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["metadata"]["labels"] == {"app": "web", HASH_LABEL: h}
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", HASH_LABEL: h}}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", HASH_LABEL: h}
    assert rs["spec"]["replicas"] == 3  # surge 25% of 10, rounded up
    assert rs["spec"]["minReadySeconds"] == 5
    assert rs["metadata"]["annotations"] == {
        "kubernetes.io/change-cause": "kubectl set image",
        "deployment.kubernetes.io/revision": "3",
        "deployment.kubernetes.io/desired-replicas": "10",
        "deployment.kubernetes.io/max-replicas": "13",
    }
    (ref,) = rs["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (
        "Deployment",
        "uid-d",
        True,
        True,
    )
    assert "pod-template-hash" not in d["spec"]["template"]["metadata"]["labels"]  # d not mutated
    assert find_new_rs(d, [replicaset("old", 10), rs]) is rs


def test_rollback_bumps_revision_and_records_history() -> None:
    rs = replicaset("old", 0, revision=1)
    assert set_new_rs_annotations(deployment(), rs, 4, exists=True)
    ann = rs["metadata"]["annotations"]
    assert (ann["deployment.kubernetes.io/revision"], ann["deployment.kubernetes.io/revision-history"]) == (
        "4",
        "1",
    )
    assert not set_new_rs_annotations(deployment(), rs, 4, exists=True)  # idempotent


@pytest.mark.parametrize(
    ("limit", "old", "deleted"),
    [
        pytest.param(2, [(1, 0), (2, 0), (3, 0)], ["r1"], id="oldest-revision-beyond-limit"),
        pytest.param(0, [(1, 0), (2, 0)], ["r1", "r2"], id="limit-zero"),
        pytest.param(1, [(1, 2), (2, 0)], [], id="skips-rs-with-replicas"),
        pytest.param(5, [(1, 0), (2, 0)], [], id="within-limit"),
    ],
)
def test_plan_cleanup(limit: int, old: list[tuple[int, int]], deleted: list[str]) -> None:
    olds = [replicaset(f"r{rev}", n, revision=rev) for rev, n in old]
    got = plan_cleanup(deployment(revisionHistoryLimit=limit), olds)
    assert [r["metadata"]["name"] for r in got] == deleted


# ---- status and conditions ----------------------------------------------------------------------------


def cond(status: Obj, type_: str) -> Obj | None:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), None)


def test_status_counts_and_complete_rollout() -> None:
    d = deployment(
        3,
        status={
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "ReplicaSetUpdated",
                    "lastUpdateTime": ts(5),
                    "lastTransitionTime": ts(50),
                }
            ]
        },
    )
    new = replicaset("new", 3, 3)
    st = rollout_status(d, [replicaset("old", 0), new], new, NOW)
    assert {
        k: st[k]
        for k in (
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "observedGeneration",
        )
    } == {
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "unavailableReplicas": 0,
        "observedGeneration": 1,
    }
    progressing = cond(st, "Progressing")
    assert progressing is not None
    assert (progressing["status"], progressing["reason"]) == ("True", "NewReplicaSetAvailable")
    assert progressing["message"] == 'ReplicaSet "new" has successfully progressed.'
    assert progressing["lastTransitionTime"] == ts(50)  # same status: transition time kept
    available = cond(st, "Available")
    assert available is not None and (available["status"], available["reason"]) == (
        "True",
        "MinimumReplicasAvailable",
    )


@pytest.mark.parametrize(
    ("old_status", "new_avail", "since", "reason", "status"),
    [
        pytest.param(
            {"updatedReplicas": 1, "availableReplicas": 1},
            2,
            700,
            "ReplicaSetUpdated",
            "True",
            id="progress-refreshes",
        ),
        pytest.param(
            {"updatedReplicas": 3, "replicas": 6, "readyReplicas": 2, "availableReplicas": 2},
            2,
            700,
            "ProgressDeadlineExceeded",
            "False",
            id="deadline-exceeded",
        ),
        pytest.param(
            {"updatedReplicas": 3, "replicas": 6, "readyReplicas": 2, "availableReplicas": 2},
            2,
            100,
            "ReplicaSetUpdated",
            "True",
            id="within-deadline-unchanged",
        ),
    ],
)
def test_progressing_condition(
    old_status: Obj, new_avail: int, since: float, reason: str, status: str
) -> None:
    prev = {
        "type": "Progressing",
        "status": "True",
        "reason": "ReplicaSetUpdated",
        "lastUpdateTime": ts(since),
        "lastTransitionTime": ts(since),
    }
    d = deployment(3, status={**old_status, "conditions": [prev]})
    new = replicaset("new", 3, new_avail)
    new["status"]["replicas"] = 3
    old = replicaset("old", 3, 0)
    st = rollout_status(d, [old, new], new, NOW)
    c = cond(st, "Progressing")
    assert c is not None and (c["reason"], c["status"]) == (reason, status)
    if reason == "ProgressDeadlineExceeded":
        assert c["message"] == 'ReplicaSet "new" has timed out progressing.'
        assert requeue_after(d, st, NOW) is None


def test_available_condition_false_below_minimum() -> None:
    new = replicaset("new", 4, 1)
    st = rollout_status(deployment(4, surge=1, unavailable=1), [new], new, NOW)
    c = cond(st, "Available")
    assert c is not None and (c["status"], c["reason"]) == ("False", "MinimumReplicasUnavailable")


def test_replica_failure_is_mirrored() -> None:
    new = replicaset("new", 3, 0)
    new["status"]["conditions"] = [
        {
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": "quota",
            "lastTransitionTime": ts(1),
        }
    ]
    st = rollout_status(deployment(3), [new], new, NOW)
    c = cond(st, "ReplicaFailure")
    assert c is not None and (c["reason"], c["message"]) == ("FailedCreate", "quota")
    new["status"].pop("conditions")
    assert cond(rollout_status(deployment(3, status=st), [new], new, NOW), "ReplicaFailure") is None


def test_requeue_before_deadline() -> None:
    d = deployment(3)
    st = {
        "conditions": [
            {
                "type": "Progressing",
                "status": "True",
                "reason": "ReplicaSetUpdated",
                "lastUpdateTime": ts(100),
                "lastTransitionTime": ts(100),
            }
        ]
    }
    assert requeue_after(d, st, NOW) == 501


@pytest.mark.parametrize(
    ("paused", "current", "reason"),
    [
        pytest.param(True, None, "DeploymentPaused", id="pause"),
        pytest.param(True, "DeploymentPaused", None, id="already-paused"),
        pytest.param(False, "DeploymentPaused", "DeploymentResumed", id="resume"),
        pytest.param(False, "ReplicaSetUpdated", None, id="running"),
        pytest.param(True, "ProgressDeadlineExceeded", None, id="timed-out-stays"),
    ],
)
def test_paused_condition(paused: bool, current: str | None, reason: str | None) -> None:
    conds = [{"type": "Progressing", "status": "True", "reason": current}] if current else []
    c = paused_condition(deployment(paused=paused, status={"conditions": conds}), NOW)
    assert (c["reason"] if c else None) == reason
    if c:
        assert c["status"] == "Unknown"


# ---- integration: both controllers over a real ControlPlane (in-process client, temp SQLite) ---------


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[InProcessClient, DeploymentController]]:
    """A ControlPlane over temporary SQLite, the in-process client, and the ReplicaSet and
    Deployment controllers running; the test plays the kubelet."""
    plane = await start_control_plane(tmp_path)
    store = plane.store
    client = InProcessClient(LocalBackend(plane))
    factory = InformerFactory(client)
    ctx = ControllerContext(client=client, informers=factory, new_queue=factory.new_queue)
    dc = DeploymentController(ctx)
    controllers = [ReplicaSetController(ctx), dc]
    for c in controllers:
        c.setup()
    tasks = [asyncio.create_task(c.run()) for c in controllers]
    try:
        yield client, dc
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        await factory.stop()
        await client.close()
        await store.close()


async def eventually(check: Callable[[], Awaitable[bool]], kubelet: Callable[[], Awaitable[None]]) -> None:
    """Run the fake kubelet until `check` holds. The bound only guards against a hang; nothing here
    asserts how fast the controllers are."""
    for _ in range(3000):
        await kubelet()
        if await check():
            return
        await asyncio.sleep(0.01)
    pytest.fail("condition never reached")


def make_kubelet(
    client: InProcessClient, seen: list[int], images: list[set[str]] | None = None, ready: bool = True
) -> Callable[[], Awaitable[None]]:
    """Marks every pod Running and Ready (unless `ready` is False), finishes deletions at once, and
    records the pod count and the images of the pods that exist (terminating ones included)."""

    async def step() -> None:
        pods = (await client.list(PODS, "default"))["items"]
        seen.append(len([p for p in pods if not p["metadata"].get("deletionTimestamp")]))
        if images is not None:
            images.append({p["spec"]["containers"][0]["image"] for p in pods})
        for p in pods:
            if p["metadata"].get("deletionTimestamp"):
                with contextlib.suppress(ApiError):
                    await client.delete(
                        PODS, "default", p["metadata"]["name"], DeleteOptions(grace_period_seconds=0)
                    )
                continue
            if not ready or (p.get("status") or {}).get("phase") == "Running":
                continue
            p["status"] = {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": rfc3339()}],
            }
            with contextlib.suppress(ApiError):
                await client.update(PODS, "default", p, subresource="status")

    return step


async def set_image(client: InProcessClient, image: str, annotations: dict[str, str] | None = None) -> None:
    """What `kubectl set image` sends: a strategic merge patch (no read-modify-write race with the controller)."""
    body: Obj = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}
    if annotations:
        body["metadata"] = {"annotations": annotations}
    await client.patch(DEPLOYMENTS, "default", "web", Patch("strategic", body))


async def test_rollout_end_to_end(cluster: tuple[InProcessClient, DeploymentController]) -> None:
    client, _ = cluster
    seen: list[int] = []
    kubelet = make_kubelet(client, seen)
    d = deployment(4, surge=1, unavailable=0)
    d["metadata"] = {
        "name": "web",
        "namespace": "default",
        "annotations": {"kubernetes.io/change-cause": "v1"},
    }
    d.pop("status")
    await client.create(DEPLOYMENTS, "default", d)

    async def rolled_out(revision: str, image: str) -> bool:
        cur = await client.get(DEPLOYMENTS, "default", "web")
        st = cur.get("status") or {}
        progressing: Obj = next((c for c in st.get("conditions", []) if c["type"] == "Progressing"), {})
        return (
            st.get("observedGeneration", 0) >= cur["metadata"]["generation"]
            and st.get("updatedReplicas") == st.get("replicas") == st.get("availableReplicas") == 4
            and progressing.get("reason") == "NewReplicaSetAvailable"
            and cur["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision") == revision
            and all(
                p["spec"]["containers"][0]["image"] == image
                for p in (await client.list(PODS, "default"))["items"]
                if not p["metadata"].get("deletionTimestamp")
            )
        )

    await eventually(lambda: rolled_out("1", "nginx:1"), kubelet)
    (rs1,) = (await client.list(REPLICASETS, "default"))["items"]
    assert rs1["metadata"]["annotations"]["kubernetes.io/change-cause"] == "v1"
    assert rs1["metadata"]["labels"][HASH_LABEL] == rs1["metadata"]["name"].removeprefix("web-")
    pods = (await client.list(PODS, "default"))["items"]
    assert len(pods) == 4
    assert {p["metadata"]["ownerReferences"][0]["name"] for p in pods} == {rs1["metadata"]["name"]}

    # `kubectl set image` with a change cause: a rolling update within maxSurge 1 / maxUnavailable 0
    seen.clear()
    await set_image(client, "nginx:2", {"kubernetes.io/change-cause": "v2"})
    await eventually(lambda: rolled_out("2", "nginx:2"), kubelet)
    assert max(seen) <= 5  # never above replicas + maxSurge
    rses = {
        r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: r
        for r in (await client.list(REPLICASETS, "default"))["items"]
    }
    assert (rses["1"]["spec"]["replicas"], rses["2"]["spec"]["replicas"]) == (0, 4)
    assert rses["2"]["metadata"]["annotations"]["kubernetes.io/change-cause"] == "v2"

    # `kubectl rollout undo`: the old template comes back, its RS is reused as revision 3
    await set_image(client, "nginx:1")
    await eventually(lambda: rolled_out("3", "nginx:1"), kubelet)
    reused = await client.get(REPLICASETS, "default", rs1["metadata"]["name"])
    assert reused["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert reused["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"

    # `kubectl scale`
    await client.patch(DEPLOYMENTS, "default", "web", Patch("merge", {"spec": {"replicas": 2}}))

    async def scaled() -> bool:
        st = (await client.get(DEPLOYMENTS, "default", "web")).get("status") or {}
        return st.get("replicas") == st.get("availableReplicas") == 2

    await eventually(scaled, kubelet)


async def test_recreate_never_runs_old_and_new_pods_together(
    cluster: tuple[InProcessClient, DeploymentController],
) -> None:
    client, _ = cluster
    seen: list[int] = []
    images: list[set[str]] = []
    kubelet = make_kubelet(client, seen, images)
    d = deployment(3, strategy="Recreate")
    d["metadata"] = {"name": "web", "namespace": "default"}
    d.pop("status")
    await client.create(DEPLOYMENTS, "default", d)

    async def available(image: str) -> bool:
        cur = await client.get(DEPLOYMENTS, "default", "web")
        st = cur.get("status") or {}
        return (
            st.get("observedGeneration", 0) >= cur["metadata"]["generation"]
            and st.get("updatedReplicas") == st.get("availableReplicas") == 3
            and images[-1] == {image}
        )

    await eventually(lambda: available("nginx:1"), kubelet)
    images.clear()
    await set_image(client, "nginx:2")
    await eventually(lambda: available("nginx:2"), kubelet)
    assert all(len(i) <= 1 for i in images), images


async def test_paused_deployment_does_not_roll_out(
    cluster: tuple[InProcessClient, DeploymentController],
) -> None:
    client, _ = cluster
    seen: list[int] = []
    kubelet = make_kubelet(client, seen)
    d = deployment(2, paused=True)
    d["metadata"] = {"name": "web", "namespace": "default"}
    d.pop("status")
    await client.create(DEPLOYMENTS, "default", d)

    async def paused() -> bool:
        st = (await client.get(DEPLOYMENTS, "default", "web")).get("status") or {}
        return any(c["reason"] == "DeploymentPaused" for c in st.get("conditions", []))

    await eventually(paused, kubelet)
    assert (await client.list(REPLICASETS, "default"))["items"] == []
    await client.patch(DEPLOYMENTS, "default", "web", Patch("merge", {"spec": {"paused": False}}))

    async def done() -> bool:
        st = (await client.get(DEPLOYMENTS, "default", "web")).get("status") or {}
        reasons = {c["type"]: c["reason"] for c in st.get("conditions", [])}
        return st.get("availableReplicas") == 2 and reasons.get("Progressing") == "NewReplicaSetAvailable"

    await eventually(done, kubelet)


async def test_progress_deadline_exceeded(cluster: tuple[InProcessClient, DeploymentController]) -> None:
    client, dc = cluster
    seen: list[int] = []
    kubelet = make_kubelet(client, seen, ready=False)  # pods never become ready
    d = deployment(2)
    d["metadata"] = {"name": "web", "namespace": "default"}
    d.pop("status")
    await client.create(DEPLOYMENTS, "default", d)

    async def reason(want: str) -> bool:
        st = (await client.get(DEPLOYMENTS, "default", "web")).get("status") or {}
        return st.get("replicas") == 2 and any(
            c["type"] == "Progressing" and c["reason"] == want for c in st.get("conditions", [])
        )

    await eventually(lambda: reason("ReplicaSetUpdated"), kubelet)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=700)
    dc.now = lambda: later  # the controller's clock jumps past progressDeadlineSeconds (600)
    dc.queue.add("default/web")
    await eventually(lambda: reason("ProgressDeadlineExceeded"), kubelet)
    st = (await client.get(DEPLOYMENTS, "default", "web"))["status"]
    cond = next(c for c in st["conditions"] if c["type"] == "Progressing")
    assert cond["status"] == "False"
    assert cond["message"].endswith("has timed out progressing.")


async def test_hash_collision_bumps_collision_count(
    cluster: tuple[InProcessClient, DeploymentController],
) -> None:
    client, _ = cluster
    seen: list[int] = []
    kubelet = make_kubelet(client, seen)
    d = deployment(1, paused=True)  # paused: no ReplicaSet is created until the squatter is in place
    d["metadata"] = {"name": "web", "namespace": "default"}
    d.pop("status")
    created = await client.create(DEPLOYMENTS, "default", d)
    # Someone else's ReplicaSet already holds the name the (defaulted) template hashes to.
    taken = f"web-{compute_hash(created['spec']['template'], None)}"
    squatter = {
        "metadata": {"name": taken, "namespace": "default"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"other": "x"}},
            "template": {"metadata": {"labels": {"other": "x"}}, "spec": TEMPLATE["spec"]},
        },
    }
    await client.create(REPLICASETS, "default", squatter)
    await client.patch(DEPLOYMENTS, "default", "web", Patch("merge", {"spec": {"paused": False}}))

    async def settled() -> bool:
        st = (await client.get(DEPLOYMENTS, "default", "web")).get("status") or {}
        return st.get("availableReplicas") == 1

    await eventually(settled, kubelet)
    cur = await client.get(DEPLOYMENTS, "default", "web")
    owned = [
        r
        for r in (await client.list(REPLICASETS, "default"))["items"]
        if (r["metadata"].get("ownerReferences") or [{}])[0].get("uid") == cur["metadata"]["uid"]
    ]
    (rs,) = owned
    assert cur["status"]["collisionCount"] == 1
    assert rs["metadata"]["name"] == f"web-{compute_hash(cur['spec']['template'], 1)}" != taken
