"""LimitRanger: default container resources from the namespace's LimitRanges, then enforce their bounds.

Mirrors upstream `plugin/pkg/admission/limitranger/admission.go`. Mutating (pods, create only): each
`type: Container` item's `default` fills missing limits and `defaultRequest` missing requests of every
container and init container, noted in the `kubernetes.io/limit-ranger` annotation. Validating (pods on
create, claims on create and update): `min`/`max`/`maxLimitRequestRatio` per Container, over the pod's
sum for `type: Pod`, and `storage` requests for `type: PersistentVolumeClaim`; every violation of every
LimitRange is reported in one 403, with upstream's wording.

The pod strategy sets `status.qosClass` before admission runs (the store prepares, then admits); defaults
added here can change the class, so `admit` recomputes it. That keeps the QoS rule in one function
(`qos_class`) and the store's order as the brief and upstream's handler/strategy split define it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skiff.api.meta import Obj
from skiff.api.quota import Quantity, ResourceList, parse_list, pod_limits, pod_requests
from skiff.apiserver.admission import CREATE, UPDATE, Attributes, ObjectLookup, aggregate, forbidden
from skiff.apiserver.registry.core.pods import qos_class

ANNOTATION = "kubernetes.io/limit-ranger"


def _supports(attrs: Attributes) -> bool:
    """Pods on create (their resources are immutable afterwards) and claims on create/update; never subresources."""
    if attrs.subresource or attrs.operation not in (CREATE, UPDATE):
        return False
    if attrs.is_kind("", "pods"):
        return attrs.operation == CREATE
    return attrs.is_kind("", "persistentvolumeclaims")


def default_requirements(limit_range: Obj) -> tuple[dict[str, Any], dict[str, Any]]:
    """(default requests, default limits) from the `type: Container` items (later items win)."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        if (item or {}).get("type") == "Container":
            requests.update(item.get("defaultRequest") or {})
            limits.update(item.get("default") or {})
    return requests, limits


def _merge_container(
    c: dict[str, Any], requests: Mapping[str, Any], limits: Mapping[str, Any], what: str
) -> list[str]:
    """Fill what the container lacks; annotation fragments as upstream's mergeContainerResources."""
    notes: list[str] = []
    res = c.setdefault("resources", {})
    set_requests = sorted(k for k in requests if k not in (res.get("requests") or {}))
    set_limits = sorted(k for k in limits if k not in (res.get("limits") or {}))
    for k in set_limits:
        res.setdefault("limits", {})[k] = limits[k]
    for k in set_requests:
        res.setdefault("requests", {})[k] = requests[k]
    if set_requests:
        notes.append(f"{', '.join(set_requests)} request for {what} {c.get('name', '')}")
    if set_limits:
        notes.append(f"{', '.join(set_limits)} limit for {what} {c.get('name', '')}")
    if not res:
        c.pop("resources")
    return notes


def apply_defaults(pod: Obj, limit_range: Obj) -> bool:
    """`PodMutateLimitFunc`: default the pod's containers from one LimitRange; True when anything was set."""
    requests, limits = default_requirements(limit_range)
    if not requests and not limits:
        return False
    spec = pod.get("spec") or {}
    notes: list[str] = []
    for key, what in (("containers", "container"), ("initContainers", "init container")):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                notes += _merge_container(c, requests, limits, what)
    if not notes:
        return False
    md = pod.setdefault("metadata", {})
    md["annotations"] = {
        **(md.get("annotations") or {}),
        ANNOTATION: "LimitRanger plugin set: " + "; ".join(notes),
    }
    return True


# --- constraints (upstream minConstraint / maxConstraint / limitRequestRatioConstraint) ---------------------


def min_constraint(
    kind: str, name: str, enforced: Quantity, requests: ResourceList, limits: ResourceList
) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    if req is None:
        return f"minimum {name} usage per {kind} is {enforced}.  No request is specified"
    if req.value < enforced.value:
        return f"minimum {name} usage per {kind} is {enforced}, but request is {req}"
    if lim is not None and lim.value < enforced.value:
        return f"minimum {name} usage per {kind} is {enforced}, but limit is {lim}"
    return None


