"""coordination.k8s.io/v1: Lease. `STRATEGIES` lists one instance per served resource."""

from skiff.apiserver.registry.coordination.leases import LeaseStrategy
from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = [LeaseStrategy()]
