"""apiextensions.k8s.io/v1 CustomResourceDefinition: names, scope, versions, schemas, subresources, columns.

Validation mirrors `apiextensions-apiserver/pkg/apis/apiextensions/validation/validation.go`
(ValidateCustomResourceDefinition{,Spec,Names,Version,Subresources,ColumnDefinition,StoredVersions}) and
the structural-schema basics (`pkg/apiserver/schema/validation.go`: a typed object at the root, types on
specified fields). skiff accepts names at once, so `initial_status` does what upstream's naming and
establishing controllers do on the first sync: NamesAccepted and Established become True.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import jsonpath
from skiff.api import validation as v
from skiff.api.meta import Obj, name_of, rfc3339
from skiff.api.resources import ResourceInfo, Subresource
from skiff.apiserver.registry.custom import validate_value
from skiff.apiserver.registry.rbac.common import CREATED_AT_COLUMN, created_at
from skiff.apiserver.registry.strategy import NAME_COLUMN, Column, Strategy

GROUP = "apiextensions.k8s.io"
COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
COLUMN_FORMATS = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")
SCHEMA_TYPES = ("array", "boolean", "integer", "number", "object", "string")


def storage_version(crd: Obj) -> str | None:
    for ver in (crd.get("spec") or {}).get("versions") or []:
        if ver.get("storage"):
            return str(ver.get("name", ""))
    return None


def _dns1035(field: str, value: str, mixed_case: bool = False) -> list[v.FieldError]:
    problems = v.dns1035_label(value.lower() if mixed_case else value)
    if not problems:
        return []
    text = ",".join(problems)
    return [
        v.invalid(
            field, value, "may have mixed case, but should otherwise match: " + text if mixed_case else text
        )
    ]


def validate_names(names: Obj, field: str) -> list[v.FieldError]:
    """ValidateCustomResourceDefinitionNames (format only; presence is checked by the spec rules)."""
    errs: list[v.FieldError] = []
    for key, mixed in (("plural", False), ("singular", False), ("kind", True), ("listKind", True)):
        value = names.get(key) or ""
        if value:
            errs += _dns1035(f"{field}.{key}", value, mixed)
    for i, short in enumerate(names.get("shortNames") or []):
        errs += _dns1035(f"{field}.shortNames[{i}]", short)
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(
            v.invalid(f"{field}.listKind", names.get("listKind"), "kind and listKind may not be the same")
        )
    for i, cat in enumerate(names.get("categories") or []):
        errs += _dns1035(f"{field}.categories[{i}]", cat)
    return errs


def _simple_json_path(field: str, path: str) -> list[v.FieldError]:
    if not path:
        return [v.invalid(field, path, "must not be empty")]
    if not path.startswith("."):
        return [v.invalid(field, path, "must be a simple json path starting with .")]
    return []


def validate_subresources(subs: Any, field: str) -> list[v.FieldError]:
    if not isinstance(subs, dict):
        return []
    scale = subs.get("scale")
    if scale is None:
        return []
    errs: list[v.FieldError] = []
    for key, prefixes, where in (
        ("specReplicasPath", (".spec.",), "should be a json path under .spec"),
        ("statusReplicasPath", (".status.",), "should be a json path under .status"),
    ):
        path = scale.get(key) or ""
        f = f"{field}.scale.{key}"
        if not path:
            errs.append(v.required(f))
            continue
        problems = _simple_json_path(f, path)
        if problems:
            errs += problems
        elif not path.startswith(prefixes):
            errs.append(v.invalid(f, path, where))
    sel = scale.get("labelSelectorPath")
    if sel:
        f = f"{field}.scale.labelSelectorPath"
        problems = _simple_json_path(f, sel)
        if problems:
            errs += problems
        elif not sel.startswith((".spec.", ".status.")):
            errs.append(v.invalid(f, sel, "should be a json path under either .spec or .status"))
    return errs


def validate_column(col: Obj, field: str) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    if not col.get("name"):
        errs.append(v.required(f"{field}.name"))
    ctype = col.get("type") or ""
    if not ctype:
        errs.append(v.required(f"{field}.type", "must be one of " + ",".join(COLUMN_TYPES)))
    elif ctype not in COLUMN_TYPES:
        errs.append(v.invalid(f"{field}.type", ctype, "must be one of " + ",".join(COLUMN_TYPES)))
    fmt = col.get("format") or ""
    if fmt and fmt not in COLUMN_FORMATS:
        errs.append(v.invalid(f"{field}.format", fmt, "must be one of " + ",".join(COLUMN_FORMATS)))
    path = col.get("jsonPath") or ""
    if not path:
        errs.append(v.required(f"{field}.jsonPath"))
    else:
        problems = _simple_json_path(f"{field}.jsonPath", path)
        if not problems:
            try:
                jsonpath.parse(path)
            except jsonpath.JSONPathError as e:
                problems = [v.invalid(f"{field}.jsonPath", path, f"invalid JSONPath: {e}")]
        errs += problems
    return errs


def validate_schema(schema: Any, field: str, root: bool = True) -> list[v.FieldError]:
    """The structural basics: known types, typed fields, object at the root, no forbidden keywords."""
    if not isinstance(schema, dict):
        return [v.type_invalid(field, schema, "must be a JSON schema object")]
    errs: list[v.FieldError] = []
    stype = schema.get("type") or ""
    free = schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields")
    if root:
        if not stype:
            errs.append(v.required(f"{field}.type", "must not be empty at the root"))
        elif stype != "object":
            errs.append(v.invalid(f"{field}.type", stype, "must be object at the root"))
    elif not stype and not free:
        errs.append(v.required(f"{field}.type", "must not be empty for specified object fields"))
    if stype == "null":
        errs.append(v.forbidden(f"{field}.type", "type cannot be set to null"))
    elif stype and stype not in SCHEMA_TYPES:
        errs.append(v.not_supported(f"{field}.type", stype, SCHEMA_TYPES))
    for keyword in ("$ref", "id", "additionalItems", "patternProperties", "definitions", "dependencies"):
        if keyword in schema:
            errs.append(v.forbidden(f"{field}.{keyword}", f"{keyword} is not supported"))
    if schema.get("uniqueItems"):
        errs.append(
            v.forbidden(
                f"{field}.uniqueItems",
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )
    if "default" in schema:
        if root:
            errs.append(v.forbidden(f"{field}.default", "must not be set at the root"))
        else:
            # upstream validates defaults against their own schema (structural defaulting)
            errs += validate_value(schema["default"], schema, f"{field}.default")
    props = schema.get("properties") or {}
    addl = schema.get("additionalProperties")
    if addl is not None and props and (addl is False or isinstance(addl, dict)):
        errs.append(
            v.forbidden(
                f"{field}.additionalProperties", "additionalProperties and properties are mutual exclusive"
            )
        )
    for name, sub in props.items():
        errs += validate_schema(sub, f"{field}.properties[{name}]", root=False)
    if isinstance(addl, dict):
        errs += validate_schema(addl, f"{field}.additionalProperties", root=False)
    items = schema.get("items")
    if stype == "array" and items is None:
        errs.append(v.required(f"{field}.items", "must be specified"))
    if isinstance(items, list):
        errs.append(v.forbidden(f"{field}.items", "items must be a schema object and not an array"))
    elif items is not None:
        errs += validate_schema(items, f"{field}.items", root=False)
    return errs


def validate_crd_spec(spec: Obj) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    group = spec.get("group") or ""
    if not group:
        errs.append(v.required("spec.group"))
    elif problems := v.dns1123_subdomain(group):
        errs.append(v.invalid("spec.group", group, ",".join(problems)))
    elif "." not in group:
        errs.append(v.invalid("spec.group", group, "should be a domain with at least one dot"))
    scope = spec.get("scope") or ""
    if not scope:
        errs.append(v.required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        errs.append(v.not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))
    versions = spec.get("versions") or []
    seen: set[str] = set()
    unique = True
    storage = 0
    served = 0
    for i, ver in enumerate(versions):
        f = f"spec.versions[{i}]"
        name = ver.get("name") or ""
        if name in seen:
            unique = False
        seen.add(name)
        errs += _dns1035(f"{f}.name", name)
        storage += 1 if ver.get("storage") else 0
        served += 1 if ver.get("served") else 0
        schema = (ver.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            errs.append(v.required(f"{f}.schema.openAPIV3Schema", "schemas are required"))
        else:
            errs += validate_schema(schema, f"{f}.schema.openAPIV3Schema")
        errs += validate_subresources(ver.get("subresources"), f"{f}.subresources")
        for j, col in enumerate(ver.get("additionalPrinterColumns") or []):
            errs += validate_column(col or {}, f"{f}.additionalPrinterColumns[{j}]")
        for j, sf in enumerate(ver.get("selectableFields") or []):
            if not (sf or {}).get("jsonPath"):
                errs.append(v.required(f"{f}.selectableFields[{j}].jsonPath"))
    if not unique:
        errs.append(v.invalid("spec.versions", versions, "must contain unique version names"))
    if storage != 1:
        errs.append(
            v.invalid("spec.versions", versions, "must have exactly one version marked as storage version")
        )
    if versions and not served:
        errs.append(v.invalid("spec.versions", versions, "must have at least one version marked as served"))
    names = spec.get("names") or {}
    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            errs.append(v.required(f"spec.names.{key}"))
    errs += validate_names(names, "spec.names")
    conversion = spec.get("conversion") or {}
    strategy = conversion.get("strategy") or ""
    if not strategy:
        errs.append(v.required("spec.conversion.strategy"))
    elif strategy not in ("None", "Webhook"):
        errs.append(v.not_supported("spec.conversion.strategy", strategy, ["None", "Webhook"]))
    elif strategy == "Webhook" and not (conversion.get("webhook") or {}).get("clientConfig"):
        errs.append(v.required("spec.conversion.webhook", "required when strategy is set to Webhook"))
    elif strategy == "None" and conversion.get("webhook") is not None:
        errs.append(
            v.forbidden("spec.conversion.webhook", "should not be set when strategy is not set to Webhook")
        )
    if spec.get("preserveUnknownFields"):
        errs.append(
            v.invalid(
                "spec.preserveUnknownFields",
                True,
                "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
            )
        )
    return errs


def validate_stored_versions(stored: Any, versions: list[Obj]) -> list[v.FieldError]:
    f = "status.storedVersions"
    if not stored:
        return [v.invalid(f, stored or [], "must have at least one stored version")]
    errs: list[v.FieldError] = []
    names = {ver.get("name") for ver in versions}
    for ver in versions:
        if ver.get("storage") and ver.get("name") not in stored:
            errs.append(
                v.invalid(f, ver.get("name"), "must have the storage version " + str(ver.get("name")))
            )
    for i, s in enumerate(stored):
        if s not in names:
            errs.append(v.invalid(f"{f}[{i}]", s, "must appear in spec.versions"))
    return errs


def _condition(ctype: str, reason: str, message: str) -> Obj:
    return {
        "type": ctype,
        "status": "True",
        "lastTransitionTime": rfc3339(),
        "reason": reason,
        "message": message,
    }


class CustomResourceDefinitionStrategy(Strategy):
    info = ResourceInfo(
        GROUP,
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "customresourcedefinition",
        False,
        ("crd", "crds"),
        ("api-extensions",),
        subresources=(Subresource("status", GROUP, "v1", "CustomResourceDefinition"),),
    )
    status_subresource = True

    def defaults(self, obj: Obj) -> None:
        """v1 SetDefaults_CustomResourceDefinitionSpec: singular, listKind, conversion strategy None."""
        spec = obj.setdefault("spec", {})
        names = spec.setdefault("names", {})
        kind = names.get("kind") or ""
        if not names.get("singular") and kind:
            names["singular"] = kind.lower()
        if not names.get("listKind") and kind:
            names["listKind"] = kind + "List"
        conversion = spec.setdefault("conversion", {})
        if not conversion.get("strategy"):
            conversion["strategy"] = "None"
        service = ((conversion.get("webhook") or {}).get("clientConfig") or {}).get("service")
        if isinstance(service, dict) and service.get("port") is None:
            service["port"] = 443

    def initial_status(self, obj: Obj) -> None:
        spec = obj.get("spec") or {}
        stored = storage_version(obj)
        obj["status"] = {
            "conditions": [
                _condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                _condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ],
            "acceptedNames": dict(spec.get("names") or {}),
            "storedVersions": [stored] if stored else [],
        }

    def validate(self, obj: Obj) -> list[v.FieldError]:
        spec = obj.get("spec") or {}
        errs: list[v.FieldError] = []
        required = f"{(spec.get('names') or {}).get('plural', '')}.{spec.get('group', '')}"
        if name_of(obj) and name_of(obj) != required:
            errs.append(v.invalid("metadata.name", name_of(obj), 'must be spec.names.plural+"."+spec.group'))
        return errs + validate_crd_spec(spec)

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        errs = self.validate(new)
        ns, os_ = new.get("spec") or {}, old.get("spec") or {}
        for field, a, b in (
            ("spec.group", ns.get("group"), os_.get("group")),
            (
                "spec.names.plural",
                (ns.get("names") or {}).get("plural"),
                (os_.get("names") or {}).get("plural"),
            ),
            ("spec.scope", ns.get("scope"), os_.get("scope")),
            ("spec.names.kind", (ns.get("names") or {}).get("kind"), (os_.get("names") or {}).get("kind")),
        ):
            if a != b:
                errs.append(v.invalid(field, a, "field is immutable"))
        stored = list(((old.get("status") or {}).get("storedVersions")) or [])
        sv = storage_version(new)
        if sv and sv not in stored:
            stored.append(sv)
        errs += validate_stored_versions(stored, ns.get("versions") or [])
        return errs

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Keep status; record a new storage version in status.storedVersions (upstream strategy) and
        accept changed names at once (what upstream's naming controller does when nothing conflicts)."""
        super().prepare_for_update(new, old)
        status = new.get("status")
        if not isinstance(status, dict):
            return
        status = dict(status)  # a copy: `old` stays untouched
        sv = storage_version(new)
        stored = list(status.get("storedVersions") or [])
        if sv and sv not in stored:
            status["storedVersions"] = [*stored, sv]
        names = (new.get("spec") or {}).get("names")
        if isinstance(names, dict):
            status["acceptedNames"] = dict(names)
        new["status"] = status

    def validate_status_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        status = new.get("status") or {}
        errs = validate_names(status.get("acceptedNames") or {}, "status.acceptedNames")
        return errs + validate_stored_versions(
            status.get("storedVersions"), (new.get("spec") or {}).get("versions") or []
        )

    def columns(self) -> list[Column]:
        return [NAME_COLUMN, CREATED_AT_COLUMN]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return [name_of(obj), created_at(obj)]
