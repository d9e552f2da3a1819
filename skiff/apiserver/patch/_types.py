"""Walking the type metadata of skiff.api.schema along an object, shared by SMP and server-side apply.

Adds what the shared table lacks: the `dict(str, X)` spelling of the client's map types, struct types that
upstream marks `+structType=atomic` (owned and replaced as a whole by server-side apply), and defaults of list
map keys (`protocol: TCP`) that structured-merge-diff takes from the OpenAPI schema.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from skiff.api.schema import ListMeta, TypeRef, list_meta, model_fields

# `+structType=atomic` in k8s.io/api and apimachinery types.go (server-side apply only).
ATOMIC_STRUCTS: frozenset[str] = frozenset(
    {
        "V1LabelSelector",
        "V1NodeSelector",
        "V1LocalObjectReference",
        "V1ObjectFieldSelector",
        "V1ResourceFieldSelector",
        "V1ConfigMapKeySelector",
        "V1SecretKeySelector",
        "V1ObjectReference",
        "V1TypedLocalObjectReference",
        "V1SecretReference",
    }
)

# Defaults of list-map keys, from the OpenAPI `default` of the key field (structured-merge-diff uses them
# when an item omits the key).
KEY_DEFAULTS: dict[tuple[str, str], object] = {
    ("V1ContainerPort", "protocol"): "TCP",
    ("V1ServicePort", "protocol"): "TCP",
    ("V1EndpointPort", "protocol"): "TCP",
}

# Corrections and additions to skiff.api.schema.PATCH_META (upstream struct tags, 1.32); these win.
LOCAL_PATCH_META: dict[tuple[str, str], ListMeta] = {
    # patchStrategy=merge, patchMergeKey=type, but listType=atomic for server-side apply.
    ("V1JobStatus", "conditions"): ListMeta("merge", "type", False, "atomic"),
    ("V1PodStatus", "resourceClaimStatuses"): ListMeta("merge", "name", True, "map", ("name",)),
    # listType=map without a patch strategy: atomic for SMP, keyed for SSA.
    ("V1ResourceRequirements", "claims"): ListMeta("replace", "", False, "map", ("name",)),
    ("V1ValidatingWebhookConfiguration", "webhooks"): ListMeta("merge", "name", False, "map", ("name",)),
    ("V1MutatingWebhookConfiguration", "webhooks"): ListMeta("merge", "name", False, "map", ("name",)),
    ("V1ComponentStatus", "conditions"): ListMeta("merge", "type", False, "map", ("type",)),
}


def norm(ref: TypeRef | None) -> TypeRef | None:
    """Turn the client's `dict(str, X)` model spelling into a map TypeRef."""
    if ref is not None and ref.kind == "model":
        m = re.fullmatch(r"dict\(\s*str\s*,\s*(.+)\)", ref.name)
        if m:
            return TypeRef("map", item=_parse(m.group(1)))
        if ref.name in ("object", "str", "int", "float", "bool"):
            return TypeRef("prim", ref.name)
    return ref


def _parse(text: str) -> TypeRef:
    text = text.strip()
    m = re.fullmatch(r"(?:list|List)\[(.+)\]", text)
    if m:
        return TypeRef("list", item=_parse(m.group(1)))
    if text in ("str", "int", "float", "bool", "object", "datetime", "date"):
        return TypeRef("prim", text)
    return norm(TypeRef("model", text)) or TypeRef("model", text)


@dataclass(frozen=True)
class Slot:
    """What sits at one field: its declared type and, for lists, how it merges."""

    ref: TypeRef | None
    meta: ListMeta | None = None

    @property
    def item(self) -> TypeRef | None:
        if self.ref is not None and self.ref.kind == "list":
            return norm(self.ref.item)
        return None

    @property
    def model(self) -> str:
        return self.ref.name if self.ref is not None and self.ref.kind == "model" else ""


def root(model: str | None) -> TypeRef | None:
    return TypeRef("model", model) if model else None


@functools.lru_cache(maxsize=65536)  # bounded: schemaless (custom resource) field names come from user data
def field_slot(parent: TypeRef | None, name: str) -> Slot:
    """The slot of field `name` inside a value of type `parent` (None: schemaless). Cached: types are fixed."""
    if parent is None:
        return Slot(None)
    if parent.kind == "map":
        return Slot(norm(parent.item))
    if parent.kind != "model":
        return Slot(None)
    f = model_fields(parent.name).get(name)
    meta = LOCAL_PATCH_META.get((parent.name, name)) or list_meta(parent.name, name)
    return Slot(norm(f.type) if f else None, meta)


def item_slot(slot: Slot) -> Slot:
    return Slot(slot.item)
