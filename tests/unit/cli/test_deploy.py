"""The shared deploy layer: pure planning by tables, and deploys into an in-process cluster with
simulated nodes (controllers, scheduler and fake kubelets running), for every example users bring."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skiff.api.errors import ApiError
from skiff.apiserver.local import LocalBackend
from skiff.cli import deploy
from skiff.cli.components import start_components
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import (
    DEPLOYMENTS,
    NAMESPACES,
    PODS,
    SERVICES,
    Client,
    DeleteOptions,
    ListOptions,
    Patch,
)
from skiff.client.interface import NODES as NODES_RES
from skiff.testing import eventually, start_control_plane
from skiff.translate.compose import translate_compose
from skiff.translate.marathon import MESOS_ROLE_LABEL, translate_marathon
from skiff.translate.model import (
    LABEL_MARATHON_APP,
    LABEL_NOMAD_JOB,
    LABEL_STACK,
    LABEL_WORKLOAD,
    Translation,
)
from skiff.translate.nomad import translate_nomad

Obj = dict[str, Any]
EXAMPLES = Path("/work/shared/examples")
COMPOSE = sorted((EXAMPLES / "compose").glob("*.yml"))
MARATHON = sorted((EXAMPLES / "marathon").glob("*.json"))
NOMAD = sorted((EXAMPLES / "nomad").glob("*.hcl"))
NODES = 3
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
MESOS_ATTRIBUTES = {"cpus": "2.0", "mem": "2048", MESOS_ROLE_LABEL: "high-priority"}


# --- helpers shared with the other CLI tests (imported from here) ----------------------------------------------


@contextlib.asynccontextmanager
async def running_cluster(tmp: Path, nodes: int = NODES) -> AsyncIterator[InProcessClient]:
    """A control plane with controllers, scheduler and `nodes` simulated nodes, all in this process. The first
    node is labelled control-plane: it plays the Swarm manager (`node.role == manager` placements); the last
    one carries the Mesos attributes and role the Marathon examples' constraints ask for."""
    plane = await start_control_plane(tmp)
    start_components(plane, sim_nodes=nodes)
    client = InProcessClient(LocalBackend(plane))
    try:
        first = await eventually(lambda: _first_node(client), "simulated nodes registered")
        await client.patch(NODES_RES, "", first, Patch("merge", {"metadata": {"labels": {CONTROL_PLANE: ""}}}))
        last = sorted(n["metadata"]["name"] for n in (await client.list(NODES_RES))["items"])[-1]
        await client.patch(NODES_RES, "", last, Patch("merge", {"metadata": {"labels": MESOS_ATTRIBUTES}}))
        yield client
    finally:
        await client.close()
        await plane.stop_background()
        await plane.store.close()


async def _first_node(client: Client) -> str:
    names = sorted(n["metadata"]["name"] for n in (await client.list(NODES_RES))["items"])
    return names[0] if len(names) >= NODES else ""


def expected_pods(translation: Translation, nodes: int = NODES) -> int:
    total = 0
    for o in translation.objects:
        spec = o.get("spec") or {}
        if o["kind"] == "Deployment":
            total += int(spec.get("replicas", 1))
        elif o["kind"] == "DaemonSet":
            total += nodes
        elif o["kind"] == "Job":
            total += int(spec.get("parallelism", 1))
    return total


async def all_running(client: Client, namespace: str, selector: str, count: int) -> bool:
    pods = (await client.list(PODS, namespace, ListOptions(label_selector=selector)))["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return len(live) == count and all((p.get("status") or {}).get("phase") == "Running" for p in live)


async def gone(client: Client, res: Any, namespace: str, name: str) -> bool:
    try:
        await client.get(res, namespace, name)
    except ApiError as e:
        return e.code == 404
    return False


def compose(path: Path, stack: str = "demo") -> Translation:
    return translate_compose([(str(path), path.read_text())], stack, {}, None)


async def deploy_stack(client: Client, translation: Translation, stack: str = "demo",
                       prune: bool = True) -> deploy.DeployResult:
    return await deploy.apply(client, translation, owner_kind="Namespace", owner_name=stack, namespace=stack,
                              prune_label=f"{LABEL_STACK}={stack}", dialect="compose", prune=prune)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[InProcessClient]:
    async with running_cluster(tmp_path) as client:
        yield client


# --- pure ---------------------------------------------------------------------------------------------------------


def _obj(kind: str, name: str, workload: str | None = None, api: str = "v1") -> Obj:
    labels = {LABEL_WORKLOAD: workload} if workload else {}
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "labels": labels}}


