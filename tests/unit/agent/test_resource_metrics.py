"""The kubelet `/metrics/resource` text: value formatting, the exact exposition, the aiohttp handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from skiff.agent.metrics import (
    CONTENT_TYPE,
    ResourceSnapshot,
    go_float,
    render,
    resource_metrics_handler,
    snapshot_collector,
)
from skiff.agent.runtime.interface import ContainerStats, ContainerStatus, RuntimeError_
from skiff.agent.stats import ContainerUsage, NodeStatsReader, NodeUsage


@pytest.mark.parametrize("value,want", [
    pytest.param(0.0, "0", id="zero"),
    pytest.param(-0.0, "0", id="negative-zero"),
    pytest.param(1.0, "1", id="one"),
    pytest.param(2.505445, "2.505445", id="plain-decimal"),
    pytest.param(357.35491, "357.35491", id="seconds"),
    pytest.param(100000.0, "100000", id="below-exponent-threshold"),
    pytest.param(1e6, "1e+06", id="exponent-at-six"),
    pytest.param(14270464.0, "1.4270464e+07", id="bytes-as-go-prints-them"),
    pytest.param(1.103396864e9, "1.103396864e+09", id="node-memory"),
    pytest.param(1.6521962e9, "1.6521962e+09", id="start-time"),
    pytest.param(0.0001, "0.0001", id="small-fixed"),
    pytest.param(0.00001, "1e-05", id="small-exponent"),
    pytest.param(-2.5, "-2.5", id="negative"),
    pytest.param(float("inf"), "+Inf", id="inf"),
    pytest.param(float("nan"), "NaN", id="nan"),
])
def test_go_float(value: float, want: str) -> None:
    assert go_float(value) == want


NODE = NodeUsage(timestamp_ns=1652198153670_123456, cpu_core_ns=357354910000, memory_working_set_bytes=1103396864)
WEB_APP = ContainerUsage("default", "web", "app", 1652196200_000000000, 1652198155235_000000, 2505445000, 14270464)
WEB_SIDE = ContainerUsage("default", "web", "sidecar", 0, 1652198155000_000000, 500000000, 4096)
DNS = ContainerUsage("kube-system", "coredns", "coredns", 1652196000_500000000, 1652198155100_000000, 1000000000, 1 << 20)

EXPECTED = """\
# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="app",namespace="default",pod="web"} 2.505445 1652198155235
container_cpu_usage_seconds_total{container="coredns",namespace="kube-system",pod="coredns"} 1 1652198155100
container_cpu_usage_seconds_total{container="sidecar",namespace="default",pod="web"} 0.5 1652198155000
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="app",namespace="default",pod="web"} 1.4270464e+07 1652198155235
container_memory_working_set_bytes{container="coredns",namespace="kube-system",pod="coredns"} 1.048576e+06 1652198155100
container_memory_working_set_bytes{container="sidecar",namespace="default",pod="web"} 4096 1652198155000
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="app",namespace="default",pod="web"} 1.6521962e+09
container_start_time_seconds{container="coredns",namespace="kube-system",pod="coredns"} 1.6521960005e+09
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 357.35491 1652198153670
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1.103396864e+09 1652198153670
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="default",pod="web"} 3.005445 1652198155235
pod_cpu_usage_seconds_total{namespace="kube-system",pod="coredns"} 1 1652198155100
# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{namespace="default",pod="web"} 1.427456e+07 1652198155235
pod_memory_working_set_bytes{namespace="kube-system",pod="coredns"} 1.048576e+06 1652198155100
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
# HELP scrape_error [ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise
# TYPE scrape_error gauge
scrape_error 0
"""

ERROR_ONLY = """\
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 1
# HELP scrape_error [ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise
# TYPE scrape_error gauge
scrape_error 1
"""


def test_render_matches_the_kubelet_layout() -> None:
    """Families sorted by name, samples by label values, ms timestamps, no timestamp on start times, and
    no start time for a container that reports none (sidecar)."""
    assert render(ResourceSnapshot(NODE, [WEB_SIDE, DNS, WEB_APP])) == EXPECTED


def test_render_error_serves_only_the_error_gauges() -> None:
    assert render(ResourceSnapshot(NODE, [WEB_APP], error=True)) == ERROR_ONLY


def test_render_leaves_out_unknown_node_figures_and_empty_families() -> None:
    text = render(ResourceSnapshot(NodeUsage(5_000_000, None, 42), []))
    assert "node_cpu_usage_seconds_total" not in text
    assert "node_memory_working_set_bytes 42 5\n" in text
    assert "container_" not in text and "pod_" not in text


def test_label_values_are_escaped() -> None:
    odd = ContainerUsage('n"s', "p\\o", "c\nx", 0, 1_000_000, 1_000_000_000, 1)
    assert 'container_cpu_usage_seconds_total{container="c\\nx",namespace="n\\"s",pod="p\\\\o"} 1 1\n' in render(
        ResourceSnapshot(None, [odd]))


async def _get(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> tuple[int, str, str]:
    app = web.Application()
    app.router.add_get("/metrics/resource", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as s, s.get(server.make_url("/metrics/resource")) as r:
            return r.status, r.headers["Content-Type"], await r.text()
    finally:
        await server.close()


async def test_handler_serves_the_snapshot() -> None:
    async def collect() -> ResourceSnapshot:
        return ResourceSnapshot(NODE, [WEB_SIDE, DNS, WEB_APP])

    status, ctype, body = await _get(resource_metrics_handler(collect))
    assert (status, ctype, body) == (200, CONTENT_TYPE, EXPECTED)


async def test_handler_turns_a_failing_collect_into_scrape_error() -> None:
    async def collect() -> ResourceSnapshot:
        raise OSError("boom")

    status, _, body = await _get(resource_metrics_handler(collect))
    assert (status, body) == (200, ERROR_ONLY)


class DownRuntime:
    async def list_containers(self, sandbox_id: str = "") -> list[ContainerStatus]:
        raise RuntimeError_("ListContainersError", "containerd is not running")

    async def container_stats(self, container_ids: list[str]) -> list[ContainerStats]:
        return []


class EmptyRuntime(DownRuntime):
    async def list_containers(self, sandbox_id: str = "") -> list[ContainerStatus]:
        return []


async def test_collector_reads_node_and_runtime(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/stat").write_text("cpu  100 0 100 5000\n")
    (tmp_path / "proc/meminfo").write_text("MemTotal: 2048 kB\nMemAvailable: 1024 kB\n")
    snap = await snapshot_collector(NodeStatsReader(tmp_path, user_hz=100), EmptyRuntime())()  # type: ignore[arg-type]
    assert not snap.error and snap.containers == []
    assert snap.node is not None and (snap.node.cpu_core_ns, snap.node.memory_working_set_bytes) == (2 * 10**9, 1 << 20)


async def test_collector_reports_a_runtime_failure_as_error(tmp_path: Path) -> None:
    snap = await snapshot_collector(NodeStatsReader(tmp_path, user_hz=100), DownRuntime())()  # type: ignore[arg-type]
    assert snap.error
    assert render(snap) == ERROR_ONLY
