"""Garbage collector planners (pkg/controller/garbagecollector attemptToDeleteItem & co)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.apiserver.local import LocalBackend
from skiff.client.factory import InformerFactory
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import DeleteOptions
from skiff.controllers.base import ControllerContext
from skiff.controllers.garbagecollector import (
    CONFIGMAPS,
    FOREGROUND,
    NOTHING,
    ORPHAN,
    SECRETS,
    DependentAction,
    GarbageCollector,
    OwnerState,
    classify_owner,
    plan_deleting_owner,
    plan_dependent,
    without_finalizer,
    without_owner_refs,
)
from skiff.testing import eventually, start_control_plane

S, D, W = OwnerState.SOLID, OwnerState.DANGLING, OwnerState.WAITING


def ref(uid: str, *, block: bool = False, name: str = "o") -> Obj:
    r: Obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": uid, "controller": True}
    if block:
        r["blockOwnerDeletion"] = True
    return r


def obj(
    name: str = "d",
    *,
    refs: list[Obj] | None = None,
    uid: str = "",
    deleting: bool = False,
    finalizers: list[str] | None = None,
) -> Obj:
    md: Obj = {"name": name, "namespace": "ns", "uid": uid or f"uid-{name}", "resourceVersion": "7"}
    if refs:
        md["ownerReferences"] = refs
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if finalizers:
        md["finalizers"] = finalizers
    return {"metadata": md}


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        pytest.param(None, D, id="not-found"),
        pytest.param(obj("o", uid="other"), D, id="recreated-with-other-uid"),
        pytest.param(obj("o", uid="u1"), S, id="exists"),
        pytest.param(obj("o", uid="u1", deleting=True), S, id="deleting-background-still-solid"),
        pytest.param(obj("o", uid="u1", deleting=True, finalizers=[FOREGROUND]), W, id="foreground-waiting"),
        pytest.param(obj("o", uid="u1", finalizers=[FOREGROUND]), S, id="finalizer-without-deletion"),
    ],
)
def test_classify_owner(owner: Obj | None, expected: OwnerState) -> None:
    assert classify_owner(ref("u1"), owner) is expected


@pytest.mark.parametrize(
    ("dependent", "states", "has_dependents", "expected"),
    [
        pytest.param(obj(), {}, False, NOTHING, id="no-owners"),
        pytest.param(obj(refs=[ref("u1")]), {"u1": S}, False, NOTHING, id="owner-exists"),
        pytest.param(
            obj(refs=[ref("u1")]),
            {"u1": D},
            False,
            DependentAction("delete", policy="Background"),
            id="owner-gone-background",
        ),
        pytest.param(obj(refs=[ref("u1")], deleting=True), {"u1": D}, False, NOTHING, id="already-deleting"),
        pytest.param(obj(refs=[ref("u1")]), {}, False, NOTHING, id="unresolvable-owner-counts-as-solid"),
        pytest.param(
            obj(refs=[ref("u1"), ref("u2")]),
            {"u1": D, "u2": S},
            False,
            DependentAction("remove_refs", ("u1",)),
            id="one-owner-left-drop-dangling-ref",
        ),
        pytest.param(
            obj(refs=[ref("u1"), ref("u2")]),
            {"u1": W, "u2": S},
            False,
            DependentAction("remove_refs", ("u1",)),
            id="solid-owner-unblocks-foreground-owner",
        ),
        pytest.param(
            obj(refs=[ref("u1"), ref("u2")]),
            {"u1": D, "u2": D},
            False,
            DependentAction("delete", policy="Background"),
            id="all-owners-gone",
        ),
        pytest.param(
            obj(refs=[ref("u1")]),
            {"u1": W},
            False,
            DependentAction("delete", policy="Background"),
            id="foreground-owner-leaf-dependent",
        ),
        pytest.param(
            obj(refs=[ref("u1")]),
            {"u1": W},
            True,
            DependentAction("delete", policy="Foreground"),
            id="foreground-owner-dependent-with-dependents",
        ),
        pytest.param(
            obj(refs=[ref("u1")], finalizers=[ORPHAN]),
            {"u1": D},
            False,
            DependentAction("delete", policy="Orphan"),
            id="honours-orphan-finalizer",
        ),
        pytest.param(
            obj(refs=[ref("u1")], finalizers=[FOREGROUND]),
            {"u1": D},
            False,
            DependentAction("delete", policy="Foreground"),
            id="honours-foreground-finalizer",
        ),
    ],
)
def test_plan_dependent(
    dependent: Obj, states: dict[str, OwnerState], has_dependents: bool, expected: DependentAction
) -> None:
    assert plan_dependent(dependent, states, has_dependents) == expected


def names(objs: list[Obj]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


@pytest.mark.parametrize(
    ("owner", "dependents", "expected"),
    [
        pytest.param(obj("o", uid="u1"), [obj("a", refs=[ref("u1")])], ([], [], ""), id="not-deleting"),
        pytest.param(
            obj("o", uid="u1", deleting=True),
            [obj("a", refs=[ref("u1")])],
            ([], [], ""),
            id="background-deletion-not-ours",
        ),
        pytest.param(
            obj("o", uid="u1", deleting=True, finalizers=[ORPHAN]),
            [obj("a", refs=[ref("u1")]), obj("b", refs=[ref("u2")])],
            (["a"], [], ORPHAN),
            id="orphan",
        ),
        pytest.param(
            obj("o", uid="u1", deleting=True, finalizers=[ORPHAN]),
            [],
            ([], [], ORPHAN),
            id="orphan-without-dependents",
        ),
        pytest.param(
            obj("o", uid="u1", deleting=True, finalizers=[FOREGROUND]),
            [obj("a", refs=[ref("u1", block=True)]), obj("b", refs=[ref("u1")])],
            ([], ["a", "b"], ""),
            id="foreground-blocked",
        ),
        pytest.param(
            obj("o", uid="u1", deleting=True, finalizers=[FOREGROUND]),
            [obj("a", refs=[ref("u1", block=True)], deleting=True)],
            ([], [], ""),
            id="foreground-waits-for-deleting-blocker",
        ),
        pytest.param(
            obj("o", uid="u1", deleting=True, finalizers=[FOREGROUND]),
            [obj("b", refs=[ref("u1")])],
            ([], ["b"], FOREGROUND),
            id="foreground-only-non-blocking-left",
        ),
        pytest.param(
            obj("o", uid="u1", deleting=True, finalizers=[FOREGROUND]),
            [],
            ([], [], FOREGROUND),
            id="foreground-done",
        ),
    ],
)
def test_plan_deleting_owner(
    owner: Obj, dependents: list[Obj], expected: tuple[list[str], list[str], str]
) -> None:
    action = plan_deleting_owner(owner, dependents)
    assert (names(action.orphan), names(action.examine), action.remove_finalizer) == expected


@pytest.mark.parametrize(
    ("o", "uids", "expected_refs"),
    [
        pytest.param(obj(refs=[ref("u1"), ref("u2")]), ["u1"], [ref("u2")], id="one-of-two"),
        pytest.param(obj(refs=[ref("u1")]), ["u1"], None, id="last-one"),
        pytest.param(obj(refs=[ref("u1")]), ["zz"], [ref("u1")], id="unrelated"),
    ],
)
def test_without_owner_refs(o: Obj, uids: list[str], expected_refs: Any) -> None:
    before = repr(o)
    assert without_owner_refs(o, uids)["metadata"].get("ownerReferences") == expected_refs
    assert repr(o) == before


def test_without_finalizer() -> None:
    o = obj(finalizers=[FOREGROUND, "example.com/x"])
    assert without_finalizer(o, FOREGROUND)["metadata"]["finalizers"] == ["example.com/x"]
    assert o["metadata"]["finalizers"] == [FOREGROUND, "example.com/x"]


# --- integration: the collector over a real ControlPlane (temporary SQLite) through the in-process client ---





@pytest.fixture
async def gc_client(tmp_path: Path) -> AsyncIterator[InProcessClient]:
    plane = await start_control_plane(tmp_path)
    store = plane.store
    client = InProcessClient(LocalBackend(plane))
    factory = InformerFactory(client)
    gc = GarbageCollector(ControllerContext(client, factory, factory.new_queue))
    gc.setup()
    task = asyncio.create_task(gc.run())
    try:
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await factory.stop()
        await client.close()
        await store.close()


def configmap(name: str, *owners: Obj, block: bool = False) -> Obj:
    refs = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": o["metadata"]["name"],
            "uid": o["metadata"]["uid"],
            **({"blockOwnerDeletion": True} if block else {}),
        }
        for o in owners
    ]
    md: Obj = {"name": name}
    if refs:
        md["ownerReferences"] = refs
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {"k": "v"}}


async def exists(client: InProcessClient, name: str) -> Obj | None:
    try:
        return await client.get(CONFIGMAPS, "default", name)
    except ApiError as e:
        if e.code == 404:
            return None
        raise


async def test_deleting_owner_removes_dependents_in_background(gc_client: InProcessClient) -> None:
    c = gc_client
    owner = await c.create(CONFIGMAPS, "default", configmap("owner"))
    child = await c.create(CONFIGMAPS, "default", configmap("child", owner))
    await c.create(CONFIGMAPS, "default", configmap("grandchild", child))
    await c.create(CONFIGMAPS, "default", configmap("unrelated"))
    secret = {
        "metadata": {
            "name": "owned-secret",
            "ownerReferences": configmap("x", owner)["metadata"]["ownerReferences"],
        },
        "stringData": {"k": "v"},
    }
    await c.create(SECRETS, "default", secret)  # another kind: another informer of the owner graph
    assert await c.delete(CONFIGMAPS, "default", "owner") is None

    async def secret_gone() -> bool:
        try:
            await c.get(SECRETS, "default", "owned-secret")
        except ApiError as e:
            return e.code == 404
        return False

    async def gone() -> bool:
        return (
            await exists(c, "child") is None and await exists(c, "grandchild") is None and await secret_gone()
        )

    await eventually(gone, "child and grandchild collected")
    assert await exists(c, "unrelated") is not None


async def test_foreground_deletion_waits_for_blocking_dependents(gc_client: InProcessClient) -> None:
    c = gc_client
    owner = await c.create(CONFIGMAPS, "default", configmap("fg-owner"))
    await c.create(CONFIGMAPS, "default", configmap("fg-child", owner, block=True))
    pending = await c.delete(
        CONFIGMAPS, "default", "fg-owner", DeleteOptions(propagation_policy="Foreground")
    )
    assert pending is not None and FOREGROUND in pending["metadata"]["finalizers"]

    async def all_gone() -> bool:
        return await exists(c, "fg-child") is None and await exists(c, "fg-owner") is None

    await eventually(all_gone, "dependent then owner removed")


async def test_orphan_deletion_keeps_dependents_without_the_reference(gc_client: InProcessClient) -> None:
    c = gc_client
    owner = await c.create(CONFIGMAPS, "default", configmap("or-owner"))
    other = await c.create(CONFIGMAPS, "default", configmap("or-other"))
    await c.create(CONFIGMAPS, "default", configmap("or-child", owner, other))
    await c.delete(CONFIGMAPS, "default", "or-owner", DeleteOptions(propagation_policy="Orphan"))

    async def owner_gone() -> bool:
        return await exists(c, "or-owner") is None

    await eventually(owner_gone, "orphaned owner removed")
    child = await exists(c, "or-child")
    assert child is not None
    assert [r["name"] for r in child["metadata"]["ownerReferences"]] == ["or-other"]