@pytest.mark.parametrize(("objects", "owners"), [
    pytest.param([_obj("Deployment", "web", "web", "apps/v1"), _obj("Service", "web", "web")], {1: 0},
                 id="service-owned-by-its-deployment"),
    pytest.param([_obj("ConfigMap", "tpl", "web"), _obj("Deployment", "web", "web", "apps/v1")], {0: 1},
                 id="owner-after-the-owned"),
    pytest.param([_obj("Deployment", "a", "a", "apps/v1"), _obj("Service", "b", "b")], {},
                 id="different-workloads"),
    pytest.param([_obj("Service", "x")], {}, id="no-workload-label"),
    pytest.param([_obj("Job", "j", "j", "batch/v1"), _obj("Service", "j", "j"), _obj("Secret", "s", "j")],
                 {1: 0, 2: 0}, id="job-owns-several"),
])
def test_plan_ownership(objects: list[Obj], owners: dict[int, int]) -> None:
    assert deploy.plan_ownership(objects) == owners


@pytest.mark.parametrize(("kind", "plural", "namespaced"), [
    pytest.param("Deployment", "deployments", True, id="known"),
    pytest.param("Namespace", "namespaces", False, id="cluster-scoped"),
    pytest.param("NetworkPolicy", "networkpolicies", True, id="ies"),
    pytest.param("Gateway", "gateways", True, id="unknown-s"),
    pytest.param("Policy", "policies", True, id="unknown-ies"),
    pytest.param("Ingress", "ingresses", True, id="es"),
])
def test_kinds(kind: str, plural: str, namespaced: bool) -> None:
    assert deploy.plural_of(kind) == plural
    assert deploy.namespaced(kind) is namespaced


@pytest.mark.parametrize(("selector", "labels"), [
    pytest.param("a=b", {"a": "b"}, id="one"),
    pytest.param("skiff.io/stack=x, k=v", {"skiff.io/stack": "x", "k": "v"}, id="two"),
    pytest.param("", {}, id="empty"),
])
def test_parse_selector(selector: str, labels: dict[str, str]) -> None:
    assert deploy.parse_selector(selector) == labels


def test_parse_selector_rejects_a_bare_key() -> None:
    with pytest.raises(ValueError, match="key=value"):
        deploy.parse_selector("a")


def test_prepare_fills_namespace_and_labels_without_touching_the_input() -> None:
    objs = [_obj("Namespace", "ns"), _obj("Service", "web", "web")]
    before = copy.deepcopy(objs)
    out = deploy.prepare(objs, "ns", {LABEL_STACK: "ns"})
    assert objs == before
    assert "namespace" not in out[0]["metadata"]
    assert out[1]["metadata"]["namespace"] == "ns"
    assert out[1]["metadata"]["labels"] == {LABEL_WORKLOAD: "web", LABEL_STACK: "ns"}


@pytest.mark.parametrize("objs", [
    pytest.param([_obj("Service", "a"), _obj("Service", "a")], id="duplicate"),
    pytest.param([{"apiVersion": "v1", "kind": "Service", "metadata": {}}], id="no-name"),
    pytest.param([{"kind": "Service", "metadata": {"name": "x"}}], id="no-apiVersion"),
])
def test_prepare_rejects(objs: list[Obj]) -> None:
    with pytest.raises(deploy.DeployError):
        deploy.prepare(objs, "ns", {})


def test_object_ref_prints_like_kubectl() -> None:
    assert str(deploy.ObjectRef("apps/v1", "Deployment", "ns", "web")) == "deployment.apps/web"
    assert str(deploy.ObjectRef("v1", "Service", "ns", "web")) == "service/web"
    assert deploy.ObjectRef("apps/v1", "Deployment", "ns", "web").resource == DEPLOYMENTS


def test_deploy_error_names_file_key_object_and_partial() -> None:
    ref = deploy.ObjectRef("v1", "Service", "ns", "web")
    e = deploy.DeployError(ref, "boom", file="f.yml", key="services.web",
                           partial=[deploy.ObjectRef("apps/v1", "Deployment", "ns", "web")])
    assert str(e) == "f.yml: services.web: service/web: boom (already updated before the failure: deployment.apps/web)"


# --- against a cluster --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", COMPOSE, ids=[p.name for p in COMPOSE])
async def test_compose_examples_run(cluster: InProcessClient, path: Path) -> None:
    t = compose(path)
    result = await deploy_stack(cluster, t)
    assert [a.action for a in result.applied] == ["created"] * len(t.objects)
    await eventually(lambda: all_running(cluster, "demo", LABEL_STACK, expected_pods(t)),
                     f"pods of {path.name} running")


