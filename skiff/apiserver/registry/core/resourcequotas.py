"""ResourceQuota: hard limits and scopes validation; Request/Limit cells as upstream `printResourceQuota`.

The status subresource holds `hard`/`used`, written by the quota controller.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, name_of
from skiff.api.resources import ALL_VERBS, SUB_VERBS, ResourceInfo, Subresource
from skiff.apiserver.registry.core.common import age_col, col, key_path, name_col, since, validate_quantity
from skiff.apiserver.registry.strategy import Column, Strategy

SCOPES = (
    "BestEffort",
    "CrossNamespacePodAffinity",
    "NotBestEffort",
    "NotTerminating",
    "PriorityClass",
    "Terminating",
)


def _validate_resource_list(path: str, rl: Any) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    for name, q in (rl or {}).items():
        fp = key_path(path, name)
        base = name.split("/", 1)[-1] if name.startswith("count/") else name
        if not base:
            errs.append(v.invalid(fp, name, "must be a standard resource for quota"))
        errs += validate_quantity(fp, q)
    return errs


def quota_cells(rq: Obj) -> tuple[str, str]:
    """(Request, Limit): `name: used/hard` for each hard resource, sorted; `limits.*` go to Limit."""
    hard = (rq.get("spec") or {}).get("hard") or {}
    used = (rq.get("status") or {}).get("used") or {}
    req: list[str] = []
    lim: list[str] = []
    for name in sorted(hard):
        text = f"{name}: {used.get(name, '0')}/{hard[name]}"
        (lim if name.split(".")[0] == "limits" and "." in name else req).append(text)
    return ", ".join(req), ", ".join(lim)


class ResourceQuotaStrategy(Strategy):
    info = ResourceInfo(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        "resourcequota",
        True,
        ("quota",),
        (),
        ALL_VERBS,
        (Subresource("status", "", "v1", "ResourceQuota", SUB_VERBS),),
    )
    status_subresource = True
    tracks_generation = False

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {}

    def validate(self, obj: Obj) -> list[v.FieldError]:
        spec = obj.get("spec") or {}
        errs = _validate_resource_list("spec.hard", spec.get("hard"))
        for i, scope in enumerate(spec.get("scopes") or []):
            if scope not in SCOPES:
                errs.append(v.not_supported(f"spec.scopes[{i}]", scope, SCOPES))
        for i, expr in enumerate((spec.get("scopeSelector") or {}).get("matchExpressions") or []):
            p = f"spec.scopeSelector.matchExpressions[{i}]"
            if (expr or {}).get("scopeName") not in SCOPES:
                errs.append(v.not_supported(f"{p}.scopeName", (expr or {}).get("scopeName"), SCOPES))
            op = (expr or {}).get("operator")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                errs.append(v.not_supported(f"{p}.operator", op, ("DoesNotExist", "Exists", "In", "NotIn")))
        return errs

    def validate_status_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        status = new.get("status") or {}
        return _validate_resource_list("status.hard", status.get("hard")) + _validate_resource_list(
            "status.used", status.get("used")
        )

    def columns(self) -> list[Column]:
        return [
            name_col(),
            age_col(),
            col(
                "Request",
                description="Request represents a minimum amount of cpu/memory that a container may consume.",
            ),
            col(
                "Limit",
                description="Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
            ),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        req, lim = quota_cells(obj)
        return [name_of(obj), since((obj.get("metadata") or {}).get("creationTimestamp"), now), req, lim]
