"""apps/v1 kinds. `STRATEGIES` lists one strategy instance per served resource."""

from skiff.apiserver.registry.apps.controllerrevisions import ControllerRevisionStrategy
from skiff.apiserver.registry.apps.daemonsets import DaemonSetStrategy
from skiff.apiserver.registry.apps.deployments import DeploymentStrategy
from skiff.apiserver.registry.apps.replicasets import ReplicaSetStrategy
from skiff.apiserver.registry.apps.statefulsets import StatefulSetStrategy
from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = [
    DeploymentStrategy(),
    ReplicaSetStrategy(),
    StatefulSetStrategy(),
    DaemonSetStrategy(),
    ControllerRevisionStrategy(),
]
