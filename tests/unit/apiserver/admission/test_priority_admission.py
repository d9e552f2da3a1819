"""Priority admission (plugin/pkg/admission/priority): pod priority from PriorityClasses, one globalDefault."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skiff.api import errors
from skiff.api.meta import Obj
from skiff.apiserver.admission.priority import default_class, resolve
from skiff.apiserver.registry.generic import ListOptions, WriteOptions
from skiff.apiserver.server import ControlPlane
from skiff.testing import start_control_plane


def pc(name: str, value: int, default: bool = False, policy: str | None = None) -> Obj:
    out: Obj = {"metadata": {"name": name}, "value": value}
    if default:
        out["globalDefault"] = True
    if policy:
        out["preemptionPolicy"] = policy
    return out


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        pytest.param([], None, id="none"),
        pytest.param([pc("a", 10), pc("b", 20)], None, id="no-default"),
        pytest.param([pc("a", 10), pc("b", 20, default=True)], "b", id="one-default"),
        pytest.param([pc("a", 30, default=True), pc("b", 20, default=True)], "b", id="race-lowest-wins"),
    ],
)
def test_default_class(classes: list[Obj], expected: str | None) -> None:
    got = default_class(classes)
    assert (got["metadata"]["name"] if got else None) == expected


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        pytest.param(None, (0, "PreemptLowerPriority", None), id="no-class"),
        pytest.param(pc("high", 1000, policy="Never"), (1000, "Never", "high"), id="class-with-policy"),
        pytest.param(pc("high", 1000), (1000, None, "high"), id="class-without-policy"),
    ],
)
def test_resolve(cls: Obj | None, expected: tuple[int, str | None, str | None]) -> None:
    assert resolve(cls) == expected


# --- through the store ------------------------------------------------------------------------------------


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    cp = await start_control_plane(tmp_path)
    try:
        yield cp
    finally:
        await cp.store.close()


async def add_class(plane: ControlPlane, obj: Obj) -> Obj:
    return await plane.registries[("scheduling.k8s.io", "priorityclasses")].create("", obj, WriteOptions())


async def create_pod(plane: ControlPlane, name: str = "p", **spec: Any) -> Obj:
    body = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}
    return await plane.registries[("", "pods")].create("default", body, WriteOptions())


async def test_no_class_and_no_default_is_priority_zero(plane: ControlPlane) -> None:
    spec = (await create_pod(plane))["spec"]
    assert (spec["priority"], spec["preemptionPolicy"]) == (0, "PreemptLowerPriority")
    assert "priorityClassName" not in spec


async def test_named_class_sets_priority_and_policy(plane: ControlPlane) -> None:
    await add_class(plane, pc("batch", 100, policy="Never"))
    spec = (await create_pod(plane, priorityClassName="batch"))["spec"]
    assert (spec["priority"], spec["preemptionPolicy"]) == (100, "Never")


async def test_global_default_applies_and_is_recorded(plane: ControlPlane) -> None:
    await add_class(plane, pc("standard", 500, default=True))
    spec = (await create_pod(plane))["spec"]
    assert (spec["priorityClassName"], spec["priority"]) == ("standard", 500)


async def test_unknown_class_is_forbidden(plane: ControlPlane) -> None:
    with pytest.raises(errors.ApiError) as e:
        await create_pod(plane, "x", priorityClassName="foo")
    assert (e.value.code, e.value.message) == (
        403,
        'pods "x" is forbidden: no PriorityClass with name foo was found',
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("system-node-critical", 2000001000, id="node"),
        pytest.param("system-cluster-critical", 2000000000, id="cluster"),
    ],
)
async def test_system_classes_resolve_even_when_not_stored(
    plane: ControlPlane, name: str, value: int
) -> None:
    reg = plane.registries[("scheduling.k8s.io", "priorityclasses")]
    await reg.store.delete(reg._key("", name))  # as on a store seeded before the classes were
    spec = (await create_pod(plane, priorityClassName=name))["spec"]
    assert spec["priority"] == value


async def test_system_classes_are_seeded(plane: ControlPlane) -> None:
    items = (await plane.registries[("scheduling.k8s.io", "priorityclasses")].list("", ListOptions()))[
        "items"
    ]
    assert {i["metadata"]["name"]: i["value"] for i in items} == {
        "system-cluster-critical": 2000000000,
        "system-node-critical": 2000001000,
    }


async def test_priority_differing_from_the_class_is_forbidden(plane: ControlPlane) -> None:
    await add_class(plane, pc("batch", 100))
    with pytest.raises(errors.ApiError) as e:
        await create_pod(plane, priorityClassName="batch", priority=7)
    assert e.value.message == (
        'pods "p" is forbidden: the integer value of priority (7) must not be provided in pod spec; '
        "priority admission controller computed 100 from the given PriorityClass name"
    )
    assert (await create_pod(plane, "same", priorityClassName="batch", priority=100))["spec"][
        "priority"
    ] == 100


async def test_preemption_policy_differing_from_the_class_is_forbidden(plane: ControlPlane) -> None:
    await add_class(plane, pc("batch", 100, policy="Never"))
    with pytest.raises(errors.ApiError) as e:
        await create_pod(plane, priorityClassName="batch", preemptionPolicy="PreemptLowerPriority")
    assert e.value.message == (
        'pods "p" is forbidden: the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided '
        "in pod spec; priority admission controller computed Never from the given PriorityClass name"
    )


async def test_update_keeps_the_priority(plane: ControlPlane) -> None:
    await add_class(plane, pc("batch", 100))
    await create_pod(plane, priorityClassName="batch")

    def relabel(p: Obj) -> Obj:
        p["metadata"]["labels"] = {"x": "y"}
        del p["spec"]["priority"]
        return p

    updated = await plane.registries[("", "pods")].guaranteed_update("default", "p", relabel, WriteOptions())
    assert updated["spec"]["priority"] == 100 and updated["metadata"]["labels"] == {"x": "y"}


async def test_only_one_global_default(plane: ControlPlane) -> None:
    await add_class(plane, pc("first", 10, default=True))
    with pytest.raises(errors.ApiError) as e:
        await add_class(plane, pc("second", 20, default=True))
    assert (e.value.code, e.value.message) == (
        403,
        'priorityclasses.scheduling.k8s.io "second" is forbidden: PriorityClass first is already marked as '
        "default. Only one default can exist",
    )
    await add_class(plane, pc("third", 30))
    reg = plane.registries[("scheduling.k8s.io", "priorityclasses")]

    def make_default(o: Obj) -> Obj:
        o["globalDefault"] = True
        return o

    with pytest.raises(errors.ApiError) as e:
        await reg.guaranteed_update("", "third", make_default, WriteOptions())
    assert "PriorityClass first is already marked as default" in e.value.message
    # The default itself may be updated (it stays the only one).

    def describe(o: Obj) -> Obj:
        o["description"] = "the usual"
        return o

    assert (await reg.guaranteed_update("", "first", describe, WriteOptions()))["globalDefault"] is True
