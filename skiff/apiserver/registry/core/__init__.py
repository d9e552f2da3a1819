"""core/v1 kinds. `STRATEGIES` lists one strategy instance per served resource."""

from skiff.apiserver.registry.core.configmaps import ConfigMapStrategy
from skiff.apiserver.registry.core.endpoints import EndpointsStrategy
from skiff.apiserver.registry.core.events import EventStrategy
from skiff.apiserver.registry.core.limitranges import LimitRangeStrategy
from skiff.apiserver.registry.core.namespaces import NamespaceStrategy
from skiff.apiserver.registry.core.nodes import NodeStrategy
from skiff.apiserver.registry.core.persistentvolumeclaims import PersistentVolumeClaimStrategy
from skiff.apiserver.registry.core.persistentvolumes import PersistentVolumeStrategy
from skiff.apiserver.registry.core.pods import PodStrategy
from skiff.apiserver.registry.core.podtemplates import PodTemplateStrategy
from skiff.apiserver.registry.core.replicationcontrollers import ReplicationControllerStrategy
from skiff.apiserver.registry.core.resourcequotas import ResourceQuotaStrategy
from skiff.apiserver.registry.core.secrets import SecretStrategy
from skiff.apiserver.registry.core.serviceaccounts import ServiceAccountStrategy
from skiff.apiserver.registry.core.services import ServiceStrategy
from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = [
    ConfigMapStrategy(),
    EndpointsStrategy(),
    EventStrategy(),
    LimitRangeStrategy(),
    NamespaceStrategy(),
    NodeStrategy(),
    PersistentVolumeClaimStrategy(),
    PersistentVolumeStrategy(),
    PodStrategy(),
    PodTemplateStrategy(),
    ReplicationControllerStrategy(),
    ResourceQuotaStrategy(),
    SecretStrategy(),
    ServiceAccountStrategy(),
    ServiceStrategy(),
]
