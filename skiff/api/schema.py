"""Type metadata of the built-in kinds, read from the official `kubernetes` client's models.

The models carry each field's JSON name, type and description (`openapi_types`, `attribute_map`,
property docstrings). What they do not carry — the strategic-merge patch strategies and the
server-side-apply list keys from upstream's struct tags (`patchStrategy`, `patchMergeKey`,
`listType`, `listMapKey` in `k8s.io/api/*/types.go`) — is our own table below. OpenAPI documents,
strategic merge patch and server-side apply all read this one module.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass
from typing import Any

import kubernetes.client.models as _models

# --- type references ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeRef:
    """A field's type: `prim` (str/int/float/bool/datetime/date/object), `list`/`map` of `item`, or `model`."""

    kind: str  # "prim" | "list" | "map" | "model"
    name: str = ""  # primitive name or model class name
    item: TypeRef | None = None


_PRIMS = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "datetime": "date-time",
          "date": "date", "object": "object"}


def _parse_type(text: str) -> TypeRef:
    text = text.strip()
    m = re.fullmatch(r"(?:List|list)\[(.+)\]", text)
    if m:
        return TypeRef("list", item=_parse_type(m.group(1)))
    m = re.fullmatch(r"(?:Dict\[|dict\()\s*str\s*,\s*(.+)[\])]", text)
    if m:
        return TypeRef("map", item=_parse_type(m.group(1)))
    if text in _PRIMS:
        return TypeRef("prim", text)
    return TypeRef("model", text)


@dataclass(frozen=True)
class Field:
    json_name: str
    python_name: str
    type: TypeRef
    description: str


@functools.cache
def model_class(name: str) -> Any | None:
    return getattr(_models, name, None)


@functools.cache
def model_fields(name: str) -> dict[str, Field]:
    """JSON field name → Field for a model class name (e.g. `V1PodSpec`); empty for unknown models."""
    cls = model_class(name)
    if cls is None:
        return {}
    out: dict[str, Field] = {}
    for py, typ in cls.openapi_types.items():
        json_name = cls.attribute_map[py]
        prop = getattr(cls, py, None)
        doc = inspect.getdoc(prop) or "" if isinstance(prop, property) else ""
        out[json_name] = Field(json_name, py, _parse_type(typ), _clean_doc(doc, py, name))
    return out


def _clean_doc(doc: str, py: str, model: str) -> str:
    """The upstream description inside a generated getter docstring (between `Gets the…` and `:return:`)."""
    paras = [p.replace("# noqa: E501", "").strip() for p in doc.split("\n\n")]
    body = [p for p in paras if p and not p.startswith((":return:", ":rtype:", "Gets the "))]
    return " ".join(" ".join(body).split())


@functools.cache
def model_description(name: str) -> str:
    cls = model_class(name)
    if cls is None:
        return ""
    doc = inspect.getdoc(cls) or ""
    first = doc.split("\n\n")[0]
    return "" if first.startswith("NOTE: This class is auto generated") else " ".join(first.split())


def model_for(group: str, version: str, kind: str) -> str | None:
    """The client model class name for a kind (`apps/v1 Deployment` → `V1Deployment`)."""
    special = {
        ("", "v1", "Event"): "CoreV1Event",
        ("events.k8s.io", "v1", "Event"): "EventsV1Event",
        ("", "v1", "EventList"): "CoreV1EventList",
        ("events.k8s.io", "v1", "EventList"): "EventsV1EventList",
    }
    if (group, version, kind) in special:
        return special[(group, version, kind)]
    name = version[0].upper() + version[1:] + kind
    return name if model_class(name) is not None else None


def field_type(model: str, path: list[str]) -> TypeRef | None:
    """Type of a nested field path (list items are traversed transparently)."""
    ref: TypeRef | None = TypeRef("model", model)
    for part in path:
        while ref is not None and ref.kind in ("list", "map"):
            ref = ref.item
        if ref is None or ref.kind != "model":
            return None
        f = model_fields(ref.name).get(part)
        ref = f.type if f else None
    return ref


# --- patch strategies and list types (from upstream struct tags) ----------------------------------


@dataclass(frozen=True)
class ListMeta:
    """How a list field merges. strategy: "merge" (keyed by merge_key, or a primitive set when merge_key is
    empty), "replace" (atomic). retain_keys marks `patchStrategy:"merge,retainKeys"` (volumes) or a
    retainKeys map (Deployment strategy). list_map_keys are the server-side-apply keys."""

    strategy: str
    merge_key: str = ""
    retain_keys: bool = False
    list_type: str = "atomic"  # SSA: "map" | "set" | "atomic"
    list_map_keys: tuple[str, ...] = ()


def _m(key: str, *ssa_keys: str, retain: bool = False) -> ListMeta:
    return ListMeta("merge", key, retain, "map", ssa_keys or (key,))


_SET = ListMeta("merge", "", False, "set")

