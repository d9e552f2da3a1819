"""rbac.authorization.k8s.io/v1: roles and bindings. `STRATEGIES` lists one instance per resource."""

from skiff.apiserver.registry.rbac.clusterrolebindings import ClusterRoleBindingStrategy
from skiff.apiserver.registry.rbac.clusterroles import ClusterRoleStrategy
from skiff.apiserver.registry.rbac.rolebindings import RoleBindingStrategy
from skiff.apiserver.registry.rbac.roles import RoleStrategy
from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = [
    ClusterRoleBindingStrategy(),
    ClusterRoleStrategy(),
    RoleBindingStrategy(),
    RoleStrategy(),
]
