"""The client contract, run identically against InProcessClient (over a ControlPlane) and HTTPSClient
(over a real `skiff server`): same objects, same ApiError codes and reasons, same watch events."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from skiff.api.errors import ApiError
from skiff.apiserver.server import ControlPlane
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import (
    DEPLOYMENTS,
    NAMESPACES,
    PODS,
    Client,
    DeleteOptions,
    ListOptions,
    Obj,
    Patch,
    Resource,
    WatchEvent,
)

CONFIGMAPS = Resource("", "v1", "configmaps")
GUARD = 20.0
_ns_counter = itertools.count()


@pytest.fixture(params=["inprocess", "https"])
def client(request: pytest.FixtureRequest) -> Client:
    """The same tests through each implementation (sync, so it can pull in the async client fixtures)."""
    c: Client = request.getfixturevalue("local" if request.param == "inprocess" else "remote")
    return c


@pytest.fixture
async def ns(client: Client) -> str:
    """A fresh namespace per test (the HTTPS server is shared by the module)."""
    name = f"t{next(_ns_counter)}-{id(client) % 100000}"
    await client.create(NAMESPACES, "", {"metadata": {"name": name}})
    return name


def cm(name: str, **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


def pod(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


def deployment(name: str, replicas: int = 1) -> Obj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


async def error_of(coro: Awaitable[object]) -> tuple[int, str]:
    try:
        await coro
    except ApiError as e:
        return e.code, e.reason
    raise AssertionError("expected an ApiError")


async def test_create_get_list_update_delete(client: Client, ns: str) -> None:
    created = await client.create(CONFIGMAPS, ns, cm("a", k="v"), field_manager="test")
    assert created["kind"] == "ConfigMap" and created["apiVersion"] == "v1"
    assert created["metadata"]["namespace"] == ns and created["metadata"]["uid"]
    got = await client.get(CONFIGMAPS, ns, "a")
    assert got["data"] == {"k": "v"}
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    lst = await client.list(CONFIGMAPS, ns)
    assert lst["kind"] == "ConfigMapList" and lst["apiVersion"] == "v1"
    assert int(lst["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])
    assert [i["metadata"]["name"] for i in lst["items"]] == ["a"]
    # Items carry their kind in both clients (upstream JSON lists omit it; skiff's server sends it).
    assert lst["items"][0]["kind"] == "ConfigMap"
    got = {**got, "data": {"k": "w"}}
    updated = await client.update(CONFIGMAPS, ns, got)
    assert updated["data"] == {"k": "w"}
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert await client.delete(CONFIGMAPS, ns, "a") is None
    assert await error_of(client.get(CONFIGMAPS, ns, "a")) == (404, "NotFound")


async def test_inputs_are_not_mutated(client: Client, ns: str) -> None:
    body = cm("a", k="v")
    snapshot = repr(body)
    await client.create(CONFIGMAPS, ns, body)
    assert repr(body) == snapshot


async def test_list_with_label_selector_and_pages(client: Client, ns: str) -> None:
    for i in range(5):
        obj = cm(f"c{i}")
        obj["metadata"]["labels"] = {"even": str(i % 2 == 0).lower()}
        await client.create(CONFIGMAPS, ns, obj)
    even = await client.list(CONFIGMAPS, ns, ListOptions(label_selector="even=true"))
    assert [i["metadata"]["name"] for i in even["items"]] == ["c0", "c2", "c4"]
    page = await client.list(CONFIGMAPS, ns, ListOptions(limit=2))
    assert len(page["items"]) == 2 and page["metadata"]["continue"]
    rest = await client.list(
        CONFIGMAPS, ns, ListOptions(limit=10, continue_token=page["metadata"]["continue"])
    )
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c2", "c3", "c4"]


@pytest.mark.parametrize(
    ("case", "code", "reason"),
    [
        pytest.param("get-missing", 404, "NotFound", id="get-404"),
        pytest.param("create-existing", 409, "AlreadyExists", id="create-409-exists"),
        pytest.param("update-stale", 409, "Conflict", id="update-409-conflict"),
        pytest.param("create-invalid-name", 422, "Invalid", id="create-422"),
        pytest.param("update-invalid", 422, "Invalid", id="update-422"),
        pytest.param("delete-missing", 404, "NotFound", id="delete-404"),
        pytest.param("namespace-missing", 404, "NotFound", id="create-in-missing-namespace-404"),
        pytest.param("wrong-kind", 400, "BadRequest", id="create-wrong-kind-400"),
        pytest.param("bad-selector", 400, "BadRequest", id="list-bad-selector-400"),
        pytest.param("unknown-resource", 404, "NotFound", id="unknown-resource-404"),
        pytest.param("delete-uid-precondition", 409, "Conflict", id="delete-precondition-409"),
    ],
)
async def test_errors(client: Client, ns: str, case: str, code: int, reason: str) -> None:
    live = await client.create(CONFIGMAPS, ns, cm("x"))
    ops: dict[str, Callable[[], Awaitable[object]]] = {
        "get-missing": lambda: client.get(CONFIGMAPS, ns, "nope"),
        "create-existing": lambda: client.create(CONFIGMAPS, ns, cm("x")),
        "update-stale": lambda: client.update(
            CONFIGMAPS, ns, {**live, "metadata": {**live["metadata"], "resourceVersion": "1"}}
        ),
        "create-invalid-name": lambda: client.create(CONFIGMAPS, ns, cm("Not_Valid")),
        "update-invalid": lambda: client.update(
            CONFIGMAPS, ns, {**live, "metadata": {**live["metadata"], "labels": {"a": "-bad-"}}}
        ),
        "delete-missing": lambda: client.delete(CONFIGMAPS, ns, "nope"),
        "namespace-missing": lambda: client.create(CONFIGMAPS, "no-such-ns", cm("y")),
        "wrong-kind": lambda: client.create(CONFIGMAPS, ns, {**cm("y"), "kind": "Secret"}),
        "bad-selector": lambda: client.list(CONFIGMAPS, ns, ListOptions(label_selector="a in (")),
        "unknown-resource": lambda: client.list(Resource("example.com", "v1", "widgets"), ns),
        "delete-uid-precondition": lambda: client.delete(
            CONFIGMAPS, ns, "x", DeleteOptions(preconditions={"uid": "other"})
        ),
    }
    assert await error_of(ops[case]()) == (code, reason)


@pytest.mark.parametrize(
    ("patch", "want"),
    [
        pytest.param(Patch("merge", {"data": {"b": "2", "a": None}}), {"b": "2"}, id="merge"),
        pytest.param(Patch("strategic", {"data": {"b": "2"}}), {"a": "1", "b": "2"}, id="strategic"),
        pytest.param(
            Patch("json", [{"op": "replace", "path": "/data/a", "value": "9"}]), {"a": "9"}, id="json"
        ),
        pytest.param(
            Patch(
                "apply",
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "p"},
                    "data": {"a": "1", "c": "3"},
                },
                force=True,
            ),
            {"a": "1", "c": "3"},
            id="apply",
        ),
    ],
)
async def test_patch(client: Client, ns: str, patch: Patch, want: dict[str, str]) -> None:
    await client.create(CONFIGMAPS, ns, cm("p", a="1"), field_manager="creator")
    out = await client.patch(CONFIGMAPS, ns, "p", patch, field_manager="patcher")
    assert out["data"] == want
    assert (await client.get(CONFIGMAPS, ns, "p"))["data"] == want


async def test_apply_creates_missing_object_and_requires_field_manager(client: Client, ns: str) -> None:
    body = cm("new", a="1")
    assert await error_of(client.patch(CONFIGMAPS, ns, "new", Patch("apply", body))) == (400, "BadRequest")
    out = await client.patch(CONFIGMAPS, ns, "new", Patch("apply", body), field_manager="me")
    assert out["data"] == {"a": "1"}
    assert [m["manager"] for m in out["metadata"]["managedFields"]] == ["me"]


async def test_dry_run_patch_validates_and_writes_nothing(client: Client, ns: str) -> None:
    await client.create(CONFIGMAPS, ns, cm("p", a="1"))
    out = await client.patch(CONFIGMAPS, ns, "p", Patch("merge", {"data": {"a": "2"}}), dry_run=True)
    assert out["data"] == {"a": "2"}
    assert (await client.get(CONFIGMAPS, ns, "p"))["data"] == {"a": "1"}
    new = await client.patch(CONFIGMAPS, ns, "q", Patch("apply", cm("q", a="1")), field_manager="me", dry_run=True)
    assert new["metadata"]["name"] == "q"
    assert await error_of(client.get(CONFIGMAPS, ns, "q")) == (404, "NotFound")
    bad = Patch("merge", {"metadata": {"labels": {"-bad-": "x"}}})
    assert await error_of(client.patch(CONFIGMAPS, ns, "p", bad, dry_run=True)) == (422, "Invalid")


async def test_patch_pinned_to_stale_resource_version_conflicts(client: Client, ns: str) -> None:
    await client.create(CONFIGMAPS, ns, cm("p", a="1"))
    stale = Patch("merge", {"metadata": {"resourceVersion": "1"}, "data": {"a": "2"}})
    assert await error_of(client.patch(CONFIGMAPS, ns, "p", stale)) == (409, "Conflict")


async def test_status_subresource_changes_only_status(client: Client, ns: str) -> None:
    live = await client.create(PODS, ns, pod("s"))
    changed = {**live, "spec": {**live["spec"], "activeDeadlineSeconds": 5}, "status": {"phase": "Running"}}
    out = await client.update(PODS, ns, changed, subresource="status")
    assert out["status"]["phase"] == "Running"
    assert "activeDeadlineSeconds" not in out["spec"]
    patched = await client.patch(
        PODS, ns, "s", Patch("merge", {"status": {"phase": "Succeeded"}}), subresource="status"
    )
    assert patched["status"]["phase"] == "Succeeded"


async def test_scale_subresource(client: Client, ns: str) -> None:
    await client.create(DEPLOYMENTS, ns, deployment("d", 1))
    scale = {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": "d", "namespace": ns},
        "spec": {"replicas": 4},
    }
    out = await client.update(DEPLOYMENTS, ns, scale, subresource="scale")
    assert out["kind"] == "Scale" and out["spec"]["replicas"] == 4
    assert (await client.get(DEPLOYMENTS, ns, "d"))["spec"]["replicas"] == 4
    out = await client.patch(
        DEPLOYMENTS, ns, "d", Patch("merge", {"spec": {"replicas": 2}}), subresource="scale"
    )
    assert out["spec"]["replicas"] == 2


async def test_binding_sets_node_and_condition_and_conflicts_when_bound(client: Client, ns: str) -> None:
    await client.create(PODS, ns, pod("b"))
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "b"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"},
    }
    out = await client.create(PODS, ns, binding, subresource="binding", name="b")
    assert out["kind"] == "Status" and out["status"] == "Success"
    bound = await client.get(PODS, ns, "b")
    assert bound["spec"]["nodeName"] == "node-1"
    assert [(c["type"], c["status"]) for c in bound["status"]["conditions"]] == [("PodScheduled", "True")]
    again = {**binding, "target": {"kind": "Node", "name": "node-2"}}
    assert await error_of(client.create(PODS, ns, again, subresource="binding", name="b")) == (
        409,
        "Conflict",
    )


async def test_eviction_deletes_unbound_pod(client: Client, ns: str) -> None:
    await client.create(PODS, ns, pod("e"))
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "e", "namespace": ns}}
    await client.create(PODS, ns, eviction, subresource="eviction", name="e")
    assert await error_of(client.get(PODS, ns, "e")) == (404, "NotFound")


async def test_delete_with_finalizer_returns_the_pending_object(client: Client, ns: str) -> None:
    obj = cm("f")
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    await client.create(CONFIGMAPS, ns, obj)
    pending = await client.delete(CONFIGMAPS, ns, "f")
    assert pending is not None and pending["metadata"]["deletionTimestamp"]
    assert pending["kind"] == "ConfigMap"


async def collect(events: AsyncIterator[WatchEvent], n: int) -> list[WatchEvent]:
    out: list[WatchEvent] = []

    async def run() -> None:
        async for ev in events:
            if ev.type == "BOOKMARK":
                continue
            out.append(ev)
            if len(out) == n:
                return

    await asyncio.wait_for(run(), GUARD)
    return out


async def test_watch_from_resource_version(client: Client, ns: str) -> None:
    first = await client.create(CONFIGMAPS, ns, cm("w", a="1"))
    events = client.watch(CONFIGMAPS, ns, ListOptions(resource_version=first["metadata"]["resourceVersion"]))
    task = asyncio.create_task(collect(events, 3))
    await client.patch(CONFIGMAPS, ns, "w", Patch("merge", {"data": {"a": "2"}}))
    await client.create(CONFIGMAPS, ns, cm("w2"))
    await client.delete(CONFIGMAPS, ns, "w")
    got = await task
    assert [(e.type, e.object["metadata"]["name"]) for e in got] == [
        ("MODIFIED", "w"),
        ("ADDED", "w2"),
        ("DELETED", "w"),
    ]
    assert got[0].object["data"] == {"a": "2"} and got[0].object["kind"] == "ConfigMap"


async def test_watch_without_resource_version_starts_with_current_objects(client: Client, ns: str) -> None:
    await client.create(CONFIGMAPS, ns, cm("one"))
    got = await collect(client.watch(CONFIGMAPS, ns), 1)
    assert [(e.type, e.object["metadata"]["name"]) for e in got] == [("ADDED", "one")]


@pytest.fixture(params=["inprocess", "https"])
def client_and_plane(request: pytest.FixtureRequest) -> tuple[Client, ControlPlane]:
    """A client with the control plane behind it (sync, so it can pull in the async fixtures)."""
    if request.param == "inprocess":
        return request.getfixturevalue("local"), request.getfixturevalue("plane")
    return request.getfixturevalue("remote"), request.getfixturevalue("https_server")[1]


async def test_watch_of_compacted_revision_is_410(client_and_plane: tuple[Client, ControlPlane]) -> None:
    client, plane = client_and_plane
    a = await client.create(CONFIGMAPS, "default", cm("old"))
    await client.create(CONFIGMAPS, "default", cm("new"))
    await plane.store.compact(plane.store.revision)
    watch = client.watch(
        CONFIGMAPS, "default", ListOptions(resource_version=a["metadata"]["resourceVersion"])
    )
    assert await error_of(watch.__anext__()) == (410, "Expired")


async def full_error(op: Callable[[], Awaitable[object]]) -> tuple[int, str, str, object]:
    try:
        await op()
    except ApiError as e:
        return e.code, e.reason, e.message, e.details
    raise AssertionError("expected an ApiError")


async def test_errors_are_identical_in_both_clients(local: InProcessClient, remote: Client) -> None:
    """Not only code and reason: message and details too, as kubectl-facing tools print them."""
    results = []
    for c in (local, remote):
        live = await c.create(CONFIGMAPS, "default", cm("same"))
        stale = {**live, "metadata": {**live["metadata"], "resourceVersion": "1"}}
        bad = {**live, "metadata": {**live["metadata"], "labels": {"a": "-bad-"}}}
        ops: list[Callable[[], Awaitable[object]]] = [
            lambda c=c: c.get(CONFIGMAPS, "default", "nope"),  # type: ignore[misc]
            lambda c=c: c.create(CONFIGMAPS, "default", cm("same")),  # type: ignore[misc]
            lambda c=c, stale=stale: c.update(CONFIGMAPS, "default", stale),  # type: ignore[misc]
            lambda c=c, bad=bad: c.update(CONFIGMAPS, "default", bad),  # type: ignore[misc]
            lambda c=c: c.create(CONFIGMAPS, "default", cm("Not_Valid")),  # type: ignore[misc]
            lambda c=c: c.delete(DEPLOYMENTS, "default", "nope"),  # type: ignore[misc]
        ]
        results.append([await full_error(op) for op in ops])
    assert [r[:2] for r in results[0]] == [
        (404, "NotFound"),
        (409, "AlreadyExists"),
        (409, "Conflict"),
        (422, "Invalid"),
        (422, "Invalid"),
        (404, "NotFound"),
    ]
    assert results[0] == results[1]


async def test_namespace_finalize_removes_the_namespace_once_finalizers_are_gone(client: Client) -> None:
    await client.create(NAMESPACES, "", {"metadata": {"name": "fin"}})
    pending = await client.delete(NAMESPACES, "", "fin")
    assert pending is not None and pending["spec"]["finalizers"] == ["kubernetes"]
    done = {**pending, "spec": {"finalizers": []}}
    out = await client.update(NAMESPACES, "", done, subresource="finalize")
    assert "finalizers" not in out.get("spec", {})
    assert await error_of(client.get(NAMESPACES, "", "fin")) == (404, "NotFound")
