"""OpenAPI component schemas of the built-in kinds, generated from `skiff.api.schema` type metadata.

Upstream publishes one definition per Go type, named by Go package (`io.k8s.api.apps.v1.Deployment`,
`io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`). The Python client models we read carry only a class
name (`V1Deployment`), so the package is recovered here: a class reached from a kind of API group G gets
G's package, core kinds claim their closure first (a Deployment reaches `V1PodTemplateSpec`, which is
core), the client's own group prefixes (`CoreV1EndpointPort`) name their package, and a small table
covers the apimachinery types. What the models lose entirely (int-or-string, quantities, micro-times,
required fields) is recovered from small tables and the models' own setter checks.

Schema shapes mirror upstream's OpenAPI builders (`kube-openapi: pkg/builder3`): in v3 a field that
refers to another type is `{"allOf": [{"$ref": …}], "description": …}` so the field keeps its own
description; in v2 it is `{"$ref": …, "description": …}`.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections import deque
from pathlib import Path
from typing import Any, Literal

from skiff.api.schema import (
    RETAIN_KEYS_MAPS,
    Field,
    TypeRef,
    list_meta,
    model_class,
    model_description,
    model_fields,
)

Style = Literal["v2", "v3"]
Schema = dict[str, Any]

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"
TIME = META + "Time"
MICRO_TIME = META + "MicroTime"
FIELDS_V1 = META + "FieldsV1"
APIEXT = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
AGGREGATOR = "io.k8s.kube-aggregator.pkg.apis.apiregistration"

# apimachinery types the client names like any other `V1…` model.
_META_CLASSES: dict[str, str] = {
    cls: META + cls[2:]
    for cls in (
        "V1ObjectMeta",
        "V1ListMeta",
        "V1LabelSelector",
        "V1LabelSelectorRequirement",
        "V1ManagedFieldsEntry",
        "V1OwnerReference",
        "V1Status",
        "V1StatusDetails",
        "V1StatusCause",
        "V1Condition",
        "V1DeleteOptions",
        "V1Preconditions",
        "V1WatchEvent",
        "V1APIResource",
        "V1APIResourceList",
        "V1APIGroup",
        "V1APIGroupList",
        "V1APIVersions",
        "V1GroupVersionForDiscovery",
        "V1ServerAddressByClientCIDR",
        "V1FieldSelectorRequirement",
    )
} | {"VersionInfo": "io.k8s.apimachinery.pkg.version.Info"}

# Core types that no core kind reaches (only storage.k8s.io StorageClass does).
_CLASS_OVERRIDES: dict[str, str] = {
    "V1TopologySelectorTerm": "io.k8s.api.core.v1.TopologySelectorTerm",
    "V1TopologySelectorLabelRequirement": "io.k8s.api.core.v1.TopologySelectorLabelRequirement",
}

# Core kinds seeded first so their closure (PodSpec, volumes, …) is attributed to core even when a test
# or a trimmed server serves no core resource.
_CORE_ROOTS: tuple[str, ...] = (
    "V1Pod",
    "V1PodTemplate",
    "V1ReplicationController",
    "V1Service",
    "V1Endpoints",
    "V1Node",
    "V1Namespace",
    "V1PersistentVolume",
    "V1PersistentVolumeClaim",
    "V1ConfigMap",
    "V1Secret",
    "V1ServiceAccount",
    "V1LimitRange",
    "V1ResourceQuota",
    "CoreV1Event",
    "V1Binding",
    "V1ComponentStatus",
)

# Fields the client types as bare `object` or `str` although upstream refers to a named type.
INT_OR_STRING_FIELDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("V1HTTPGetAction", "port"),
        ("V1TCPSocketAction", "port"),
        ("V1NetworkPolicyPort", "port"),
        ("V1PodDisruptionBudgetSpec", "maxUnavailable"),
        ("V1PodDisruptionBudgetSpec", "minAvailable"),
        ("V1RollingUpdateDaemonSet", "maxSurge"),
        ("V1RollingUpdateDaemonSet", "maxUnavailable"),
        ("V1RollingUpdateDeployment", "maxSurge"),
        ("V1RollingUpdateDeployment", "maxUnavailable"),
        ("V1RollingUpdateStatefulSetStrategy", "maxUnavailable"),
        ("V1ServicePort", "targetPort"),
    }
)
QUANTITY_FIELDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("V1ResourceRequirements", "limits"),
        ("V1ResourceRequirements", "requests"),
        ("V1VolumeResourceRequirements", "limits"),
        ("V1VolumeResourceRequirements", "requests"),
        ("V1ContainerStatus", "allocatedResources"),
        ("V1NodeStatus", "allocatable"),
        ("V1NodeStatus", "capacity"),
        ("V1PersistentVolumeSpec", "capacity"),
        ("V1PersistentVolumeClaimStatus", "allocatedResources"),
        ("V1PersistentVolumeClaimStatus", "capacity"),
        ("V1LimitRangeItem", "default"),
        ("V1LimitRangeItem", "defaultRequest"),
        ("V1LimitRangeItem", "max"),
        ("V1LimitRangeItem", "maxLimitRequestRatio"),
        ("V1LimitRangeItem", "min"),
        ("V1ResourceQuotaSpec", "hard"),
        ("V1ResourceQuotaStatus", "hard"),
        ("V1ResourceQuotaStatus", "used"),
        ("V1Overhead", "podFixed"),
        ("V1PodSpec", "overhead"),
        ("V1EmptyDirVolumeSource", "sizeLimit"),
        ("V1ResourceFieldSelector", "divisor"),
        ("V1CSIStorageCapacity", "capacity"),
        ("V1CSIStorageCapacity", "maximumVolumeSize"),
        ("V2MetricTarget", "averageValue"),
        ("V2MetricTarget", "value"),
        ("V2MetricValueStatus", "averageValue"),
        ("V2MetricValueStatus", "value"),
    }
)
MICRO_TIME_FIELDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("V1LeaseSpec", "acquireTime"),
        ("V1LeaseSpec", "renewTime"),
        ("CoreV1Event", "eventTime"),
        ("EventsV1Event", "eventTime"),
    }
)
OBJECT_FIELD_REFS: dict[tuple[str, str], str] = {
    ("V1ControllerRevision", "data"): RAW_EXTENSION,
    ("V1WatchEvent", "object"): RAW_EXTENSION,
    ("V1ManagedFieldsEntry", "fieldsV1"): FIELDS_V1,
    ("V1CustomResourceSubresources", "status"): APIEXT + "CustomResourceSubresourceStatus",
    ("V1JSONSchemaProps", "additionalItems"): APIEXT + "JSONSchemaPropsOrBool",
    ("V1JSONSchemaProps", "additionalProperties"): APIEXT + "JSONSchemaPropsOrBool",
    ("V1JSONSchemaProps", "default"): APIEXT + "JSON",
    ("V1JSONSchemaProps", "example"): APIEXT + "JSON",
    ("V1JSONSchemaProps", "items"): APIEXT + "JSONSchemaPropsOrArray",
    ("V1JSONSchemaProps", "dependencies"): APIEXT + "JSONSchemaPropsOrStringArray",
    ("V1JSONSchemaProps", "enum"): APIEXT + "JSON",
}

# Definitions that are not structs: (v3 shape, v2 shape). Descriptions are our own wording.
_SCALARS: dict[str, tuple[Schema, Schema]] = {
    QUANTITY: (
        {
            "description": "Quantity is a fixed-point number with an optional SI or binary suffix, e.g. 500m, 1Gi.",
            "oneOf": [{"type": "string"}, {"type": "number"}],
        },
        {
            "description": "Quantity is a fixed-point number with an optional SI or binary suffix, e.g. 500m, 1Gi.",
            "type": "string",
        },
    ),
    INT_OR_STRING: (
        {
            "description": "IntOrString holds either an int32 or a string.",
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}],
        },
        {
            "description": "IntOrString holds either an int32 or a string.",
            "type": "string",
            "format": "int-or-string",
        },
    ),
    TIME: (
        {
            "description": "Time is an RFC 3339 timestamp with second precision.",
            "type": "string",
            "format": "date-time",
        },
    )
    * 2,
    MICRO_TIME: (
        {
            "description": "MicroTime is an RFC 3339 timestamp with microsecond precision.",
            "type": "string",
            "format": "date-time",
        },
    )
    * 2,
    FIELDS_V1: (
        {"description": "FieldsV1 stores a set of fields in a trie of `f:<name>` keys.", "type": "object"},
    )
    * 2,
    RAW_EXTENSION: ({"description": "RawExtension holds an arbitrary embedded object.", "type": "object"},)
    * 2,
    APIEXT + "CustomResourceSubresourceStatus": (
        {"description": "Enables the status subresource; the object carries no fields.", "type": "object"},
    )
    * 2,
    APIEXT + "JSON": ({"description": "Any JSON value."},) * 2,
    APIEXT + "JSONSchemaPropsOrBool": ({"description": "A JSON schema or a boolean."},) * 2,
    APIEXT + "JSONSchemaPropsOrArray": ({"description": "A JSON schema or an array of JSON schemas."},) * 2,
    APIEXT + "JSONSchemaPropsOrStringArray": (
        {"description": "A JSON schema or an array of property names."},
    )
    * 2,
}

_PRIM_SCHEMAS: dict[str, Schema] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},  # the client does not say int32 or int64; a wrong format would mislead
    "float": {"type": "number", "format": "double"},
    "bool": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "object": {"type": "object"},
}

_CLASS_RE = re.compile(
    r"^(?:(?P<grp>[A-Z][a-z]+)(?=V\d))?(?P<ver>V\d+(?:alpha\d+|beta\d+)?)(?P<name>[A-Z]\w*)$"
)
_REQUIRED_RE = re.compile(r"Invalid value for `(\w+)`, must not be `None`")
_PREFIX_PACKAGES = {"apiextensions": APIEXT[: -len(".v1.")], "apiregistration": AGGREGATOR}


API_CONVENTIONS = "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
METADATA_DESC = f"Standard object's metadata. More info: {API_CONVENTIONS}#metadata"
LIST_METADATA_DESC = f"Standard list metadata. More info: {API_CONVENTIONS}#types-kinds"


def conventional_description(kind: str, field: str, is_list: bool) -> str:
    """Descriptions of a kind's metadata/spec/status, which the client models drop for struct-typed
    fields; worded after the API conventions every upstream kind follows."""
    if field == "metadata":
        return LIST_METADATA_DESC if is_list else METADATA_DESC
    if field == "spec":
        return f"Specification of the desired behavior of the {kind}. More info: {API_CONVENTIONS}#spec-and-status"
    if field == "status":
        return (
            f"Most recently observed status of the {kind}. This data may be out of date by some window of "
            f"time. Populated by the system. Read-only. More info: {API_CONVENTIONS}#spec-and-status"
        )
    return ""


def package_of_group(group: str) -> str:
    """Go package prefix of an API group's types (`apps` → `io.k8s.api.apps`, `` → `io.k8s.api.core`)."""
    if group == "":
        return "io.k8s.api.core"
    if group == "apiextensions.k8s.io":
        return _PREFIX_PACKAGES["apiextensions"]
    if group == "apiregistration.k8s.io":
        return AGGREGATOR
    if group == "internal.apiserver.k8s.io":
        return "io.k8s.api.apiserverinternal"
    return "io.k8s.api." + group.split(".")[0]


