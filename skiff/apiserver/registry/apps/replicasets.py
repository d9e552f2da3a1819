"""apps/v1 ReplicaSet: replicas default, selector/template validation, `scale`/`status`, printer row.

Mirrors SetDefaults_ReplicaSet, `ValidateReplicaSetSpec` (whose empty-selector message says
"deployment", as upstream) and `pkg/registry/apps/replicaset/strategy.go` (field `status.replicas`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, name_of
from skiff.api.resources import ALL_VERBS, ResourceInfo, Subresource
from skiff.apiserver.registry.apps._workload import (
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    ReplicatedStrategy,
    as_int,
    containers_cells,
    default_template,
    doc,
    format_label_selector,
    selector_column,
    selector_immutable,
    set_default,
    spec_of,
    validate_replica_status,
    validate_selector_and_template,
)
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column


class ReplicaSetStrategy(ReplicatedStrategy):
    info = ResourceInfo(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        True,
        ("rs",),
        ("all",),
        ALL_VERBS,
        (
            Subresource("scale", "autoscaling", "v1", "Scale"),
            Subresource("status", "apps", "v1", "ReplicaSet"),
        ),
    )

    def defaults(self, obj: Obj) -> None:
        spec = spec_of(obj)
        set_default(spec, "replicas", 1)
        default_template(spec.get("template"))

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {"replicas": 0}

    def validate(self, obj: Obj) -> list[v.FieldError]:
        spec = obj.get("spec") or {}
        errs = v.non_negative("spec.replicas", spec.get("replicas"))
        errs += v.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
        errs += validate_selector_and_template(spec, "spec", "deployment")
        template_spec = (spec.get("template") or {}).get("spec") or {}
        if template_spec.get("activeDeadlineSeconds") is not None:
            errs.append(
                v.forbidden(
                    "spec.template.spec.activeDeadlineSeconds",
                    "activeDeadlineSeconds in ReplicaSet is not Supported",
                )
            )
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        return self.validate(new) + selector_immutable(new, old)

    def validate_status_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        return validate_replica_status(
            new.get("status"),
            ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas"),
            ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"),
            "cannot be greater than readyReplicas",
        )

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column("Desired", "integer", "", doc("V1ReplicaSetSpec", "replicas")),
            Column("Current", "integer", "", doc("V1ReplicaSetStatus", "replicas")),
            Column("Ready", "integer", "", doc("V1ReplicaSetStatus", "readyReplicas")),
            AGE_COLUMN,
            CONTAINERS_COLUMN,
            IMAGES_COLUMN,
            selector_column("V1ReplicaSetSpec"),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        names, images = containers_cells(spec.get("template"))
        return [
            name_of(obj),
            as_int(spec.get("replicas")),
            as_int(status.get("replicas")),
            as_int(status.get("readyReplicas")),
            age(obj, now),
            names,
            images,
            format_label_selector(spec.get("selector")),
        ]

    def fields(self, obj: Obj) -> dict[str, str]:
        return {"status.replicas": str(as_int((obj.get("status") or {}).get("replicas")))}
