"""ResourceQuota admission and the shared quota evaluators (pkg/quota/v1, plugin/resourcequota)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from skiff.api import errors
from skiff.api import quota as q
from skiff.api.meta import Obj
from skiff.apiserver.registry.generic import WriteOptions
from skiff.apiserver.server import ControlPlane
from skiff.testing import start_control_plane

# --- quantities -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        pytest.param("1000m", "1", id="whole-cores"),
        pytest.param("1500m", "1500m", id="millis"),
        pytest.param("0.25", "250m", id="fraction"),
        pytest.param("1500", "1500", id="no-integral-k"),
        pytest.param("2000", "2k", id="decimal-k"),
        pytest.param("1024Mi", "1Gi", id="binary-up"),
        pytest.param("1536Mi", "1536Mi", id="binary-keeps"),
        pytest.param("512Ki", "512Ki", id="binary-ki"),
        pytest.param("1G", "1G", id="decimal-G"),
        pytest.param("1e3", "1e3", id="exponent"),
        pytest.param("0", "0", id="zero"),
        pytest.param(3, "3", id="integer"),
    ],
)
def test_canonical_quantities(raw: Any, text: str) -> None:
    assert str(q.parse(raw)) == text


def test_sum_takes_format_of_first_non_zero() -> None:
    total = q.add(q.add({"m": q.ZERO}, {"m": q.parse("128Mi")}), {"m": q.parse("128Mi")})
    assert str(total["m"]) == "256Mi"
    assert str(q.ZERO + q.parse("500m") + q.parse("1")) == "1500m"


# --- evaluators -----------------------------------------------------------------------------------------


def pod(name: str = "p", *containers: dict[str, Any], phase: str = "", **spec: Any) -> Obj:
    out: Obj = {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": list(containers) or [ctr()], **spec},
    }
    if phase:
        out["status"] = {"phase": phase}
    return out


def ctr(
    name: str = "app", requests: dict[str, str] | None = None, limits: dict[str, str] | None = None
) -> dict[str, Any]:
    res: dict[str, Any] = {}
    if requests:
        res["requests"] = requests
    if limits:
        res["limits"] = limits
    return {"name": name, "image": "nginx", **({"resources": res} if res else {})}


def text(rl: dict[str, q.Quantity]) -> dict[str, str]:
    return {k: str(v) for k, v in rl.items()}


@pytest.mark.parametrize(
    ("obj", "group", "plural", "usage"),
    [
        pytest.param(
            pod("p", ctr(requests={"cpu": "250m", "memory": "64Mi"}, limits={"cpu": "500m"})),
            "",
            "pods",
            {
                "count/pods": "1",
                "pods": "1",
                "cpu": "250m",
                "requests.cpu": "250m",
                "limits.cpu": "500m",
                "memory": "64Mi",
                "requests.memory": "64Mi",
            },
            id="pod-compute",
        ),
        pytest.param(
            pod("p", ctr("a", requests={"cpu": "1"}), ctr("b", requests={"cpu": "500m"})),
            "",
            "pods",
            {"count/pods": "1", "pods": "1", "cpu": "1500m", "requests.cpu": "1500m"},
            id="pod-sum",
        ),
        pytest.param(
            pod("p", ctr(requests={"cpu": "1"}), initContainers=[ctr("i", requests={"cpu": "2"})]),
            "",
            "pods",
            {"count/pods": "1", "pods": "1", "cpu": "2", "requests.cpu": "2"},
            id="pod-init-max",
        ),
        pytest.param(
            pod("p", ctr(requests={"example.com/gpu": "2", "hugepages-2Mi": "4Mi"})),
            "",
            "pods",
            {
                "count/pods": "1",
                "pods": "1",
                "requests.example.com/gpu": "2",
                "hugepages-2Mi": "4Mi",
                "requests.hugepages-2Mi": "4Mi",
            },
            id="pod-extended",
        ),
        pytest.param(
            pod("p", ctr(requests={"cpu": "1"}), phase="Succeeded"),
            "",
            "pods",
            {"count/pods": "1"},
            id="pod-terminal-only-object-count",
        ),
        pytest.param(
            {"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}},
            "",
            "services",
            {
                "count/services": "1",
                "services": "1",
                "services.loadbalancers": "0",
                "services.nodeports": "0",
            },
            id="service-clusterip",
        ),
        pytest.param(
            {"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}},
            "",
            "services",
            {
                "count/services": "1",
                "services": "1",
                "services.loadbalancers": "0",
                "services.nodeports": "2",
            },
            id="service-nodeport",
        ),
        pytest.param(
            {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
            "",
            "services",
            {
                "count/services": "1",
                "services": "1",
                "services.loadbalancers": "1",
                "services.nodeports": "1",
            },
            id="service-loadbalancer",
        ),
        pytest.param(
            {"spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}}},
            "",
            "persistentvolumeclaims",
            {
                "persistentvolumeclaims": "1",
                "count/persistentvolumeclaims": "1",
                "requests.storage": "1Gi",
                "fast.storageclass.storage.k8s.io/persistentvolumeclaims": "1",
                "fast.storageclass.storage.k8s.io/requests.storage": "1Gi",
            },
            id="claim",
        ),
        pytest.param(
            {}, "", "configmaps", {"count/configmaps": "1", "configmaps": "1"}, id="configmap-alias"
        ),
        pytest.param({}, "", "secrets", {"count/secrets": "1", "secrets": "1"}, id="secret-alias"),
        pytest.param({}, "apps", "deployments", {"count/deployments.apps": "1"}, id="generic-count"),
        pytest.param({}, "", "serviceaccounts", {"count/serviceaccounts": "1"}, id="core-generic-count"),
    ],
)
def test_usage(obj: Obj, group: str, plural: str, usage: dict[str, str]) -> None:
    assert text(q.evaluator_for(group, plural).usage(obj)) == usage


@pytest.mark.parametrize(
    ("selector", "p", "matches"),
    [
        pytest.param({"scopeName": "BestEffort", "operator": "Exists"}, pod(), True, id="besteffort"),
        pytest.param(
            {"scopeName": "BestEffort", "operator": "Exists"},
            pod("p", ctr(requests={"cpu": "1"})),
            False,
            id="besteffort-no",
        ),
        pytest.param(
            {"scopeName": "NotBestEffort", "operator": "Exists"},
            pod("p", ctr(limits={"memory": "1Gi"})),
            True,
            id="notbesteffort",
        ),
        pytest.param(
            {"scopeName": "Terminating", "operator": "Exists"},
            pod(activeDeadlineSeconds=30),
            True,
            id="terminating",
        ),
        pytest.param(
            {"scopeName": "NotTerminating", "operator": "Exists"},
            pod(activeDeadlineSeconds=30),
            False,
            id="notterminating-no",
        ),
        pytest.param(
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]},
            pod(priorityClassName="high"),
            True,
            id="priority-in",
        ),
        pytest.param(
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]},
            pod(priorityClassName="low"),
            False,
            id="priority-in-no",
        ),
        pytest.param(
            {"scopeName": "PriorityClass", "operator": "NotIn", "values": ["high"]},
            pod(),
            True,
            id="priority-notin-without-class",
        ),
        pytest.param(
            {"scopeName": "PriorityClass", "operator": "Exists"}, pod(), False, id="priority-exists-no"
        ),
        pytest.param(
            {"scopeName": "PriorityClass", "operator": "DoesNotExist"},
            pod(),
            True,
            id="priority-doesnotexist",
        ),
    ],
)
def test_pod_scopes(selector: dict[str, Any], p: Obj, matches: bool) -> None:
    assert q.PodEvaluator().matches_scope(selector, p) is matches


def rq(
    name: str = "q",
    hard: dict[str, str] | None = None,
    used: dict[str, str] | None = None,
    scopes: list[str] | None = None,
    rv: str = "1",
) -> Obj:
    hard = hard if hard is not None else {"pods": "2"}
    status: dict[str, Any] = {}
    if hard:
        status["hard"] = hard
    if used is not None:
        status["used"] = used
    spec: dict[str, Any] = {"hard": hard}
    if scopes:
        spec["scopes"] = scopes
    return {
        "metadata": {"name": name, "namespace": "default", "resourceVersion": rv},
        "spec": spec,
        "status": status,
    }


@pytest.mark.parametrize(
    ("quotas", "p", "result"),
    [
        pytest.param([rq(used={"pods": "1"})], pod(), [(0, {"pods": "2"})], id="charged"),
        pytest.param(
            [rq(used={"pods": "2"})],
            pod(),
            "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2",
            id="exceeded",
        ),
        pytest.param(
            [rq(hard={"requests.cpu": "2"}, used={"requests.cpu": "1"})],
            pod("p", ctr(requests={"cpu": "2"})),
            "exceeded quota: q, requested: requests.cpu=2, used: requests.cpu=1, limited: requests.cpu=2",
            id="exceeded-cpu",
        ),
        pytest.param(
            [
                rq(
                    hard={"requests.memory": "1Gi", "pods": "5"},
                    used={"requests.memory": "512Mi", "pods": "0"},
                )
            ],
            pod("p", ctr(requests={"memory": "256Mi"})),
            [(0, {"pods": "1", "requests.memory": "768Mi"})],
            id="memory-sum",
        ),
        pytest.param(
            [
                rq(
                    hard={"limits.cpu": "2", "limits.memory": "1Gi"},
                    used={"limits.cpu": "0", "limits.memory": "0"},
                )
            ],
            pod("p", ctr("a", limits={"memory": "1Gi"}), ctr("b")),
            "failed quota: q: must specify limits.cpu for: a,b; limits.memory for: b",
            id="must-specify",
        ),
        pytest.param(
            [rq(hard={"pods": "2", "requests.cpu": "1"}, used={"pods": "0"})],
            pod("p", ctr(requests={"cpu": "1"})),
            "status unknown for quota: q, resources: pods,requests.cpu",
            id="status-unknown",
        ),
        pytest.param([rq(hard={})], pod(), [], id="not-synced-yet-matches-nothing"),
        pytest.param(
            [rq(used={"pods": "2"}, scopes=["BestEffort"])],
            pod("p", ctr(requests={"cpu": "1"})),
            [],
            id="scope-not-matching",
        ),
        pytest.param(
            [rq(used={"pods": "2"}, scopes=["NotBestEffort"])],
            pod("p", ctr(requests={"cpu": "1"})),
            "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2",
            id="scope-matching",
        ),
        pytest.param([rq(hard={"services": "1"}, used={"services": "1"})], pod(), [], id="other-resources"),
        pytest.param(
            [rq("a", used={"pods": "0"}), rq("b", hard={"count/pods": "3"}, used={"count/pods": "3"})],
            pod(),
            "exceeded quota: b, requested: count/pods=1, used: count/pods=3, limited: count/pods=3",
            id="every-quota-checked",
        ),
    ],
)
def test_check_request_pod_create(quotas: list[Obj], p: Obj, result: Any) -> None:
    ev = q.evaluator_for("", "pods")
    if isinstance(result, str):
        with pytest.raises(q.QuotaRefused) as e:
            q.check_request(quotas, ev, q.CREATE, p, None)
        assert str(e.value) == result
    else:
        assert q.check_request(quotas, ev, q.CREATE, p, None) == result


@pytest.mark.parametrize(
    ("old_type", "new_type", "used", "result"),
    [
        pytest.param(
            "ClusterIP",
            "LoadBalancer",
            {"services": "1", "services.loadbalancers": "0"},
            [(0, {"services": "1", "services.loadbalancers": "1"})],
            id="becomes-loadbalancer",
        ),
        pytest.param(
            "ClusterIP",
            "LoadBalancer",
            {"services": "1", "services.loadbalancers": "1"},
            "exceeded quota: q, requested: services.loadbalancers=1, used: services.loadbalancers=1, "
            "limited: services.loadbalancers=1",
            id="loadbalancer-over",
        ),
        pytest.param(
            "LoadBalancer",
            "ClusterIP",
            {"services": "1", "services.loadbalancers": "1"},
            [],
            id="release-is-left-to-the-controller",
        ),
    ],
)
def test_check_request_service_update(
    old_type: str, new_type: str, used: dict[str, str], result: Any
) -> None:
    quota = rq(hard={"services": "2", "services.loadbalancers": "1"}, used=used)
    old = {"metadata": {"resourceVersion": "5"}, "spec": {"type": old_type, "ports": [{"port": 80}]}}
    new = {"metadata": {"resourceVersion": "5"}, "spec": {"type": new_type, "ports": [{"port": 80}]}}
    ev = q.evaluator_for("", "services")
    if isinstance(result, str):
        with pytest.raises(q.QuotaRefused) as e:
            q.check_request([quota], ev, q.UPDATE, new, old)
        assert str(e.value) == result
    else:
        assert q.check_request([quota], ev, q.UPDATE, new, old) == result


def test_pod_updates_are_not_charged() -> None:
    quota = rq(used={"pods": "2"})
    assert q.check_request([quota], q.evaluator_for("", "pods"), q.UPDATE, pod(), pod()) == []


# --- through the store ------------------------------------------------------------------------------------


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    cp = await start_control_plane(tmp_path)
    try:
        yield cp
    finally:
        await cp.store.close()


async def make_quota(plane: ControlPlane, hard: dict[str, str], used: dict[str, str], **spec: Any) -> Obj:
    """A quota as the controller leaves it after a sync (status.hard and status.used set)."""
    reg = plane.registries[("", "resourcequotas")]
    await reg.create("default", {"metadata": {"name": "q"}, "spec": {"hard": hard, **spec}}, WriteOptions())

    def sync(o: Obj) -> Obj:
        o["status"] = {"hard": hard, "used": used}
        return o

    return await reg.guaranteed_update("default", "q", sync, WriteOptions(subresource="status"))


async def used(plane: ControlPlane) -> dict[str, str]:
    quota = await plane.registries[("", "resourcequotas")].get("default", "q")
    return dict(quota["status"]["used"])


async def create_pod(plane: ControlPlane, name: str, cpu: str = "", dry_run: bool = False) -> Obj:
    c: dict[str, Any] = {"name": "app", "image": "nginx"}
    if cpu:
        c["resources"] = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}
    return await plane.registries[("", "pods")].create(
        "default", {"metadata": {"name": name}, "spec": {"containers": [c]}}, WriteOptions(dry_run=dry_run)
    )


async def test_create_charges_quota_before_the_write(plane: ControlPlane) -> None:
    await make_quota(plane, {"pods": "2", "requests.cpu": "1"}, {"pods": "0", "requests.cpu": "0"})
    await create_pod(plane, "a", "600m")
    assert await used(plane) == {"pods": "1", "requests.cpu": "600m"}
    with pytest.raises(errors.ApiError) as e:
        await create_pod(plane, "b", "600m")
    assert e.value.code == 403
    assert e.value.message == (
        'pods "b" is forbidden: exceeded quota: q, requested: requests.cpu=600m, '
        "used: requests.cpu=600m, limited: requests.cpu=1"
    )
    assert await plane.registries[("", "pods")].try_get("default", "b") is None
    assert await used(plane) == {"pods": "1", "requests.cpu": "600m"}


async def test_dry_run_is_checked_but_not_charged(plane: ControlPlane) -> None:
    await make_quota(plane, {"pods": "1"}, {"pods": "0"})
    await create_pod(plane, "a", dry_run=True)
    assert await used(plane) == {"pods": "0"}
    await create_pod(plane, "a")
    with pytest.raises(errors.ApiError) as e:
        await create_pod(plane, "b", dry_run=True)
    assert "exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1" in e.value.message


async def test_missing_limits_fail_the_quota(plane: ControlPlane) -> None:
    await make_quota(plane, {"limits.cpu": "2"}, {"limits.cpu": "0"})
    with pytest.raises(errors.ApiError) as e:
        await create_pod(plane, "a")
    assert e.value.message == 'pods "a" is forbidden: failed quota: q: must specify limits.cpu for: app'


async def test_concurrent_creates_against_a_quota_of_one(plane: ControlPlane) -> None:
    await make_quota(plane, {"pods": "1"}, {"pods": "0"})
    results = await asyncio.gather(*(create_pod(plane, f"p{i}") for i in range(4)), return_exceptions=True)
    created = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, errors.ApiError)]
    assert len(created) == 1 and len(refused) == 3
    assert all(r.code == 403 and "exceeded quota: q" in r.message for r in refused)
    assert await used(plane) == {"pods": "1"}


async def test_object_count_of_other_resources(plane: ControlPlane) -> None:
    await make_quota(
        plane, {"configmaps": "1", "count/secrets": "5"}, {"configmaps": "0", "count/secrets": "0"}
    )
    cms = plane.registries[("", "configmaps")]
    await cms.create("default", {"metadata": {"name": "one"}}, WriteOptions())
    with pytest.raises(errors.ApiError) as e:
        await cms.create("default", {"metadata": {"name": "two"}}, WriteOptions())
    assert e.value.message == (
        'configmaps "two" is forbidden: exceeded quota: q, requested: configmaps=1, '
        "used: configmaps=1, limited: configmaps=1"
    )
    assert await used(plane) == {"configmaps": "1", "count/secrets": "0"}


async def test_quota_is_charged_with_the_limit_ranger_defaults(plane: ControlPlane) -> None:
    await plane.registries[("", "limitranges")].create(
        "default",
        {"metadata": {"name": "lr"}, "spec": {"limits": [{"type": "Container", "default": {"cpu": "300m"}}]}},
        WriteOptions(),
    )
    await make_quota(plane, {"limits.cpu": "1"}, {"limits.cpu": "0"})
    await create_pod(plane, "a")
    assert await used(plane) == {"limits.cpu": "300m"}


def test_quantity_type_is_exact() -> None:
    assert q.parse("0.1").value + q.parse("0.2").value == Decimal("0.3")
