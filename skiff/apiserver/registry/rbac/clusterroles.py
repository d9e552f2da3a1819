"""rbac.authorization.k8s.io/v1 ClusterRole: rules plus the optional aggregationRule.

With an aggregationRule the rules are owned by the aggregation controller (upstream
`clusterroleaggregation_controller`); validation only requires at least one selector.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, name_of
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.networking.networkpolicies import validate_label_selector
from skiff.apiserver.registry.rbac.common import CREATED_AT_COLUMN, created_at, validate_rules
from skiff.apiserver.registry.strategy import NAME_COLUMN, Column, Strategy


class ClusterRoleStrategy(Strategy):
    info = ResourceInfo(
        "rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", False
    )
    name_rule = staticmethod(v.path_segment_name)
    tracks_generation = False

    def validate(self, obj: Obj) -> list[v.FieldError]:
        errs = validate_rules(obj.get("rules"), namespaced=False)
        agg = obj.get("aggregationRule")
        if agg is not None:
            selectors = (agg or {}).get("clusterRoleSelectors") or []
            if not selectors:
                errs.append(
                    v.required(
                        "aggregationRule.clusterRoleSelectors",
                        "at least one clusterRoleSelector required if aggregationRule is non-nil",
                    )
                )
            for i, sel in enumerate(selectors):
                errs += validate_label_selector(f"aggregationRule.clusterRoleSelectors[{i}]", sel)
        return errs

    def columns(self) -> list[Column]:
        return [NAME_COLUMN, CREATED_AT_COLUMN]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return [name_of(obj), created_at(obj)]
