"""apiextensions.k8s.io/v1: CustomResourceDefinition. `STRATEGIES` lists one instance per resource."""

from skiff.apiserver.registry.apiextensions.customresourcedefinitions import CustomResourceDefinitionStrategy
from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = [CustomResourceDefinitionStrategy()]
