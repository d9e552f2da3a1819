"""`metrics.k8s.io/v1beta1` (what `kubectl top` reads), served by the API server itself.

Upstream runs metrics-server as an aggregated API; skiff folds the same algorithm into the server
(`kubernetes-sigs/metrics-server`, `pkg/scraper/client/resource/decode.go`, `pkg/storage/{node,pod,types}.go`,
`pkg/api/{node,pod}.go`):

* every `interval` each Ready node's kubelet `/metrics/resource` text is fetched (`fetch(node_name)`, the
  integrator's transport to the agent) and decoded into cumulative points;
* the last two points per node / container are kept; usage is `Δcpu / Δt` (nanocores) over the window
  `Δt`, memory is the last working set; a container that restarted starts over;
* a node or pod without two usable points has no metrics: left out of lists, NotFound on get
  (`nodemetrics.metrics.k8s.io "n1" not found`, `podmetrics.metrics.k8s.io "default/web" not found`);
* pods are those of `pods()` in phase Running, filtered by label and field selectors, sorted by
  namespace/name, with the pod's labels; nodes are those of `nodes()`, sorted by name.

Quantities are rendered as apimachinery would for metrics-server's scaled values: CPU as DecimalSI at nano
scale (`250m`, `1234567n`, `2`), memory as BinarySI (`1024Ki`, `20Mi`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from skiff.api import errors
from skiff.api.meta import Obj, rfc3339
from skiff.api.quantity import parse_quantity
from skiff.api.resources import ResourceInfo
from skiff.api.selectors import SelectorError, field_matcher, label_matcher, parse_field_selector
from skiff.apiserver.auth import UserInfo

if TYPE_CHECKING:
    from skiff.apiserver.http import APIServer, ReadRequest

log = logging.getLogger("skiff.apiserver.metrics")

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
GET_LIST = ("get", "list")
NODE_METRICS = ResourceInfo(GROUP, VERSION, "NodeMetrics", "nodes", "nodemetrics", False, verbs=GET_LIST)
POD_METRICS = ResourceInfo(GROUP, VERSION, "PodMetrics", "pods", "podmetrics", True, verbs=GET_LIST)
# A container younger than this at its first scrape gets no synthetic zero point (metrics-server's
# freshContainerMinMetricsResolution: a shorter window gives inaccurate rates).
FRESH_CONTAINER_MIN_NS = 10 * 1_000_000_000
_SCALE_SUFFIX = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BINARY_SUFFIX = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]


# ------------------------------------------------------------------------------------ Prometheus text


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float
    timestamp_ms: int | None


class ParseError(ValueError):
    pass


def _parse_labels(text: str, pos: int) -> tuple[dict[str, str], int]:
    """Labels from just after `{` to just after `}` (exposition format 0.0.4, escapes `\\\\ \\" \\n`)."""
    labels: dict[str, str] = {}
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t,":
            pos += 1
        if pos < n and text[pos] == "}":
            return labels, pos + 1
        eq = text.find("=", pos)
        if eq < 0 or eq + 1 >= n or text[eq + 1] != '"':
            raise ParseError(f"bad label at {text[pos:]!r}")
        key = text[pos:eq].strip()
        pos, out = eq + 2, []
        while True:
            if pos >= n:
                raise ParseError("unterminated label value")
            ch = text[pos]
            if ch == "\\" and pos + 1 < n:
                out.append({"n": "\n", "\\": "\\", '"': '"'}.get(text[pos + 1], "\\" + text[pos + 1]))
                pos += 2
            elif ch == '"':
                pos += 1
                break
            else:
                out.append(ch)
                pos += 1
        labels[key] = "".join(out)


def parse_prometheus_text(text: str) -> list[Sample]:
    """Samples of a text exposition (comments and blank lines skipped). Raises ParseError."""
    out: list[Sample] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace >= 0 and (space < 0 or brace < space):
            name = line[:brace]
            labels, pos = _parse_labels(line, brace + 1)
            rest = line[pos:].split()
        else:
            name, labels = line.split()[0], {}
            rest = line.split()[1:]
        if not rest or len(rest) > 2:
            raise ParseError(f"bad sample line {raw!r}")
        try:
            value = float(rest[0])
            ts = int(rest[1]) if len(rest) == 2 else None
        except ValueError:
            raise ParseError(f"bad sample line {raw!r}") from None
        out.append(Sample(name, labels, value, ts))
    return out


# ------------------------------------------------------------------------------------ points and usage


@dataclass(frozen=True)
class Point:
    """One measurement: cumulative CPU (core-ns) and working set, at `timestamp_ns`."""

    timestamp_ns: int = 0
    cpu_ns: int = 0
    memory: int = 0
    start_ns: int = 0  # container start (Unix ns); 0 for nodes and when unknown


PodKey = tuple[str, str]  # (namespace, name)


@dataclass
class Batch:
    nodes: dict[str, Point] = field(default_factory=dict)
    pods: dict[PodKey, dict[str, Point]] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    cpu_nanocores: int
    memory: int
    timestamp_ns: int
    window_ns: int


def decode_batch(text: str, node: str, now_ns: int) -> Batch:
    """A node's `/metrics/resource` as points (metrics-server decode.go): samples without a timestamp get
    `now_ns`; a node point needs its time, CPU and memory non-zero; a pod is kept only when every one of its
    containers has non-zero CPU and memory."""
    default_ms = now_ns // 1_000_000
    node_point = Point()
    pods: dict[PodKey, dict[str, Point]] = {}
    for s in parse_prometheus_text(text):
        ts_ns = (s.timestamp_ms if s.timestamp_ms is not None else default_ms) * 1_000_000
        if s.name == "node_cpu_usage_seconds_total":
            node_point = replace(node_point, cpu_ns=int(s.value * 1e9), timestamp_ns=ts_ns)
        elif s.name == "node_memory_working_set_bytes":
            node_point = replace(node_point, memory=int(s.value), timestamp_ns=ts_ns)
        elif s.name in ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
                        "container_start_time_seconds"):
            key = (s.labels.get("namespace", ""), s.labels.get("pod", ""))
            containers = pods.setdefault(key, {})
            cname = s.labels.get("container", "")
            p = containers.get(cname, Point())
            if s.name == "container_cpu_usage_seconds_total":
                p = replace(p, cpu_ns=int(s.value * 1e9), timestamp_ns=ts_ns)
            elif s.name == "container_memory_working_set_bytes":
                p = replace(p, memory=int(s.value), timestamp_ns=ts_ns)
            else:
                p = replace(p, start_ns=int(s.value * 1e9))
            containers[cname] = p
    batch = Batch()
    if node_point.timestamp_ns and node_point.cpu_ns and node_point.memory:
        batch.nodes[node] = node_point
    for key, containers in pods.items():
        if containers and all(p.cpu_ns and p.memory for p in containers.values()):
            batch.pods[key] = containers
    return batch


def resource_usage(last: Point, prev: Point) -> Usage | None:
    """Rate between two points of one node/container; None when they cannot be compared (a restart, or a
    counter that went backwards), which metrics-server logs and skips."""
    if last.start_ns < prev.start_ns or last.cpu_ns < prev.cpu_ns:
        return None
    window = last.timestamp_ns - prev.timestamp_ns
    if window <= 0:
        return None
    nanocores = int((last.cpu_ns - prev.cpu_ns) / (window / 1e9))
    return Usage(nanocores, last.memory, last.timestamp_ns, window)


class NodeStore:
    """The last two points of each node (metrics-server's nodeStorage): a batch replaces the set of nodes."""

    def __init__(self) -> None:
        self.last: dict[str, Point] = {}
        self.prev: dict[str, Point] = {}

    def store(self, nodes: dict[str, Point]) -> None:
        last: dict[str, Point] = {}
        prev: dict[str, Point] = {}
        for name, new in nodes.items():
            last[name] = new
            old = self.last.get(name)
            if old is None:
                continue
            if new.timestamp_ns > old.timestamp_ns:
                prev[name] = old
            elif (p := self.prev.get(name)) is not None and p.timestamp_ns < new.timestamp_ns:
                prev[name] = p
        self.last, self.prev = last, prev

    def usage(self, name: str) -> Usage | None:
        last, prev = self.last.get(name), self.prev.get(name)
        if last is None or prev is None:
            return None
        return resource_usage(last, prev)


class PodStore:
    """The last two points of each container (metrics-server's podStorage), restarts detected by start time."""

    def __init__(self, resolution_ns: int) -> None:
        self.resolution_ns = resolution_ns
        self.last: dict[PodKey, dict[str, Point]] = {}
        self.prev: dict[PodKey, dict[str, Point]] = {}

    def store(self, pods: dict[PodKey, dict[str, Point]]) -> None:
        last: dict[PodKey, dict[str, Point]] = {}
        prev: dict[PodKey, dict[str, Point]] = {}
        for key, containers in pods.items():
            new_prev: dict[str, Point] = {}
            old_last = self.last.get(key, {})
            old_prev = self.prev.get(key, {})
            for name, new in containers.items():
                age = new.timestamp_ns - new.start_ns
                if new.start_ns and 0 < age < self.resolution_ns and age >= FRESH_CONTAINER_MIN_NS:
                    # Young container: it had 0 CPU at its start, which is a valid first point.
                    new_prev[name] = replace(new, timestamp_ns=new.start_ns, cpu_ns=0)
                    continue
                old = old_last.get(name)
                if old is None or not new.start_ns < old.timestamp_ns:
                    continue  # new container, or restarted since the stored point
                if new.timestamp_ns > old.timestamp_ns:
                    new_prev[name] = old
                elif (p := old_prev.get(name)) is not None and p.timestamp_ns < new.timestamp_ns:
                    new_prev[name] = p
            if new_prev:
                prev[key] = new_prev
            last[key] = dict(containers)
        self.last, self.prev = last, prev

    def usage(self, key: PodKey) -> tuple[dict[str, Usage], int, int] | None:
        """(usage by container, timestamp_ns, window_ns) of the earliest container point, or None when
        some container lacks a previous point. Containers whose rate cannot be computed are left out."""
        last, prev = self.last.get(key), self.prev.get(key)
        if last is None or prev is None:
            return None
        out: dict[str, Usage] = {}
        earliest: Usage | None = None
        for name, point in last.items():
            before = prev.get(name)
            if before is None:
                return None
            u = resource_usage(point, before)
            if u is None:
                continue
            out[name] = u
            if earliest is None or u.timestamp_ns < earliest.timestamp_ns:
                earliest = u
        if earliest is None:
            return out, 0, 0
        return out, earliest.timestamp_ns, earliest.window_ns


# ------------------------------------------------------------------------------------ formatting


def format_nanocores(n: int) -> str:
    """`resource.NewScaledQuantity(n, resource.Nano)` in DecimalSI canonical form: trailing zeros folded into
    the largest exponent that is a multiple of 3 (`250000000` → `250m`, `1234567` → `1234567n`)."""
    if n == 0:
        return "0"
    exponent = -9
    while n % 10 == 0:
        n //= 10
        exponent += 1
    shift = exponent % 3
    n *= 10**shift
    exponent -= shift
    if exponent > 18:
        n *= 10 ** (exponent - 18)
        exponent = 18
    return f"{n}{_SCALE_SUFFIX[exponent]}"


def format_memory(n: int) -> str:
    """Bytes as BinarySI canonical: the largest exact power-of-1024 suffix (`1048576` → `1Mi`); values
    below 1024 fall back to DecimalSI as apimachinery does (`0`, `512`, `1k`)."""
    if -1024 < n < 1024:
        return format_nanocores(n * 1_000_000_000)
    power = 0
    while n % 1024 == 0 and power < len(_BINARY_SUFFIX) - 1:
        n //= 1024
        power += 1
    return f"{n}{_BINARY_SUFFIX[power]}"


def go_duration(ns: int) -> str:
    """Go's `time.Duration.String()` (`15s`, `14.998s`, `1m0.5s`, `500ms`), as metav1.Duration serializes."""
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < 1_000_000_000:
        if u < 1000:
            return f"{sign}{u}ns"
        unit, div, width = ("µs", 1000, 3) if u < 1_000_000 else ("ms", 1_000_000, 6)
        whole, frac = divmod(u, div)
        digits = f"{frac:0{width}d}".rstrip("0")
        return f"{sign}{whole}{'.' + digits if digits else ''}{unit}"
    secs, frac = divmod(u, 1_000_000_000)
    digits = f"{frac:09d}".rstrip("0")
    hours, rem = divmod(secs, 3600)
    minutes, seconds = divmod(rem, 60)
    out = f"{seconds}{'.' + digits if digits else ''}s"
    if hours:
        out = f"{hours}h{minutes}m{out}"
    elif minutes:
        out = f"{minutes}m{out}"
    return sign + out


def _time(ns: int) -> str:
    return rfc3339(dt.datetime.fromtimestamp(ns / 1e9, dt.UTC))


def _usage(cpu_nanocores: int, memory: int) -> Obj:
    return {"cpu": format_nanocores(cpu_nanocores), "memory": format_memory(memory)}


# ------------------------------------------------------------------------------------ the API


def _node_ready(node: Obj) -> bool:
    conds = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _object_fields(obj: Obj, namespaced: bool) -> dict[str, str]:
    """generic.AddObjectMetaFieldsSet: the field selector sees metadata.name (and metadata.namespace)."""
    md = _meta(obj)
    fields = {"metadata.name": md.get("name", "")}
    if namespaced:
        fields["metadata.namespace"] = md.get("namespace", "")
    return fields


class MetricsAPI:
    """Scrapes every Ready node's resource metrics and answers the metrics.k8s.io reads from the last two
    scrapes. `fetch(node)` returns the node's `/metrics/resource` text (raising on failure); `nodes()` and
    `pods()` return the current Node and Pod objects (all namespaces)."""

    def __init__(self, fetch: Callable[[str], Awaitable[str]], nodes: Callable[[], Awaitable[list[Obj]]],
                 pods: Callable[[], Awaitable[list[Obj]]], interval: float = 15.0,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self._fetch = fetch
        self._nodes = nodes
        self._pods = pods
        self.interval = interval
        self._clock = clock
        self.node_store = NodeStore()
        self.pod_store = PodStore(int(interval * 1e9))

    # --- scraping -------------------------------------------------------------------------------------

    async def _scrape_node(self, name: str) -> Batch | None:
        try:
            text = await asyncio.wait_for(self._fetch(name), self.interval * 0.9)
            return decode_batch(text, name, self._clock())
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("scraping resource metrics of node %s failed: %s", name, e or type(e).__name__)
            return None

    async def scrape_once(self) -> None:
        """One cycle: fetch every Ready node concurrently, then store the combined batch (nodes that failed
        or are not Ready drop out, as in metrics-server)."""
        names = sorted(_meta(n).get("name", "") for n in await self._nodes() if _node_ready(n))
        results = await asyncio.gather(*(self._scrape_node(n) for n in names))
        batch = Batch()
        for r in results:
            if r is not None:
                batch.nodes.update(r.nodes)
                batch.pods.update(r.pods)
        self.node_store.store(batch.nodes)
        self.pod_store.store(batch.pods)

    async def run(self) -> None:
        """Scrape every `interval` until cancelled; a failing cycle is logged and retried next time."""
        while True:
            try:
                await self.scrape_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("metrics scrape failed")
            await asyncio.sleep(self.interval)

    # --- objects --------------------------------------------------------------------------------------

    def _node_metrics(self, node: Obj, now: str) -> Obj | None:
        md = _meta(node)
        u = self.node_store.usage(md.get("name", ""))
        if u is None:
            return None
        meta: Obj = {"name": md.get("name", ""), "creationTimestamp": now}
        if md.get("labels"):
            meta["labels"] = dict(md["labels"])
        return {"kind": "NodeMetrics", "apiVersion": API_VERSION, "metadata": meta, "timestamp": _time(u.timestamp_ns),
                "window": go_duration(u.window_ns), "usage": _usage(u.cpu_nanocores, u.memory)}

    def _pod_metrics(self, pod: Obj, now: str) -> Obj | None:
        md = _meta(pod)
        if (pod.get("status") or {}).get("phase") != "Running":
            return None
        got = self.pod_store.usage((md.get("namespace", ""), md.get("name", "")))
        if got is None:
            return None
        containers, ts, window = got
        meta: Obj = {"name": md.get("name", ""), "namespace": md.get("namespace", ""), "creationTimestamp": now}
        if md.get("labels"):
            meta["labels"] = dict(md["labels"])
        return {"kind": "PodMetrics", "apiVersion": API_VERSION, "metadata": meta,
                "timestamp": _time(ts) if ts else None, "window": go_duration(window),
                "containers": [{"name": name, "usage": _usage(u.cpu_nanocores, u.memory)}
                               for name, u in sorted(containers.items())]}

    @staticmethod
    def _selected(objs: Iterable[Obj], req: ReadRequest, namespaced: bool) -> list[Obj]:
        try:
            labels = label_matcher(req.label_selector)
            fields = field_matcher(parse_field_selector(req.field_selector))
        except SelectorError as e:
            raise errors.bad_request(str(e)) from None
        return [o for o in objs
                if (not namespaced or not req.namespace or _meta(o).get("namespace") == req.namespace)
                and labels(_meta(o).get("labels") or {}) and fields(_object_fields(o, namespaced))]

    async def node_metrics(self, user: UserInfo, req: ReadRequest) -> Obj:
        """GET …/nodes[/name]: one NodeMetrics or a NodeMetricsList (a Table when asked)."""
        now = rfc3339()
        nodes = {_meta(n).get("name", ""): n for n in await self._nodes()}
        if req.name:
            node = nodes.get(req.name)
            if node is None:
                raise errors.ApiError(404, "NotFound", f'node "{req.name}" not found',
                                      {"name": req.name, "kind": "node"})
            item = self._node_metrics(node, now)
            if item is None:
                raise errors.not_found("nodemetrics", GROUP, req.name)
            return _table([item], False) if req.as_table else item
        chosen = sorted(self._selected(nodes.values(), req, False), key=lambda n: _meta(n).get("name", ""))
        items = [m for n in chosen if (m := self._node_metrics(n, now)) is not None]
        return _table(items, False) if req.as_table else _list("NodeMetricsList", items)

    async def pod_metrics(self, user: UserInfo, req: ReadRequest) -> Obj:
        """GET …/[namespaces/ns/]pods[/name]: one PodMetrics or a PodMetricsList (a Table when asked)."""
        now = rfc3339()
        pods = await self._pods()
        if req.name:
            pod = next((p for p in pods if _meta(p).get("namespace") == req.namespace
                        and _meta(p).get("name") == req.name), None)
            if pod is None:
                raise errors.not_found("pods", "", req.name)
            item = self._pod_metrics(pod, now)
            if item is None:
                raise errors.not_found("podmetrics", GROUP, f"{req.namespace}/{req.name}")
            return _table([item], True) if req.as_table else item
        chosen = sorted(self._selected(pods, req, True),
                        key=lambda p: (_meta(p).get("namespace", ""), _meta(p).get("name", "")))
        items = [m for p in chosen if (m := self._pod_metrics(p, now)) is not None]
        return _table(items, True) if req.as_table else _list("PodMetricsList", items)


def _list(kind: str, items: list[Obj]) -> Obj:
    return {"kind": kind, "apiVersion": API_VERSION, "metadata": {}, "items": items}


def _table(items: list[Obj], pods: bool) -> Obj:
    """metrics-server's ConvertToTable: Name, cpu, memory (summed over containers for pods), Window."""
    columns: list[Obj] = [{"name": "Name", "type": "string", "format": "name", "description": "Name of the resource",
                           "priority": 0}]
    columns += [{"name": r, "type": "string", "format": "quantity", "description": "", "priority": 0}
                for r in ("cpu", "memory")]
    columns.append({"name": "Window", "type": "string", "format": "duration", "description": "", "priority": 0})
    rows = []
    for item in items:
        if pods:
            usages = [c["usage"] for c in item["containers"]]
            cpu = format_nanocores(sum(_nanocores(u["cpu"]) for u in usages))
            mem = format_memory(sum(_bytes(u["memory"]) for u in usages))
        else:
            cpu, mem = item["usage"]["cpu"], item["usage"]["memory"]
        md = item["metadata"]
        rows.append({"cells": [md["name"], cpu, mem, item["window"]],
                     "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": md}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": columns, "rows": rows}


def _nanocores(q: str) -> int:
    return int(parse_quantity(q) * 1_000_000_000)


def _bytes(q: str) -> int:
    return int(parse_quantity(q))


def install(api: APIServer, metrics: MetricsAPI) -> None:
    """Serve NodeMetrics and PodMetrics read-only; discovery then lists metrics.k8s.io/v1beta1."""
    api.add_read_only(NODE_METRICS, metrics.node_metrics)
    api.add_read_only(POD_METRICS, metrics.pod_metrics)

