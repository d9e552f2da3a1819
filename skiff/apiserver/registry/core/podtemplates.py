"""PodTemplate: template defaulting/validation and the upstream `printPodTemplate` columns (no Age)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, name_of
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.core.common import col, format_labels, name_col
from skiff.apiserver.registry.core.podspec import default_pod_spec, validate_pod_template
from skiff.apiserver.registry.strategy import Column, Strategy


class PodTemplateStrategy(Strategy):
    info = ResourceInfo("", "v1", "PodTemplate", "podtemplates", "podtemplate", True)
    tracks_generation = False

    def defaults(self, obj: Obj) -> None:
        spec = (obj.get("template") or {}).get("spec") if isinstance(obj.get("template"), dict) else None
        if isinstance(spec, dict):
            default_pod_spec(spec)

    def validate(self, obj: Obj) -> list[v.FieldError]:
        return validate_pod_template(obj.get("template"), "template")

    def columns(self) -> list[Column]:
        return [
            name_col(),
            col("Containers", description="Names of each container in the template."),
            col("Images", description="Images referenced by each container in the template."),
            col("Pod Labels", description="The labels for the pod template."),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        template = obj.get("template") or {}
        containers = (template.get("spec") or {}).get("containers") or []
        return [
            name_of(obj),
            ",".join(str(c.get("name") or "") for c in containers),
            ",".join(str(c.get("image") or "") for c in containers),
            format_labels((template.get("metadata") or {}).get("labels")),
        ]