def split_class(cls: str) -> tuple[str, str, str] | None:
    """`CoreV1EndpointPort` → ("core", "v1", "EndpointPort"); `V1Pod` → ("", "v1", "Pod")."""
    m = _CLASS_RE.match(cls)
    if m is None:
        return None
    return (m.group("grp") or "").lower(), m.group("ver").lower(), m.group("name")


def type_ref(field: Field) -> TypeRef:
    """The field's type, with the client's `dict(str, X)` spelling read as a map (the shared parser only
    knows `Dict[str, X]`)."""
    return _fix(field.type)


def _fix(ref: TypeRef) -> TypeRef:
    if ref.kind == "model":
        m = re.fullmatch(r"dict\(\s*str\s*,\s*(.+)\)", ref.name)
        if m:
            inner = m.group(1).strip()
            return TypeRef("map", item=_fix(_parse_simple(inner)))
        return ref
    if ref.item is not None:
        return TypeRef(ref.kind, ref.name, _fix(ref.item))
    return ref


def _parse_simple(text: str) -> TypeRef:
    m = re.fullmatch(r"list\[(.+)\]", text)
    if m:
        return TypeRef("list", item=_parse_simple(m.group(1).strip()))
    prims = {"str", "int", "float", "bool", "datetime", "date", "object"}
    return TypeRef("prim", text) if text in prims else TypeRef("model", text)


