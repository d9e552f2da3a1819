"""`render_workload`: the Kubernetes objects a `Workload` becomes, and that skiff's API accepts them."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skiff.apiserver.local import LocalBackend
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import Resource
from skiff.testing import start_control_plane
from skiff.translate.model import (
    LABEL_STACK,
    LABEL_WORKLOAD,
    Check,
    Container,
    Mount,
    NodeRule,
    Placement,
    Port,
    Restart,
    Update,
    Volume,
    Workload,
)
from skiff.translate.render import dns_label, render_workload

Obj = dict[str, Any]


def wl(**kw: Any) -> Workload:
    base: dict[str, Any] = {
        "name": "web",
        "namespace": "shop",
        "labels": {LABEL_STACK: "shop"},
        "containers": [Container(name="web", image="nginx:1.25")],
    }
    base.update(kw)
    return Workload(**base)


def kinds(objs: list[Obj]) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in objs]


@pytest.mark.parametrize(
    ("name", "kw", "want"),
    [
        pytest.param("web", {}, "web", id="valid-unchanged"),
        pytest.param("Web_Front", {}, None, id="upper-underscore-hashed"),
        pytest.param("a" * 80, {}, None, id="too-long-truncated"),
        pytest.param("1web", {"start_with_letter": True}, None, id="dns1035-leading-digit"),
        pytest.param("___", {}, None, id="nothing-left"),
        pytest.param("ünï", {"start_with_letter": True}, None, id="unicode"),
    ],
)
def test_dns_label(name: str, kw: dict[str, Any], want: str | None) -> None:
    got = dns_label(name, **kw)
    if want is not None:
        assert got == want
    assert len(got) <= 63
    pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$" if kw.get("start_with_letter") else r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    assert re.match(pattern, got), got
    assert dns_label(name, **kw) == got  # deterministic
    assert dns_label(got, **kw) == got  # idempotent


def test_distinct_invalid_names_do_not_collide() -> None:
    assert dns_label("a_b") != dns_label("a.b")


@pytest.mark.parametrize(
    ("update", "want"),
    [
        pytest.param(Update(), {"maxSurge": 0, "maxUnavailable": 1}, id="default-stop-first"),
        pytest.param(Update(parallelism=2, order="start-first"), {"maxSurge": 2, "maxUnavailable": 0},
                     id="start-first-surges"),
        pytest.param(Update(parallelism=0), {"maxSurge": 0, "maxUnavailable": "100%"}, id="zero-all-at-once"),
        pytest.param(Update(parallelism=0, order="start-first"), {"maxSurge": "100%", "maxUnavailable": 0},
                     id="zero-start-first"),
        pytest.param(Update(max_surge="10%", max_unavailable="20%"), {"maxSurge": "10%", "maxUnavailable": "20%"},
                     id="explicit-override"),
        pytest.param(Update(max_surge=0, max_unavailable=0), {"maxSurge": 0, "maxUnavailable": 1},
                     id="both-zero-repaired"),
    ],
)
def test_deployment_rolling_update(update: Update, want: Obj) -> None:
    dep = render_workload(wl(update=update))[0]
    assert dep["kind"] == "Deployment"
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": want}


@pytest.mark.parametrize(
    ("monitor", "deadline", "want_min_ready", "want_deadline"),
    [
        pytest.param(0, None, None, None, id="none"),
        pytest.param(60, None, 60, None, id="monitor-min-ready"),
        pytest.param(900, None, 900, 1500, id="long-monitor-moves-deadline"),
        pytest.param(30, 120, 30, 120, id="explicit-deadline"),
    ],
)
def test_monitor_and_progress_deadline(monitor: int, deadline: int | None, want_min_ready: int | None,
                                       want_deadline: int | None) -> None:
    spec = render_workload(wl(update=Update(monitor_seconds=monitor, progress_deadline_seconds=deadline)))[0]["spec"]
    assert spec.get("minReadySeconds") == want_min_ready
    assert spec.get("progressDeadlineSeconds") == want_deadline


def test_global_is_daemonset_and_batch_is_job() -> None:
    ds = render_workload(wl(mode="global", update=Update(order="start-first", max_unavailable=1)))[0]
    assert ds["kind"] == "DaemonSet"
    assert ds["spec"]["updateStrategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    job = render_workload(wl(mode="batch", replicas=3, restart=Restart("Always", max_attempts=4),
                             endpoint_mode=None))
    assert kinds(job) == [("Job", "web")]
    spec = job[0]["spec"]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (3, 3, 4)
    assert spec["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert "selector" not in spec  # Jobs generate their own selector
    never = render_workload(wl(mode="batch", restart=Restart("Never"), endpoint_mode=None))[0]
    assert never["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_labels_selector_and_annotations() -> None:
    w = wl(pod_labels={"tier": "front", LABEL_WORKLOAD: "spoof"}, annotations={"a": "b"})
    dep, svc = render_workload(w)
    sel = {LABEL_WORKLOAD: "web", LABEL_STACK: "shop"}
    assert dep["spec"]["selector"] == {"matchLabels": sel}
    tpl = dep["spec"]["template"]["metadata"]
    assert tpl["labels"] == {LABEL_WORKLOAD: "web", "tier": "front", LABEL_STACK: "shop"}
    assert tpl["annotations"] == {"a": "b"}
    assert dep["metadata"]["annotations"] == {"a": "b"}
    assert dep["metadata"]["labels"] == {LABEL_STACK: "shop", LABEL_WORKLOAD: "web"}
    assert svc["spec"]["selector"] == sel
    assert "annotations" not in svc["metadata"]


@pytest.mark.parametrize(
    ("check", "want"),
    [
        pytest.param(Check(kind="http", port=8080, path="/healthz"),
                     {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}}, id="http"),
        pytest.param(Check(kind="tcp"), {"tcpSocket": {"port": 80}}, id="tcp-defaults-to-first-port"),
        pytest.param(Check(kind="exec", command=["/bin/sh", "-c", "true"]),
                     {"exec": {"command": ["/bin/sh", "-c", "true"]}}, id="exec"),
        pytest.param(Check(kind="grpc", port="http"), {"grpc": {"port": 80}}, id="grpc-named-port-resolved"),
    ],
)
def test_check_handlers(check: Check, want: Obj) -> None:
    c = Container(name="web", image="nginx", ports=[Port(80, name="http")], checks=[check])
    ctr = render_workload(wl(containers=[c]))[0]["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert {k: v for k, v in ctr[probe].items() if k in want} == want
    assert "startupProbe" not in ctr


def test_check_without_port_renders_no_probe() -> None:
    c = Container(name="web", image="nginx", checks=[Check(kind="http")])
    ctr = render_workload(wl(containers=[c]))[0]["spec"]["template"]["spec"]["containers"][0]
    assert "readinessProbe" not in ctr and "livenessProbe" not in ctr


def test_start_period_becomes_startup_probe() -> None:
    chk = Check(kind="exec", command=["true"], period_seconds=10, timeout_seconds=3, failure_threshold=3,
                start_period_seconds=45, liveness=True, readiness=False)
    ctr = render_workload(wl(containers=[Container(name="w", image="i", checks=[chk])]))[0][
        "spec"]["template"]["spec"]["containers"][0]
    assert "readinessProbe" not in ctr
    assert ctr["livenessProbe"]["failureThreshold"] == 3
    assert ctr["startupProbe"] == {"exec": {"command": ["true"]}, "initialDelaySeconds": 0, "periodSeconds": 10,
                                   "timeoutSeconds": 3, "successThreshold": 1, "failureThreshold": 5 + 3}


def test_container_details() -> None:
    c = Container(
        name="app", image="app:1", command=["/entry"], args=["run"], env={"B": "2", "A": "1"}, working_dir="/srv",
        run_as_user=1000, run_as_group=1000, cpu_limit="500m", memory_limit="512Mi", cpu_request="250m",
        memory_request="256Mi", mounts=[Mount("data", "/data", read_only=True)], read_only_root_filesystem=True,
        cap_add=["NET_ADMIN"], cap_drop=["ALL"], no_new_privileges=True, stop_grace_seconds=20,
        ports=[Port(53, "UDP"), Port(8080, host_port=8080)],
    )
    w = wl(containers=[c], volumes=[Volume("data", "pvc", ref="shop-data")])
    spec = render_workload(w)[0]["spec"]["template"]["spec"]
    ctr = spec["containers"][0]
    assert ctr["command"] == ["/entry"] and ctr["args"] == ["run"] and ctr["workingDir"] == "/srv"
    assert ctr["env"] == [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]  # input order kept
    assert ctr["ports"] == [{"containerPort": 53, "protocol": "UDP"},
                            {"containerPort": 8080, "protocol": "TCP", "hostPort": 8080}]
    assert ctr["resources"] == {"limits": {"cpu": "500m", "memory": "512Mi"},
                                "requests": {"cpu": "250m", "memory": "256Mi"}}
    assert ctr["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    assert ctr["securityContext"] == {"runAsUser": 1000, "runAsGroup": 1000, "readOnlyRootFilesystem": True,
                                      "allowPrivilegeEscalation": False,
                                      "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}
    assert spec["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "shop-data"}}]
    assert spec["terminationGracePeriodSeconds"] == 20


@pytest.mark.parametrize(
    ("volume", "want"),
    [
        pytest.param(Volume("v", "emptyDir"), {"name": "v", "emptyDir": {}}, id="emptydir"),
        pytest.param(Volume("v", "memory", size_limit="64Mi"),
                     {"name": "v", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}, id="tmpfs"),
        pytest.param(Volume("v", "hostPath", ref="/srv"), {"name": "v", "hostPath": {"path": "/srv"}}, id="bind"),
        pytest.param(Volume("v", "configMap", ref="cfg", items=[("k", "k", 0o440)]),
                     {"name": "v", "configMap": {"name": "cfg", "items": [{"key": "k", "path": "k", "mode": 0o440}]}},
                     id="configmap"),
        pytest.param(Volume("v", "secret", ref="s"), {"name": "v", "secret": {"secretName": "s"}}, id="secret"),
    ],
)
def test_volume_sources(volume: Volume, want: Obj) -> None:
    assert render_workload(wl(volumes=[volume]))[0]["spec"]["template"]["spec"]["volumes"] == [want]


def test_placement() -> None:
    p = Placement(required=[NodeRule("node-role.kubernetes.io/control-plane", "Exists"),
                            NodeRule("zone", "In", ["a"])],
                  spread_by=["topology.kubernetes.io/zone", "topology.kubernetes.io/zone"], max_per_node=2)
    spec = render_workload(wl(placement=p))[0]["spec"]["template"]["spec"]
    sel = {"matchLabels": {LABEL_WORKLOAD: "web", LABEL_STACK: "shop"}}
    assert spec["affinity"] == {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"},
            {"key": "zone", "operator": "In", "values": ["a"]}]}]}}}
    assert spec["topologySpreadConstraints"] == [
        {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": sel},
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
         "labelSelector": sel},
    ]


@pytest.mark.parametrize("placement", [Placement(one_per_node=True), Placement(max_per_node=1)],
                         ids=["one-per-node", "max-one-per-node"])
def test_one_per_node_is_required_anti_affinity(placement: Placement) -> None:
    spec = render_workload(wl(placement=placement))[0]["spec"]["template"]["spec"]
    assert spec["affinity"] == {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {LABEL_WORKLOAD: "web", LABEL_STACK: "shop"}},
         "topologyKey": "kubernetes.io/hostname"}]}}
    assert "topologySpreadConstraints" not in spec


def svc_specs(objs: list[Obj]) -> dict[str, Obj]:
    return {o["metadata"]["name"]: {k: v for k, v in o["spec"].items() if k != "selector"}
            for o in objs if o["kind"] == "Service"}


@pytest.mark.parametrize(
    ("ports", "endpoint_mode", "want"),
    [
        pytest.param([Port(80)], "vip", {"web": {"type": "ClusterIP", "ports": [
            {"name": "tcp-80", "protocol": "TCP", "port": 80, "targetPort": 80}]}}, id="vip"),
        pytest.param([], "vip", {"web": {"clusterIP": "None"}}, id="vip-no-ports-headless"),
        pytest.param([Port(80, name="http")], "dnsrr", {"web": {"clusterIP": "None", "ports": [
            {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 80}]}}, id="dnsrr"),
        pytest.param([Port(80, published=8080), Port(53, "UDP", published=30053)], "vip", {
            "web": {"type": "ClusterIP", "ports": [
                {"name": "tcp-80", "protocol": "TCP", "port": 80, "targetPort": 80},
                {"name": "udp-53", "protocol": "UDP", "port": 53, "targetPort": 53}]},
            "web-nodeport": {"type": "NodePort", "ports": [
                {"name": "udp-30053", "protocol": "UDP", "port": 30053, "targetPort": 53, "nodePort": 30053}]},
            "web-lb": {"type": "LoadBalancer", "ports": [
                {"name": "tcp-8080", "protocol": "TCP", "port": 8080, "targetPort": 80}]},
        }, id="published-nodeport-and-lb"),
        pytest.param([Port(80, host_port=80, published=80)], "dnsrr", {"web": {"clusterIP": "None"}},
                     id="host-mode-port-in-no-service"),
        pytest.param([Port(80)], None, {}, id="no-service"),
    ],
)
def test_services(ports: list[Port], endpoint_mode: Any, want: dict[str, Obj]) -> None:
    w = wl(containers=[Container(name="web", image="nginx", ports=ports)], endpoint_mode=endpoint_mode)
    assert svc_specs(render_workload(w)) == want


def test_service_name_override_and_dns1035() -> None:
    objs = render_workload(wl(name="9lives", service_name=""))
    assert objs[0]["metadata"]["name"] == "9lives"
    svc = objs[1]["metadata"]["name"]
    assert svc[0].isalpha() and svc != "9lives"
    assert kinds(render_workload(wl(service_name="front")))[1] == ("Service", "front")


def test_deterministic() -> None:
    w = wl(containers=[Container(name="web", image="nginx", ports=[Port(80, published=80)],
                                 checks=[Check(kind="http")])], placement=Placement(spread_by=["zone"]))
    assert render_workload(w) == render_workload(w)


# --- accepted by skiff's API, and pods run on simulated nodes ----------------------------------------------

RESOURCES = {
    "Namespace": Resource("", "v1", "namespaces"),
    "Service": Resource("", "v1", "services"),
    "ConfigMap": Resource("", "v1", "configmaps"),
    "Secret": Resource("", "v1", "secrets"),
    "PersistentVolumeClaim": Resource("", "v1", "persistentvolumeclaims"),
    "Deployment": Resource("apps", "v1", "deployments"),
    "DaemonSet": Resource("apps", "v1", "daemonsets"),
    "Job": Resource("batch", "v1", "jobs"),
    "NetworkPolicy": Resource("networking.k8s.io", "v1", "networkpolicies"),
}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[InProcessClient]:
    plane = await start_control_plane(tmp_path)
    client = InProcessClient(LocalBackend(plane))
    try:
        yield client
    finally:
        await client.close()
        await plane.store.close()


async def create_all(client: InProcessClient, objs: list[Obj]) -> None:
    for o in objs:
        await client.create(RESOURCES[o["kind"]], o["metadata"].get("namespace", ""), o)


async def test_rendered_objects_are_accepted(api: InProcessClient) -> None:
    await create_all(api, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}])
    c = Container(name="web", image="nginx", ports=[Port(80, published=80), Port(9000, published=30900),
                                                     Port(53, "UDP")],
                  checks=[Check(kind="http", start_period_seconds=30)], cpu_limit="500m", memory_limit="256Mi",
                  mounts=[Mount("cache", "/cache"), Mount("tmp", "/tmp")], no_new_privileges=True)
    volumes = [Volume("cache", "emptyDir"), Volume("tmp", "memory", size_limit="64Mi")]
    placement = Placement(required=[NodeRule("kubernetes.io/os", "In", ["linux"])], spread_by=["zone"],
                          max_per_node=2)
    workloads = [
        wl(containers=[c], volumes=volumes, placement=placement, update=Update(parallelism=0, monitor_seconds=5)),
        wl(name="agent", mode="global", update=Update(order="start-first"), endpoint_mode=None),
        wl(name="db", endpoint_mode="dnsrr", placement=Placement(one_per_node=True)),
        wl(name="migrate", mode="batch", restart=Restart("OnFailure", max_attempts=2), endpoint_mode=None),
        wl(name="Odd_Name.1", service_name=""),
    ]
    for w in workloads:
        await create_all(api, render_workload(w))


async def test_rendered_pods_run_on_simulated_nodes(tmp_path: Path) -> None:
    from skiff.cli.components import start_components
    from skiff.client.interface import PODS

    plane = await start_control_plane(tmp_path)
    client = InProcessClient(LocalBackend(plane))
    start_components(plane, sim_nodes=2)
    try:
        await create_all(client, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}])
        await create_all(client, render_workload(wl(replicas=2, placement=Placement(one_per_node=True))))

        async def running() -> list[Obj]:
            pods = (await client.list(PODS, "shop"))["items"]
            up = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
            return up if len(up) == 2 else []

        loop = asyncio.get_running_loop()
        give_up = loop.time() + 60
        up: list[Obj] = []
        while not up:
            up = await running()
            assert loop.time() < give_up, "pods never ran"
            await asyncio.sleep(0.05)
        assert len({p["spec"]["nodeName"] for p in up}) == 2  # one per node
    finally:
        with contextlib.suppress(Exception):
            await plane.stop_background()
        await client.close()
        await plane.store.close()
