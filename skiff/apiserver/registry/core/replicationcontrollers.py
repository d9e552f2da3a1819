"""ReplicationController: defaults (selector/labels from the template, replicas 1), validation, scale.

Mirrors `SetDefaults_ReplicationController`, ValidateReplicationController(Spec) with
ValidatePodTemplateSpecForRC, `printReplicationController`, and the autoscaling/v1 Scale subresource.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, meta, name_of
from skiff.api.resources import ALL_VERBS, SUB_VERBS, ResourceInfo, Subresource
from skiff.apiserver.registry.core.common import age_col, col, format_labels, int_field, name_col, since
from skiff.apiserver.registry.core.podspec import default_pod_spec, validate_pod_template
from skiff.apiserver.registry.strategy import Column, Strategy


def _selector_string(selector: Any) -> str:
    return ",".join(f"{k}={selector[k]}" for k in sorted(selector or {}))


class ReplicationControllerStrategy(Strategy):
    info = ResourceInfo(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        "replicationcontroller",
        True,
        ("rc",),
        ("all",),
        ALL_VERBS,
        (
            Subresource("scale", "autoscaling", "v1", "Scale", SUB_VERBS),
            Subresource("status", "", "v1", "ReplicationController", SUB_VERBS),
        ),
    )
    status_subresource = True
    scale_subresource = True

    def defaults(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        template = spec.get("template")
        tlabels = (
            ((template or {}).get("metadata") or {}).get("labels") if isinstance(template, dict) else None
        )
        if tlabels:
            if not spec.get("selector"):
                spec["selector"] = dict(tlabels)
            if not (obj.get("metadata") or {}).get("labels"):
                meta(obj)["labels"] = dict(tlabels)
        spec.setdefault("replicas", 1)
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            default_pod_spec(template["spec"])

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {"replicas": 0}

    def validate(self, obj: Obj) -> list[v.FieldError]:
        spec = obj.get("spec") or {}
        errs = v.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
        selector = spec.get("selector") or {}
        if not selector:
            errs.append(v.required("spec.selector"))
        else:
            errs += v.labels("spec.selector", selector)
        errs += v.non_negative("spec.replicas", spec.get("replicas"))
        template = spec.get("template")
        if template is None:
            errs.append(v.required("spec.template"))
            return errs
        tlabels = ((template.get("metadata") or {}).get("labels") or {}) if isinstance(template, dict) else {}
        if selector and any(tlabels.get(k) != val for k, val in selector.items()):
            errs.append(
                v.invalid(
                    "spec.template.metadata.labels", tlabels, "`selector` does not match template `labels`"
                )
            )
        errs += validate_pod_template(template, "spec.template")
        tspec = (template.get("spec") or {}) if isinstance(template, dict) else {}
        rp = tspec.get("restartPolicy")
        if rp and rp != "Always":
            errs.append(v.not_supported("spec.template.spec.restartPolicy", rp, ("Always",)))
        if tspec.get("activeDeadlineSeconds") is not None:
            errs.append(
                v.forbidden(
                    "spec.template.spec.activeDeadlineSeconds",
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                )
            )
        return errs

    def columns(self) -> list[Column]:
        return [
            name_col(),
            col("Desired", "V1ReplicationControllerSpec", "replicas", type="integer"),
            col("Current", "V1ReplicationControllerStatus", "replicas", type="integer"),
            col("Ready", "V1ReplicationControllerStatus", "readyReplicas", type="integer"),
            age_col(),
            col("Containers", description="Names of each container in the template.", priority=1),
            col("Images", description="Images referenced by each container in the template.", priority=1),
            col("Selector", "V1ReplicationControllerSpec", "selector", priority=1),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        containers = (((spec.get("template") or {}).get("spec") or {}).get("containers")) or []
        return [
            name_of(obj),
            int_field(spec, "replicas"),
            int_field(status, "replicas"),
            int_field(status, "readyReplicas"),
            since((obj.get("metadata") or {}).get("creationTimestamp"), now),
            ",".join(str(c.get("name") or "") for c in containers),
            ",".join(str(c.get("image") or "") for c in containers),
            format_labels(spec.get("selector")),
        ]

    def fields(self, obj: Obj) -> dict[str, str]:
        return {"status.replicas": str(int_field(obj.get("status"), "replicas"))}

    def scale_of(self, obj: Obj) -> tuple[int, int, str]:
        spec = obj.get("spec") or {}
        return (
            int_field(spec, "replicas"),
            int_field(obj.get("status"), "replicas"),
            _selector_string(spec.get("selector")),
        )

    def set_replicas(self, obj: Obj, replicas: int) -> None:
        obj.setdefault("spec", {})["replicas"] = replicas
