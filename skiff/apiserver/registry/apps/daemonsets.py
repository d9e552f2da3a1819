"""apps/v1 DaemonSet: defaults, validation, `status`, printer row.

Mirrors SetDefaults_DaemonSet, `ValidateDaemonSetSpec`, `ValidateDaemonSetUpdateStrategy`,
`ValidateRollingUpdateDaemonSet` and the apps/v1 selector immutability of the strategy.
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
    SELECTOR_MISMATCH,
    as_int,
    containers_cells,
    default_template,
    doc,
    format_label_selector,
    format_labels,
    int_or_percent_value,
    invalid_labels,
    invalid_selector,
    not_more_than_100_percent,
    selector_column,
    selector_immutable,
    selector_is_empty,
    selector_matches,
    set_default,
    spec_of,
    template_labels,
    validate_int_or_percent,
    validate_label_selector,
    validate_replica_status,
    validate_restart_policy,
)
from skiff.apiserver.registry.core.podspec import validate_pod_template
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column, Strategy


def validate_daemonset_update_strategy(
    strategy: Any, path: str = "spec.updateStrategy"
) -> list[v.FieldError]:
    strategy = strategy if isinstance(strategy, dict) else {}
    kind = strategy.get("type")
    if kind == "OnDelete":
        return []
    if kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            return [v.required(f"{path}.rollingUpdate")]
        p = f"{path}.rollingUpdate"
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        errs = validate_int_or_percent(f"{p}.maxUnavailable", unavailable)
        errs += validate_int_or_percent(f"{p}.maxSurge", surge)
        errs += not_more_than_100_percent(f"{p}.maxUnavailable", unavailable)
        errs += not_more_than_100_percent(f"{p}.maxSurge", surge)
        has_unavailable = int_or_percent_value(unavailable) != 0
        has_surge = int_or_percent_value(surge) != 0
        if has_unavailable and has_surge:
            errs.append(v.invalid(f"{p}.maxSurge", surge, "may not be set when maxUnavailable is non-zero"))
        elif not has_unavailable and not has_surge:
            errs.append(v.required(f"{p}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
        return errs
    return [v.not_supported(path, kind if kind is not None else "", ["RollingUpdate", "OnDelete"])]


class DaemonSetStrategy(Strategy):
    info = ResourceInfo(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        True,
        ("ds",),
        ("all",),
        ALL_VERBS,
        (Subresource("status", "apps", "v1", "DaemonSet"),),
    )
    status_subresource = True

    def defaults(self, obj: Obj) -> None:
        spec = spec_of(obj)
        strategy = spec.get("updateStrategy")
        if not isinstance(strategy, dict):
            strategy = spec["updateStrategy"] = {}
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.get("rollingUpdate")
            if not isinstance(rolling, dict):
                rolling = strategy["rollingUpdate"] = {}
            set_default(rolling, "maxUnavailable", 1)
            set_default(rolling, "maxSurge", 0)
        set_default(spec, "revisionHistoryLimit", 10)
        default_template(spec.get("template"))

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        }

    def validate(self, obj: Obj) -> list[v.FieldError]:
        spec = obj.get("spec") or {}
        sel = spec.get("selector")
        template = spec.get("template")
        errs = validate_label_selector("spec.selector", sel)
        if isinstance(template, dict) and selector_matches(sel, template_labels(template)) is False:
            errs.append(
                invalid_labels("spec.template.metadata.labels", template_labels(template), SELECTOR_MISMATCH)
            )
        if sel is not None and selector_is_empty(sel):
            errs.append(invalid_selector("spec.selector", sel, "empty selector is invalid for daemonset"))
        if not isinstance(template, dict):
            errs.append(v.required("spec.template"))
        else:
            errs += validate_pod_template(template, "spec.template")
            errs += validate_restart_policy(template, "spec.template.spec.restartPolicy", ("Always",))
            deadline = (template.get("spec") or {}).get("activeDeadlineSeconds")
            if deadline is not None:
                errs.append(
                    v.invalid(
                        "spec.template.spec.activeDeadlineSeconds",
                        deadline,
                        "activeDeadlineSeconds must be nil for daemon set pods",
                    )
                )
        errs += v.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
        errs += v.non_negative("spec.templateGeneration", spec.get("templateGeneration"))
        errs += validate_daemonset_update_strategy(spec.get("updateStrategy"))
        errs += v.non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        return self.validate(new) + selector_immutable(new, old)

    def validate_status_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        counters = (
            "currentNumberScheduled",
            "numberMisscheduled",
            "desiredNumberScheduled",
            "numberReady",
            "updatedNumberScheduled",
            "numberAvailable",
            "numberUnavailable",
        )
        return validate_replica_status(new.get("status"), counters, (), None)

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column("Desired", "integer", "", doc("V1DaemonSetStatus", "desiredNumberScheduled")),
            Column("Current", "integer", "", doc("V1DaemonSetStatus", "currentNumberScheduled")),
            Column("Ready", "integer", "", doc("V1DaemonSetStatus", "numberReady")),
            Column("Up-to-date", "integer", "", doc("V1DaemonSetStatus", "updatedNumberScheduled")),
            Column("Available", "integer", "", doc("V1DaemonSetStatus", "numberAvailable")),
            Column("Node Selector", "string", "", doc("V1PodSpec", "nodeSelector")),
            AGE_COLUMN,
            CONTAINERS_COLUMN,
            IMAGES_COLUMN,
            selector_column("V1DaemonSetSpec"),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        template = spec.get("template") or {}
        names, images = containers_cells(template)
        return [
            name_of(obj),
            as_int(status.get("desiredNumberScheduled")),
            as_int(status.get("currentNumberScheduled")),
            as_int(status.get("numberReady")),
            as_int(status.get("updatedNumberScheduled")),
            as_int(status.get("numberAvailable")),
            format_labels(
                (template.get("spec") or {}).get("nodeSelector") if isinstance(template, dict) else None
            ),
            age(obj, now),
            names,
            images,
            format_label_selector(spec.get("selector")),
        ]
