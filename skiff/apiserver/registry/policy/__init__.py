"""policy/v1 kinds. `STRATEGIES` lists one strategy instance per served resource."""

from skiff.apiserver.registry.policy.poddisruptionbudgets import PodDisruptionBudgetStrategy
from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = [PodDisruptionBudgetStrategy()]