@pytest.mark.parametrize("path", MARATHON, ids=[p.name for p in MARATHON])
async def test_marathon_examples_run(cluster: InProcessClient, path: Path) -> None:
    t = translate_marathon(str(path), path.read_text())
    label = t.objects[0]["metadata"]["labels"][LABEL_MARATHON_APP]
    result = await deploy.apply(cluster, t, owner_kind="Workload", owner_name=label, namespace="marathon",
                                prune_label=f"{LABEL_MARATHON_APP}={label}", dialect="marathon")
    owner = next(a.object for a in result.applied if a.ref.kind == "Deployment")
    for a in result.applied:
        if a.ref.kind == "Service":
            refs = a.object["metadata"].get("ownerReferences") or []
            assert [r["uid"] for r in refs] == [owner["metadata"]["uid"]]
    await eventually(lambda: all_running(cluster, "marathon", f"{LABEL_MARATHON_APP}={label}", expected_pods(t)),
                     f"tasks of {path.name} running")


@pytest.mark.parametrize("path", NOMAD, ids=[p.name for p in NOMAD])
async def test_nomad_examples_run(cluster: InProcessClient, path: Path) -> None:
    t = translate_nomad(str(path), path.read_text(), {})
    job = t.objects[0]["metadata"]["labels"][LABEL_NOMAD_JOB]
    ns = t.objects[0]["metadata"].get("namespace") or "default"
    await deploy.apply(cluster, t, owner_kind="Workload", owner_name=job, namespace=ns,
                       prune_label=f"{LABEL_NOMAD_JOB}={job}", dialect="nomad")
    await eventually(lambda: all_running(cluster, ns, f"{LABEL_NOMAD_JOB}={job}", expected_pods(t)),
                     f"allocations of {path.name} running")


async def test_redeploy_is_idempotent(cluster: InProcessClient) -> None:
    t = compose(EXAMPLES / "compose" / "001-swarm-web-redis.compose.yml")
    first = await deploy_stack(cluster, t)
    second = await deploy_stack(cluster, t)
    assert {a.action for a in second.applied} == {"unchanged"}
    assert [a.object["metadata"].get("generation") for a in second.applied] == \
        [a.object["metadata"].get("generation") for a in first.applied]
    assert second.pruned == []


async def test_changed_file_updates_only_what_changed(cluster: InProcessClient) -> None:
    path = EXAMPLES / "compose" / "001-swarm-web-redis.compose.yml"
    await deploy_stack(cluster, compose(path))
    changed = path.read_text().replace("replicas: 3", "replicas: 2")
    t = translate_compose([(str(path), changed)], "demo", {}, None)
    result = await deploy_stack(cluster, t)
    actions = {str(a.ref): a.action for a in result.applied}
    assert actions["deployment.apps/web"] == "configured"
    assert actions["deployment.apps/redis"] == "unchanged"
    assert (await cluster.get(DEPLOYMENTS, "demo", "web"))["spec"]["replicas"] == 2


async def test_a_service_removed_from_the_file_is_pruned(cluster: InProcessClient) -> None:
    path = EXAMPLES / "compose" / "001-swarm-web-redis.compose.yml"
    await deploy_stack(cluster, compose(path))
    text = path.read_text()
    without_redis = text[: text.index("  redis:")] + text[text.index("networks:\n  webnet:"):]
    t = translate_compose([(str(path), without_redis)], "demo", {}, None)
    kept = await deploy_stack(cluster, t, prune=False)
    assert kept.pruned == []
    assert not await gone(cluster, DEPLOYMENTS, "demo", "redis")
    result = await deploy_stack(cluster, t)
    assert {str(r) for r in result.pruned} == {"deployment.apps/redis", "service/redis"}
    assert await gone(cluster, DEPLOYMENTS, "demo", "redis")
    assert await gone(cluster, SERVICES, "demo", "redis")
    assert not await gone(cluster, DEPLOYMENTS, "demo", "web")
    await eventually(lambda: all_running(cluster, "demo", f"{LABEL_WORKLOAD}=redis", 0), "redis pods gone")


async def test_a_bad_object_deploys_nothing(cluster: InProcessClient) -> None:
    t = compose(EXAMPLES / "compose" / "001-swarm-web-redis.compose.yml")
    bad = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "broken", "namespace": "demo", "labels": {LABEL_WORKLOAD: "broken"}},
           "spec": {"ports": [{"port": 70000}]}}
    t.objects.append(bad)
    with pytest.raises(deploy.DeployError) as info:
        await deploy.apply(cluster, t, owner_kind="Namespace", owner_name="demo", namespace="demo",
                           prune_label=f"{LABEL_STACK}=demo", dialect="compose",
                           source=lambda o: ("stack.yml", f"services.{o['metadata']['name']}"))
    assert info.value.ref is not None and info.value.ref.name == "broken"
    assert info.value.code == 422
    assert str(info.value).startswith("stack.yml: services.broken: service/broken: ")
    assert await gone(cluster, DEPLOYMENTS, "demo", "web")
    assert await gone(cluster, DEPLOYMENTS, "demo", "redis")
    await eventually(lambda: gone(cluster, NAMESPACES, "", "demo"), "the stack's namespace removed again")


