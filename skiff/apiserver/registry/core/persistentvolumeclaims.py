"""PersistentVolumeClaim: defaults, validation, the spec-immutability rule and the Table row.

Mirrors `SetDefaults_PersistentVolumeClaim(Spec)` (volumeMode Filesystem, phase Pending),
ValidatePersistentVolumeClaim(Update) and `printPersistentVolumeClaim`.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, name_of
from skiff.api.quantity import parse_quantity
from skiff.api.resources import ALL_VERBS, SUB_VERBS, ResourceInfo, Subresource
from skiff.apiserver.registry.core.common import (
    access_modes_string,
    age_col,
    col,
    key_path,
    name_col,
    since,
    validate_label_selector,
    validate_quantity,
)
from skiff.apiserver.registry.core.persistentvolumes import VOLUME_MODES, storage_class, validate_access_modes
from skiff.apiserver.registry.strategy import Column, Strategy

IMMUTABLE_MSG = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"


def validate_claim_spec(spec: Any, path: str = "spec") -> list[v.FieldError]:
    """`ValidatePersistentVolumeClaimSpec`."""
    if not isinstance(spec, dict):
        return [v.required(path)]
    errs = validate_access_modes(
        f"{path}.accessModes", spec.get("accessModes"), "at least 1 access mode is required"
    )
    errs += validate_label_selector(f"{path}.selector", spec.get("selector"))
    requests = (spec.get("resources") or {}).get("requests") or {}
    if "storage" not in requests:
        errs.append(v.required(key_path(f"{path}.resources", "storage")))
    else:
        q_errs = validate_quantity(key_path(f"{path}.resources.requests", "storage"), requests["storage"])
        errs += q_errs
        if not q_errs and parse_quantity(requests["storage"]) <= 0:
            errs.append(
                v.invalid(
                    key_path(f"{path}.resources", "storage"), requests["storage"], "must be greater than zero"
                )
            )
    for name, q in ((spec.get("resources") or {}).get("limits") or {}).items():
        errs += validate_quantity(key_path(f"{path}.resources.limits", name), q)
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        errs.append(v.not_supported(f"{path}.volumeMode", mode, VOLUME_MODES))
    return errs


class PersistentVolumeClaimStrategy(Strategy):
    info = ResourceInfo(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        True,
        ("pvc",),
        (),
        ALL_VERBS,
        (Subresource("status", "", "v1", "PersistentVolumeClaim", SUB_VERBS),),
    )
    status_subresource = True
    tracks_generation = False

    def defaults(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("volumeMode", "Filesystem")

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending"}

    def validate(self, obj: Obj) -> list[v.FieldError]:
        return validate_claim_spec(obj.get("spec"))

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        """Only resources.requests, volumeAttributesClassName, and volumeName from "" may change."""
        errs = self.validate(new)
        ns, os_ = copy.deepcopy(new.get("spec") or {}), copy.deepcopy(old.get("spec") or {})
        for spec in (ns, os_):
            (spec.get("resources") or {}).pop("requests", None)
            spec.pop("volumeAttributesClassName", None)
        if not os_.get("volumeName"):
            ns.pop("volumeName", None)
            os_.pop("volumeName", None)
        if ns != os_:
            errs.append(v.forbidden("spec", IMMUTABLE_MSG))
        return errs

    def columns(self) -> list[Column]:
        return [
            name_col(),
            col("Status", "V1PersistentVolumeClaimStatus", "phase"),
            col("Volume", "V1PersistentVolumeClaimSpec", "volumeName"),
            col("Capacity", "V1PersistentVolumeClaimStatus", "capacity"),
            col("Access Modes", "V1PersistentVolumeClaimStatus", "accessModes"),
            col("StorageClass", description="StorageClass of the pvc"),
            col("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
            age_col(),
            col("VolumeMode", "V1PersistentVolumeClaimSpec", "volumeMode", priority=1),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        phase = status.get("phase") or ""
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            phase = "Terminating"
        capacity = modes = ""
        if spec.get("volumeName"):
            modes = access_modes_string(status.get("accessModes"))
            capacity = str((status.get("capacity") or {}).get("storage") or "0")
        return [
            name_of(obj),
            phase,
            spec.get("volumeName") or "",
            capacity,
            modes,
            storage_class(obj),
            spec.get("volumeAttributesClassName") or "<unset>",
            since((obj.get("metadata") or {}).get("creationTimestamp"), now),
            spec.get("volumeMode") or "<unset>",
        ]
