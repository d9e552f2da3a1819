"""autoscaling kinds. `STRATEGIES` lists one strategy instance per served resource (the HPA strategy
serves autoscaling/v2 and, through `other_versions`, autoscaling/v1)."""

from skiff.apiserver.registry.autoscaling.horizontalpodautoscalers import HorizontalPodAutoscalerStrategy
from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = [HorizontalPodAutoscalerStrategy()]
