"""The scheduler's view of the cluster: nodes, the pods on them and what those pods request.

Mirrors `pkg/scheduler/framework/types.go` (`NodeInfo`, `PodInfo`, `Resource`) and
`pkg/scheduler/internal/cache` (assume / forget / incremental updates). Everything a filter or score
plugin needs per pod is computed once in `PodInfo` (requests, labels, tolerations, affinity terms);
everything per node is summed incrementally in `NodeInfo`, so a scheduling cycle never rescans pods.

Every change to a node (its object or the pods on it) gives it a fresh `generation` from one
snapshot-wide counter: a result computed against generation g of a node stays valid while the node's
generation is still g. The scheduler's per-template filter cache relies on that.

Objects handed in are treated as read-only and are never copied.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING
from typing import Any

from skiff.api.quantity import QuantityError, parse_quantity
from skiff.api.selectors import Matcher, label_selector_matcher

Obj = dict[str, Any]

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL = "ephemeral-storage"
PODS = "pods"

# pkg/scheduler/util/pod_resources.go: requests assumed for scoring when a container sets none.
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

_counter = itertools.count(1)


def _amount(resource: str, value: Any) -> int:
    """A quantity as an integer in the unit the scheduler compares: millicores for cpu, else units
    (rounded up, as upstream's `Quantity.Value()`)."""
    try:
        q = parse_quantity(value)
    except QuantityError:
        return 0
    if resource == CPU:
        return int((q * 1000).to_integral_value(rounding=ROUND_CEILING))
    return int(q.to_integral_value(rounding=ROUND_CEILING))


def _resource_list(rl: Mapping[str, Any] | None) -> dict[str, int]:
    return {k: _amount(k, v) for k, v in (rl or {}).items()} if rl else {}


def _add(into: dict[str, int], other: Mapping[str, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def _max(into: dict[str, int], other: Mapping[str, int]) -> None:
    for k, v in other.items():
        if v > into.get(k, 0):
            into[k] = v


def pod_requests(spec: Mapping[str, Any], non_zero: bool = False) -> dict[str, int]:
    """Effective requests of a pod (`component-helpers/resource/helpers.go` PodRequests):
    the sum of the containers, raised to the largest init container (restartable init containers —
    sidecars — add to the sum and to every later init container), plus `spec.overhead`.
    With `non_zero`, containers without a cpu/memory request count the scoring defaults."""

    def container_requests(c: Mapping[str, Any]) -> dict[str, int]:
        req = _resource_list((c.get("resources") or {}).get("requests"))
        if non_zero:
            req.setdefault(CPU, DEFAULT_MILLI_CPU_REQUEST)
            req.setdefault(MEMORY, DEFAULT_MEMORY_REQUEST)
        return req

    reqs: dict[str, int] = {}
    for c in spec.get("containers") or ():
        _add(reqs, container_requests(c))
    init_max: dict[str, int] = {}
    sidecars: dict[str, int] = {}
    for c in spec.get("initContainers") or ():
        creq = container_requests(c)
        if c.get("restartPolicy") == "Always":
            _add(reqs, creq)
            _add(sidecars, creq)
            creq = dict(sidecars)
        else:
            _add(creq, sidecars)
        _max(init_max, creq)
    _max(reqs, init_max)
    _add(reqs, _resource_list(spec.get("overhead")))
    return reqs


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """A compiled `PodAffinityTerm`: which pods it selects and over which topology key."""

    namespaces: frozenset[str]  # empty with ns_matcher None → the owning pod's namespace only
    ns_selector: Matcher | None
    selector: Matcher
    topology_key: str
    weight: int = 0

    def matches(self, pod: PodInfo, ns_labels: Mapping[str, Mapping[str, str]]) -> bool:
        if pod.namespace not in self.namespaces and not (
            self.ns_selector is not None and self.ns_selector(ns_labels.get(pod.namespace, {}))
        ):
            return False
        return self.selector(pod.labels)


def _compile_terms(ns: str, terms: Iterable[Mapping[str, Any]], weighted: bool) -> tuple[AffinityTerm, ...]:
    out = []
    for raw in terms:
        weight = int(raw.get("weight", 0)) if weighted else 0
        t = raw.get("podAffinityTerm") or {} if weighted else raw
        namespaces = frozenset(t.get("namespaces") or ())
        ns_sel_obj = t.get("namespaceSelector")
        ns_sel = label_selector_matcher(ns_sel_obj) if ns_sel_obj is not None else None
        if not namespaces and ns_sel_obj is None:
            namespaces = frozenset((ns,))
        sel: Obj | None = t.get("labelSelector")
        out.append(
            AffinityTerm(namespaces, ns_sel, label_selector_matcher(sel), t.get("topologyKey", ""), weight)
        )
    return tuple(out)


class PodInfo:
    """One pod, parsed once. `node` is the node it is bound or assumed to ("" while pending)."""

    __slots__ = (
        "affinity_terms",
        "anti_affinity_terms",
        "key",
        "labels",
        "name",
        "namespace",
        "node",
        "non_zero",
        "obj",
        "preferred_affinity_terms",
        "preferred_anti_affinity_terms",
        "priority",
        "requests",
        "spec",
        "template_key",
        "tolerations",
        "uid",
    )

    def __init__(self, obj: Obj) -> None:
        md = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        self.obj = obj
        self.spec: Mapping[str, Any] = spec
        self.name: str = md.get("name", "")
        self.namespace: str = md.get("namespace", "")
        self.key = f"{self.namespace}/{self.name}"
        self.uid: str = md.get("uid", "")
        self.labels: Mapping[str, str] = md.get("labels") or {}
        self.node: str = spec.get("nodeName") or ""
        self.priority: int = int(spec.get("priority") or 0)
        self.requests = pod_requests(spec)
        self.non_zero = pod_requests(spec, non_zero=True)
        self.tolerations: Sequence[Mapping[str, Any]] = spec.get("tolerations") or ()
        aff = spec.get("affinity") or {}
        pa = aff.get("podAffinity") or {}
        paa = aff.get("podAntiAffinity") or {}
        req = "requiredDuringSchedulingIgnoredDuringExecution"
        pref = "preferredDuringSchedulingIgnoredDuringExecution"
        self.affinity_terms = _compile_terms(self.namespace, pa.get(req) or (), False)
        self.anti_affinity_terms = _compile_terms(self.namespace, paa.get(req) or (), False)
        self.preferred_affinity_terms = _compile_terms(self.namespace, pa.get(pref) or (), True)
        self.preferred_anti_affinity_terms = _compile_terms(self.namespace, paa.get(pref) or (), True)
        # Pods of one ReplicaSet (same owner, same pod-template-hash) share a spec: results of
        # node-local plugins can be reused across them (see framework.Framework).
        self.template_key: tuple[str, str] | None = None
        tmpl_hash = self.labels.get("pod-template-hash")
        if tmpl_hash:
            for ref in md.get("ownerReferences") or ():
                if ref.get("controller"):
                    self.template_key = (ref.get("uid", ""), tmpl_hash)
                    break

    @property
    def has_pod_affinity(self) -> bool:
        return bool(
            self.affinity_terms
            or self.anti_affinity_terms
            or self.preferred_affinity_terms
            or self.preferred_anti_affinity_terms
        )


@dataclass(slots=True)
class NodeInfo:
    """A node and the sums over the pods assigned to it (bound or assumed)."""

    name: str
    obj: Obj | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Mapping[str, Any]] = ()
    unschedulable: bool = False
    allocatable: dict[str, int] = field(default_factory=dict)
    requested: dict[str, int] = field(default_factory=dict)
    non_zero_requested: dict[str, int] = field(default_factory=dict)
    pods: dict[str, PodInfo] = field(default_factory=dict)
    pods_with_affinity: dict[str, PodInfo] = field(default_factory=dict)
    pods_with_required_anti_affinity: dict[str, PodInfo] = field(default_factory=dict)
    generation: int = 0

    def set_node(self, node: Obj) -> None:
        md = node.get("metadata") or {}
        spec = node.get("spec") or {}
        self.obj = node
        self.labels = md.get("labels") or {}
        self.taints = spec.get("taints") or ()
        self.unschedulable = bool(spec.get("unschedulable"))
        self.allocatable = _resource_list((node.get("status") or {}).get("allocatable"))
        self.generation = next(_counter)

    def add_pod(self, p: PodInfo) -> None:
        self.pods[p.key] = p
        _add(self.requested, p.requests)
        _add(self.non_zero_requested, {CPU: p.non_zero.get(CPU, 0), MEMORY: p.non_zero.get(MEMORY, 0)})
        if p.has_pod_affinity:
            self.pods_with_affinity[p.key] = p
        if p.anti_affinity_terms:
            self.pods_with_required_anti_affinity[p.key] = p
        self.generation = next(_counter)

    def remove_pod(self, key: str) -> PodInfo | None:
        p = self.pods.pop(key, None)
        if p is None:
            return None
        for k, v in p.requests.items():
            self.requested[k] = self.requested.get(k, 0) - v
        self.non_zero_requested[CPU] = self.non_zero_requested.get(CPU, 0) - p.non_zero.get(CPU, 0)
        self.non_zero_requested[MEMORY] = self.non_zero_requested.get(MEMORY, 0) - p.non_zero.get(MEMORY, 0)
        self.pods_with_affinity.pop(key, None)
        self.pods_with_required_anti_affinity.pop(key, None)
        self.generation = next(_counter)
        return p


def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class Snapshot:
    """Nodes by name plus an index of assigned pods. Updated incrementally; cheap to read per cycle.

    Pods may be added before their node (the node shows up later): they are kept on a placeholder
    NodeInfo with `obj None`, which is never offered to the filters. Terminal pods hold no resources.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, PodInfo] = {}  # key → assigned PodInfo
        self._node_order: list[NodeInfo] | None = None
        self.namespace_labels: dict[str, Mapping[str, str]] = {}
        self.have_pods_with_affinity = 0  # count of assigned pods carrying any pod (anti-)affinity

    # nodes
    def add_node(self, node: Obj) -> None:
        name = (node.get("metadata") or {}).get("name", "")
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(name)
        if ni.obj is None:
            self._node_order = None  # a new (or returning) node: the ordered list changes
        ni.set_node(node)

    update_node = add_node

    def remove_node(self, name: str) -> None:
        ni = self.nodes.get(name)
        if ni is None:
            return
        if ni.pods:
            ni.obj = None  # pods still reference it until their deletion arrives
            ni.generation = next(_counter)
        else:
            del self.nodes[name]
        self._node_order = None

    def node_list(self) -> list[NodeInfo]:
        """Nodes that exist (have an object), in a stable order."""
        if self._node_order is None:
            self._node_order = [ni for _, ni in sorted(self.nodes.items()) if ni.obj is not None]
        return self._node_order

    # pods
    def add_pod(self, pod: Obj | PodInfo) -> PodInfo | None:
        """Account an assigned pod (idempotent: replaces an earlier version). Returns its PodInfo."""
        p = pod if isinstance(pod, PodInfo) else PodInfo(pod)
        self.remove_pod(p.key)
        if not p.node or _terminal(p.obj):
            return None
        ni = self.nodes.get(p.node)
        if ni is None:
            ni = self.nodes[p.node] = NodeInfo(p.node)
        ni.add_pod(p)
        self._pods[p.key] = p
        if p.has_pod_affinity:
            self.have_pods_with_affinity += 1
        return p

    update_pod = add_pod

    def assume(self, pod: PodInfo, node: str) -> PodInfo:
        """Account a pod on `node` before its binding is observed (so the next cycle sees it)."""
        pod.node = node
        self.add_pod(pod)
        return pod

    def remove_pod(self, key: str) -> None:
        p = self._pods.pop(key, None)
        if p is None:
            return
        ni = self.nodes.get(p.node)
        if ni is not None:
            ni.remove_pod(key)
            if ni.obj is None and not ni.pods:
                del self.nodes[p.node]
                self._node_order = None
        if p.has_pod_affinity:
            self.have_pods_with_affinity -= 1

    def get_pod(self, key: str) -> PodInfo | None:
        return self._pods.get(key)

    def set_namespace(self, name: str, labels: Mapping[str, str] | None) -> None:
        if labels is None:
            self.namespace_labels.pop(name, None)
        else:
            self.namespace_labels[name] = labels

    def __len__(self) -> int:
        return len(self.node_list())
