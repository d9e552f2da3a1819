"""The kubelet's `/metrics/resource` endpoint: node, pod and container CPU/memory in Prometheus text format.

Upstream: `pkg/kubelet/metrics/collectors/resource_metrics.go`. What a scraper (metrics-server, or skiff's
`apiserver/metrics_api.py`) relies on, and this module reproduces:

* metric names, HELP texts with the stability prefix, and label names (`container`, `namespace`, `pod`);
* counters/gauges carry the measurement time as a millisecond timestamp, except `container_start_time_seconds`;
* CPU is in core-seconds, memory in bytes, values printed as Go's `strconv.FormatFloat(v, 'g', -1, 64)`;
* families are sorted by name and samples by label values (client_golang's gatherer), empty families omitted;
* when collecting fails, only `scrape_error 1` / `resource_scrape_error 1` are served.

Pod figures are the sums of the pod's containers (the kubelet reads the pod cgroup; the pause container's
share is negligible and not reported by CRI stats).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

from aiohttp import web

from skiff.agent.runtime.interface import Runtime
from skiff.agent.stats import ContainerUsage, NodeStatsReader, NodeUsage, container_usage

log = logging.getLogger("skiff.agent.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NS = 1_000_000_000

# name → (type, HELP text as component-base renders it)
_FAMILIES: dict[str, tuple[str, str]] = {
    "container_cpu_usage_seconds_total": ("counter", "[STABLE] Cumulative cpu time consumed by the container in core-seconds"),
    "container_memory_working_set_bytes": ("gauge", "[STABLE] Current working set of the container in bytes"),
    "container_start_time_seconds": ("gauge", "[STABLE] Start time of the container since unix epoch in seconds"),
    "node_cpu_usage_seconds_total": ("counter", "[STABLE] Cumulative cpu time consumed by the node in core-seconds"),
    "node_memory_working_set_bytes": ("gauge", "[STABLE] Current working set of the node in bytes"),
    "pod_cpu_usage_seconds_total": ("counter", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds"),
    "pod_memory_working_set_bytes": ("gauge", "[STABLE] Current working set of the pod in bytes"),
    "resource_scrape_error": ("gauge", "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise"),
    "scrape_error": ("gauge", "[ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise"),
}


@dataclass(frozen=True)
class ResourceSnapshot:
    """One collection of the node's usage; `error` means collecting failed (nothing else is served)."""

    node: NodeUsage | None = None
    containers: list[ContainerUsage] = field(default_factory=list)
    error: bool = False


@dataclass(frozen=True)
class _Sample:
    labels: tuple[tuple[str, str], ...]
    value: float
    timestamp_ms: int | None


def go_float(value: float) -> str:
    """A sample value as client_golang's text encoder writes it: `strconv.AppendFloat(v, 'g', -1, 64)`
    (shortest round-trip digits; exponent form when the decimal exponent is < -4 or >= 6, e.g.
    `1.4270464e+07`), with `0`, `NaN`, `+Inf`, `-Inf` spelled out (`expfmt/text_create.go` writeFloat)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    t = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(str(d) for d in t.digits)
    exp10 = len(digits) + int(t.exponent) - 1  # decimal exponent of the first digit
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if exp10 >= len(digits) - 1:
        return sign + digits + "0" * (exp10 - len(digits) + 1)
    if exp10 >= 0:
        return f"{sign}{digits[:exp10 + 1]}.{digits[exp10 + 1:]}"
    return f"{sign}0.{'0' * (-exp10 - 1)}{digits}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _ms(ns: int) -> int:
    return ns // 1_000_000


def _families(snap: ResourceSnapshot) -> dict[str, list[_Sample]]:
    """The samples of each family (pure): the translation of upstream's CollectWithStability."""
    fams: dict[str, list[_Sample]] = {name: [] for name in _FAMILIES}
    err = 1.0 if snap.error else 0.0
    fams["scrape_error"].append(_Sample((), err, None))
    fams["resource_scrape_error"].append(_Sample((), err, None))
    if snap.error:
        return fams
    node = snap.node
    if node is not None:
        if node.cpu_core_ns is not None:
            fams["node_cpu_usage_seconds_total"].append(_Sample((), node.cpu_core_ns / _NS, _ms(node.timestamp_ns)))
        if node.memory_working_set_bytes is not None:
            fams["node_memory_working_set_bytes"].append(
                _Sample((), float(node.memory_working_set_bytes), _ms(node.timestamp_ns)))
    pods: dict[tuple[str, str], list[ContainerUsage]] = {}
    for c in snap.containers:
        pods.setdefault((c.namespace, c.pod), []).append(c)
        labels: tuple[tuple[str, str], ...] = (("container", c.container), ("namespace", c.namespace), ("pod", c.pod))
        if c.start_time_ns > 0:
            fams["container_start_time_seconds"].append(_Sample(labels, c.start_time_ns / _NS, None))
        fams["container_cpu_usage_seconds_total"].append(_Sample(labels, c.cpu_core_ns / _NS, _ms(c.timestamp_ns)))
        fams["container_memory_working_set_bytes"].append(
            _Sample(labels, float(c.memory_working_set_bytes), _ms(c.timestamp_ns)))
    for (ns, pod), cs in pods.items():
        pod_labels = (("namespace", ns), ("pod", pod))
        ts = _ms(max(c.timestamp_ns for c in cs))
        fams["pod_cpu_usage_seconds_total"].append(_Sample(pod_labels, sum(c.cpu_core_ns for c in cs) / _NS, ts))
        fams["pod_memory_working_set_bytes"].append(
            _Sample(pod_labels, float(sum(c.memory_working_set_bytes for c in cs)), ts))
    return fams


def render(snap: ResourceSnapshot) -> str:
    """The `/metrics/resource` body for one snapshot (pure)."""
    out: list[str] = []
    fams = _families(snap)
    for name in sorted(fams):
        samples = sorted(fams[name], key=lambda s: tuple(v for _, v in s.labels))
        if not samples:
            continue
        kind, help_text = _FAMILIES[name]
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for s in samples:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in s.labels)
            line = f"{name}{{{labels}}}" if labels else name
            line += " " + go_float(s.value)
            if s.timestamp_ms is not None:
                line += f" {s.timestamp_ms}"
            out.append(line)
    return "\n".join(out) + "\n"


Collect = Callable[[], Awaitable[ResourceSnapshot]]


def resource_metrics_handler(collect: Collect) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp GET handler serving `collect()`'s snapshot; a failing `collect` is served as a
    scrape error (200 with `scrape_error 1`), as the kubelet does, and logged."""

    async def handler(request: web.Request) -> web.Response:
        try:
            snap = await collect()
        except Exception:
            log.exception("collecting resource metrics failed")
            snap = ResourceSnapshot(error=True)
        return web.Response(body=render(snap).encode(), headers={"Content-Type": CONTENT_TYPE})

    return handler


def snapshot_collector(reader: NodeStatsReader, runtime: Runtime) -> Collect:
    """The agent's `collect`: node usage from the host files, container usage from the runtime; any
    failure makes the whole snapshot an error, as upstream's summary provider fails as a whole."""

    async def collect() -> ResourceSnapshot:
        try:
            node = await reader.node_usage()
            containers = await container_usage(runtime)
        except Exception:
            log.exception("collecting resource metrics failed")
            return ResourceSnapshot(error=True)
        return ResourceSnapshot(node=node, containers=containers)

    return collect
