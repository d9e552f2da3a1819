"""Field sets in structured-merge-diff's FieldsV1 encoding, computed over plain dicts.

A path is a tuple of FieldsV1 keys: `f:<field>`, `k:<json of the list-map keys>`, `v:<json value>` (set
items). A set of paths is what a manager owns; `encode`/`decode` convert to/from the FieldsV1 tree, where
`.` marks a node that is itself a member and also has members below it
(`sigs.k8s.io/structured-merge-diff/v4/fieldpath`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson

from skiff.api.schema import TypeRef
from skiff.apiserver.patch._types import ATOMIC_STRUCTS, KEY_DEFAULTS, Slot, field_slot, item_slot

Path = tuple[str, ...]
FieldSet = set[Path]

_MISSING: Any = object()

# Non-omitempty struct fields: upstream's "empty" object already holds them, so an Update that fills them
# does not record the map itself (`.`), only its members.
_ALWAYS_PRESENT = frozenset(
    {"metadata", "spec", "status", "template", "strategy", "updateStrategy", "containers"}
)


def _dumps(value: Any) -> str:
    """Compact JSON with sorted keys and raw UTF-8, as upstream's path elements spell values."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # beyond orjson (integers over 64 bits): the standard encoder writes the same text
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def list_kind(slot: Slot) -> tuple[str, tuple[str, ...]]:
    """("map", keys) | ("set", ()) | ("atomic", ()) for a list at `slot`; schemaless lists are atomic."""
    if slot.meta is None:
        return "atomic", ()
    return slot.meta.list_type, slot.meta.list_map_keys


def item_element(item: Any, slot: Slot) -> str:
    """The path element naming one item of a map/set list."""
    kind, keys = list_kind(slot)
    if kind == "set" or not isinstance(item, dict):
        return "v:" + _dumps(item)
    model = slot.item.name if slot.item is not None and slot.item.kind == "model" else ""
    key: dict[str, Any] = {}
    for k in keys:
        if k in item and item[k] is not None:
            key[k] = item[k]
        elif (model, k) in KEY_DEFAULTS:
            key[k] = KEY_DEFAULTS[(model, k)]
    return "k:" + _dumps(key)


def is_atomic_map(ref: TypeRef | None) -> bool:
    return ref is not None and ref.kind == "model" and ref.name in ATOMIC_STRUCTS


def element_text(pe: str) -> str:
    """A path element as structured-merge-diff prints it in conflict messages (`.spec`, `[name="x"]`)."""
    if pe.startswith("f:"):
        return "." + pe[2:]
    if pe.startswith("k:"):
        key = json.loads(pe[2:])
        return "[" + ",".join(f"{k}={_dumps(v)}" for k, v in key.items()) + "]"
    if pe.startswith("v:"):
        return "[=" + pe[2:] + "]"
    if pe.startswith("i:"):
        return "[" + pe[2:] + "]"
    return pe


def path_text(path: Path) -> str:
    return "".join(element_text(pe) for pe in path)


# --- sets of an object -------------------------------------------------------------------------------


def to_field_set(obj: dict[str, Any], ref: TypeRef | None) -> FieldSet:
    """Every leaf and list item of `obj` (ToFieldSet): what an applier claims by sending `obj`."""
    out: FieldSet = set()
    _set_map(obj, ref, (), out)
    return out


def _set_map(value: dict[str, Any], ref: TypeRef | None, path: Path, out: FieldSet) -> None:
    for key, child in value.items():
        _set_value(child, field_slot(ref, key), (*path, "f:" + key), out)


def _set_value(value: Any, slot: Slot, path: Path, out: FieldSet) -> None:
    if isinstance(value, dict) and value and not is_atomic_map(slot.ref):
        _set_map(value, slot.ref, path, out)
    elif isinstance(value, list) and value and list_kind(slot)[0] != "atomic":
        for item in value:
            item_path = (*path, item_element(item, slot))
            out.add(item_path)
            islot = item_slot(slot)
            if isinstance(item, dict) and not is_atomic_map(islot.ref):
                _set_map(item, islot.ref, item_path, out)
    else:
        out.add(path)


# --- comparison --------------------------------------------------------------------------------------


class Comparison:
    """Paths added, modified and removed between two versions of an object (typed Compare)."""

    def __init__(self) -> None:
        self.added: FieldSet = set()
        self.modified: FieldSet = set()
        self.removed: FieldSet = set()


def compare(old: dict[str, Any], new: dict[str, Any], ref: TypeRef | None) -> Comparison:
    c = Comparison()
    _cmp_map(old, new, ref, (), c)
    return c


def _cmp_map(
    old: dict[str, Any], new: dict[str, Any], ref: TypeRef | None, path: Path, c: Comparison
) -> None:
    for key in [*old, *(k for k in new if k not in old)]:
        _cmp(old.get(key, _MISSING), new.get(key, _MISSING), field_slot(ref, key), (*path, "f:" + key), c)


