"""rbac.authorization.k8s.io/v1 Role: namespaced policy rules (no non-resource URLs)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, name_of
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.rbac.common import CREATED_AT_COLUMN, created_at, validate_rules
from skiff.apiserver.registry.strategy import NAME_COLUMN, Column, Strategy


class RoleStrategy(Strategy):
    info = ResourceInfo("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", True)
    name_rule = staticmethod(v.path_segment_name)
    tracks_generation = False

    def validate(self, obj: Obj) -> list[v.FieldError]:
        return validate_rules(obj.get("rules"), namespaced=True)

    def columns(self) -> list[Column]:
        return [NAME_COLUMN, CREATED_AT_COLUMN]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return [name_of(obj), created_at(obj)]
