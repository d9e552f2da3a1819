"""discovery.k8s.io/v1: EndpointSlice. `STRATEGIES` lists one instance per served resource."""

from skiff.apiserver.registry.discovery.endpointslices import EndpointSliceStrategy
from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = [EndpointSliceStrategy()]
