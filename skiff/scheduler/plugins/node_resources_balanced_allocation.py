"""NodeResourcesBalancedAllocation (`plugins/noderesources/balanced_allocation.go`)."""

from __future__ import annotations

from skiff.scheduler.framework import CycleState
from skiff.scheduler.snapshot import CPU, MEMORY, NodeInfo, PodInfo


class NodeResourcesBalancedAllocation:
    """Favors nodes whose cpu and memory fractions stay close after placing the pod:
    (1 - std-dev of the fractions) * 100, with actual requests (`balanced_allocation.go`)."""

    name = "NodeResourcesBalancedAllocation"
    node_local = True

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        fractions = []
        for r in (CPU, MEMORY):
            cap = node.allocatable.get(r, 0)
            if cap == 0:
                continue
            f = (node.requested.get(r, 0) + pod.requests.get(r, 0)) / cap
            fractions.append(min(f, 1.0))
        std = 0.0
        if len(fractions) == 2:
            std = abs((fractions[0] - fractions[1]) / 2)
        return int((1 - std) * 100)
