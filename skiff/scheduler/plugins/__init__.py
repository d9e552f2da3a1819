"""The plugin registry and the default profile (`pkg/scheduler/framework/plugins/registry.go`,
`apis/config/v1/default_plugins.go`): filters in upstream order, score weights as upstream."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from skiff.scheduler.framework import Framework, Plugin
from skiff.scheduler.plugins.default_preemption import DefaultPreemption
from skiff.scheduler.plugins.inter_pod_affinity import InterPodAffinity
from skiff.scheduler.plugins.node_affinity import NodeAffinity
from skiff.scheduler.plugins.node_name import NodeName
from skiff.scheduler.plugins.node_resources_balanced_allocation import NodeResourcesBalancedAllocation
from skiff.scheduler.plugins.node_resources_fit import NodeResourcesFit
from skiff.scheduler.plugins.node_unschedulable import NodeUnschedulable
from skiff.scheduler.plugins.pod_topology_spread import PodTopologySpread
from skiff.scheduler.plugins.taint_toleration import TaintToleration

REGISTRY: Mapping[str, Callable[[], Plugin]] = {
    "NodeUnschedulable": NodeUnschedulable,
    "NodeName": NodeName,
    "TaintToleration": TaintToleration,
    "NodeAffinity": NodeAffinity,
    "NodeResourcesFit": NodeResourcesFit,
    "PodTopologySpread": PodTopologySpread,
    "InterPodAffinity": InterPodAffinity,
    "NodeResourcesBalancedAllocation": NodeResourcesBalancedAllocation,
    "DefaultPreemption": DefaultPreemption,
}

# Upstream default plugin order (filters run in this order; the first failing one is reported).
DEFAULT_PLUGINS = tuple(REGISTRY)

DEFAULT_WEIGHTS: Mapping[str, int] = {
    "TaintToleration": 3,
    "NodeAffinity": 2,
    "NodeResourcesFit": 1,
    "PodTopologySpread": 2,
    "InterPodAffinity": 2,
    "NodeResourcesBalancedAllocation": 1,
}


def default_framework(percentage_of_nodes_to_score: int = 0, seed: int | None = None) -> Framework:
    import random

    return Framework(
        [REGISTRY[n]() for n in DEFAULT_PLUGINS],
        DEFAULT_WEIGHTS,
        percentage_of_nodes_to_score,
        random.Random(seed),
    )
