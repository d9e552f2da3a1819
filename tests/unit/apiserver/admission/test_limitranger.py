"""LimitRanger admission (plugin/pkg/admission/limitranger): defaults, bounds and upstream's messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skiff.api import errors
from skiff.api.meta import Obj
from skiff.apiserver.admission.limitranger import ANNOTATION, apply_defaults, claim_violations, pod_violations
from skiff.apiserver.registry.generic import WriteOptions
from skiff.apiserver.server import ControlPlane
from skiff.testing import start_control_plane


def lr(*items: dict[str, Any]) -> Obj:
    return {"metadata": {"name": "limits"}, "spec": {"limits": list(items)}}


def pod(*containers: dict[str, Any], init: tuple[dict[str, Any], ...] = ()) -> Obj:
    spec: dict[str, Any] = {"containers": list(containers)}
    if init:
        spec["initContainers"] = list(init)
    return {"metadata": {"name": "p"}, "spec": spec}


def c(
    name: str = "app", requests: dict[str, str] | None = None, limits: dict[str, str] | None = None
) -> dict[str, Any]:
    res: dict[str, Any] = {}
    if requests is not None:
        res["requests"] = requests
    if limits is not None:
        res["limits"] = limits
    out: dict[str, Any] = {"name": name, "image": "nginx"}
    if res:
        out["resources"] = res
    return out


CONTAINER_DEFAULTS = {
    "type": "Container",
    "default": {"cpu": "500m", "memory": "256Mi"},
    "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
}


@pytest.mark.parametrize(
    ("limit_range", "p", "resources", "note"),
    [
        pytest.param(
            lr(CONTAINER_DEFAULTS),
            pod(c()),
            [{"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}],
            "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app",
            id="all-defaults",
        ),
        pytest.param(
            lr(CONTAINER_DEFAULTS),
            pod(c(requests={"cpu": "1"}, limits={"cpu": "2"})),
            [{"limits": {"cpu": "2", "memory": "256Mi"}, "requests": {"cpu": "1", "memory": "128Mi"}}],
            "LimitRanger plugin set: memory request for container app; memory limit for container app",
            id="only-missing-resources",
        ),
        pytest.param(
            lr(CONTAINER_DEFAULTS),
            pod(
                c(),
                init=(
                    c("setup", requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"}),
                ),
            ),
            [{"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}],
            "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app",
            id="init-container-complete",
        ),
        pytest.param(
            lr(CONTAINER_DEFAULTS),
            pod(c(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"})),
            [{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}],
            None,
            id="nothing-missing-no-annotation",
        ),
        pytest.param(
            lr({"type": "Pod", "max": {"cpu": "2"}}), pod(c()), [None], None, id="pod-items-set-nothing"
        ),
    ],
)
def test_apply_defaults(limit_range: Obj, p: Obj, resources: list[Any], note: str | None) -> None:
    changed = apply_defaults(p, limit_range)
    assert [x.get("resources") for x in p["spec"]["containers"]] == resources
    assert changed == (note is not None)
    assert (p["metadata"].get("annotations") or {}).get(ANNOTATION) == note


def test_init_containers_are_defaulted_and_named_as_such() -> None:
    p = pod(
        c(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"}), init=(c("setup"),)
    )
    apply_defaults(p, lr(CONTAINER_DEFAULTS))
    assert p["spec"]["initContainers"][0]["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    assert p["metadata"]["annotations"][ANNOTATION] == (
        "LimitRanger plugin set: cpu, memory request for init container setup; "
        "cpu, memory limit for init container setup"
    )


@pytest.mark.parametrize(
    ("item", "p", "expected"),
    [
        pytest.param(
            {"type": "Container", "max": {"cpu": "1"}},
            pod(c(requests={"cpu": "1"}, limits={"cpu": "2"})),
            ["maximum cpu usage per Container is 1, but limit is 2"],
            id="container-max-limit",
        ),
        pytest.param(
            {"type": "Container", "max": {"cpu": "1"}},
            pod(c(requests={"cpu": "500m"})),
            ["maximum cpu usage per Container is 1.  No limit is specified"],
            id="container-max-no-limit",
        ),
        pytest.param(
            {"type": "Container", "min": {"memory": "64Mi"}},
            pod(c(requests={"memory": "32Mi"})),
            ["minimum memory usage per Container is 64Mi, but request is 32Mi"],
            id="container-min-request",
        ),
        pytest.param(
            {"type": "Container", "min": {"cpu": "100m"}},
            pod(c(limits={"memory": "1Gi"})),
            ["minimum cpu usage per Container is 100m.  No request is specified"],
            id="container-min-missing",
        ),
        pytest.param(
            {"type": "Container", "min": {"cpu": "100m"}},
            pod(c(requests={"cpu": "200m"}, limits={"cpu": "50m"})),
            ["minimum cpu usage per Container is 100m, but limit is 50m"],
            id="container-min-limit",
        ),
        pytest.param(
            {"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}},
            pod(c(requests={"cpu": "250m"}, limits={"cpu": "1"})),
            ["cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000"],
            id="ratio-exceeded",
        ),
        pytest.param(
            {"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}},
            pod(c(limits={"memory": "1Gi"})),
            [
                "cpu max limit to request ratio per Container is 2, but no request is specified or request is 0"
            ],
            id="ratio-no-request",
        ),
        pytest.param(
            {"type": "Container", "maxLimitRequestRatio": {"cpu": "4"}},
            pod(c(requests={"cpu": "250m"}, limits={"cpu": "1"})),
            [],
            id="ratio-at-bound",
        ),
        pytest.param(
            {"type": "Pod", "max": {"cpu": "1"}},
            pod(
                c("a", requests={"cpu": "600m"}, limits={"cpu": "600m"}),
                c("b", requests={"cpu": "600m"}, limits={"cpu": "600m"}),
            ),
            ["maximum cpu usage per Pod is 1, but limit is 1200m"],
            id="pod-max-over-sum",
        ),
        pytest.param(
            {"type": "Pod", "max": {"cpu": "1"}},
            pod(
                c("a", requests={"cpu": "400m"}, limits={"cpu": "400m"}),
                init=(c("i", requests={"cpu": "900m"}, limits={"cpu": "900m"}),),
            ),
            [],
            id="pod-init-container-is-max-not-sum",
        ),
        pytest.param(
            {"type": "Container", "max": {"cpu": "1", "memory": "1Gi"}},
            pod(c(requests={"cpu": "2", "memory": "2Gi"}, limits={"cpu": "2", "memory": "2Gi"})),
            [
                "maximum cpu usage per Container is 1, but limit is 2",
                "maximum memory usage per Container is 1Gi, but limit is 2Gi",
            ],
            id="every-violation",
        ),
    ],
)
def test_pod_violations(item: dict[str, Any], p: Obj, expected: list[str]) -> None:
    assert pod_violations(lr(item), p) == expected


@pytest.mark.parametrize(
    ("item", "requests", "expected"),
    [
        pytest.param(
            {"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}},
            {"storage": "5Gi"},
            ["maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi"],
            id="max",
        ),
        pytest.param(
            {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}},
            {"storage": "500Mi"},
            ["minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"],
            id="min",
        ),
        pytest.param(
            {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "2Gi"}},
            {"storage": "1Gi"},
            [],
            id="within",
        ),
        pytest.param(
            {"type": "Container", "max": {"cpu": "1"}}, {"storage": "5Gi"}, [], id="other-types-ignored"
        ),
    ],
)
def test_claim_violations(item: dict[str, Any], requests: dict[str, str], expected: list[str]) -> None:
    pvc = {"metadata": {"name": "data"}, "spec": {"resources": {"requests": requests}}}
    assert claim_violations(lr(item), pvc) == expected


# --- through the store: the plugin in the real admission chain ------------------------------------------


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    cp = await start_control_plane(tmp_path)
    try:
        yield cp
    finally:
        await cp.store.close()


async def create(plane: ControlPlane, plural: str, obj: Obj, dry_run: bool = False) -> Obj:
    return await plane.registries[("", plural)].create("default", obj, WriteOptions(dry_run=dry_run))


async def test_pod_create_gets_defaults_and_qos_class_follows(plane: ControlPlane) -> None:
    await create(plane, "limitranges", lr(CONTAINER_DEFAULTS))
    created = await create(plane, "pods", pod(c()))
    assert created["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "256Mi"},
        "requests": {"cpu": "100m", "memory": "128Mi"},
    }
    assert created["metadata"]["annotations"][ANNOTATION].startswith(
        "LimitRanger plugin set: cpu, memory request"
    )
    assert created["status"]["qosClass"] == "Burstable"  # BestEffort before the defaults
    stored = await plane.registries[("", "pods")].get("default", "p")
    assert stored["status"]["qosClass"] == "Burstable"


async def test_defaults_equal_to_limits_make_a_guaranteed_pod(plane: ControlPlane) -> None:
    await create(plane, "limitranges", lr({"type": "Container", "default": {"cpu": "1", "memory": "1Gi"}}))
    created = await create(plane, "pods", pod(c()))
    assert created["status"]["qosClass"] == "Guaranteed"


async def test_pod_over_max_is_forbidden(plane: ControlPlane) -> None:
    await create(plane, "limitranges", lr({"type": "Container", "max": {"cpu": "1"}}))
    with pytest.raises(errors.ApiError) as e:
        await create(plane, "pods", pod(c(limits={"cpu": "2"})))
    assert (e.value.code, e.value.reason) == (403, "Forbidden")
    assert e.value.message == 'pods "p" is forbidden: maximum cpu usage per Container is 1, but limit is 2'


async def test_violations_of_several_limit_ranges_are_aggregated(plane: ControlPlane) -> None:
    await create(plane, "limitranges", lr({"type": "Container", "max": {"cpu": "1"}}))
    second = lr({"type": "Container", "max": {"memory": "1Gi"}})
    second["metadata"]["name"] = "memory"
    await create(plane, "limitranges", second)
    with pytest.raises(errors.ApiError) as e:
        await create(plane, "pods", pod(c(limits={"cpu": "2", "memory": "2Gi"})))
    assert e.value.message == (
        'pods "p" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, '
        "maximum memory usage per Container is 1Gi, but limit is 2Gi]"
    )


async def test_claim_over_max_is_forbidden(plane: ControlPlane) -> None:
    await create(plane, "limitranges", lr({"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}}))
    claim = {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
    }
    with pytest.raises(errors.ApiError) as e:
        await create(plane, "persistentvolumeclaims", claim)
    assert e.value.message == (
        'persistentvolumeclaims "data" is forbidden: maximum storage usage per PersistentVolumeClaim is 1Gi, '
        "but request is 2Gi"
    )


async def test_namespace_without_limit_ranges_is_untouched(plane: ControlPlane) -> None:
    created = await create(plane, "pods", pod(c()))
    assert "resources" not in created["spec"]["containers"][0]
    assert ANNOTATION not in (created["metadata"].get("annotations") or {})
    assert created["status"]["qosClass"] == "BestEffort"
