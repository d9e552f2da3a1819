"""apps/v1 Deployment: defaults, validation, the `scale` and `status` subresources and the printer row.

Mirrors `pkg/apis/apps/v1/defaults.go` (SetDefaults_Deployment), `pkg/apis/apps/validation`
(ValidateDeploymentSpec, ValidateDeploymentStrategy, ValidateRollingUpdateDeployment) and
`pkg/registry/apps/deployment/strategy.go`.
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
    int_or_percent_value,
    not_more_than_100_percent,
    selector_column,
    selector_immutable,
    selector_string,
    set_default,
    spec_of,
    validate_int_or_percent,
    validate_replica_status,
    validate_selector_and_template,
)
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column

ROLLING_UPDATE = "RollingUpdate"
RECREATE = "Recreate"


def validate_deployment_strategy(strategy: Any, path: str = "spec.strategy") -> list[v.FieldError]:
    """`ValidateDeploymentStrategy` + `ValidateRollingUpdateDeployment`."""
    if not isinstance(strategy, dict):
        strategy = {}
    kind = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if kind == RECREATE:
        if rolling is not None:
            return [
                v.forbidden(
                    f"{path}.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
                )
            ]
        return []
    if kind == ROLLING_UPDATE:
        if not isinstance(rolling, dict):
            return [v.required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")]
        p = f"{path}.rollingUpdate"
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        errs = validate_int_or_percent(f"{p}.maxUnavailable", unavailable)
        errs += validate_int_or_percent(f"{p}.maxSurge", surge)
        if int_or_percent_value(unavailable) == 0 and int_or_percent_value(surge) == 0:
            errs.append(v.invalid(f"{p}.maxUnavailable", unavailable, "may not be 0 when `maxSurge` is 0"))
        errs += not_more_than_100_percent(f"{p}.maxUnavailable", unavailable)
        return errs
    return [v.not_supported(path, kind if kind is not None else "", [RECREATE, ROLLING_UPDATE])]


class DeploymentStrategy(ReplicatedStrategy):
    info = ResourceInfo(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        True,
        ("deploy",),
        ("all",),
        ALL_VERBS,
        (
            Subresource("scale", "autoscaling", "v1", "Scale"),
            Subresource("status", "apps", "v1", "Deployment"),
        ),
    )

    annotations_bump_generation = True

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """deploymentStatusStrategy: spec and labels stay; annotations may change (the controller writes the
        revision annotation through /status so that generation does not move)."""
        annotations = (new.get("metadata") or {}).get("annotations")
        super().prepare_for_status_update(new, old)
        new["metadata"] = {**new["metadata"]}
        if annotations is None:
            new["metadata"].pop("annotations", None)
        else:
            new["metadata"]["annotations"] = annotations

    def defaults(self, obj: Obj) -> None:
        """SetDefaults_Deployment: replicas 1, RollingUpdate 25%/25%, revisionHistoryLimit 10,
        progressDeadlineSeconds 600; the pod template via SetDefaults_PodSpec."""
        spec = spec_of(obj)
        set_default(spec, "replicas", 1)
        strategy = spec.get("strategy")
        if not isinstance(strategy, dict):
            strategy = spec["strategy"] = {}
        if not strategy.get("type"):
            strategy["type"] = ROLLING_UPDATE
        if strategy["type"] == ROLLING_UPDATE:
            rolling = strategy.get("rollingUpdate")
            if not isinstance(rolling, dict):
                rolling = strategy["rollingUpdate"] = {}
            set_default(rolling, "maxUnavailable", "25%")
            set_default(rolling, "maxSurge", "25%")
        set_default(spec, "revisionHistoryLimit", 10)
        set_default(spec, "progressDeadlineSeconds", 600)
        default_template(spec.get("template"))

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {}

    def validate(self, obj: Obj) -> list[v.FieldError]:
        spec = obj.get("spec") or {}
        errs = v.non_negative("spec.replicas", spec.get("replicas"))
        errs += validate_selector_and_template(spec, "spec", "deployment")
        template_spec = (spec.get("template") or {}).get("spec") or {}
        if template_spec.get("activeDeadlineSeconds") is not None:
            errs.append(
                v.forbidden(
                    "spec.template.spec.activeDeadlineSeconds",
                    "activeDeadlineSeconds in ReplicaSet is not Supported",
                )
            )
        errs += validate_deployment_strategy(spec.get("strategy"))
        errs += v.non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
        deadline = spec.get("progressDeadlineSeconds")
        if deadline is not None:
            errs += v.non_negative("spec.progressDeadlineSeconds", deadline)
            if isinstance(deadline, int) and deadline <= as_int(spec.get("minReadySeconds")):
                errs.append(
                    v.invalid(
                        "spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"
                    )
                )
        errs += v.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        return self.validate(new) + selector_immutable(new, old)

    def validate_status_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        return validate_replica_status(
            new.get("status"),
            ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"),
            ("updatedReplicas", "readyReplicas", "availableReplicas"),
            "cannot be greater than readyReplicas",
        )

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column("Ready", "string", "", "Number of the pod with ready state"),
            Column("Up-to-date", "string", "", doc("V1DeploymentStatus", "updatedReplicas")),
            Column("Available", "string", "", doc("V1DeploymentStatus", "availableReplicas")),
            AGE_COLUMN,
            CONTAINERS_COLUMN,
            IMAGES_COLUMN,
            selector_column("V1DeploymentSpec"),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        names, images = containers_cells(spec.get("template"))
        return [
            name_of(obj),
            f"{as_int(status.get('readyReplicas'))}/{as_int(spec.get('replicas'))}",
            as_int(status.get("updatedReplicas")),
            as_int(status.get("availableReplicas")),
            age(obj, now),
            names,
            images,
            selector_string(spec.get("selector")),
        ]
