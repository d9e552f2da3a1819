"""PersistentVolume (cluster-scoped): defaults, validation and the kubectl Table row.

Mirrors `SetDefaults_PersistentVolume` (reclaim policy Retain, volumeMode Filesystem, phase Pending),
ValidatePersistentVolume(Spec) and `printPersistentVolume`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, name_of
from skiff.api.resources import ALL_VERBS, SUB_VERBS, ResourceInfo, Subresource
from skiff.apiserver.registry.core.common import (
    access_modes_string,
    age_col,
    col,
    key_path,
    name_col,
    since,
    validate_immutable,
    validate_quantity,
)
from skiff.apiserver.registry.strategy import Column, Strategy

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
VOLUME_MODES = ("Block", "Filesystem")
STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
# The client models carry no description for object-typed fields; this is upstream's swagger text.
CLAIM_REF_DOC = (
    "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. "
    "Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. "
    "More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding"
)
PV_SOURCES = (
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "hostPath",
    "glusterfs",
    "nfs",
    "rbd",
    "iscsi",
    "cinder",
    "cephfs",
    "fc",
    "flocker",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "local",
    "storageos",
    "csi",
)


def validate_access_modes(path: str, modes: Any, required_detail: str = "") -> list[v.FieldError]:
    if not modes:
        return [v.required(path, required_detail)]
    errs: list[v.FieldError] = []
    for mode in modes:
        if mode not in ACCESS_MODES:
            errs.append(v.not_supported(path, mode, ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errs.append(v.forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def storage_class(obj: Obj) -> str:
    """`GetPersistentVolume(Claim)Class`: the beta annotation wins over spec.storageClassName."""
    ann = ((obj.get("metadata") or {}).get("annotations") or {}).get(STORAGE_CLASS_ANNOTATION)
    if ann is not None:
        return str(ann)
    return str((obj.get("spec") or {}).get("storageClassName") or "")


class PersistentVolumeStrategy(Strategy):
    info = ResourceInfo(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        False,
        ("pv",),
        (),
        ALL_VERBS,
        (Subresource("status", "", "v1", "PersistentVolume", SUB_VERBS),),
    )
    status_subresource = True
    tracks_generation = False

    def defaults(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
            spec.setdefault("volumeMode", "Filesystem")
            if isinstance(spec.get("hostPath"), dict):
                spec["hostPath"].setdefault("type", "")

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending"}

    def validate(self, obj: Obj) -> list[v.FieldError]:
        spec = obj.get("spec") or {}
        errs = validate_access_modes("spec.accessModes", spec.get("accessModes"))
        capacity = spec.get("capacity") or {}
        if "storage" not in capacity:
            errs.append(v.required("spec.capacity"))
        for name, q in capacity.items():
            if name != "storage":
                errs.append(v.not_supported(key_path("spec.capacity", name), name, ("storage",)))
            errs += validate_quantity(key_path("spec.capacity", name), q)
        sources = [k for k in PV_SOURCES if spec.get(k) is not None]
        if not sources:
            errs.append(v.required("spec", "must specify a volume type"))
        for extra in sources[1:]:
            errs.append(v.forbidden(f"spec.{extra}", "may not specify more than 1 volume type"))
        policy = spec.get("persistentVolumeReclaimPolicy")
        if policy not in RECLAIM_POLICIES:
            errs.append(v.not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
        mode = spec.get("volumeMode")
        if mode is not None and mode not in VOLUME_MODES:
            errs.append(v.not_supported("spec.volumeMode", mode, VOLUME_MODES))
        if isinstance(spec.get("hostPath"), dict) and not spec["hostPath"].get("path"):
            errs.append(v.required("spec.hostPath.path"))
        if isinstance(spec.get("local"), dict) and not spec["local"].get("path"):
            errs.append(v.required("spec.local.path"))
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        errs = self.validate(new)
        ns, os_ = new.get("spec") or {}, old.get("spec") or {}
        errs += validate_immutable("spec.volumeMode", ns.get("volumeMode"), os_.get("volumeMode"))
        for src in PV_SOURCES:
            if os_.get(src) is not None and ns.get(src) != os_.get(src):
                errs.append(
                    v.forbidden(
                        "spec.persistentvolumesource",
                        "spec.persistentvolumesource is immutable after creation",
                    )
                )
                break
        return errs

    def columns(self) -> list[Column]:
        return [
            name_col(),
            col("Capacity", "V1PersistentVolumeSpec", "capacity"),
            col("Access Modes", "V1PersistentVolumeSpec", "accessModes"),
            col("Reclaim Policy", "V1PersistentVolumeSpec", "persistentVolumeReclaimPolicy"),
            col("Status", "V1PersistentVolumeStatus", "phase"),
            col("Claim", description=CLAIM_REF_DOC),
            col("StorageClass", description="StorageClass of the pv"),
            col("VolumeAttributesClass", description="VolumeAttributesClass of the pv"),
            col("Reason", "V1PersistentVolumeStatus", "reason"),
            age_col(),
            col("VolumeMode", "V1PersistentVolumeSpec", "volumeMode", priority=1),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        ref = spec.get("claimRef")
        claim = f"{ref.get('namespace') or ''}/{ref.get('name') or ''}" if isinstance(ref, dict) else ""
        phase = status.get("phase") or ""
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            phase = "Terminating"
        return [
            name_of(obj),
            str((spec.get("capacity") or {}).get("storage") or "0"),
            access_modes_string(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy") or "",
            phase,
            claim,
            storage_class(obj),
            spec.get("volumeAttributesClassName") or "<unset>",
            status.get("reason") or "",
            since((obj.get("metadata") or {}).get("creationTimestamp"), now),
            spec.get("volumeMode") or "<unset>",
        ]
