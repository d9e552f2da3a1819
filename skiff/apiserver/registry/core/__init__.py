"""core/v1 kinds. `STRATEGIES` lists one strategy instance per served resource."""

from skiff.apiserver.registry.core.configmaps import ConfigMapStrategy
from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = [ConfigMapStrategy()]
