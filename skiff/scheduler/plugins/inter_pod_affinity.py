"""InterPodAffinity (`plugins/interpodaffinity`): required pod affinity / anti-affinity of the incoming
pod, and the required anti-affinity of pods already placed, counted per topology domain; preferred
terms (both directions) score domains.

PreFilter counts once per cycle, by (topologyKey, value):
  existing_anti — existing pods whose required anti-affinity term selects the incoming pod;
  affinity      — existing pods matching *all* the incoming pod's required affinity terms;
  anti          — existing pods matching one of the incoming pod's required anti-affinity terms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from skiff.scheduler.framework import SKIP, SUCCESS, CycleState, Status, unresolvable, unschedulable
from skiff.scheduler.snapshot import AffinityTerm, NodeInfo, PodInfo, Snapshot

ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1

Pair = tuple[str, str]
_FILTER_KEY = "InterPodAffinity.filter"
_SCORE_KEY = "InterPodAffinity.score"


@dataclass(slots=True)
class _FilterState:
    existing_anti: dict[Pair, int] = field(default_factory=dict)
    affinity: dict[Pair, int] = field(default_factory=dict)
    anti: dict[Pair, int] = field(default_factory=dict)


def _inc(counts: dict[Pair, int], key: str, labels: Mapping[str, str], by: int = 1) -> None:
    v = labels.get(key)
    if v is not None:
        counts[(key, v)] = counts.get((key, v), 0) + by


def _matches_all(
    terms: Sequence[AffinityTerm], pod: PodInfo, ns_labels: Mapping[str, Mapping[str, str]]
) -> bool:
    return bool(terms) and all(t.matches(pod, ns_labels) for t in terms)


class InterPodAffinity:
    name = "InterPodAffinity"
    node_local = False

    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status:
        if not pod.affinity_terms and not pod.anti_affinity_terms and not snapshot.have_pods_with_affinity:
            return SKIP
        ns = snapshot.namespace_labels
        fs = _FilterState()
        for ni in snapshot.node_list():
            for other in ni.pods_with_required_anti_affinity.values():
                for t in other.anti_affinity_terms:
                    if t.matches(pod, ns):
                        _inc(fs.existing_anti, t.topology_key, ni.labels)
            if pod.affinity_terms or pod.anti_affinity_terms:
                for other in ni.pods.values():
                    if _matches_all(pod.affinity_terms, other, ns):
                        for t in pod.affinity_terms:
                            _inc(fs.affinity, t.topology_key, ni.labels)
                    for t in pod.anti_affinity_terms:
                        if t.matches(other, ns):
                            _inc(fs.anti, t.topology_key, ni.labels)
        state.write(_FILTER_KEY, fs)
        state.write("InterPodAffinity.ns", ns)
        return SUCCESS

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        fs: _FilterState = state.read(_FILTER_KEY)
        labels = node.labels
        if pod.affinity_terms and not self._satisfies_affinity(
            fs, pod, labels, state.read("InterPodAffinity.ns")
        ):
            return unresolvable(ERR_AFFINITY)
        for t in pod.anti_affinity_terms:
            v = labels.get(t.topology_key)
            if v is not None and fs.anti.get((t.topology_key, v), 0) > 0:
                return unschedulable(ERR_ANTI_AFFINITY)
        if fs.existing_anti:
            for kv in labels.items():
                if fs.existing_anti.get(kv, 0) > 0:
                    return unschedulable(ERR_EXISTING_ANTI_AFFINITY)
        return SUCCESS

    @staticmethod
    def _satisfies_affinity(
        fs: _FilterState, pod: PodInfo, labels: Mapping[str, str], ns: Mapping[str, Mapping[str, str]]
    ) -> bool:
        pods_exist = True
        for t in pod.affinity_terms:
            v = labels.get(t.topology_key)
            if v is None:
                return False  # every topology label must exist on the node
            if fs.affinity.get((t.topology_key, v), 0) <= 0:
                pods_exist = False
        if pods_exist:
            return True
        # The first pod of a group with affinity to itself: allowed when no pod matches anywhere.
        return not fs.affinity and _matches_all(pod.affinity_terms, pod, ns)

    # ---- scoring ---------------------------------------------------------------------------------
    def pre_score(
        self, state: CycleState, pod: PodInfo, snapshot: Snapshot, nodes: Sequence[NodeInfo]
    ) -> Status:
        has_pref = bool(pod.preferred_affinity_terms or pod.preferred_anti_affinity_terms)
        if not has_pref and not snapshot.have_pods_with_affinity:
            return SKIP
        ns = snapshot.namespace_labels
        scores: dict[Pair, int] = {}
        for ni in snapshot.node_list():
            others = ni.pods.values() if has_pref else ni.pods_with_affinity.values()
            for other in others:
                for t in pod.preferred_affinity_terms:
                    if t.matches(other, ns):
                        _inc(scores, t.topology_key, ni.labels, t.weight)
                for t in pod.preferred_anti_affinity_terms:
                    if t.matches(other, ns):
                        _inc(scores, t.topology_key, ni.labels, -t.weight)
                if not other.has_pod_affinity:
                    continue
                for t in other.affinity_terms:
                    if HARD_POD_AFFINITY_WEIGHT and t.matches(pod, ns):
                        _inc(scores, t.topology_key, ni.labels, HARD_POD_AFFINITY_WEIGHT)
                for t in other.preferred_affinity_terms:
                    if t.matches(pod, ns):
                        _inc(scores, t.topology_key, ni.labels, t.weight)
                for t in other.preferred_anti_affinity_terms:
                    if t.matches(pod, ns):
                        _inc(scores, t.topology_key, ni.labels, -t.weight)
        state.write(_SCORE_KEY, scores)
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        scores: dict[Pair, int] = state.read(_SCORE_KEY)
        labels = node.labels
        return sum(s for (k, v), s in scores.items() if labels.get(k) == v)

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        """Min-max to 0..100 (`scoring.go NormalizeScore`); all equal → 0."""
        if not scores:
            return
        lo, hi = min(scores), max(scores)
        diff = hi - lo
        for i, s in enumerate(scores):
            scores[i] = int(100 * ((s - lo) / diff)) if diff > 0 else 0
