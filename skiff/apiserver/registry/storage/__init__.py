"""storage.k8s.io/v1: StorageClass. `STRATEGIES` lists one instance per served resource."""

from skiff.apiserver.registry.storage.storageclasses import StorageClassStrategy
from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = [StorageClassStrategy()]
