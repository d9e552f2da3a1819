"""NodeResourcesFit (`plugins/noderesources/fit.go`): the pod's requests must fit the node's
allocatable minus what its pods already request, and one more pod must fit the `pods` capacity.

Each shortfall is one reason ("Too many pods", "Insufficient cpu", …). The status is Unschedulable
(preemption may help) unless a request exceeds the node's whole allocatable, then it is
UnschedulableAndUnresolvable.
"""

from __future__ import annotations

from skiff.scheduler.framework import SUCCESS, Code, CycleState, Status
from skiff.scheduler.snapshot import CPU, EPHEMERAL, MEMORY, PODS, NodeInfo, PodInfo

_NATIVE = (CPU, MEMORY, EPHEMERAL)


def insufficient_resources(pod: PodInfo, node: NodeInfo) -> list[tuple[str, bool]]:
    """(reason, unresolvable) per shortfall, in upstream order: pods, cpu, memory, ephemeral, scalars."""
    out: list[tuple[str, bool]] = []
    alloc, used, req = node.allocatable, node.requested, pod.requests
    if len(node.pods) + 1 > alloc.get(PODS, 0):
        out.append(("Too many pods", False))
    if not any(v for k, v in req.items() if k != PODS):
        return out
    for r in _NATIVE:
        want = req.get(r, 0)
        if want > 0 and want > alloc.get(r, 0) - used.get(r, 0):
            out.append((f"Insufficient {r}", want > alloc.get(r, 0)))
    for r, want in req.items():
        if r in _NATIVE or r == PODS or want == 0:
            continue
        if want > alloc.get(r, 0) - used.get(r, 0):
            out.append((f"Insufficient {r}", want > alloc.get(r, 0)))
    return out


class NodeResourcesFit:
    name = "NodeResourcesFit"
    node_local = True

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        short = insufficient_resources(pod, node)
        if not short:
            return SUCCESS
        code = Code.UNSCHEDULABLE_AND_UNRESOLVABLE if any(u for _, u in short) else Code.UNSCHEDULABLE
        return Status(code, tuple(r for r, _ in short))

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        """LeastAllocated over cpu and memory (weights 1), with the non-zero scoring requests:
        mean of (allocatable - requested) * 100 / allocatable (`least_allocated.go`)."""
        total = weights = 0
        for r in (CPU, MEMORY):
            cap = node.allocatable.get(r, 0)
            if cap == 0:
                continue
            requested = node.non_zero_requested.get(r, 0) + pod.non_zero.get(r, 0)
            total += 0 if requested > cap else (cap - requested) * 100 // cap
            weights += 1
        return total // weights if weights else 0