def fields_of(cls: str) -> dict[str, TypeRef]:
    return {name: type_ref(f) for name, f in model_fields(cls).items()}


def _models_in(ref: TypeRef) -> list[str]:
    while ref.kind in ("list", "map") and ref.item is not None:
        ref = ref.item
    return [ref.name] if ref.kind == "model" and model_class(ref.name) is not None else []


def closure(cls: str) -> list[str]:
    """All model classes reachable from `cls` (itself first), breadth first."""
    seen = {cls}
    order = [cls]
    queue = deque([cls])
    while queue:
        for ref in fields_of(queue.popleft()).values():
            for sub in _models_in(ref):
                if sub not in seen:
                    seen.add(sub)
                    order.append(sub)
                    queue.append(sub)
    return order


@functools.cache
def _static_names() -> dict[str, str]:
    names = dict(_META_CLASSES) | dict(_CLASS_OVERRIDES)
    for cls in _CORE_ROOTS:
        _claim(names, cls, "io.k8s.api.core")
    return names


def _claim(names: dict[str, str], root: str, package: str) -> None:
    for cls in closure(root):
        if cls in names:
            continue
        parts = split_class(cls)
        if parts is None:
            continue
        grp, ver, name = parts
        pkg = _PREFIX_PACKAGES.get(grp, f"io.k8s.api.{grp}") if grp else package
        names[cls] = f"{pkg}.{ver}.{name}"


