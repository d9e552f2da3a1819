"""NodeUnschedulable: cordoned nodes take only pods tolerating their taint (`plugins/nodeunschedulable`)."""

from __future__ import annotations

from skiff.api.taints import tolerates
from skiff.scheduler.framework import SUCCESS, CycleState, Status, unresolvable
from skiff.scheduler.snapshot import NodeInfo, PodInfo

ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable:
    name = "NodeUnschedulable"
    node_local = True

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        if node.unschedulable and not any(tolerates(t, UNSCHEDULABLE_TAINT) for t in pod.tolerations):
            return unresolvable(ERR_REASON_UNSCHEDULABLE)
        return SUCCESS
