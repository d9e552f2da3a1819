"""scheduling.k8s.io/v1: PriorityClass. `STRATEGIES` lists one instance per served resource."""

from skiff.apiserver.registry.scheduling.priorityclasses import PriorityClassStrategy
from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = [PriorityClassStrategy()]