def max_constraint(
    kind: str, name: str, enforced: Quantity, requests: ResourceList, limits: ResourceList
) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    if lim is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No limit is specified"
    if lim.value > enforced.value:
        return f"maximum {name} usage per {kind} is {enforced}, but limit is {lim}"
    if req is not None and req.value > enforced.value:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {req}"
    return None


def max_request_constraint(kind: str, name: str, enforced: Quantity, requests: ResourceList) -> str | None:
    req = requests.get(name)
    if req is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No request is specified"
    if req.value > enforced.value:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {req}"
    return None


def ratio_constraint(
    kind: str, name: str, enforced: Quantity, requests: ResourceList, limits: ResourceList
) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    if req is None or req.value == 0:
        return f"{name} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"
    if lim is None or lim.value == 0:
        return f"{name} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"
    ratio = lim.value / req.value
    if ratio > enforced.value:
        return f"{name} max limit to request ratio per {kind} is {enforced}, but provided ratio is {float(ratio):f}"
    return None


def _bounds(kind: str, item: Obj, requests: ResourceList, limits: ResourceList) -> list[str]:
    out: list[str | None] = []
    out += [
        min_constraint(kind, k, q, requests, limits) for k, q in sorted(parse_list(item.get("min")).items())
    ]
    out += [
        max_constraint(kind, k, q, requests, limits) for k, q in sorted(parse_list(item.get("max")).items())
    ]
    out += [
        ratio_constraint(kind, k, q, requests, limits)
        for k, q in sorted(parse_list(item.get("maxLimitRequestRatio")).items())
    ]
    return [m for m in out if m is not None]


def pod_violations(limit_range: Obj, pod: Obj) -> list[str]:
    """`PodValidateLimitFunc`: every Container and Pod bound the pod breaks, in upstream's order."""
    errs: list[str] = []
    spec = pod.get("spec") or {}
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        item = item or {}
        if item.get("type") == "Container":
            for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
                res = (c or {}).get("resources") or {}
                errs += _bounds(
                    "Container", item, parse_list(res.get("requests")), parse_list(res.get("limits"))
                )
        elif item.get("type") == "Pod":
            errs += _bounds("Pod", item, pod_requests(pod), pod_limits(pod))
    return errs


def claim_violations(limit_range: Obj, pvc: Obj) -> list[str]:
    """`PersistentVolumeClaimValidateLimitFunc`: min and max against the claim's requests only."""
    errs: list[str | None] = []
    requests = parse_list((((pvc.get("spec") or {}).get("resources")) or {}).get("requests"))
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        item = item or {}
        if item.get("type") != "PersistentVolumeClaim":
            continue
        errs += [
            min_constraint("PersistentVolumeClaim", k, q, requests, {})
            for k, q in sorted(parse_list(item.get("min")).items())
        ]
        errs += [
            max_request_constraint("PersistentVolumeClaim", k, q, requests)
            for k, q in sorted(parse_list(item.get("max")).items())
        ]
    return [m for m in errs if m is not None]


class LimitRanger:
    """Mutating and validating; reads the namespace's LimitRanges on every pod or claim write."""

    def __init__(self, lookup: ObjectLookup) -> None:
        self.lookup = lookup

    async def _ranges(self, attrs: Attributes) -> list[Obj]:
        if not _supports(attrs) or not attrs.namespace:
            return []
        if attrs.old_object is not None and (attrs.old_object.get("metadata") or {}).get("deletionTimestamp"):
            return []  # objects being deleted are left alone
        return await self.lookup.list("", "limitranges", attrs.namespace)

    async def admit(self, attrs: Attributes) -> None:
        if not attrs.is_kind("", "pods"):
            return
        changed = False
        for lr in await self._ranges(attrs):
            changed = apply_defaults(attrs.object, lr) or changed
        if changed and isinstance(attrs.object.get("status"), dict):
            attrs.object["status"]["qosClass"] = qos_class(attrs.object.get("spec") or {})

    async def validate(self, attrs: Attributes) -> None:
        errs: list[str] = []
        for lr in await self._ranges(attrs):
            if attrs.is_kind("", "pods"):
                errs += pod_violations(lr, attrs.object)
            else:
                errs += claim_violations(lr, attrs.object)
        if errs:
            raise forbidden(attrs, aggregate(errs))