class DefinitionNames:
    """Client model class → upstream definition name, seeded from the served kinds.

    Deterministic for a given set of roots; a class keeps the first package that reached it (core first).
    """

    def __init__(self, roots: list[tuple[str, str]]) -> None:
        """roots: (API group, model class) of every served kind, in any order."""
        self._names = dict(_static_names())
        for group, cls in sorted(roots, key=lambda r: (r[0] != "", r[0], r[1])):
            _claim(self._names, cls, package_of_group(group))

    def name(self, cls: str) -> str:
        known = self._names.get(cls)
        if known is not None:
            return known
        if cls.endswith("List") and cls[: -len("List")] in self._names:
            item = self._names[cls[: -len("List")]]
            self._names[cls] = item + "List"
            return self._names[cls]
        parts = split_class(cls)
        if parts is None:
            return cls
        grp, ver, name = parts
        pkg = _PREFIX_PACKAGES.get(grp, f"io.k8s.api.{grp}") if grp else "io.k8s.api.core"
        self._names[cls] = f"{pkg}.{ver}.{name}"
        return self._names[cls]

    def items(self) -> list[tuple[str, str]]:
        return sorted(self._names.items())


@functools.cache
def required_fields(cls: str) -> tuple[str, ...]:
    """JSON names of the fields upstream marks required, read from the client's setter checks
    (`Invalid value for `x`, must not be `None``), in field order."""
    klass = model_class(cls)
    if klass is None:
        return ()
    try:
        path = inspect.getsourcefile(klass)
        src = Path(path).read_text(encoding="utf-8") if path else ""
    except (OSError, TypeError):
        return ()
    py_required = set(_REQUIRED_RE.findall(src))
    return tuple(json for py, json in klass.attribute_map.items() if py in py_required)


