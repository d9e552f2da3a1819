"""Custom resources: one strategy per served version of a CustomResourceDefinition.

Mirrors `apiextensions-apiserver/pkg/registry/customresource` (strategy, status/scale subresources,
table convertor) and the structural-schema machinery: pruning (`pkg/apiserver/schema/pruning`),
defaulting (`schema/defaulting`) and OpenAPI validation (`pkg/apiserver/validation`, kube-openapi
`validate` messages such as `spec.replicas in body must be of type integer: "string"`).

Order on a write (the generic store's job): `prune` → `defaults` → `validate`. `unknown_fields` lists
what `prune` would drop, so `fieldValidation=Strict` can reject it (`unknown field "spec.foo"`).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

from skiff.api import jsonpath
from skiff.api import validation as v
from skiff.api.meta import Obj, age, human_duration, name_of, parse_time
from skiff.api.resources import ALL_VERBS, ResourceInfo, Subresource
from skiff.api.selectors import selector_to_string
from skiff.apiserver.registry.strategy import NAME_COLUMN, Column, Strategy

Schema = dict[str, Any]
# upstream field.ErrorTypeTooMany; not (yet) in skiff.api.validation, so it renders as "Invalid value".
TOO_MANY = "FieldValueTooMany"

_AGE_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not "
    "guaranteed to be set in happens-before order across separate operations. Clients may not set this value. "
    "It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. "
    "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
# Fields every object keeps at the root and in embedded resources (never pruned by the schema).
_ROOT_FIELDS = ("apiVersion", "kind", "metadata")


# --- schema walking ---------------------------------------------------------------------------------


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _type_name(value: Any) -> str:
    """The OpenAPI type name of a JSON value (what upstream prints as the actual type)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(want: str, value: Any) -> bool:
    actual = _type_name(value)
    if want == actual:
        return True
    return want == "number" and actual == "integer"


def _prune(value: Any, schema: Schema | None, path: str, root: bool, dropped: list[str], apply: bool) -> None:
    """Walk `value` against `schema`, recording (and when `apply`, deleting) unknown object fields."""
    if schema is None:
        return
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = root or bool(schema.get("x-kubernetes-embedded-resource"))
        for key in list(value):
            sub_path = _child(path, key)
            if embedded and (key == "metadata" or (key in _ROOT_FIELDS and key not in props)):
                continue  # ObjectMeta is never pruned by the schema (upstream prunes only its own fields)
            if key in props:
                _prune(value[key], props[key], sub_path, False, dropped, apply)
            elif isinstance(addl, dict):
                _prune(value[key], addl, sub_path, False, dropped, apply)
            elif addl is True or preserve:
                continue
            else:
                dropped.append(sub_path)
                if apply:
                    del value[key]
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _prune(item, items, f"{path}[{i}]", False, dropped, apply)


def _default(value: Any, schema: Schema | None) -> None:
    """Fill missing object properties that declare a `default` (deep-copied), recursively."""
    if schema is None:
        return
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _default(value[key], sub)
        addl = schema.get("additionalProperties")
        if isinstance(addl, dict):
            for key in value:
                if key not in props:
                    _default(value[key], addl)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for item in value:
                _default(item, items)


