"""scheduling.k8s.io/v1 PriorityClass: value (immutable), globalDefault, preemptionPolicy.

Mirrors ValidatePriorityClass / ValidatePriorityClassUpdate (`pkg/apis/scheduling/validation`),
SetDefaults_PriorityClass and `printPriorityClass`. "Only one globalDefault" is enforced upstream by the
Priority admission plugin, which needs the store: see `conflicting_global_default`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, name_of
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column, Strategy

HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY
SYSTEM_PRIORITY_CLASSES = {
    "system-cluster-critical": SYSTEM_CRITICAL_PRIORITY,
    "system-node-critical": SYSTEM_CRITICAL_PRIORITY + 1000,
}
_PREEMPTION_POLICIES = ("Never", "PreemptLowerPriority")


def conflicting_global_default(new: Obj, existing: Iterable[Obj]) -> str | None:
    """Name of another globalDefault class when `new` is also one (Priority admission's check)."""
    if not new.get("globalDefault"):
        return None
    for other in existing:
        if other.get("globalDefault") and name_of(other) != name_of(new):
            return name_of(other)
    return None


class PriorityClassStrategy(Strategy):
    info = ResourceInfo(
        "scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", False, ("pc",)
    )
    tracks_generation = False

    def defaults(self, obj: Obj) -> None:
        obj.setdefault("preemptionPolicy", "PreemptLowerPriority")

    def validate(self, obj: Obj) -> list[v.FieldError]:
        errs: list[v.FieldError] = []
        name = name_of(obj)
        value = obj.get("value")
        if name in SYSTEM_PRIORITY_CLASSES:
            if value != SYSTEM_PRIORITY_CLASSES[name]:
                errs.append(
                    v.forbidden(
                        "value", f"value of {name} PriorityClass must be {SYSTEM_PRIORITY_CLASSES[name]}"
                    )
                )
        elif name.startswith("system-"):
            errs.append(
                v.forbidden("metadata.name", "priority class names with 'system-' prefix are reserved")
            )
        elif isinstance(value, int) and value > HIGHEST_USER_DEFINABLE_PRIORITY:
            errs.append(
                v.forbidden(
                    "value",
                    f"maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}",
                )
            )
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            errs.append(v.type_invalid("value", value, "must be an integer"))
        elif isinstance(value, int) and not -(2**31) <= value < 2**31:
            errs.append(v.invalid("value", value, "must be a 32-bit integer"))
        errs += v.one_of("preemptionPolicy", obj.get("preemptionPolicy"), _PREEMPTION_POLICIES)
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        errs = self.validate(new)
        if new.get("value") != old.get("value"):
            errs.append(v.forbidden("value", "may not be changed in an update."))
        if new.get("preemptionPolicy") != old.get("preemptionPolicy"):
            errs.append(v.invalid("preemptionPolicy", new.get("preemptionPolicy"), "field is immutable"))
        return errs

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column(
                "Value", "integer", description="value represents the integer value of this priority class."
            ),
            Column(
                "Global-Default",
                "boolean",
                description="globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class.",
            ),
            AGE_COLUMN,
            Column(
                "PreemptionPolicy",
                description="preemptionPolicy is the Policy for preempting pods with lower priority.",
            ),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return [
            name_of(obj),
            obj.get("value", 0),
            bool(obj.get("globalDefault")),
            age(obj, now),
            obj.get("preemptionPolicy") or "PreemptLowerPriority",
        ]
