"""`/openapi/v3` and `/openapi/v2` documents for the served built-in kinds and established CRDs.

What clients read (and so what must be right):
- kubectl's validation (`cli-runtime: pkg/resource/query_param_verifier_v3.go`) scans the group/version
  document for a PATCH operation whose `x-kubernetes-group-version-kind` is the object's kind and which
  lists a `fieldValidation` query parameter; when found it skips client-side validation and sends
  `?fieldValidation=Strict`. Every PATCH operation here carries it inline.
- `kubectl explain` (`kubectl: pkg/explain/v2/templates/plaintext.tmpl`) takes the GVK from the operations
  on `…/<resource>` paths, picks the component schema whose `x-kubernetes-group-version-kind` list holds
  it, then walks `properties`, `items`, `additionalProperties` and `allOf` `$ref`s, printing `description`,
  a type guessed from `type`/`$ref` and `-required-` from `required`.
- `kubectl apply` computes strategic merge patches from the `x-kubernetes-patch-*` extensions when the
  PATCH operation accepts `application/strategic-merge-patch+json` (built-ins only, as upstream).

Documents are built lazily per group/version, cached as JSON bytes, and rebuilt only when the CRDs of that
group/version change. The hash in `serverRelativeURL` is a digest of the inputs a document is built from,
so it changes exactly when the document does (upstream digests the bytes; clients only compare it).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from skiff.api.resources import ALL_VERBS, SUB_VERBS, ResourceInfo, Subresource
from skiff.api.schema import model_class, model_for
from skiff.apiserver.openapi_schemas import (
    LIST_METADATA_DESC,
    META,
    METADATA_DESC,
    DefinitionNames,
    Schema,
    SchemaBuilder,
    Style,
)

_BUILD_VERSION = "skiff-openapi-1"  # bump when the generator's output changes, so hashes change too
_CONNECT_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})
_TEXT_SUBRESOURCES = frozenset({"log"})

PATCH_TYPES_BUILTIN: tuple[str, ...] = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
# Custom resources cannot be strategic-merge patched (upstream answers 415).
PATCH_TYPES_CUSTOM: tuple[str, ...] = PATCH_TYPES_BUILTIN[:3]
_RESPONSE_TYPES: tuple[str, ...] = ("application/json", "application/yaml")
_WATCH_TYPES: tuple[str, ...] = ("application/json;stream=watch",)

_API_VERSION_DESC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
_KIND_DESC = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this "
    "from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
# --- query/path parameters (descriptions are our own summaries of upstream's) --------------------------

_P: dict[str, tuple[str, str, str]] = {  # name → (in, type, description)
    "pretty": ("query", "string", "If 'true', the output is pretty printed."),
    "dryRun": (
        "query",
        "string",
        "When present, indicates that modifications should not be persisted. "
        "Valid values are: - All: all dry run stages will be processed",
    ),
    "fieldManager": (
        "query",
        "string",
        "fieldManager is a name associated with the actor or entity that is making these changes.",
    ),
    "fieldValidation": (
        "query",
        "string",
        "fieldValidation instructs the server on how to handle objects in "
        "the request containing unknown or duplicate fields. Valid values are: Ignore, Warn "
        "(the default), Strict.",
    ),
    "force": (
        "query",
        "boolean",
        'Force is going to "force" Apply requests. It means user will re-acquire '
        "conflicting fields owned by other people. Must be unset for non-apply patch requests.",
    ),
    "allowWatchBookmarks": (
        "query",
        "boolean",
        'allowWatchBookmarks requests watch events with type "BOOKMARK".',
    ),
    "continue": (
        "query",
        "string",
        "The continue option should be set when retrieving more results from the server.",
    ),
    "fieldSelector": (
        "query",
        "string",
        "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
    ),
    "labelSelector": (
        "query",
        "string",
        "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
    ),
    "limit": ("query", "integer", "limit is a maximum number of responses to return for a list call."),
    "resourceVersion": (
        "query",
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    ),
    "resourceVersionMatch": (
        "query",
        "string",
        "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    ),
    "sendInitialEvents": (
        "query",
        "boolean",
        "`sendInitialEvents=true` may be set together with "
        "`watch=true`; the watch then starts with synthetic events for the current state.",
    ),
    "timeoutSeconds": ("query", "integer", "Timeout for the list/watch call."),
    "watch": (
        "query",
        "boolean",
        "Watch for changes to the described resources and return them as a stream "
        "of add, update, and remove notifications.",
    ),
    "gracePeriodSeconds": (
        "query",
        "integer",
        "The duration in seconds before the object should be deleted.",
    ),
    "ignoreStoreReadErrorWithClusterBreakingPotential": (
        "query",
        "boolean",
        "if set to true, it will trigger an unsafe deletion of the resource in case the "
        "normal deletion flow fails with a corrupt object error.",
    ),
    "orphanDependents": ("query", "boolean", "Deprecated: please use the PropagationPolicy."),
    "propagationPolicy": (
        "query",
        "string",
        "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
    ),
}
_LIST_PARAMS = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
_PATCH_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force")
_DELETE_PARAMS = (
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
)
_DELETECOLLECTION_PARAMS = (
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
)


def _param(name: str, style: Style) -> Schema:
    where, typ, desc = _P[name]
    out: Schema = {"name": name, "in": where, "description": desc}
    schema: Schema = {"type": typ}
    if name in ("dryRun", "fieldManager", "fieldValidation", "fieldSelector", "labelSelector", "pretty"):
        schema["uniqueItems"] = True
    if style == "v3":
        out["schema"] = schema
    else:
        out.update(schema)
    return out


def _path_param(name: str, desc: str, style: Style) -> Schema:
    out: Schema = {"name": name, "in": "path", "description": desc, "required": True}
    if style == "v3":
        out["schema"] = {"type": "string", "uniqueItems": True}
    else:
        out.update({"type": "string", "uniqueItems": True})
    return out


# --- naming helpers ------------------------------------------------------------------------------------


def gv_path(group: str, version: str) -> str:
    """Document key for a group/version: `api/v1` or `apis/<group>/<version>`."""
    return f"api/{version}" if group == "" else f"apis/{group}/{version}"


def _group_token(group: str) -> str:
    """Operation-id spelling of a group (`rbac.authorization.k8s.io` → `RbacAuthorization`)."""
    if group == "":
        return "Core"
    base = group.removesuffix(".k8s.io")
    parts = base.split(".")
    return "".join(p[:1].upper() + p[1:] for p in parts)


def _tag(group: str, version: str) -> str:
    token = _group_token(group)
    return f"{token[:1].lower()}{token[1:]}_{version}"


def crd_definition_name(group: str, version: str, kind: str) -> str:
    """Upstream names CRD definitions by the reversed group: `stable.example.com` → `com.example.stable.v1.X`."""
    return ".".join([*reversed(group.split(".")), version, kind])


def model_for_kind(group: str, version: str, kind: str) -> str | None:
    """Client model of a kind, also for classes the client prefixes with their group
    (`authentication.k8s.io/v1 TokenRequest` → `AuthenticationV1TokenRequest`)."""
    found = model_for(group, version, kind)
    if found is not None:
        return found
    prefix = (group.split(".")[0] if group else "core").capitalize()
    name = f"{prefix}{version[:1].upper()}{version[1:]}{kind}"
    return name if model_class(name) is not None else None


# --- custom resources ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CRDVersion:
    info: ResourceInfo
    list_kind: str
    schema: Schema  # openAPIV3Schema as given (deep-copied on use)


def _crd_versions(crd: dict[str, Any]) -> list[_CRDVersion]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    kind = names.get("kind") or ""
    plural = names.get("plural") or ""
    if not group or not kind or not plural:
        return []
    out = []
    for ver in spec.get("versions") or []:
        if not ver.get("served", True) or not ver.get("name"):
            continue
        subs_spec = ver.get("subresources") or spec.get("subresources") or {}
        subs: list[Subresource] = []
        if "status" in subs_spec:
            subs.append(Subresource("status", group, ver["name"], kind))
        if "scale" in subs_spec:
            subs.append(Subresource("scale", "autoscaling", "v1", "Scale"))
        schema = ((ver.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema")) or {}
        info = ResourceInfo(
            group,
            ver["name"],
            kind,
            plural,
            names.get("singular") or kind.lower(),
            spec.get("scope", "Namespaced") == "Namespaced",
            tuple(names.get("shortNames") or ()),
            tuple(names.get("categories") or ()),
            ALL_VERBS,
            tuple(subs),
        )
        out.append(_CRDVersion(info, names.get("listKind") or kind + "List", schema))
    return out


_V2_DROP = frozenset({"oneOf", "anyOf", "not", "nullable"})
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "dependencies")
_SCHEMA_ITEMS = ("items", "additionalProperties", "additionalItems")


def crd_schema_to_v2(schema: Any) -> Any:
    """Swagger 2.0 has no oneOf/anyOf/not/nullable; upstream drops them when publishing CRDs in v2.

    Walks only schema positions, so a property that happens to be named `not` survives. Returns a copy.
    """
    if not isinstance(schema, dict):
        return copy.deepcopy(schema)
    out: Schema = {}
    for key, value in schema.items():
        if key in _V2_DROP:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: crd_schema_to_v2(sub) for name, sub in value.items()}
        elif key in _SCHEMA_ITEMS or key == "allOf":
            out[key] = (
                [crd_schema_to_v2(v) for v in value] if isinstance(value, list) else crd_schema_to_v2(value)
            )
        else:
            out[key] = copy.deepcopy(value)
    return out


# --- the documents --------------------------------------------------------------------------------------


class _DocBuilder:
    """Builds one document (one group/version for v3, everything for v2). Single use."""

    def __init__(self, names: DefinitionNames, style: Style, crds: dict[tuple[str, str, str], _CRDVersion]):
        self.style = style
        self.schemas = SchemaBuilder(names, style)
        self.crds = crds
        self.crd_kinds: dict[tuple[str, str, str], tuple[_CRDVersion, bool]] = {}
        for (g, v, k), crd in crds.items():
            self.crd_kinds[(g, v, k)] = (crd, False)
            self.crd_kinds[(g, v, crd.list_kind)] = (crd, True)
        self.paths: dict[str, Schema] = {}

    # schema references

    def kind_ref(self, group: str, version: str, kind: str) -> str | None:
        """Definition name of a kind (built-in or custom, item or list kind), adding its schema and GVK."""
        gvk = {"group": group, "kind": kind, "version": version}
        custom = self.crd_kinds.get((group, version, kind))
        if custom is not None:
            return self._crd_schema(custom[0], gvk, custom[1])
        model = model_for_kind(group, version, kind)
        if model is None:
            return None
        return self.schemas.add(model, [gvk])

    def _crd_schema(self, crd: _CRDVersion, gvk: dict[str, str], is_list: bool) -> str:
        info = crd.info
        item_name = crd_definition_name(info.group, info.version, info.kind)
        name = crd_definition_name(info.group, info.version, crd.list_kind) if is_list else item_name
        if name in self.schemas.schemas:
            return name
        meta = self.schemas.add("V1ListMeta" if is_list else "V1ObjectMeta")
        meta_ref = self.schemas.ref(meta)
        meta_field = {"allOf": [meta_ref]} if self.style == "v3" else dict(meta_ref)
        if is_list:
            self._crd_schema(crd, {**gvk, "kind": info.kind}, False)
            schema: Schema = {
                "description": f"{crd.list_kind} is a list of {info.kind}",
                "type": "object",
                "properties": {
                    "apiVersion": {"description": _API_VERSION_DESC, "type": "string"},
                    "items": {
                        "description": f"List of {info.plural}. More info: "
                        "https://git.k8s.io/community/contributors/devel/api-conventions.md",
                        "type": "array",
                        "items": self.schemas.ref(item_name),
                    },
                    "kind": {"description": _KIND_DESC, "type": "string"},
                    "metadata": {**meta_field, "description": LIST_METADATA_DESC},
                },
                "required": ["items"],
            }
        else:
            given = crd.schema or {"x-kubernetes-preserve-unknown-fields": True}
            schema = crd_schema_to_v2(given) if self.style == "v2" else copy.deepcopy(given)
            schema["type"] = "object"
            props = schema.setdefault("properties", {})
            props["apiVersion"] = {"description": _API_VERSION_DESC, "type": "string"}
            props["kind"] = {"description": _KIND_DESC, "type": "string"}
            props["metadata"] = {**meta_field, "description": METADATA_DESC}
        schema["x-kubernetes-group-version-kind"] = [gvk]
        self.schemas.schemas[name] = schema
        return name

    def _ref_schema(self, name: str) -> Schema:
        return self.schemas.ref(name)

    # operations

    def _responses(self, codes: tuple[str, ...], schema: Schema | None, watch: bool = False) -> Schema:
        out: Schema = {}
        descs = {"200": "OK", "201": "Created", "202": "Accepted"}
        for code in codes:
            if schema is None:
                out[code] = {"description": descs[code]}
            elif self.style == "v3":
                types = _RESPONSE_TYPES + (_WATCH_TYPES if watch else ())
                out[code] = {"description": descs[code], "content": {t: {"schema": schema} for t in types}}
            else:
                out[code] = {"description": descs[code], "schema": schema}
        out["401"] = {"description": "Unauthorized"}
        return out

    def _op(
        self,
        *,
        action: str,
        op_id: str,
        desc: str,
        tag: str,
        gvk: dict[str, str],
        params: tuple[str, ...],
        responses: Schema,
        body: Schema | None = None,
        body_types: tuple[str, ...] = ("*/*",),
        body_required: bool = True,
        watch: bool = False,
    ) -> Schema:
        op: Schema = {"tags": [tag], "description": desc, "operationId": op_id}
        parameters = [_param(p, self.style) for p in params]
        if self.style == "v2":
            op["consumes"] = list(body_types) if body is not None else ["*/*"]
            types = list(_RESPONSE_TYPES) + (list(_WATCH_TYPES) if watch else [])
            op["produces"] = types
            op["schemes"] = ["https"]
            if body is not None:
                parameters.insert(
                    0, {"name": "body", "in": "body", "required": body_required, "schema": body}
                )
        elif body is not None:
            op["requestBody"] = {
                "content": {t: {"schema": body} for t in body_types},
                "required": body_required,
            }
        if parameters:
            op["parameters"] = parameters
        op["responses"] = responses
        op["x-kubernetes-action"] = action
        op["x-kubernetes-group-version-kind"] = dict(gvk)
        return op

    def add_get_resources(self, group: str, version: str) -> None:
        name = self.schemas.add("V1APIResourceList")
        ref = self._ref_schema(name)
        op: Schema = {
            "tags": [_tag(group, version)],
            "description": "get available resources",
            "operationId": f"get{_group_token(group)}{version.capitalize()}APIResources",
            "responses": self._responses(("200",), ref),
        }
        if self.style == "v2":
            op["consumes"] = ["application/json", "application/yaml"]
            op["produces"] = ["application/json", "application/yaml"]
            op["schemes"] = ["https"]
        self.paths[f"/{gv_path(group, version)}/"] = {"get": op}

    def add_resource(self, info: ResourceInfo, custom: bool) -> None:
        g, v, kind = info.group, info.version, info.kind
        kind_def = self.kind_ref(g, v, kind)
        list_def = self.kind_ref(g, v, self.crds[(g, v, kind)].list_kind if custom else kind + "List")
        status_def = self.kind_ref("", "v1", "Status")
        delete_opts = self.schemas.add("V1DeleteOptions")
        patch_def = self._patch_schema()
        obj = self._ref_schema(kind_def) if kind_def else {"type": "object"}
        lst = self._ref_schema(list_def) if list_def else {"type": "object"}
        status = self._ref_schema(status_def) if status_def else {"type": "object"}
        tag = _tag(g, v)
        token = _group_token(g) + v[:1].upper() + v[1:]
        ns = "Namespaced" if info.namespaced else ""
        gvk = {"group": g, "kind": kind, "version": v}
        prefix = "/" + gv_path(g, v)
        coll = (
            f"{prefix}/namespaces/{{namespace}}/{info.plural}"
            if info.namespaced
            else f"{prefix}/{info.plural}"
        )
        item = coll + "/{name}"
        verbs = set(info.verbs)
        common = [_param("pretty", self.style)]
        ns_param = (
            [
                _path_param(
                    "namespace", "object name and auth scope, such as for teams and projects", self.style
                )
            ]
            if info.namespaced
            else []
        )
        name_param = [_path_param("name", f"name of the {kind}", self.style)]
        patch_types = PATCH_TYPES_CUSTOM if custom else PATCH_TYPES_BUILTIN

        ops: Schema = {}
        if "list" in verbs:
            ops["get"] = self._op(
                action="list",
                op_id=f"list{token}{ns}{kind}",
                desc=f"list or watch objects of kind {kind}",
                tag=tag,
                gvk=gvk,
                params=_LIST_PARAMS,
                responses=self._responses(("200",), lst, watch=True),
                watch=True,
            )
        if "create" in verbs:
            ops["post"] = self._op(
                action="post",
                op_id=f"create{token}{ns}{kind}",
                desc=f"create {_a(kind)}",
                tag=tag,
                gvk=gvk,
                params=_WRITE_PARAMS,
                body=obj,
                responses=self._responses(("200", "201", "202"), obj),
            )
        if "deletecollection" in verbs:
            ops["delete"] = self._op(
                action="deletecollection",
                op_id=f"deleteCollection{token}{ns}{kind}",
                desc=f"delete collection of {kind}",
                tag=tag,
                gvk=gvk,
                params=_DELETECOLLECTION_PARAMS,
                body=self._ref_schema(delete_opts),
                body_required=False,
                responses=self._responses(("200",), status),
            )
        if ops:
            self.paths[coll] = {**ops, "parameters": ns_param + common}
        if info.namespaced and "list" in verbs:
            all_ns = self._op(
                action="list",
                op_id=f"list{token}{kind}ForAllNamespaces",
                desc=f"list or watch objects of kind {kind}",
                tag=tag,
                gvk=gvk,
                params=_LIST_PARAMS,
                responses=self._responses(("200",), lst, watch=True),
                watch=True,
            )
            self.paths[f"{prefix}/{info.plural}"] = {"get": all_ns, "parameters": list(common)}

        ops = {}
        if "get" in verbs:
            ops["get"] = self._op(
                action="get",
                op_id=f"read{token}{ns}{kind}",
                desc=f"read the specified {kind}",
                tag=tag,
                gvk=gvk,
                params=(),
                responses=self._responses(("200",), obj),
            )
        if "update" in verbs:
            ops["put"] = self._op(
                action="put",
                op_id=f"replace{token}{ns}{kind}",
                desc=f"replace the specified {kind}",
                tag=tag,
                gvk=gvk,
                params=_WRITE_PARAMS,
                body=obj,
                responses=self._responses(("200", "201"), obj),
            )
        if "patch" in verbs:
            ops["patch"] = self._op(
                action="patch",
                op_id=f"patch{token}{ns}{kind}",
                desc=f"partially update the specified {kind}",
                tag=tag,
                gvk=gvk,
                params=_PATCH_PARAMS,
                body=self._ref_schema(patch_def),
                body_types=patch_types,
                responses=self._responses(("200", "201"), obj),
            )
        if "delete" in verbs:
            ops["delete"] = self._op(
                action="delete",
                op_id=f"delete{token}{ns}{kind}",
                desc=f"delete {_a(kind)}",
                tag=tag,
                gvk=gvk,
                params=_DELETE_PARAMS,
                body=self._ref_schema(delete_opts),
                body_required=False,
                responses=self._responses(("200", "202"), status),
            )
        if ops:
            self.paths[item] = {**ops, "parameters": name_param + ns_param + common}

        for sub in info.subresources:
            self._add_subresource(
                info, sub, item, token, ns, tag, patch_types, patch_def, name_param + ns_param + common
            )

    def _add_subresource(
        self,
        info: ResourceInfo,
        sub: Subresource,
        item: str,
        token: str,
        ns: str,
        tag: str,
        patch_types: tuple[str, ...],
        patch_def: str,
        path_params: list[Schema],
    ) -> None:
        gvk = {"group": sub.group, "kind": sub.kind, "version": sub.version}
        sub_def = self.kind_ref(sub.group, sub.version, sub.kind)
        text = sub.name in _TEXT_SUBRESOURCES or sub.name in _CONNECT_SUBRESOURCES or sub_def is None
        body = self._ref_schema(sub_def) if sub_def else {"type": "object"}
        resp = {"type": "string"} if text else body
        suffix = sub.name[:1].upper() + sub.name[1:]
        base = f"{token}{ns}{info.kind}{suffix}"
        connect = sub.name in _CONNECT_SUBRESOURCES
        what = f"{sub.name} of the specified {info.kind}"
        ops: Schema = {}
        verbs = set(sub.verbs or SUB_VERBS)
        if "get" in verbs:
            ops["get"] = self._op(
                action="connect" if connect else "get",
                op_id=f"{'connectGet' if connect else 'read'}{base}",
                desc=f"{'connect GET requests to' if connect else 'read'} {what}",
                tag=tag,
                gvk=gvk,
                params=(),
                responses=self._responses(("200",), resp),
            )
        if "create" in verbs:
            ops["post"] = self._op(
                action="connect" if connect else "post",
                op_id=f"{'connectPost' if connect else 'create'}{base}",
                desc=f"{'connect POST requests to' if connect else 'create'} {what}",
                tag=tag,
                gvk=gvk,
                params=() if connect else _WRITE_PARAMS,
                body=None if connect else body,
                responses=self._responses(("200", "201", "202"), resp),
            )
        if "update" in verbs:
            ops["put"] = self._op(
                action="put",
                op_id=f"replace{base}",
                desc=f"replace {what}",
                tag=tag,
                gvk=gvk,
                params=_WRITE_PARAMS,
                body=body,
                responses=self._responses(("200", "201"), resp),
            )
        if "patch" in verbs:
            ops["patch"] = self._op(
                action="patch",
                op_id=f"patch{base}",
                desc=f"partially update {what}",
                tag=tag,
                gvk=gvk,
                params=_PATCH_PARAMS,
                body=self._ref_schema(patch_def),
                body_types=patch_types,
                responses=self._responses(("200", "201"), resp),
            )
        if ops:
            self.paths[f"{item}/{sub.name}"] = {**ops, "parameters": list(path_params)}

    def _patch_schema(self) -> str:
        name = META + "Patch"
        if name not in self.schemas.schemas:
            self.schemas.schemas[name] = {
                "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH "
                "request body.",
                "type": "object",
            }
        return name


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "AEIOU" else f"a {kind}"


class OpenAPI:
    """OpenAPI v3 (per group/version) and v2 documents for the served API.

    Build cost is paid on the first request for a document; later calls return cached bytes. Not
    thread-safe (call from the event loop); `set_custom_resources` is cheap when nothing changed.
    """

    def __init__(self, resources: Iterable[ResourceInfo]) -> None:
        self._builtin: dict[str, list[ResourceInfo]] = {}
        roots: list[tuple[str, str]] = []
        for info in resources:
            self._builtin.setdefault(gv_path(info.group, info.version), []).append(info)
            kinds = [(info.group, info.version, info.kind), (info.group, info.version, info.kind + "List")]
            for g, v, k in kinds + [(s.group, s.version, s.kind) for s in info.subresources]:
                model = model_for_kind(g, v, k)
                if model is not None:
                    roots.append((g, model))
        self._names = DefinitionNames(roots)
        self._crd: dict[str, list[_CRDVersion]] = {}
        self._crd_fingerprint: dict[str, bytes] = {}
        self._builtin_fingerprint = {
            path: orjson.dumps([repr(i) for i in infos]) for path, infos in self._builtin.items()
        }
        self._docs: dict[str, bytes] = {}
        self._hashes: dict[str, str] = {}
        self._v2: bytes | None = None

    def set_custom_resources(self, crds: list[dict[str, Any]]) -> None:
        """Replace the set of custom resources (Established apiextensions.k8s.io/v1 CRD objects).

        Only documents whose group/version inputs changed are dropped from the cache.
        """
        by_path: dict[str, list[_CRDVersion]] = {}
        for crd in sorted(crds, key=lambda c: str((c.get("metadata") or {}).get("name", ""))):
            for ver in _crd_versions(crd):
                by_path.setdefault(gv_path(ver.info.group, ver.info.version), []).append(ver)
        fingerprints = {
            path: orjson.dumps(
                [[repr(v.info), v.list_kind, v.schema] for v in vers], option=orjson.OPT_SORT_KEYS
            )
            for path, vers in by_path.items()
        }
        changed = set(fingerprints) ^ set(self._crd_fingerprint)
        changed |= {p for p in fingerprints if fingerprints[p] != self._crd_fingerprint.get(p)}
        self._crd = by_path
        self._crd_fingerprint = fingerprints
        for path in changed:
            self._docs.pop(path, None)
            self._hashes.pop(path, None)
        if changed:
            self._v2 = None

    def _paths(self) -> list[str]:
        return sorted(set(self._builtin) | set(self._crd))

    def v3_index(self) -> dict[str, Any]:
        """The `/openapi/v3` discovery document: one entry per served group/version."""
        return {
            "paths": {
                p: {"serverRelativeURL": f"/openapi/v3/{p}?hash={self.v3_hash(p)}"} for p in self._paths()
            }
        }

    def v3_hash(self, path: str) -> str:
        """Digest identifying the current document at `path` ("" when the path is not served)."""
        path = path.strip("/")
        if path not in self._builtin and path not in self._crd:
            return ""
        cached = self._hashes.get(path)
        if cached is None:
            h = hashlib.sha512()
            h.update(_BUILD_VERSION.encode())
            h.update(self._builtin_fingerprint.get(path, b""))
            h.update(self._crd_fingerprint.get(path, b""))
            cached = self._hashes[path] = h.hexdigest().upper()
        return cached

    def v3_document(self, path: str) -> bytes | None:
        """JSON bytes of the document for `api/v1` or `apis/<group>/<version>`; None when not served."""
        path = path.strip("/")
        if path not in self._builtin and path not in self._crd:
            return None
        doc = self._docs.get(path)
        if doc is None:
            doc = self._docs[path] = orjson.dumps(self._build_v3(path))
        return doc

    def _crd_index(self, paths: Iterable[str]) -> dict[tuple[str, str, str], _CRDVersion]:
        return {(v.info.group, v.info.version, v.info.kind): v for p in paths for v in self._crd.get(p, [])}

    def _build_v3(self, path: str) -> dict[str, Any]:
        b = _DocBuilder(self._names, "v3", self._crd_index([path]))
        self._add_paths(b, path)
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "unversioned"},
            "paths": b.paths,
            "components": {
                "schemas": dict(sorted(b.schemas.schemas.items())),
                "securitySchemes": {
                    "BearerToken": {
                        "type": "apiKey",
                        "description": "Bearer Token authentication",
                        "name": "authorization",
                        "in": "header",
                    }
                },
            },
            "security": [{"BearerToken": []}],
        }

    def _add_paths(self, b: _DocBuilder, path: str) -> None:
        infos = self._builtin.get(path, [])
        crds = self._crd.get(path, [])
        first = infos[0] if infos else crds[0].info
        b.add_get_resources(first.group, first.version)
        for info in infos:
            b.add_resource(info, custom=False)
        for crd in crds:
            b.add_resource(crd.info, custom=True)

    def v2_document(self) -> bytes:
        """Swagger 2.0 JSON of everything served (JSON only; kubectl itself wants v2 as protobuf)."""
        if self._v2 is None:
            paths = self._paths()
            b = _DocBuilder(self._names, "v2", self._crd_index(paths))
            for path in paths:
                self._add_paths(b, path)
            doc = {
                "swagger": "2.0",
                "info": {"title": "Kubernetes", "version": "v1.32.0"},
                "paths": b.paths,
                "definitions": dict(sorted(b.schemas.schemas.items())),
                "securityDefinitions": {
                    "BearerToken": {
                        "type": "apiKey",
                        "description": "Bearer Token authentication",
                        "name": "authorization",
                        "in": "header",
                    }
                },
                "security": [{"BearerToken": []}],
            }
            self._v2 = orjson.dumps(doc)
        return self._v2
