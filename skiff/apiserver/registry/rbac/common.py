"""Shared RBAC validation, defaulting and printing (roles and bindings of both scopes).

Mirrors `pkg/apis/rbac/validation/validation.go` (ValidatePolicyRule, ValidateRoleBindingSubject,
roleRef rules), `pkg/apis/rbac/v1/defaults.go` and `printRoleBinding` / `rbac.SubjectsStrings`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, name_of, parse_time
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column

GROUP = "rbac.authorization.k8s.io"
CREATED_AT_COLUMN = Column(
    "Created At",
    "date",
    "",
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
)


def created_at(obj: Obj) -> str:
    """The `Created At` cell of upstream's default table convertor: RFC 3339 in UTC."""
    t = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t else ""


def validate_rules(rules: Any, namespaced: bool, field: str = "rules") -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    for i, rule in enumerate(rules or []):
        f = f"{field}[{i}]"
        if not rule.get("verbs"):
            errs.append(v.required(f"{f}.verbs", "verbs must contain at least one value"))
        urls = rule.get("nonResourceURLs") or []
        if urls:
            if namespaced:
                errs.append(
                    v.invalid(
                        f"{f}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs"
                    )
                )
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                errs.append(
                    v.invalid(
                        f"{f}.nonResourceURLs",
                        urls,
                        "rules cannot apply to both regular resources and non-resource URLs",
                    )
                )
            continue
        if not rule.get("apiGroups"):
            errs.append(v.required(f"{f}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            errs.append(v.required(f"{f}.resources", "resource rules must supply at least one resource"))
    return errs


def default_binding(obj: Obj) -> None:
    """v1 defaults: roleRef.apiGroup and User/Group subjects' apiGroup are the RBAC group."""
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = GROUP
    for subject in obj.get("subjects") or []:
        if not isinstance(subject, dict):
            continue
        # ServiceAccount subjects default to the core group "", which Go's omitempty never serializes.
        if subject.get("apiGroup") is None and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = GROUP


def validate_subject(field: str, subject: Obj, namespaced: bool) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    name = subject.get("name") or ""
    if not name:
        errs.append(v.required(f"{field}.name"))
    kind = subject.get("kind")
    group = subject.get("apiGroup") or ""
    if kind == "ServiceAccount":
        if name:
            errs += v.check(f"{field}.name", name, v.dns1123_subdomain(name))
        if group:
            errs.append(v.not_supported(f"{field}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            errs.append(v.required(f"{field}.namespace"))
    elif kind in ("User", "Group"):
        if group != GROUP:
            errs.append(v.not_supported(f"{field}.apiGroup", group, [GROUP]))
    else:
        errs.append(v.not_supported(f"{field}.kind", kind, ["ServiceAccount", "User", "Group"]))
    return errs


def validate_binding(obj: Obj, namespaced: bool) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    ref = obj.get("roleRef") or {}
    if ref.get("apiGroup") != GROUP:
        errs.append(v.not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        errs.append(v.not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    name = ref.get("name") or ""
    if not name:
        errs.append(v.required("roleRef.name"))
    else:
        errs += v.check("roleRef.name", name, v.path_segment_name(name))
    for i, subject in enumerate(obj.get("subjects") or []):
        errs += validate_subject(f"subjects[{i}]", subject or {}, namespaced)
    return errs


def validate_binding_update(new: Obj, old: Obj) -> list[v.FieldError]:
    if new.get("roleRef") != old.get("roleRef"):
        return [v.invalid("roleRef", new.get("roleRef"), "cannot change roleRef")]
    return []


def subjects_strings(subjects: list[Obj]) -> tuple[str, str, str]:
    """(users, groups, service accounts) joined by ", "; service accounts as `namespace/name`."""
    users, groups, sas = [], [], []
    for s in subjects:
        kind = s.get("kind")
        if kind == "User":
            users.append(s.get("name", ""))
        elif kind == "Group":
            groups.append(s.get("name", ""))
        elif kind == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}/{s.get('name', '')}")
    return ", ".join(users), ", ".join(groups), ", ".join(sas)


def binding_columns(kind: str) -> list[Column]:
    what = "roleBinding" if kind == "RoleBinding" else "clusterRoleBinding"
    return [
        NAME_COLUMN,
        Column(
            "Role",
            description="RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
        ),
        AGE_COLUMN,
        Column("Users", priority=1, description=f"Users in the {what}"),
        Column("Groups", priority=1, description=f"Groups in the {what}"),
        Column("ServiceAccounts", priority=1, description=f"ServiceAccounts in the {what}"),
    ]


def binding_row(obj: Obj, age_cell: str) -> list[Any]:
    ref = obj.get("roleRef") or {}
    users, groups, sas = subjects_strings(obj.get("subjects") or [])
    return [name_of(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", age_cell, users, groups, sas]
