"""NodeName: a pod that names a node fits only that node (`plugins/nodename`)."""

from __future__ import annotations

from skiff.scheduler.framework import SUCCESS, CycleState, Status, unresolvable
from skiff.scheduler.snapshot import NodeInfo, PodInfo

ERR_REASON = "node(s) didn't match the requested node name"


class NodeName:
    name = "NodeName"
    node_local = True

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        want = pod.spec.get("nodeName")
        if want and want != node.name:
            return unresolvable(ERR_REASON)
        return SUCCESS