PATCH_META: dict[tuple[str, str], ListMeta] = {
    ("V1ObjectMeta", "finalizers"): _SET,
    ("V1ObjectMeta", "ownerReferences"): _m("uid"),
    ("V1PodSpec", "volumes"): _m("name", retain=True),
    ("V1PodSpec", "initContainers"): _m("name"),
    ("V1PodSpec", "containers"): _m("name"),
    ("V1PodSpec", "ephemeralContainers"): _m("name"),
    ("V1PodSpec", "imagePullSecrets"): _m("name"),
    ("V1PodSpec", "hostAliases"): _m("ip"),
    ("V1PodSpec", "topologySpreadConstraints"): _m("topologyKey", "topologyKey", "whenUnsatisfiable"),
    ("V1PodSpec", "resourceClaims"): _m("name", retain=True),
    ("V1PodSpec", "schedulingGates"): _m("name"),
    ("V1Container", "ports"): _m("containerPort", "containerPort", "protocol"),
    ("V1Container", "env"): _m("name"),
    ("V1Container", "volumeMounts"): _m("mountPath"),
    ("V1Container", "volumeDevices"): _m("devicePath"),
    ("V1EphemeralContainer", "ports"): _m("containerPort", "containerPort", "protocol"),
    ("V1EphemeralContainer", "env"): _m("name"),
    ("V1EphemeralContainer", "volumeMounts"): _m("mountPath"),
    ("V1EphemeralContainer", "volumeDevices"): _m("devicePath"),
    ("V1PodStatus", "conditions"): _m("type"),
    ("V1PodStatus", "podIPs"): _m("ip"),
    ("V1PodStatus", "hostIPs"): _m("ip"),
    ("V1ServiceSpec", "ports"): _m("port", "port", "protocol"),
    ("V1ServiceStatus", "conditions"): _m("type"),
    ("V1NodeSpec", "podCIDRs"): _SET,
    ("V1NodeStatus", "conditions"): _m("type"),
    ("V1NodeStatus", "addresses"): _m("type"),
    ("V1NamespaceStatus", "conditions"): _m("type"),
    ("V1PersistentVolumeClaimStatus", "conditions"): _m("type"),
    ("V1ServiceAccount", "secrets"): _m("name"),
    ("V1DeploymentStatus", "conditions"): _m("type"),
    ("V1ReplicaSetStatus", "conditions"): _m("type"),
    ("V1StatefulSetStatus", "conditions"): _m("type"),
    ("V1DaemonSetStatus", "conditions"): _m("type"),
    ("V1ReplicationControllerStatus", "conditions"): _m("type"),
    ("V1JobStatus", "conditions"): ListMeta("merge", "type", False, "atomic"),
    ("V1PodStatus", "resourceClaimStatuses"): _m("name", retain=True),
    ("V1ResourceRequirements", "claims"): ListMeta("replace", "", False, "map", ("name",)),
    ("V1ValidatingWebhookConfiguration", "webhooks"): _m("name"),
    ("V1MutatingWebhookConfiguration", "webhooks"): _m("name"),
    ("V1ComponentStatus", "conditions"): _m("type"),
    ("V2HorizontalPodAutoscalerStatus", "conditions"): _m("type"),
    ("V1PodDisruptionBudgetStatus", "conditions"): _m("type"),
    ("V1CustomResourceDefinitionStatus", "conditions"): _m("type"),
}

# Maps merged with `retainKeys` (keys absent from the patch are dropped when the patch sets a new member).
RETAIN_KEYS_MAPS: set[tuple[str, str]] = {("V1DeploymentSpec", "strategy")}


def list_meta(model: str, field: str) -> ListMeta | None:
    """Patch/SSA metadata of a list field, or None when the list is atomic (replaced whole)."""
    return PATCH_META.get((model, field))


# --- unknown fields (fieldValidation) ------------------------------------------------------------------

# Types whose content is free-form: never descend into them.
_OPAQUE_MODELS = {"object", "V1JSON", "RuntimeRawExtension", "V1JSONSchemaProps"}


def prune_unknown(obj: Any, model: str, path: str = "") -> list[str]:
    """Remove fields the kind's schema does not know, in place; return their paths.

    Upstream decodes built-in kinds into typed structs, which drops unknown fields; with
    `fieldValidation=Strict` the same paths are reported as `unknown field "spec.foo"` instead.
    """
    if model in _OPAQUE_MODELS or not isinstance(obj, dict):
        return []
    fields = model_fields(model)
    if not fields:
        return []
    found: list[str] = []
    for key in list(obj):
        child = f"{path}.{key}" if path else key
        f = fields.get(key)
        if f is None:
            if not path and key in ("apiVersion", "kind"):
                continue
            found.append(child)
            del obj[key]
            continue
        found += _prune_value(obj[key], f.type, child)
    return found


def _prune_value(value: Any, ref: TypeRef, path: str) -> list[str]:
    if ref.kind == "model":
        return prune_unknown(value, ref.name, path)
    if ref.kind == "list" and isinstance(value, list) and ref.item is not None:
        out: list[str] = []
        for i, item in enumerate(value):
            out += _prune_value(item, ref.item, f"{path}[{i}]")
        return out
    if ref.kind == "map" and isinstance(value, dict) and ref.item is not None:
        out = []
        for k, item in value.items():
            out += _prune_value(item, ref.item, f"{path}.{k}")
        return out
    return []