def _cmp(old: Any, new: Any, slot: Slot, path: Path, c: Comparison) -> None:
    if old is not _MISSING and old == new:  # equal subtrees hold no change: skip the walk (C-speed equality)
        return
    sample = new if new is not _MISSING else old
    same_shape = old is _MISSING or new is _MISSING or type(old) is type(new)
    if same_shape and isinstance(sample, dict) and not is_atomic_map(slot.ref):
        o = old if isinstance(old, dict) else {}
        n = new if isinstance(new, dict) else {}
        if o or n:
            _cmp_map(o, n, slot.ref, path, c)
            _post_item(old, new, path, c)
            return
    if same_shape and isinstance(sample, list) and list_kind(slot)[0] != "atomic":
        o_items = {item_element(i, slot): i for i in (old if isinstance(old, list) else [])}
        n_items = {item_element(i, slot): i for i in (new if isinstance(new, list) else [])}
        if o_items or n_items:
            islot = item_slot(slot)
            for pe in [*o_items, *(p for p in n_items if p not in o_items)]:
                _cmp_item(o_items.get(pe, _MISSING), n_items.get(pe, _MISSING), islot, (*path, pe), c)
            _post_item(old, new, path, c)
            return
    if old is _MISSING:
        c.added.add(path)
    elif new is _MISSING:
        c.removed.add(path)
    elif old != new:
        c.modified.add(path)


def _cmp_item(old: Any, new: Any, slot: Slot, path: Path, c: Comparison) -> None:
    if isinstance(new if new is not _MISSING else old, dict) and not is_atomic_map(slot.ref):
        _cmp_map(
            old if isinstance(old, dict) else {}, new if isinstance(new, dict) else {}, slot.ref, path, c
        )
        if old is _MISSING:
            c.added.add(path)
        elif new is _MISSING:
            c.removed.add(path)
        return
    if old is _MISSING:
        c.added.add(path)
    elif new is _MISSING:
        c.removed.add(path)
    elif old != new:
        c.modified.add(path)


def _post_item(old: Any, new: Any, path: Path, c: Comparison) -> None:
    """A container that appears or disappears is itself added/removed (the `.` entry)."""
    if path and path[-1][2:] in _ALWAYS_PRESENT and path[-1].startswith("f:"):
        return
    if old is _MISSING:
        c.added.add(path)
    elif new is _MISSING:
        c.removed.add(path)


# --- FieldsV1 encoding -------------------------------------------------------------------------------

_ORDER = {".": 0, "f": 1, "k": 2, "v": 3, "i": 4}


# Field sets repeat: every pod of a ReplicaSet, every status write of a kind has the same one. Encoded and
# decoded forms are memoized (as orjson bytes / frozensets, so callers always get private copies).
_CACHE_SIZE = 2048
_encoded: dict[frozenset[Path], bytes] = {}
_decoded: dict[bytes, frozenset[Path]] = {}


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    if len(cache) > _CACHE_SIZE:
        del cache[next(iter(cache))]


def encode(paths: Iterable[Path]) -> dict[str, Any]:
    """The FieldsV1 tree of a set (`{"f:spec": {"f:replicas": {}}}`), keys sorted like upstream."""
    key = frozenset(paths)
    raw = _encoded.pop(key, None)
    if raw is None:
        raw = orjson.dumps(_encode(key))
    _remember(_encoded, key, raw)  # least recently used first: one-off sets (a pod's IPs) never evict shared ones
    tree: dict[str, Any] = orjson.loads(raw)
    return tree


def _encode(members: frozenset[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in members:
        node = tree
        for pe in path:
            node = node.setdefault(pe, {})
    return _finish(tree, (), members)


def _finish(node: dict[str, Any], path: Path, members: frozenset[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if path in members and node and path:
        out["."] = {}
    for key in sorted(node, key=lambda k: (_ORDER.get(k[0], 9), k)):
        out[key] = _finish(node[key], (*path, key), members)
    return out


def decode(tree: Any) -> FieldSet:
    if not isinstance(tree, dict):
        return set()
    try:
        raw = orjson.dumps(tree)
    except TypeError:  # not JSON-shaped (never stored): decode without the memo
        raw = b""
    members = _decoded.pop(raw, None) if raw else None
    if members is None:
        out: FieldSet = set()
        _decode(tree, (), out)
        members = frozenset(out)
    if raw:
        _remember(_decoded, raw, members)
    return set(members)


def _decode(node: dict[str, Any], path: Path, out: FieldSet) -> None:
    for key, child in node.items():
        if key == ".":
            if path:
                out.add(path)
            continue
        sub = (*path, key)
        if isinstance(child, dict) and child:
            _decode(child, sub, out)
        else:
            out.add(sub)
