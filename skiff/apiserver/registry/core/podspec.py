"""Pod spec defaulting and validation, shared by Pods and every kind with a pod template.

Interface (used by apps/batch strategies):
- `default_pod_spec(spec)`: upstream `SetDefaults_PodSpec` + container defaults, in place.
- `validate_pod_spec(spec, path)`: FieldErrors at `path` (e.g. "spec.template.spec").
- `validate_pod_template(template, path)`: metadata labels + spec.
"""

from __future__ import annotations

from typing import Any

from skiff.api import validation as v


def default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")


def validate_pod_spec(spec: Any, path: str) -> list[v.FieldError]:
    if not isinstance(spec, dict):
        return [v.required(path)]
    errs: list[v.FieldError] = []
    containers = spec.get("containers")
    if not containers:
        errs.append(v.required(f"{path}.containers"))
    for i, c in enumerate(containers or []):
        p = f"{path}.containers[{i}]"
        if not c.get("name"):
            errs.append(v.required(f"{p}.name"))
        if not c.get("image"):
            errs.append(v.required(f"{p}.image"))
    return errs


def validate_pod_template(template: Any, path: str) -> list[v.FieldError]:
    if not isinstance(template, dict):
        return [v.required(path)]
    meta = template.get("metadata") or {}
    return v.labels(f"{path}.metadata.labels", meta.get("labels")) + validate_pod_spec(template.get("spec"), f"{path}.spec")
