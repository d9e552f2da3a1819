"""storage.k8s.io/v1 StorageClass: provisioner, defaults, immutable fields, the `(default)` marker.

Mirrors ValidateStorageClass / ValidateStorageClassUpdate (`pkg/apis/storage/validation`),
SetDefaults_StorageClass (reclaimPolicy Delete, volumeBindingMode Immediate) and `printStorageClass`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, name_of
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column, Strategy

DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)
_RECLAIM_POLICIES = ("Delete", "Retain")
_BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
_MAX_PARAMETERS_SIZE = 256 * 1024
_MAX_PROVISIONER = 63


def is_default_class(obj: Obj) -> bool:
    """Upstream storageutil.IsDefaultAnnotation: either annotation set to "true"."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return any(annotations.get(a) == "true" for a in DEFAULT_CLASS_ANNOTATIONS)


class StorageClassStrategy(Strategy):
    info = ResourceInfo(
        "storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass", False, ("sc",)
    )
    tracks_generation = False

    def defaults(self, obj: Obj) -> None:
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")

    def validate(self, obj: Obj) -> list[v.FieldError]:
        errs: list[v.FieldError] = []
        provisioner = obj.get("provisioner") or ""
        if not provisioner:
            errs.append(v.required("provisioner"))
        else:
            if len(provisioner) > _MAX_PROVISIONER:
                errs.append(v.too_long("provisioner", _MAX_PROVISIONER))
            errs += v.check("provisioner", provisioner, v.qualified_name(provisioner.lower()))
        params = obj.get("parameters") or {}
        size = 0
        for k, val in params.items():
            if not k:
                errs.append(v.invalid("parameters", k, "key can't be empty"))
            size += len(k) + len(str(val))
        if size > _MAX_PARAMETERS_SIZE:
            errs.append(v.too_long("parameters", _MAX_PARAMETERS_SIZE))
        errs += v.one_of("reclaimPolicy", obj.get("reclaimPolicy"), _RECLAIM_POLICIES)
        mode = obj.get("volumeBindingMode")
        if mode is None:
            errs.append(v.required("volumeBindingMode"))
        else:
            errs += v.one_of("volumeBindingMode", mode, _BINDING_MODES)
        for i, term in enumerate(obj.get("allowedTopologies") or []):
            exprs = (term or {}).get("matchLabelExpressions") or []
            if not exprs:
                errs.append(
                    v.required(
                        f"allowedTopologies[{i}].matchLabelExpressions",
                        "must have at least one label expression",
                    )
                )
            for j, expr in enumerate(exprs):
                f = f"allowedTopologies[{i}].matchLabelExpressions[{j}]"
                errs += v.check(f"{f}.key", expr.get("key", ""), v.qualified_name(expr.get("key", "")))
                if not expr.get("values"):
                    errs.append(v.required(f"{f}.values", "must specify as least one value"))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        errs = self.validate(new)
        if (new.get("parameters") or {}) != (old.get("parameters") or {}):
            errs.append(v.forbidden("parameters", "updates to parameters are forbidden."))
        if new.get("provisioner") != old.get("provisioner"):
            errs.append(v.forbidden("provisioner", "updates to provisioner are forbidden."))
        if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
            errs.append(v.forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
            errs.append(v.invalid("volumeBindingMode", new.get("volumeBindingMode"), "field is immutable"))
        return errs

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column("Provisioner", description="provisioner indicates the type of the provisioner."),
            Column(
                "ReclaimPolicy",
                description="reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class.",
            ),
            Column(
                "VolumeBindingMode",
                description="volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.",
            ),
            Column(
                "AllowVolumeExpansion",
                description="allowVolumeExpansion shows whether the storage class allow volume expand.",
            ),
            AGE_COLUMN,
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        name = name_of(obj)
        if is_default_class(obj):
            name += " (default)"
        return [
            name,
            obj.get("provisioner", ""),
            obj.get("reclaimPolicy") or "Delete",
            obj.get("volumeBindingMode") or "Immediate",
            "true" if obj.get("allowVolumeExpansion") else "false",
            age(obj, now),
        ]
