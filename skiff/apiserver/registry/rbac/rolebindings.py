"""rbac.authorization.k8s.io/v1 RoleBinding: roleRef (Role or ClusterRole, immutable) and subjects."""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.rbac import common
from skiff.apiserver.registry.strategy import Column, Strategy


class RoleBindingStrategy(Strategy):
    info = ResourceInfo("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", True)
    name_rule = staticmethod(v.path_segment_name)
    tracks_generation = False

    def defaults(self, obj: Obj) -> None:
        common.default_binding(obj)

    def validate(self, obj: Obj) -> list[v.FieldError]:
        return common.validate_binding(obj, namespaced=True)

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        return self.validate(new) + common.validate_binding_update(new, old)

    def columns(self) -> list[Column]:
        return common.binding_columns("RoleBinding")

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return common.binding_row(obj, age(obj, now))