async def test_a_failed_redeploy_keeps_what_ran(cluster: InProcessClient) -> None:
    t = compose(EXAMPLES / "compose" / "001-swarm-web-redis.compose.yml")
    await deploy_stack(cluster, t)
    broken = copy.deepcopy(t)
    broken.objects.append({"apiVersion": "v1", "kind": "Service",
                           "metadata": {"name": "broken", "namespace": "demo"},
                           "spec": {"ports": [{"port": 70000}]}})
    with pytest.raises(deploy.DeployError):
        await deploy_stack(cluster, broken)
    assert not await gone(cluster, NAMESPACES, "", "demo")
    assert not await gone(cluster, DEPLOYMENTS, "demo", "web")
    assert await gone(cluster, SERVICES, "demo", "broken")


async def test_workload_owner_removes_its_services(cluster: InProcessClient) -> None:
    path = EXAMPLES / "marathon" / "000-user-service.marathon.json"
    t = translate_marathon(str(path), path.read_text())
    await deploy.apply(cluster, t, owner_kind="Workload", owner_name="/user-service", namespace="marathon",
                       prune_label=f"{LABEL_MARATHON_APP}=user-service", dialect="marathon")
    assert not await gone(cluster, NAMESPACES, "", "marathon")
    await cluster.delete(DEPLOYMENTS, "marathon", "user-service", DeleteOptions(propagation_policy="Background"))
    await eventually(lambda: gone(cluster, SERVICES, "marathon", "user-service"), "service collected")
    await eventually(lambda: gone(cluster, SERVICES, "marathon", "user-service-lb"), "lb service collected")


async def test_remove_deletes_by_label_only(cluster: InProcessClient) -> None:
    for stack in ("one", "two"):
        await deploy_stack(cluster, compose(EXAMPLES / "compose" / "001-swarm-web-redis.compose.yml", stack),
                           stack)
    removed = await deploy.remove(cluster, "one", f"{LABEL_STACK}=one")
    assert {r.kind for r in removed} >= {"Deployment", "Service", "NetworkPolicy"}
    assert await gone(cluster, DEPLOYMENTS, "one", "web")
    assert not await gone(cluster, DEPLOYMENTS, "two", "web")


class DryRunClient(InProcessClient):
    """The in-process client plus `patch(..., dry_run=True)` as the deploy layer asks for it: the dry run
    refuses the objects named in `refuse` and writes nothing; every call is recorded in order."""

    def __init__(self, inner: InProcessClient, refuse: set[str]) -> None:
        super().__init__(inner.backend)
        self.refuse = refuse
        self.calls: list[tuple[str, str]] = []

    async def patch(self, res: Any, namespace: str, name: str, patch: Any, *, subresource: str = "",
                    field_manager: str = "", dry_run: bool = False) -> Obj:
        self.calls.append(("dry-run" if dry_run else "write", name))
        if dry_run:
            if name in self.refuse:
                raise ApiError(422, "Invalid", f'Service "{name}" is invalid: spec.ports[0].port: Invalid value')
            return dict(patch.body)
        return await super().patch(res, namespace, name, patch, subresource=subresource,
                                   field_manager=field_manager)


async def test_every_object_is_dry_run_before_anything_is_written(cluster: InProcessClient) -> None:
    t = compose(EXAMPLES / "compose" / "001-swarm-web-redis.compose.yml")
    client = DryRunClient(cluster, refuse=set())
    result = await deploy_stack(client, t)
    assert result.validated
    names = [o["metadata"]["name"] for o in t.objects]
    # the namespace is written first (objects inside a missing namespace cannot be dry-run), then every
    # other object is validated, and only then written
    assert client.calls == [("write", "demo"), *(("dry-run", n) for n in names[1:]),
                            *(("write", n) for n in names[1:])]


async def test_a_refused_dry_run_writes_nothing(cluster: InProcessClient) -> None:
    t = compose(EXAMPLES / "compose" / "001-swarm-web-redis.compose.yml")
    client = DryRunClient(cluster, refuse={"redis"})
    with pytest.raises(deploy.DeployError) as info:
        await deploy_stack(client, t)
    assert "spec.ports[0].port: Invalid value" in str(info.value)
    assert [c for c in client.calls if c[0] == "write"] == [("write", "demo")]
    assert await gone(cluster, DEPLOYMENTS, "demo", "web")
    await eventually(lambda: gone(cluster, NAMESPACES, "", "demo"), "the new namespace removed again")
