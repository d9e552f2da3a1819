"""metrics.k8s.io: Prometheus text decoding, metrics-server's rate algorithm, quantity formatting, the
read-only API over HTTP, and the real `kubectl top` against an in-process server."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from skiff.agent.metrics import ResourceSnapshot, render
from skiff.agent.stats import ContainerUsage, NodeUsage
from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.apiserver.auth import UserInfo
from skiff.apiserver.http import ReadRequest
from skiff.apiserver.metrics_api import (
    MetricsAPI,
    NodeStore,
    ParseError,
    PodStore,
    Point,
    Sample,
    Usage,
    decode_batch,
    format_memory,
    format_nanocores,
    go_duration,
    install,
    parse_prometheus_text,
    resource_usage,
)
from skiff.apiserver.registry.generic import ListOptions, WriteOptions
from skiff.apiserver.server import ControlPlane, ServerConfig, serve
from skiff.testing import free_port, have_kubectl

S = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * S
USER = UserInfo("admin", groups=("system:masters",))


# --- Prometheus text -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,want", [
    pytest.param("# HELP x y\n# TYPE x gauge\nx 1\n", [Sample("x", {}, 1.0, None)], id="comments-no-timestamp"),
    pytest.param("node_cpu_usage_seconds_total 357.35491 1652198153670\n",
                 [Sample("node_cpu_usage_seconds_total", {}, 357.35491, 1652198153670)], id="timestamp"),
    pytest.param('m{container="a",namespace="b",pod="c"} 1.4270464e+07 5\n',
                 [Sample("m", {"container": "a", "namespace": "b", "pod": "c"}, 14270464.0, 5)], id="labels-exponent"),
    pytest.param('m{a="x\\"y\\\\z\\nw",b="sp ace"} +Inf\n', [Sample("m", {"a": 'x"y\\z\nw', "b": "sp ace"}, float("inf"), None)],
                 id="escapes-and-spaces"),
    pytest.param('m{a="1",} 2\n\n', [Sample("m", {"a": "1"}, 2.0, None)], id="trailing-comma"),
])
def test_parse_prometheus_text(text: str, want: list[Sample]) -> None:
    assert parse_prometheus_text(text) == want


@pytest.mark.parametrize("text", [
    pytest.param("m\n", id="no-value"), pytest.param("m abc\n", id="bad-value"),
    pytest.param('m{a="1} 2\n', id="unterminated"), pytest.param("m 1 2 3\n", id="too-many-fields"),
])
def test_parse_prometheus_text_rejects(text: str) -> None:
    with pytest.raises(ParseError):
        parse_prometheus_text(text)


def snapshot_text(t_ns: int, node_cpu_s: float, node_mem: int, containers: list[tuple[str, str, str, float, int, int]]) -> str:
    """What an agent serves: containers as (namespace, pod, container, cpu seconds, memory, start ns)."""
    return render(ResourceSnapshot(
        NodeUsage(t_ns, int(node_cpu_s * S), node_mem),
        [ContainerUsage(ns, pod, c, start, t_ns, int(cpu * S), mem) for ns, pod, c, cpu, mem, start in containers]))


def test_decode_the_agent_output() -> None:
    """Round trip with skiff.agent.metrics.render: exactly the fields metrics-server reads."""
    text = snapshot_text(T0, 100.0, 512 << 20, [("default", "web", "app", 10.0, 20 << 20, T0 - 60 * S)])
    batch = decode_batch(text, "n1", now_ns=0)
    assert batch.nodes == {"n1": Point(T0, 100 * S, 512 << 20)}
    assert batch.pods == {("default", "web"): {"app": Point(T0, 10 * S, 20 << 20, T0 - 60 * S)}}


@pytest.mark.parametrize("text,nodes,pods", [
    pytest.param("node_memory_working_set_bytes 5 1\n", [], [], id="node-without-cpu-dropped"),
    pytest.param("node_cpu_usage_seconds_total 1\nnode_memory_working_set_bytes 5\n", ["n1"], [],
                 id="no-timestamp-uses-now"),
    pytest.param('container_cpu_usage_seconds_total{container="a",namespace="d",pod="p"} 1 1\n'
                 'container_memory_working_set_bytes{container="a",namespace="d",pod="p"} 0 1\n'
                 'container_cpu_usage_seconds_total{container="b",namespace="d",pod="p"} 1 1\n'
                 'container_memory_working_set_bytes{container="b",namespace="d",pod="p"} 9 1\n', [], [],
                 id="one-zero-container-drops-the-pod"),
])
def test_decode_drops_incomplete_points(text: str, nodes: list[str], pods: list[tuple[str, str]]) -> None:
    batch = decode_batch(text, "n1", now_ns=T0)
    assert sorted(batch.nodes) == nodes and sorted(batch.pods) == pods
    if nodes:
        assert batch.nodes["n1"].timestamp_ns == T0


# --- rates -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("last,prev,want", [
    pytest.param(Point(T0 + 15 * S, 101_500_000_000, 7), Point(T0, 100 * S, 5), Usage(100_000_000, 7, T0 + 15 * S, 15 * S),
                 id="tenth-of-a-core"),
    pytest.param(Point(T0 + 10 * S, 30 * S, 1), Point(T0, 10 * S, 1), Usage(2 * S, 1, T0 + 10 * S, 10 * S), id="two-cores"),
    pytest.param(Point(T0 + 15 * S, 5 * S, 1), Point(T0, 6 * S, 1), None, id="counter-went-back"),
    pytest.param(Point(T0 + 15 * S, 7 * S, 1, start_ns=5), Point(T0, 6 * S, 1, start_ns=9), None, id="start-time-went-back"),
    pytest.param(Point(T0, 7 * S, 1), Point(T0, 6 * S, 1), None, id="empty-window"),
])
def test_resource_usage(last: Point, prev: Point, want: Usage | None) -> None:
    assert resource_usage(last, prev) == want


def test_node_store_keeps_two_points_and_drops_vanished_nodes() -> None:
    store = NodeStore()
    store.store({"n1": Point(T0, 10 * S, 1)})
    assert store.usage("n1") is None  # one point is not a rate
    store.store({"n1": Point(T0 + 15 * S, 25 * S, 2)})
    assert store.usage("n1") == Usage(S, 2, T0 + 15 * S, 15 * S)
    store.store({"n1": Point(T0 + 15 * S, 25 * S, 2)})  # same point again: keep the previous one
    assert store.usage("n1") == Usage(S, 2, T0 + 15 * S, 15 * S)
    store.store({})
    assert store.usage("n1") is None


def test_pod_store_restart_and_fresh_container() -> None:
    store = PodStore(resolution_ns=15 * S)
    key = ("default", "web")
    store.store({key: {"app": Point(T0, 10 * S, 1, start_ns=T0 - 600 * S)}})
    assert store.usage(key) is None
    store.store({key: {"app": Point(T0 + 15 * S, 13 * S, 2, start_ns=T0 - 600 * S)}})
    assert store.usage(key) == ({"app": Usage(200_000_000, 2, T0 + 15 * S, 15 * S)}, T0 + 15 * S, 15 * S)
    # Restarted after the stored point: no rate until the next scrape.
    store.store({key: {"app": Point(T0 + 30 * S, S, 3, start_ns=T0 + 29 * S)}})
    assert store.usage(key) is None
    # A container 12 s old (>= 10 s, < resolution) gets a synthetic zero point at its start.
    store.store({key: {"app": Point(T0 + 45 * S, 3 * S, 4, start_ns=T0 + 33 * S)}})
    assert store.usage(key) == ({"app": Usage(250_000_000, 4, T0 + 45 * S, 12 * S)}, T0 + 45 * S, 12 * S)


def test_pod_store_needs_every_container() -> None:
    store = PodStore(resolution_ns=15 * S)
    key = ("default", "web")
    store.store({key: {"a": Point(T0, S, 1)}})
    store.store({key: {"a": Point(T0 + 15 * S, 2 * S, 1), "b": Point(T0 + 15 * S, S, 1)}})
    assert store.usage(key) is None  # "b" has a single point


# --- formatting ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nanocores,want", [
    pytest.param(0, "0", id="zero"), pytest.param(250_000_000, "250m", id="millis"),
    pytest.param(1_234_567, "1234567n", id="nanos"), pytest.param(1_234_000, "1234u", id="micros"),
    pytest.param(2_000_000_000, "2", id="cores"), pytest.param(1_500_000_000, "1500m", id="fractional-cores"),
    pytest.param(100_000_000, "100m", id="tenth"), pytest.param(10_000_000, "10m", id="ten-millis"),
])
def test_format_nanocores(nanocores: int, want: str) -> None:
    assert format_nanocores(nanocores) == want


@pytest.mark.parametrize("n,want", [
    pytest.param(0, "0", id="zero"), pytest.param(512, "512", id="small"), pytest.param(1000, "1k", id="small-decimal"),
    pytest.param(1024, "1Ki", id="ki"), pytest.param(20 << 20, "20Mi", id="mi"),
    pytest.param(1627308 * 1024, "1627308Ki", id="page-aligned"), pytest.param(1_000_001, "1000001", id="odd-bytes"),
])
def test_format_memory(n: int, want: str) -> None:
    assert format_memory(n) == want


@pytest.mark.parametrize("ns,want", [
    pytest.param(0, "0s", id="zero"), pytest.param(15 * S, "15s", id="seconds"),
    pytest.param(14_998 * MS, "14.998s", id="millis-fraction"), pytest.param(60 * S + S // 2, "1m0.5s", id="minute"),
    pytest.param(3600 * S + 5 * S, "1h0m5s", id="hour"), pytest.param(500 * MS, "500ms", id="sub-second"),
    pytest.param(1500, "1.5µs", id="micro"), pytest.param(7, "7ns", id="nano"),
])
def test_go_duration(ns: int, want: str) -> None:
    assert go_duration(ns) == want


# --- the API over fakes -----------------------------------------------------------------------------------------


def node_obj(name: str, ready: bool = True, labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                       "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}}}


def pod_obj(ns: str, name: str, node: str, containers: list[str], labels: dict[str, str] | None = None,
            phase: str = "Running") -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"nodeName": node, "containers": [{"name": c, "image": "busybox"} for c in containers]},
            "status": {"phase": phase}}


@dataclass
class FakeCluster:
    """Agents whose counters advance by fixed amounts every scrape; `clock` is the scrape time."""

    nodes: list[Obj]
    pods: list[Obj]
    step: int = 0
    down: frozenset[str] = frozenset()

    def now(self) -> int:
        return T0 + self.step * 15 * S

    async def fetch(self, node: str) -> str:
        if node in self.down:
            raise ConnectionRefusedError("agent down")
        t = self.now()
        k = self.step
        containers = [(p["metadata"]["namespace"], p["metadata"]["name"], c["name"], 10.0 + 0.75 * k, 20 << 20, T0 - 3600 * S)
                      for p in self.pods if p["spec"]["nodeName"] == node for c in p["spec"]["containers"]]
        return snapshot_text(t, 100.0 + 1.5 * k, 512 << 20, containers)

    async def list_nodes(self) -> list[Obj]:
        return self.nodes

    async def list_pods(self) -> list[Obj]:
        return self.pods

    async def scrape(self, api: MetricsAPI, times: int = 2) -> None:
        for _ in range(times):
            await api.scrape_once()
            self.step += 1


def fake_api(cluster: FakeCluster) -> MetricsAPI:
    return MetricsAPI(cluster.fetch, cluster.list_nodes, cluster.list_pods, interval=15.0)


def cluster() -> FakeCluster:
    return FakeCluster(
        nodes=[node_obj("n2", labels={"zone": "b"}), node_obj("n1", labels={"zone": "a"}), node_obj("n3", ready=False)],
        pods=[pod_obj("default", "web", "n1", ["app", "log"], {"app": "web"}),
              pod_obj("default", "api", "n2", ["main"], {"app": "api"}),
              pod_obj("kube-system", "dns", "n1", ["dns"]),
              pod_obj("default", "done", "n1", ["job"], phase="Succeeded")])


async def test_node_metrics_list_and_get() -> None:
    c = cluster()
    api = fake_api(c)
    await c.scrape(api)
    lst = await api.node_metrics(USER, ReadRequest("", ""))
    assert lst["kind"] == "NodeMetricsList" and lst["apiVersion"] == "metrics.k8s.io/v1beta1"
    assert [i["metadata"]["name"] for i in lst["items"]] == ["n1", "n2"]  # n3 is not Ready: never scraped
    n1 = lst["items"][0]
    assert n1["usage"] == {"cpu": "100m", "memory": "512Mi"}  # BinarySI canonical: largest exact suffix
    assert n1["window"] == "15s" and n1["timestamp"] == "2023-11-14T22:13:35Z"
    assert n1["metadata"]["labels"] == {"zone": "a"}
    got = await api.node_metrics(USER, ReadRequest("", "n2"))
    assert got["kind"] == "NodeMetrics" and got["metadata"]["name"] == "n2"
    by_label = await api.node_metrics(USER, ReadRequest("", "", label_selector="zone=b"))
    assert [i["metadata"]["name"] for i in by_label["items"]] == ["n2"]


@pytest.mark.parametrize("name,message", [
    pytest.param("n3", 'nodemetrics.metrics.k8s.io "n3" not found', id="no-metrics-yet"),
    pytest.param("nope", 'node "nope" not found', id="no-such-node"),
])
async def test_node_metrics_not_found(name: str, message: str) -> None:
    c = cluster()
    api = fake_api(c)
    await c.scrape(api)
    with pytest.raises(ApiError) as e:
        await api.node_metrics(USER, ReadRequest("", name))
    assert (e.value.code, e.value.message) == (404, message)


async def test_pod_metrics_list_get_and_selectors() -> None:
    c = cluster()
    api = fake_api(c)
    await c.scrape(api)
    everywhere = await api.pod_metrics(USER, ReadRequest("", ""))
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere["items"]] == [
        ("default", "api"), ("default", "web"), ("kube-system", "dns")]  # the Succeeded pod has none
    web = (await api.pod_metrics(USER, ReadRequest("default", "web")))
    assert web["containers"] == [{"name": "app", "usage": {"cpu": "50m", "memory": "20Mi"}},
                                 {"name": "log", "usage": {"cpu": "50m", "memory": "20Mi"}}]
    assert web["metadata"]["labels"] == {"app": "web"} and web["window"] == "15s"
    labelled = await api.pod_metrics(USER, ReadRequest("default", "", label_selector="app in (web)"))
    assert [i["metadata"]["name"] for i in labelled["items"]] == ["web"]
    by_name = await api.pod_metrics(USER, ReadRequest("default", "", field_selector="metadata.name=api"))
    assert [i["metadata"]["name"] for i in by_name["items"]] == ["api"]


@pytest.mark.parametrize("ns,name,message", [
    pytest.param("default", "done", 'podmetrics.metrics.k8s.io "default/done" not found', id="not-running"),
    pytest.param("default", "ghost", 'pods "ghost" not found', id="no-such-pod"),
])
async def test_pod_metrics_not_found(ns: str, name: str, message: str) -> None:
    c = cluster()
    api = fake_api(c)
    await c.scrape(api)
    with pytest.raises(ApiError) as e:
        await api.pod_metrics(USER, ReadRequest(ns, name))
    assert (e.value.code, e.value.message) == (404, message)


async def test_a_node_that_stops_answering_loses_its_metrics() -> None:
    c = cluster()
    api = fake_api(c)
    await c.scrape(api)
    c.down = frozenset({"n2"})
    await c.scrape(api, times=1)
    names = [i["metadata"]["name"] for i in (await api.node_metrics(USER, ReadRequest("", "")))["items"]]
    assert names == ["n1"]
    pods = [i["metadata"]["name"] for i in (await api.pod_metrics(USER, ReadRequest("default", "")))["items"]]
    assert pods == ["web"]


async def test_no_metrics_after_a_single_scrape() -> None:
    c = cluster()
    api = fake_api(c)
    await c.scrape(api, times=1)
    assert (await api.node_metrics(USER, ReadRequest("", "")))["items"] == []


async def test_table_for_kubectl_get() -> None:
    c = cluster()
    api = fake_api(c)
    await c.scrape(api)
    t = await api.pod_metrics(USER, ReadRequest("default", "", as_table=True))
    assert [col["name"] for col in t["columnDefinitions"]] == ["Name", "cpu", "memory", "Window"]
    assert t["rows"][1]["cells"] == ["web", "100m", "40Mi", "15s"]  # summed over its two containers


# --- over HTTP, with the real kubectl ------------------------------------------------------------------------


@dataclass
class Served:
    plane: ControlPlane
    metrics: MetricsAPI
    cluster: FakeCluster
    env: dict[str, str]
    port: int


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    ready: asyncio.Future[ControlPlane] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    config = ServerConfig(data_dir=tmp_path / "data", port=free_port(), bind="127.0.0.1")
    task = asyncio.create_task(serve(config, on_ready=ready.set_result, stop=stop))
    waiters: set[asyncio.Future[Any]] = {ready, task}
    done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    plane = ready.result()
    try:
        nodes_reg = plane.registries[("", "nodes")]
        pods_reg = plane.registries[("", "pods")]
        opts = WriteOptions(field_manager="test")
        c = cluster()
        for n in c.nodes:
            await nodes_reg.create("", n, opts)
        for p in c.pods:
            await pods_reg.create(p["metadata"]["namespace"], {k: v for k, v in p.items() if k != "status"}, opts)
            phase = p["status"]["phase"]

            def running(o: Obj, phase: str = phase) -> Obj:
                o["status"] = {"phase": phase}
                return o

            await pods_reg.guaranteed_update(p["metadata"]["namespace"], p["metadata"]["name"], running,
                                             WriteOptions(field_manager="test", subresource="status"))

        async def list_of(kind: tuple[str, str]) -> list[Obj]:
            items: list[Obj] = (await plane.registries[kind].list("", ListOptions()))["items"]
            return items

        c.nodes = await list_of(("", "nodes"))
        c.pods = await list_of(("", "pods"))
        metrics = MetricsAPI(c.fetch, lambda: list_of(("", "nodes")), lambda: list_of(("", "pods")), interval=15.0)
        install(plane.api, metrics)
        (tmp_path / "home").mkdir()
        env = {**os.environ, "KUBECONFIG": str(config.data_dir / "kubeconfig.yaml"), "HOME": str(tmp_path / "home")}
        yield Served(plane, metrics, c, env, config.port)
    finally:
        stop.set()
        await task


async def kubectl(s: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, ["kubectl", *args], capture_output=True, text=True, env=s.env,
                                   timeout=60)


def table_rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()]


needs_kubectl = pytest.mark.skipif(not have_kubectl(), reason="kubectl not installed")


@needs_kubectl
async def test_kubectl_top(served: Served) -> None:
    before = await kubectl(served, "top", "nodes")
    assert before.returncode != 0  # discovery works, but no node has two scrapes yet
    await served.cluster.scrape(served.metrics)
    nodes = await kubectl(served, "top", "nodes")
    assert nodes.returncode == 0, nodes.stderr
    rows = table_rows(nodes.stdout)
    assert rows[0] == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert rows[1] == ["n1", "100m", "5%", "512Mi", "12%"]
    assert rows[2] == ["n2", "100m", "5%", "512Mi", "12%"]
    pods = await kubectl(served, "top", "pods")
    assert pods.returncode == 0, pods.stderr
    assert table_rows(pods.stdout) == [["NAME", "CPU(cores)", "MEMORY(bytes)"], ["api", "50m", "20Mi"],
                                       ["web", "100m", "40Mi"]]
    containers = await kubectl(served, "top", "pod", "web", "--containers")
    assert containers.returncode == 0, containers.stderr
    assert table_rows(containers.stdout)[1:] == [["web", "app", "50m", "20Mi"], ["web", "log", "50m", "20Mi"]]
    everywhere = await kubectl(served, "top", "pods", "-A", "-l", "app")
    assert [r[1] for r in table_rows(everywhere.stdout)[1:]] == ["api", "web"]


@needs_kubectl
async def test_kubectl_sees_the_group_and_upstream_errors(served: Served) -> None:
    await served.cluster.scrape(served.metrics)
    resources = await kubectl(served, "api-resources", "--api-group=metrics.k8s.io", "-o", "wide")
    assert resources.returncode == 0, resources.stderr
    rows = {r[0]: r for r in table_rows(resources.stdout)[1:]}
    assert rows["nodes"][1:4] == ["metrics.k8s.io/v1beta1", "false", "NodeMetrics"]
    assert rows["pods"][1:4] == ["metrics.k8s.io/v1beta1", "true", "PodMetrics"]
    assert rows["pods"][4] == "get,list"
    missing = await kubectl(served, "top", "node", "n3")
    assert missing.returncode != 0
    assert 'Error from server (NotFound): nodemetrics.metrics.k8s.io "n3" not found' in missing.stderr
    done = await kubectl(served, "top", "pod", "done")
    assert 'podmetrics.metrics.k8s.io "default/done" not found' in done.stderr
    raw = await kubectl(served, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods/dns")
    pm: dict[str, Any] = json.loads(raw.stdout)
    assert pm["kind"] == "PodMetrics" and pm["containers"] == [{"name": "dns", "usage": {"cpu": "50m", "memory": "20Mi"}}]
    watch = await kubectl(served, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/pods?watch=true")
    assert watch.returncode != 0  # get and list only, as metrics-server


@pytest.mark.parametrize("method,path,code", [
    pytest.param("POST", "/apis/metrics.k8s.io/v1beta1/nodes", 405, id="create-not-allowed"),
    pytest.param("DELETE", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web", 405, id="delete-not-allowed"),
    pytest.param("GET", "/apis/metrics.k8s.io/v1beta1/nodes/n1/status", 404, id="no-subresources"),
    pytest.param("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web", 200, id="namespaced-get"),
])
async def test_read_only_routing(served: Served, method: str, path: str, code: int) -> None:
    await served.cluster.scrape(served.metrics)
    data = Path(served.env["KUBECONFIG"]).parent
    ctx = ssl.create_default_context(cafile=str(data / "tls" / "ca.crt"))
    token = (data / "tls" / "admin.token").read_text().strip()
    async with aiohttp.ClientSession() as session, session.request(
            method, f"https://127.0.0.1:{served.port}{path}", ssl=ctx,
            headers={"Authorization": f"Bearer {token}"}) as r:
        body = await r.json()
    assert r.status == code
    assert body["kind"] == ("PodMetrics" if code == 200 else "Status")
