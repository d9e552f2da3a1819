"""PodTopologySpread (`plugins/podtopologyspread`): `topologySpreadConstraints` of the pod.

Filter (whenUnsatisfiable DoNotSchedule): placing the pod in the node's domain must keep
`count(domain) + self - min(count over domains) <= maxSkew`; min is 0 while fewer than `minDomains`
domains exist. Nodes are counted only when they pass the pod's node affinity/selector
(nodeAffinityPolicy Honor, the default) and carry every constraint's topology key; untolerated
taints are ignored (nodeTaintsPolicy Ignore, the default) unless the policy says Honor.
Score (ScheduleAnyway): fewer matching pods in the domain scores higher.

Not implemented: the cluster-level default constraints (which need Service/ReplicaSet selectors).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from skiff.api.selectors import Matcher, Requirement, compile_requirements, selector_requirements
from skiff.scheduler.framework import SKIP, SUCCESS, CycleState, Status, unresolvable, unschedulable
from skiff.scheduler.plugins.node_affinity import required_matcher
from skiff.scheduler.plugins.taint_toleration import first_untolerated
from skiff.scheduler.snapshot import NodeInfo, PodInfo, Snapshot

ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_NODE_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"

_FILTER_KEY = "PodTopologySpread.filter"
_SCORE_KEY = "PodTopologySpread.score"


@dataclass(frozen=True, slots=True)
class Constraint:
    max_skew: int
    topology_key: str
    hard: bool  # DoNotSchedule
    selector: Matcher
    min_domains: int
    honor_affinity: bool
    honor_taints: bool


def constraints_of(pod: PodInfo, hard: bool) -> list[Constraint]:
    out = []
    for c in pod.spec.get("topologySpreadConstraints") or ():
        if (c.get("whenUnsatisfiable") == "DoNotSchedule") != hard:
            continue
        sel: Mapping[str, Any] | None = c.get("labelSelector")
        reqs = selector_requirements(sel) if sel is not None else []
        for k in c.get("matchLabelKeys") or ():
            if k in pod.labels:
                reqs.append(Requirement(k, "in", (pod.labels[k],)))
        matcher = compile_requirements(reqs) if sel is not None or reqs else (lambda labels: False)
        out.append(
            Constraint(
                max_skew=int(c.get("maxSkew", 1)),
                topology_key=c.get("topologyKey", ""),
                hard=hard,
                selector=matcher,
                min_domains=int(c.get("minDomains") or 1),
                honor_affinity=(c.get("nodeAffinityPolicy") or "Honor") == "Honor",
                honor_taints=(c.get("nodeTaintsPolicy") or "Ignore") == "Honor",
            )
        )
    return out


def _count(c: Constraint, pod: PodInfo, node: NodeInfo) -> int:
    n = 0
    for other in node.pods.values():
        if (
            other.namespace == pod.namespace
            and c.selector(other.labels)
            and not (other.obj.get("metadata") or {}).get("deletionTimestamp")
        ):
            n += 1
    return n


def _eligible(c: Constraint, pod: PodInfo, node: NodeInfo, affinity: Any) -> bool:
    if c.honor_affinity and affinity is not None and not affinity(node):
        return False
    return not (
        c.honor_taints and first_untolerated(node.taints, pod.tolerations, ("NoSchedule", "NoExecute"))
    )


def _domain_counts(
    cons: Sequence[Constraint], pod: PodInfo, nodes: Sequence[NodeInfo]
) -> list[dict[str, int]]:
    """Per constraint: matching pods per domain value, over nodes that carry every topology key."""
    affinity = required_matcher(pod.spec)
    keys = [c.topology_key for c in cons]
    counts: list[dict[str, int]] = [{} for _ in cons]
    for ni in nodes:
        if any(k not in ni.labels for k in keys):
            continue
        for i, c in enumerate(cons):
            if not _eligible(c, pod, ni, affinity):
                continue
            v = ni.labels[c.topology_key]
            counts[i][v] = counts[i].get(v, 0) + _count(c, pod, ni)
    return counts


class PodTopologySpread:
    name = "PodTopologySpread"
    node_local = False

    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status:
        cons = constraints_of(pod, hard=True)
        if not cons:
            return SKIP
        counts = _domain_counts(cons, pod, snapshot.node_list())
        mins = [
            0 if len(cnt) < c.min_domains else min(cnt.values(), default=0)
            for c, cnt in zip(cons, counts, strict=True)
        ]
        state.write(_FILTER_KEY, (cons, counts, mins))
        return SUCCESS

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        cons, counts, mins = state.read(_FILTER_KEY)
        for c, cnt, lo in zip(cons, counts, mins, strict=True):
            v = node.labels.get(c.topology_key)
            if v is None:
                return unresolvable(ERR_NODE_LABEL)
            self_match = 1 if c.selector(pod.labels) else 0
            if cnt.get(v, 0) + self_match - lo > c.max_skew:
                return unschedulable(ERR_CONSTRAINTS)
        return SUCCESS

    def pre_score(
        self, state: CycleState, pod: PodInfo, snapshot: Snapshot, nodes: Sequence[NodeInfo]
    ) -> Status:
        cons = constraints_of(pod, hard=False)
        if not cons:
            return SKIP
        keys = [c.topology_key for c in cons]
        ignored = {ni.name for ni in nodes if any(k not in ni.labels for k in keys)}
        ignored_idx = frozenset(i for i, ni in enumerate(nodes) if ni.name in ignored)
        # hostname-like keys only count the filtered nodes, as upstream (scoring.go initPreScoreState)
        counts = _domain_counts(cons, pod, snapshot.node_list())
        filtered_domains = [
            {ni.labels[c.topology_key] for ni in nodes if ni.name not in ignored} for c in cons
        ]
        weights = [math.log(len(d) + 2) for d in filtered_domains]
        state.write(_SCORE_KEY, (cons, counts, weights, ignored, ignored_idx))
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        cons, counts, weights, ignored, _ = state.read(_SCORE_KEY)
        if node.name in ignored:
            return 0
        total = 0.0
        for c, cnt, w in zip(cons, counts, weights, strict=True):
            n = cnt.get(node.labels[c.topology_key], 0)
            total += n * w + (c.max_skew - 1)
        return math.floor(total + 0.5)  # Go math.Round

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        """Fewer matching pods → higher: 100 * (max + min - s) / max over non-ignored nodes
        (`scoring.go NormalizeScore`); nodes missing a topology key score 0."""
        ignored_idx: frozenset[int] = state.read(_SCORE_KEY)[4]
        present = [s for i, s in enumerate(scores) if i not in ignored_idx]
        lo, hi = min(present, default=0), max(present, default=0)
        for i, s in enumerate(scores):
            if i in ignored_idx:
                scores[i] = 0
            elif hi == 0:
                scores[i] = 100
            else:
                scores[i] = 100 * (hi + lo - s) // hi