class SchemaBuilder:
    """Collects the component schemas one document needs: `add(cls)` adds a class and its closure.

    Not thread-safe; one builder per document build. Schemas are fresh dicts, safe to serialize.
    """

    def __init__(self, names: DefinitionNames, style: Style) -> None:
        self.names = names
        self.style = style
        self.schemas: dict[str, Schema] = {}
        self._prefix = "#/components/schemas/" if style == "v3" else "#/definitions/"

    def ref(self, definition: str) -> Schema:
        return {"$ref": self._prefix + definition}

    def add(self, cls: str, gvks: list[dict[str, str]] | None = None) -> str:
        """Add the class (and everything it reaches); returns its definition name. `gvks` marks a kind."""
        name = self.names.name(cls)
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder breaks cycles (JSONSchemaProps refers to itself)
            self.schemas[name] = self._model_schema(cls)
        if gvks:
            existing = self.schemas[name].setdefault("x-kubernetes-group-version-kind", [])
            for gvk in gvks:
                if gvk not in existing:
                    existing.append(gvk)
        return name

    def add_scalar(self, definition: str) -> None:
        if definition not in self.schemas and definition in _SCALARS:
            v3, v2 = _SCALARS[definition]
            self.schemas[definition] = dict(v3 if self.style == "v3" else v2)

    def _model_schema(self, cls: str) -> Schema:
        props: dict[str, Schema] = {}
        fields = model_fields(cls)
        is_kind = "apiVersion" in fields and "kind" in fields
        for json_name, f in fields.items():
            props[json_name] = self._field_schema(cls, json_name, f)
            if is_kind and not f.description:
                desc = conventional_description(
                    self.names.name(cls).rsplit(".", 1)[-1], json_name, is_list="items" in fields
                )
                if desc:
                    props[json_name]["description"] = desc
        out: Schema = {}
        desc = model_description(cls)
        if desc:
            out["description"] = desc
        out["type"] = "object"
        out["properties"] = props
        required = list(required_fields(cls))
        if required:
            out["required"] = required
        return out

    def _field_schema(self, cls: str, json_name: str, f: Field) -> Schema:
        key = (cls, json_name)
        ref = type_ref(f)
        if key in INT_OR_STRING_FIELDS:
            schema = self._named(INT_OR_STRING)
        elif key in QUANTITY_FIELDS:
            q = self._named(QUANTITY, item=True)
            schema = (
                {"type": "object", "additionalProperties": q} if ref.kind == "map" else self._named(QUANTITY)
            )
        elif key in MICRO_TIME_FIELDS:
            schema = self._named(MICRO_TIME)
        elif key in OBJECT_FIELD_REFS:
            target = OBJECT_FIELD_REFS[key]
            if ref.kind == "map":
                schema = {"type": "object", "additionalProperties": self._named(target, item=True)}
            elif ref.kind == "list":
                schema = {"type": "array", "items": self._named(target, item=True)}
            else:
                schema = self._named(target)
        else:
            schema = self._type_schema(ref, top=True)
        if f.description:
            schema = {"description": f.description, **schema}
        if ref.kind == "list":
            lm = list_meta(cls, json_name)
            if lm is not None:
                if lm.list_type == "map":
                    schema["x-kubernetes-list-map-keys"] = list(lm.list_map_keys)
                schema["x-kubernetes-list-type"] = lm.list_type
                if lm.merge_key:
                    schema["x-kubernetes-patch-merge-key"] = lm.merge_key
                if lm.strategy == "merge":
                    schema["x-kubernetes-patch-strategy"] = "merge,retainKeys" if lm.retain_keys else "merge"
        elif key in RETAIN_KEYS_MAPS:
            schema["x-kubernetes-patch-strategy"] = "retainKeys"
        return schema

    def _named(self, definition: str, item: bool = False) -> Schema:
        """A reference to a scalar/opaque definition, wrapped like upstream for the style."""
        self.add_scalar(definition)
        if self.style == "v2" or item:
            return self.ref(definition)
        return {"allOf": [self.ref(definition)]}

    def _type_schema(self, ref: TypeRef, top: bool) -> Schema:
        if ref.kind == "list" and ref.item is not None:
            return {"type": "array", "items": self._type_schema(ref.item, top=False)}
        if ref.kind == "map" and ref.item is not None:
            return {"type": "object", "additionalProperties": self._type_schema(ref.item, top=False)}
        if ref.kind == "prim":
            if ref.name == "datetime":
                return self._named(TIME, item=not top)
            return dict(_PRIM_SCHEMAS.get(ref.name, {"type": "object"}))
        if model_class(ref.name) is None:
            return {"type": "object"}
        target = self.add(ref.name)
        if self.style == "v2":
            return self.ref(target)
        # upstream v3 wraps every struct reference in allOf with an empty-object default
        return {"allOf": [self.ref(target)], "default": {}}
