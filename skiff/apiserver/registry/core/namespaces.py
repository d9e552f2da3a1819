"""Namespace: phase Active, the `kubernetes` finalizer, the metadata-name label, `finalize` rules.

Mirrors `pkg/registry/core/namespace/strategy.go` (PrepareForCreate adds `kubernetes` to spec.finalizers
and sets phase Active; updates keep spec.finalizers and status; `finalize` changes only spec.finalizers),
`SetDefaults_Namespace` (label `kubernetes.io/metadata.name`) and ValidateNamespace.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, meta, name_of
from skiff.api.resources import ResourceInfo, Subresource
from skiff.apiserver.registry.core.common import age_col, col, name_col, since
from skiff.apiserver.registry.strategy import Column, Strategy

FINALIZER_KUBERNETES = "kubernetes"
NAME_LABEL = "kubernetes.io/metadata.name"
STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")
NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


def validate_finalizer_name(path: str, name: Any) -> list[v.FieldError]:
    """`validateFinalizerName`: a qualified name; unprefixed names must be standard finalizers."""
    if not isinstance(name, str):
        return [v.type_invalid(path, name, "must be a string")]
    errs = v.check(path, name, v.qualified_name(name))
    if not errs and "/" not in name and name not in STANDARD_FINALIZERS:
        errs.append(
            v.invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified")
        )
    return errs


class NamespaceStrategy(Strategy):
    info = ResourceInfo(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        False,
        ("ns",),
        (),
        NAMESPACE_VERBS,
        (
            Subresource("finalize", "", "v1", "Namespace", ("update",)),
            Subresource("status", "", "v1", "Namespace", ("get", "patch", "update")),
        ),
    )
    name_rule = staticmethod(v.dns1123_label)
    status_subresource = True
    tracks_generation = False

    def defaults(self, obj: Obj) -> None:
        name = name_of(obj)
        if name:
            labels = meta(obj).get("labels")
            if not isinstance(labels, dict):
                labels = meta(obj)["labels"] = {}
            labels[NAME_LABEL] = name
        status = obj.get("status")
        if isinstance(status, dict) and not status.get("phase"):
            status["phase"] = "Active"

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = obj["spec"] = {}
        finalizers = spec.get("finalizers")
        if not isinstance(finalizers, list):
            finalizers = spec["finalizers"] = []
        if FINALIZER_KUBERNETES not in finalizers:
            finalizers.append(FINALIZER_KUBERNETES)

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Active"}

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Main-resource updates never change spec.finalizers (only `finalize` does) nor status."""
        super().prepare_for_update(new, old)
        old_spec = old.get("spec")
        if isinstance(old_spec, dict):
            new["spec"] = {
                **(new.get("spec") or {}),
                "finalizers": copy.deepcopy(old_spec.get("finalizers") or []),
            }

    def prepare_for_finalize_update(self, new: Obj, old: Obj) -> None:
        """`/finalize`: only spec.finalizers comes from `new`; everything else from `old`."""
        finalizers = (new.get("spec") or {}).get("finalizers") or []
        new.clear()
        new.update(copy.deepcopy(old))
        new.setdefault("spec", {})["finalizers"] = list(finalizers)

    def blocks_deletion(self, obj: Obj) -> bool:
        """A namespace is removed only once spec.finalizers is empty (the namespace controller finalizes)."""
        return bool((obj.get("spec") or {}).get("finalizers"))

    def prepare_for_delete(self, obj: Obj) -> None:
        """Deletion pending: phase Terminating (upstream namespace REST Delete)."""
        status = obj.get("status")
        if not isinstance(status, dict):
            status = obj["status"] = {}
        status["phase"] = "Terminating"

    def validate(self, obj: Obj) -> list[v.FieldError]:
        errs: list[v.FieldError] = []
        for i, f in enumerate((obj.get("spec") or {}).get("finalizers") or []):
            errs += validate_finalizer_name(f"spec.finalizers[{i}]", f)
        return errs

    def validate_status_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        """`ValidateNamespaceStatusUpdate`: Terminating only with a deletionTimestamp, Active only without."""
        phase = (new.get("status") or {}).get("phase")
        if not (new.get("metadata") or {}).get("deletionTimestamp"):
            if phase != "Active":
                return [
                    v.invalid("status.Phase", phase, "may only be 'Active' if `deletionTimestamp` is empty")
                ]
        elif phase != "Terminating":
            return [
                v.invalid(
                    "status.Phase", phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"
                )
            ]
        return []

    def validate_finalize_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        return self.validate(new)

    def columns(self) -> list[Column]:
        return [name_col(), col("Status", description="The status of the namespace"), age_col()]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return [
            name_of(obj),
            (obj.get("status") or {}).get("phase") or "",
            since((obj.get("metadata") or {}).get("creationTimestamp"), now),
        ]

    def fields(self, obj: Obj) -> dict[str, str]:
        return {"status.phase": (obj.get("status") or {}).get("phase") or ""}
