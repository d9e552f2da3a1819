"""NodeAffinity (`plugins/nodeaffinity`): `spec.nodeSelector` and required node affinity must match;
preferred terms add their weights to the score (normalized to 0..100)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from skiff.api.selectors import Requirement
from skiff.scheduler.framework import SKIP, SUCCESS, CycleState, Status, default_normalize, unresolvable
from skiff.scheduler.snapshot import NodeInfo, PodInfo

ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"

NodeMatcher = Callable[[NodeInfo], bool]
_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!", "Gt": "gt", "Lt": "lt"}


def compile_term(term: Mapping[str, Any]) -> NodeMatcher:
    """A NodeSelectorTerm: all matchExpressions (labels) and matchFields (metadata.name) hold.
    An empty term matches no node (`nodeaffinity.NewNodeSelector`); an unknown operator neither."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return lambda node: False
    try:
        label_reqs = [Requirement(e["key"], _OPS[e["operator"]], tuple(e.get("values") or ())) for e in exprs]
        field_reqs = [
            Requirement(f["key"], _OPS[f["operator"]], tuple(f.get("values") or ())) for f in fields
        ]
    except KeyError:
        return lambda node: False

    def match(node: NodeInfo) -> bool:
        if not all(r.matches(node.labels) for r in label_reqs):
            return False
        return not field_reqs or all(r.matches({"metadata.name": node.name}) for r in field_reqs)

    return match


def required_matcher(spec: Mapping[str, Any]) -> NodeMatcher | None:
    """nodeSelector AND (any required term). None when the pod constrains nothing."""
    selector: Mapping[str, str] = spec.get("nodeSelector") or {}
    na = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = [compile_term(t) for t in (req or {}).get("nodeSelectorTerms") or []] if req is not None else None
    if not selector and terms is None:
        return None

    def match(node: NodeInfo) -> bool:
        labels = node.labels
        for k, v in selector.items():
            if labels.get(k) != v:
                return False
        return terms is None or any(t(node) for t in terms)

    return match


def preferred_terms(spec: Mapping[str, Any]) -> Sequence[tuple[int, NodeMatcher]]:
    na = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    return [
        (int(t.get("weight", 0)), compile_term(t.get("preference") or {}))
        for t in na.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        if int(t.get("weight", 0)) != 0
    ]


class NodeAffinity:
    name = "NodeAffinity"
    node_local = True

    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: object) -> Status:
        m = required_matcher(pod.spec)
        if m is None:
            return SKIP
        state.write("NodeAffinity.required", m)
        return SUCCESS

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        m: NodeMatcher | None = state.get("NodeAffinity.required")
        if m is None:
            m = required_matcher(pod.spec)
        if m is not None and not m(node):
            return unresolvable(ERR_REASON_POD)
        return SUCCESS

    def pre_score(
        self, state: CycleState, pod: PodInfo, snapshot: object, nodes: Sequence[NodeInfo]
    ) -> Status:
        terms = preferred_terms(pod.spec)
        if not terms:
            return SKIP
        state.write("NodeAffinity.preferred", terms)
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        terms: Sequence[tuple[int, NodeMatcher]] | None = state.get("NodeAffinity.preferred")
        if terms is None:
            terms = preferred_terms(pod.spec)
        return sum(w for w, m in terms if m(node))

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores, reverse=False)
