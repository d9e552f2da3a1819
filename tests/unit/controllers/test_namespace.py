"""Namespace deletion planner (pkg/controller/namespace/deletion)."""

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
from skiff.apiserver.server import ControlPlane, ServerConfig, serve
from skiff.client.factory import InformerFactory
from skiff.client.https import HTTPSClient
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import DEPLOYMENTS, NAMESPACES, PODS, SERVICEACCOUNTS, SERVICES, Client, Resource
from skiff.controllers.base import ControllerContext
from skiff.controllers.namespace import (
    NAMESPACED_RESOURCES,
    NamespaceController,
    finalized,
    needs_cleanup,
    plan_namespace,
)
from skiff.controllers.serviceaccount import ServiceAccountsController
from skiff.testing import eventually, free_port, start_control_plane

CM = Resource("", "v1", "configmaps")


def ns(*, deleting: bool = True, finalizers: list[str] | None = None) -> Obj:
    md: Obj = {"name": "demo"}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": md, "spec": {"finalizers": ["kubernetes"] if finalizers is None else finalizers}}


def item(
    name: str, *, deleting: bool = False, grace: int | None = None, termination_grace: int | None = None
) -> Obj:
    md: Obj = {"name": name, "namespace": "demo"}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if grace is not None:
        md["deletionGracePeriodSeconds"] = grace
    o: Obj = {"metadata": md}
    if termination_grace is not None:
        o["spec"] = {"terminationGracePeriodSeconds": termination_grace}
    return o


@pytest.mark.parametrize(
    ("namespace", "contents", "delete", "finalize", "requeue"),
    [
        pytest.param(None, {}, [], False, None, id="gone"),
        pytest.param(ns(deleting=False), {CM: [item("a")]}, [], False, None, id="active-left-alone"),
        pytest.param(ns(finalizers=[]), {CM: [item("a")]}, [], False, None, id="already-finalized"),
        pytest.param(ns(), {}, [], True, None, id="empty-finalize"),
        pytest.param(
            ns(),
            {CM: [item("a"), item("b")], DEPLOYMENTS: [item("d")]},
            [(CM, "a"), (CM, "b"), (DEPLOYMENTS, "d")],
            False,
            1.0,
            id="delete-everything",
        ),
        pytest.param(ns(), {CM: [item("a", deleting=True)]}, [], False, 1.0, id="wait-for-finalizers"),
        pytest.param(
            ns(), {PODS: [item("p", deleting=True, grace=30)]}, [], False, 16.0, id="wait-pod-grace"
        ),
        pytest.param(
            ns(),
            {PODS: [item("p", termination_grace=10)]},
            [(PODS, "p")],
            False,
            6.0,
            id="delete-pod-estimate-from-spec",
        ),
    ],
)
def test_plan_namespace(
    namespace: Obj | None,
    contents: dict[Resource, list[Obj]],
    delete: list[tuple[Resource, str]],
    finalize: bool,
    requeue: float | None,
) -> None:
    plan = plan_namespace(namespace, contents)
    assert (plan.delete, plan.finalize, plan.requeue_after) == (delete, finalize, requeue)


def test_finalized_drops_only_kubernetes() -> None:
    n = ns(finalizers=["kubernetes", "example.com/x"])
    assert finalized(n)["spec"]["finalizers"] == ["example.com/x"]
    assert n["spec"]["finalizers"] == ["kubernetes", "example.com/x"]
    assert needs_cleanup(n) and not needs_cleanup(finalized(ns()))


# --- integration: namespace + service-account controllers over a real ControlPlane (temporary SQLite) ---





@contextlib.asynccontextmanager
async def in_process(tmp_path: Path) -> AsyncIterator[Client]:
    plane = await start_control_plane(tmp_path)
    store = plane.store
    client = InProcessClient(LocalBackend(plane))
    try:
        yield client
    finally:
        await client.close()
        await store.close()


@contextlib.asynccontextmanager
async def over_https(tmp_path: Path) -> AsyncIterator[Client]:
    """The real HTTPS API server (`serve`) in this loop, and an HTTPSClient from its kubeconfig."""
    ready: asyncio.Future[ControlPlane] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    config = ServerConfig(data_dir=tmp_path / "https", port=free_port(), bind="127.0.0.1")
    task = asyncio.create_task(serve(config, on_ready=ready.set_result, stop=stop))
    waiters: set[asyncio.Future[Any]] = {ready, task}
    done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    client = HTTPSClient.from_kubeconfig(config.data_dir / "kubeconfig.yaml")
    try:
        yield client
    finally:
        await client.close()
        stop.set()
        await task


@pytest.fixture(params=["in-process", "https"])
async def ns_client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Client]:
    make = in_process if request.param == "in-process" else over_https
    async with make(tmp_path) as client:
        factory = InformerFactory(client)
        ctx = ControllerContext(client, factory, factory.new_queue)
        controllers = [NamespaceController(ctx), ServiceAccountsController(ctx)]
        for c in controllers:
            c.setup()
        tasks = [asyncio.create_task(c.run()) for c in controllers]
        try:
            yield client
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            await factory.stop()


async def get_or_none(client: Client, res: Resource, namespace: str, name: str) -> Obj | None:
    try:
        return await client.get(res, namespace, name)
    except ApiError as e:
        if e.code == 404:
            return None
        raise


async def test_namespace_gets_default_service_account_back(ns_client: Client) -> None:
    c = ns_client
    await c.create(NAMESPACES, "", {"metadata": {"name": "team"}})
    first = await eventually(lambda: get_or_none(c, SERVICEACCOUNTS, "team", "default"), "default SA created")
    await c.delete(SERVICEACCOUNTS, "team", "default")

    async def recreated() -> Obj | None:
        sa = await get_or_none(c, SERVICEACCOUNTS, "team", "default")
        return sa if sa and sa["metadata"]["uid"] != first["metadata"]["uid"] else None

    await eventually(recreated, "default SA recreated")


async def test_deleting_namespace_empties_and_removes_it(
    ns_client: Client, request: pytest.FixtureRequest
) -> None:
    c = ns_client
    await c.create(NAMESPACES, "", {"metadata": {"name": "demo"}})
    await c.create(CM, "demo", {"metadata": {"name": "cfg"}, "data": {"a": "b"}})
    await c.create(CM, "demo", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    await c.create(
        PODS, "demo", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    )
    await c.create(SERVICES, "demo", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}})
    await eventually(lambda: get_or_none(c, SERVICEACCOUNTS, "demo", "default"), "default SA created")
    await c.delete(NAMESPACES, "", "demo")

    async def only_held_left() -> bool:
        left = [
            (r.plural, o["metadata"]["name"])
            for r in NAMESPACED_RESOURCES
            for o in (await c.list(r, "demo"))["items"]
        ]
        return left == [("configmaps", "held")]

    await eventually(only_held_left, "everything but the finalizer-held object deleted")
    ns = await c.get(NAMESPACES, "", "demo")
    assert ns["status"]["phase"] == "Terminating"
    assert ns["spec"]["finalizers"] == ["kubernetes"]  # not finalized while content remains

    held = await c.get(CM, "demo", "held")
    held["metadata"]["finalizers"] = []
    await c.update(CM, "demo", held)

    async def gone() -> bool:
        return await get_or_none(c, NAMESPACES, "", "demo") is None

    await eventually(gone, "namespace finalized and removed")
