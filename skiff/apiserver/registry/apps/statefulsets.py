"""apps/v1 StatefulSet: defaults, validation, spec immutability, `scale`/`status`, printer row.

Mirrors SetDefaults_StatefulSet (StatefulSetAutoDeletePVC on, MaxUnavailableStatefulSet off as in
1.32), `ValidateStatefulSetSpec` / `ValidateStatefulSetUpdate` and the volumeClaimTemplates defaults
(`SetDefaults_PersistentVolumeClaim`: status.phase Pending; spec.volumeMode Filesystem).
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
    ReplicatedStrategy,
    as_int,
    containers_cells,
    default_template,
    invalid_labels,
    invalid_selector,
    selector_is_empty,
    selector_matches,
    set_default,
    spec_of,
    template_labels,
    validate_label_selector,
    validate_replica_status,
    validate_restart_policy,
)
from skiff.apiserver.registry.core.podspec import validate_pod_template
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column

# Spec fields an update may change (upstream ValidateStatefulSetUpdate).
MUTABLE_FIELDS = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)
IMMUTABLE_SPEC_MSG = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
    "'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


def default_claim_template(pvc: dict[str, Any]) -> None:
    """A volumeClaimTemplate as served by apps/v1: typed, volumeMode Filesystem, phase Pending."""
    pvc.setdefault("apiVersion", "v1")
    pvc.setdefault("kind", "PersistentVolumeClaim")
    spec = pvc.get("spec")
    if not isinstance(spec, dict):
        spec = pvc["spec"] = {}
    set_default(spec, "volumeMode", "Filesystem")
    status = pvc.get("status")
    if not isinstance(status, dict):
        status = pvc["status"] = {}
    if not status.get("phase"):
        status["phase"] = "Pending"


def _template_with_claims(template: dict[str, Any], claims: list[Any]) -> dict[str, Any]:
    """The template as the pods will be: claim templates become volumes, so mounts of them validate."""
    names = [((c or {}).get("metadata") or {}).get("name") for c in claims if isinstance(c, dict)]
    spec = template.get("spec")
    if not names or not isinstance(spec, dict):
        return template
    have = {vol.get("name") for vol in spec.get("volumes") or [] if isinstance(vol, dict)}
    extra = [{"name": n, "persistentVolumeClaim": {"claimName": n}} for n in names if n and n not in have]
    if not extra:
        return template
    out = dict(template)
    out["spec"] = dict(spec, volumes=list(spec.get("volumes") or []) + extra)
    return out


class StatefulSetStrategy(ReplicatedStrategy):
    info = ResourceInfo(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        True,
        ("sts",),
        ("all",),
        ALL_VERBS,
        (
            Subresource("scale", "autoscaling", "v1", "Scale"),
            Subresource("status", "apps", "v1", "StatefulSet"),
        ),
    )
    # StatefulSet names become pod hostnames, so they must be DNS labels (upstream since 1.27).
    name_rule = staticmethod(v.dns1123_label)

    def defaults(self, obj: Obj) -> None:
        spec = spec_of(obj)
        if not spec.get("podManagementPolicy"):
            spec["podManagementPolicy"] = "OrderedReady"
        strategy = spec.get("updateStrategy")
        if not isinstance(strategy, dict):
            strategy = spec["updateStrategy"] = {}
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            if strategy.get("rollingUpdate") is None:
                strategy["rollingUpdate"] = {}
        rolling = strategy.get("rollingUpdate")
        if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict):
            set_default(rolling, "partition", 0)
        retention = spec.get("persistentVolumeClaimRetentionPolicy")
        if not isinstance(retention, dict):
            retention = spec["persistentVolumeClaimRetentionPolicy"] = {}
        if not retention.get("whenDeleted"):
            retention["whenDeleted"] = "Retain"
        if not retention.get("whenScaled"):
            retention["whenScaled"] = "Retain"
        set_default(spec, "replicas", 1)
        set_default(spec, "revisionHistoryLimit", 10)
        default_template(spec.get("template"))
        for pvc in spec.get("volumeClaimTemplates") or []:
            if isinstance(pvc, dict):
                default_claim_template(pvc)

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {"replicas": 0, "availableReplicas": 0}

    def validate(self, obj: Obj) -> list[v.FieldError]:
        spec = obj.get("spec") or {}
        errs: list[v.FieldError] = []
        policy = spec.get("podManagementPolicy")
        if not policy:
            errs.append(v.required("spec.podManagementPolicy"))
        elif policy not in ("OrderedReady", "Parallel"):
            errs.append(v.invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
        errs += self._validate_update_strategy(spec.get("updateStrategy"))
        retention = spec.get("persistentVolumeClaimRetentionPolicy")
        if isinstance(retention, dict):
            for key in ("whenDeleted", "whenScaled"):
                errs += v.one_of(
                    f"spec.persistentVolumeClaimRetentionPolicy.{key}",
                    retention.get(key),
                    ["Retain", "Delete"],
                )
        errs += v.non_negative("spec.replicas", spec.get("replicas"))
        errs += v.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
        ordinals = spec.get("ordinals")
        if isinstance(ordinals, dict):
            errs += v.non_negative("spec.ordinals.start", ordinals.get("start"))
        sel = spec.get("selector")
        if sel is None:
            errs.append(v.required("spec.selector"))
        else:
            errs += validate_label_selector("spec.selector", sel)
            if selector_is_empty(sel):
                errs.append(
                    invalid_selector("spec.selector", sel, "empty selector is invalid for statefulset")
                )
        template = spec.get("template")
        if not isinstance(template, dict):
            errs.append(v.required("spec.template"))
        else:
            matched = selector_matches(sel, template_labels(template))
            if matched is None:
                errs.append(invalid_selector("spec.selector", sel, ""))
            elif not selector_is_empty(sel) and not matched:
                errs.append(
                    invalid_labels(
                        "spec.template.metadata.labels", template_labels(template), SELECTOR_MISMATCH
                    )
                )
            claims = spec.get("volumeClaimTemplates") or []
            errs += validate_pod_template(_template_with_claims(template, claims), "spec.template")
            errs += validate_restart_policy(template, "spec.template.spec.restartPolicy", ("Always",))
            if (template.get("spec") or {}).get("activeDeadlineSeconds") is not None:
                errs.append(
                    v.forbidden(
                        "spec.template.spec.activeDeadlineSeconds",
                        "activeDeadlineSeconds in StatefulSet is not Supported",
                    )
                )
        return errs

    @staticmethod
    def _validate_update_strategy(strategy: Any) -> list[v.FieldError]:
        strategy = strategy if isinstance(strategy, dict) else {}
        kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
        if not kind:
            return [v.required("spec.updateStrategy")]
        if kind == "OnDelete":
            if rolling is not None:
                return [
                    v.invalid(
                        "spec.updateStrategy.rollingUpdate",
                        rolling,
                        "only allowed for updateStrategy 'RollingUpdate'",
                    )
                ]
            return []
        if kind == "RollingUpdate":
            if isinstance(rolling, dict):
                return v.non_negative("spec.updateStrategy.rollingUpdate.partition", rolling.get("partition"))
            return []
        return [v.invalid("spec.updateStrategy", strategy, "must be 'RollingUpdate' or 'OnDelete'")]

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        errs = self.validate(new)
        new_spec = {k: val for k, val in (new.get("spec") or {}).items() if k not in MUTABLE_FIELDS}
        old_spec = {k: val for k, val in (old.get("spec") or {}).items() if k not in MUTABLE_FIELDS}
        if new_spec != old_spec:
            errs.append(v.forbidden("spec", IMMUTABLE_SPEC_MSG))
        return errs

    def validate_status_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        return validate_replica_status(
            new.get("status"),
            ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"),
            ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"),
            "cannot be greater than status.readyReplicas",
        )

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column("Ready", "string", "", "Number of the pod with ready state"),
            AGE_COLUMN,
            CONTAINERS_COLUMN,
            IMAGES_COLUMN,
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        names, images = containers_cells(spec.get("template"))
        ready = f"{as_int(status.get('readyReplicas'))}/{as_int(spec.get('replicas'))}"
        return [name_of(obj), ready, age(obj, now), names, images]
