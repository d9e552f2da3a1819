"""policy/v1 PodDisruptionBudget: validation, `status`, printer row.

Mirrors `ValidatePodDisruptionBudgetSpec` (minAvailable xor maxUnavailable, each a non-negative int or
a percentage up to 100%, a valid selector, unhealthyPodEvictionPolicy), the status update checks
and `printPodDisruptionBudget` (`N/A` for an unset bound). The spec is mutable, as since 1.15.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, name_of
from skiff.api.resources import ALL_VERBS, ResourceInfo, Subresource
from skiff.apiserver.registry.apps._workload import (
    as_int,
    not_more_than_100_percent,
    validate_int_or_percent,
    validate_label_selector,
)
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column, Strategy

STATUS_COUNTERS = ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods")


class PodDisruptionBudgetStrategy(Strategy):
    info = ResourceInfo(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        True,
        ("pdb",),
        (),
        ALL_VERBS,
        (Subresource("status", "policy", "v1", "PodDisruptionBudget"),),
    )
    status_subresource = True

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {k: 0 for k in STATUS_COUNTERS}

    def validate(self, obj: Obj) -> list[v.FieldError]:
        spec = obj.get("spec") or {}
        errs: list[v.FieldError] = []
        lo, hi = spec.get("minAvailable"), spec.get("maxUnavailable")
        if lo is not None and hi is not None:
            errs.append(v.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
        for key, value in (("minAvailable", lo), ("maxUnavailable", hi)):
            if value is not None:
                errs += validate_int_or_percent(f"spec.{key}", value)
                errs += not_more_than_100_percent(f"spec.{key}", value)
        errs += validate_label_selector("spec.selector", spec.get("selector"))
        errs += v.one_of(
            "spec.unhealthyPodEvictionPolicy",
            spec.get("unhealthyPodEvictionPolicy"),
            ["AlwaysAllow", "IfHealthyBudget"],
        )
        return errs

    def validate_status_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        status = new.get("status") or {}
        errs: list[v.FieldError] = []
        for key in STATUS_COUNTERS:
            errs += v.non_negative(f"status.{key}", status.get(key))
        return errs

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column("Min Available", "string", "", "The minimum number of pods that must be available."),
            Column("Max Unavailable", "string", "", "The maximum number of pods that may be unavailable."),
            Column(
                "Allowed Disruptions",
                "integer",
                "",
                "Calculated number of pods that may be disrupted at this time.",
            ),
            AGE_COLUMN,
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        lo, hi = spec.get("minAvailable"), spec.get("maxUnavailable")
        return [
            name_of(obj),
            str(lo) if lo is not None else "N/A",
            str(hi) if hi is not None else "N/A",
            as_int(status.get("disruptionsAllowed")),
            age(obj, now),
        ]
