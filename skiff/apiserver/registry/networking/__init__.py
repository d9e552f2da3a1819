"""networking.k8s.io/v1: Ingress, IngressClass, NetworkPolicy. `STRATEGIES` lists one per resource."""

from skiff.apiserver.registry.networking.ingressclasses import IngressClassStrategy
from skiff.apiserver.registry.networking.ingresses import IngressStrategy
from skiff.apiserver.registry.networking.networkpolicies import NetworkPolicyStrategy
from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = [IngressStrategy(), IngressClassStrategy(), NetworkPolicyStrategy()]