def _validate(value: Any, schema: Schema, path: str, errs: list[v.FieldError]) -> None:
    """kube-openapi style validation of one value; appends field-pathed errors to `errs`."""
    where = path or "<root>"
    if value is None:
        if schema.get("nullable"):
            return
        want = schema.get("type")
        if want:
            errs.append(v.type_invalid(where, "null", f'{where} in body must be of type {want}: "null"'))
        return
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, int | str) or isinstance(value, bool):
            errs.append(
                v.type_invalid(
                    where,
                    _type_name(value),
                    f'{where} in body must be of type integer,string: "{_type_name(value)}"',
                )
            )
            return
    else:
        want = schema.get("type")
        if want and not _type_ok(want, value):
            errs.append(
                v.type_invalid(
                    where, _type_name(value), f'{where} in body must be of type {want}: "{_type_name(value)}"'
                )
            )
            return
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        errs.append(
            v.FieldError(
                v.NOT_SUPPORTED, where, "supported values: " + ", ".join(_quote(e) for e in enum), value
            )
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(value, schema, where, errs)
    if isinstance(value, str):
        _validate_string(value, schema, where, errs)
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errs.append(
                v.FieldError(TOO_MANY, where, f"must have at most {schema['maxItems']} items", len(value))
            )
        if "minItems" in schema and len(value) < schema["minItems"]:
            errs.append(
                v.invalid(
                    where, len(value), f"{where} in body should have at least {schema['minItems']} items"
                )
            )
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _validate(item, items, f"{path}[{i}]", errs)
        _validate_list_type(value, schema, path, errs)
    if isinstance(value, dict):
        _validate_object(value, schema, path, errs)


def _validate_list_type(value: list[Any], schema: Schema, path: str, errs: list[v.FieldError]) -> None:
    """`x-kubernetes-list-type` set/map: no duplicate items / keys (upstream listtype validation)."""
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        seen: list[Any] = []
        for i, item in enumerate(value):
            if item in seen:
                errs.append(v.duplicate(f"{path}[{i}]", item))
            else:
                seen.append(item)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen_keys: list[tuple[Any, ...]] = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            key = tuple(item.get(k) for k in keys)
            if key in seen_keys:
                errs.append(v.duplicate(f"{path}[{i}]", {k: item.get(k) for k in keys}))
            else:
                seen_keys.append(key)


def validate_value(value: Any, schema: Schema, path: str) -> list[v.FieldError]:
    """Validate one value against a (sub)schema, errors pathed under `path` (used for schema defaults)."""
    errs: list[v.FieldError] = []
    _validate(value, schema, path, errs)
    return errs


def _validate_number(value: float, schema: Schema, where: str, errs: list[v.FieldError]) -> None:
    if "maximum" in schema:
        mx = schema["maximum"]
        if schema.get("exclusiveMaximum") and value >= mx:
            errs.append(v.invalid(where, value, f"{where} in body should be less than {mx}"))
        elif value > mx:
            errs.append(v.invalid(where, value, f"{where} in body should be less than or equal to {mx}"))
    if "minimum" in schema:
        mn = schema["minimum"]
        if schema.get("exclusiveMinimum") and value <= mn:
            errs.append(v.invalid(where, value, f"{where} in body should be greater than {mn}"))
        elif value < mn:
            errs.append(v.invalid(where, value, f"{where} in body should be greater than or equal to {mn}"))
    if schema.get("multipleOf") and value % schema["multipleOf"] != 0:
        errs.append(
            v.invalid(where, value, f"{where} in body should be a multiple of {schema['multipleOf']}")
        )


def _validate_string(value: str, schema: Schema, where: str, errs: list[v.FieldError]) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errs.append(v.too_long(where, int(schema["maxLength"])))
    if "minLength" in schema and len(value) < schema["minLength"]:
        errs.append(
            v.invalid(where, value, f"{where} in body should be at least {schema['minLength']} chars long")
        )
    pattern = schema.get("pattern")
    if pattern:
        try:
            ok = re.search(pattern, value) is not None
        except re.error:
            ok = True  # the CRD's own validation rejects bad patterns; do not fail objects for it
        if not ok:
            errs.append(v.invalid(where, value, f"{where} in body should match '{pattern}'"))


def _validate_object(value: Obj, schema: Schema, path: str, errs: list[v.FieldError]) -> None:
    for req in schema.get("required") or []:
        if req not in value:
            errs.append(v.required(_child(path, req)))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errs.append(
            v.FieldError(
                TOO_MANY,
                path or "<root>",
                f"must have at most {schema['maxProperties']} items",
                len(value),
            )
        )
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        errs.append(
            v.invalid(
                path or "<root>",
                len(value),
                f"{path} in body should have at least {schema['minProperties']} properties",
            )
        )
    props: dict[str, Schema] = schema.get("properties") or {}
    addl = schema.get("additionalProperties")
    root = not path
    for key, sub in value.items():
        if root and key in _ROOT_FIELDS and key not in props:
            continue
        if key in props:
            _validate(sub, props[key], _child(path, key), errs)
        elif isinstance(addl, dict):
            _validate(sub, addl, _child(path, key), errs)
    if schema.get("x-kubernetes-embedded-resource"):
        for key in ("apiVersion", "kind"):
            if not value.get(key):
                errs.append(v.required(_child(path, key)))


def _quote(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _cell(col_type: str, value: Any, now: dt.datetime) -> Any:
    """A typed table cell, as upstream `cellForJSONValue`: a wrong type gives an empty (None) cell."""
    if value is None:
        return None
    if col_type == "string":
        return jsonpath.format_value(value)
    if col_type == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return int(value)
        return None
    if col_type == "number":
        if isinstance(value, bool):
            return None
        return float(value) if isinstance(value, int | float) else None
    if col_type == "boolean":
        return value if isinstance(value, bool) else None
    if col_type == "date":
        if not isinstance(value, str):
            return None
        t = parse_time(value)
        return "<invalid>" if t is None else human_duration((now - t).total_seconds())
    return None


def _set_path(obj: Obj, path: str, value: Any) -> None:
    """Set a simple dotted path (`.spec.replicas`), creating intermediate maps."""
    parts = [p for p in path.strip().lstrip(".").split(".") if p]
    cur = obj
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = cur[p] = {}
        cur = nxt
    cur[parts[-1]] = value


def _compile(expr: str) -> jsonpath.JSONPath | None:
    """A printer column's path; None (empty cells) for a path the CRD validation should have refused."""
    try:
        return jsonpath.parse(expr)
    except jsonpath.JSONPathError:
        return None


# --- the strategy -----------------------------------------------------------------------------------


class CustomResourceStrategy(Strategy):
    """Strategy for one version of a custom resource, built with `from_crd` (never shared across CRDs)."""

    def __init__(
        self,
        info: ResourceInfo,
        schema: Schema | None,
        printer_columns: list[dict[str, Any]],
        scale: dict[str, Any] | None = None,
        selectable_fields: list[str] | None = None,
    ) -> None:
        self.info = info
        self.schema = schema
        self.status_subresource = info.subresource("status") is not None
        self.scale_subresource = scale is not None
        self.scale = scale or {}
        self.printer_columns = printer_columns
        self._column_paths = [_compile(c.get("jsonPath", "")) for c in printer_columns]
        self.selectable_fields = selectable_fields or []

    @classmethod
    def from_crd(cls, crd: Obj, version: str) -> CustomResourceStrategy:
        """The strategy serving `version` of `crd` (raises KeyError when the CRD has no such version)."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        ver = next((x for x in spec.get("versions") or [] if x.get("name") == version), None)
        if ver is None:
            raise KeyError(f"{name_of(crd)} has no version {version!r}")
        group = spec.get("group", "")
        kind = names.get("kind", "")
        subs = ver.get("subresources") or {}
        subresources: list[Subresource] = []
        if "scale" in subs:
            subresources.append(Subresource("scale", "autoscaling", "v1", "Scale"))
        if "status" in subs:
            subresources.append(Subresource("status", group, version, kind))
        info = ResourceInfo(
            group,
            version,
            kind,
            names.get("plural", ""),
            names.get("singular") or kind.lower(),
            spec.get("scope", "Namespaced") == "Namespaced",
            tuple(names.get("shortNames") or ()),
            tuple(names.get("categories") or ()),
            ALL_VERBS,
            tuple(subresources),
        )
        schema = (ver.get("schema") or {}).get("openAPIV3Schema")
        selectable = [f.get("jsonPath", "") for f in ver.get("selectableFields") or []]
        return cls(
            info, schema, list(ver.get("additionalPrinterColumns") or []), subs.get("scale"), selectable
        )

    # --- structural schema ------------------------------------------------------------------------

    def unknown_fields(self, obj: Obj) -> list[str]:
        """Field paths `prune` would drop (`spec.foo`, `spec.items[0].bar`); `obj` is not changed."""
        dropped: list[str] = []
        _prune(obj, self.schema, "", True, dropped, apply=False)
        return dropped

    def prune(self, obj: Obj) -> list[str]:
        """Drop fields the schema does not know (in place); returns their paths. Metadata is kept."""
        dropped: list[str] = []
        _prune(obj, self.schema, "", True, dropped, apply=True)
        return dropped

    def defaults(self, obj: Obj) -> None:
        _default(obj, self.schema)

    def validate(self, obj: Obj) -> list[v.FieldError]:
        errs: list[v.FieldError] = []
        if self.schema is not None:
            _validate(obj, self.schema, "", errs)
        return errs

    def validate_status_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        return self.validate(new)

    # --- reading -----------------------------------------------------------------------------------

    def columns(self) -> list[Column]:
        """Name, then the declared columns, or Age when none are declared (upstream tableconvertor)."""
        if not self.printer_columns:
            return [NAME_COLUMN, Column("Age", "date", "", _AGE_DESCRIPTION)]
        return [NAME_COLUMN] + [
            Column(
                c.get("name", ""),
                c.get("type", "string"),
                c.get("format", ""),
                c.get("description", ""),
                int(c.get("priority", 0)),
            )
            for c in self.printer_columns
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        if not self.printer_columns:
            return [name_of(obj), age(obj, now)]
        cells: list[Any] = [name_of(obj)]
        for col, path in zip(self.printer_columns, self._column_paths, strict=True):
            found = path.find(obj) if path is not None else []
            cells.append(_cell(col.get("type", "string"), found[0], now) if found else None)
        return cells

    def fields(self, obj: Obj) -> dict[str, str]:
        """`selectableFields` as field-selector keys (`spec.color`), values as their string form."""
        out: dict[str, str] = {}
        for p in self.selectable_fields:
            found = jsonpath.find(p, obj)
            out[p.lstrip(".")] = jsonpath.format_value(found[0]) if found else ""
        return out

    # --- scale subresource ------------------------------------------------------------------------

    def scale_of(self, obj: Obj) -> tuple[int, int, str]:
        if not self.scale_subresource:
            raise NotImplementedError
        spec_r = jsonpath.find(self.scale.get("specReplicasPath", ".spec.replicas"), obj)
        status_r = jsonpath.find(self.scale.get("statusReplicasPath", ".status.replicas"), obj)
        selector = ""
        sel_path = self.scale.get("labelSelectorPath")
        if sel_path:
            found = jsonpath.find(sel_path, obj)
            if found and isinstance(found[0], str):
                selector = found[0]
            elif found and isinstance(found[0], dict):
                selector = selector_to_string(found[0])
        return (
            int(spec_r[0]) if spec_r and isinstance(spec_r[0], int | float) else 0,
            int(status_r[0]) if status_r and isinstance(status_r[0], int | float) else 0,
            selector,
        )

    def set_replicas(self, obj: Obj, replicas: int) -> None:
        if not self.scale_subresource:
            raise NotImplementedError
        _set_path(obj, self.scale.get("specReplicasPath", ".spec.replicas"), replicas)
