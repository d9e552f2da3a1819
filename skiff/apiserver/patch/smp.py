"""Strategic merge patch (`application/strategic-merge-patch+json`).

Mirrors `apimachinery/pkg/util/strategicpatch/patch.go` StrategicMergeMapPatch (MergeParallelList and
IgnoreUnmatchedNulls on, as the apiserver applies patches):
- maps merge recursively; `null` deletes a key;
- lists tagged `patchStrategy:"merge"` merge by their merge key (new items appended, original order kept),
  or as a deduplicated primitive set when there is no key (finalizers); other lists are replaced whole;
- directives: `$patch: replace|delete` on a map, `{"$patch": "replace"}` / `{key: v, "$patch": "delete"}`
  items in a keyed list, `$retainKeys`, `$setElementOrder/<field>`, `$deleteFromPrimitiveList/<field>`.
Type metadata (merge keys) comes from skiff.api.schema by model name; unknown fields merge like JSON merge patch.
"""

from __future__ import annotations

import json
from typing import Any

from skiff.api.errors import bad_request, internal
from skiff.api.meta import json_copy
from skiff.api.schema import TypeRef
from skiff.apiserver.patch._types import Slot, field_slot, item_slot, root

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER_PREFIX = "$setElementOrder/"
DELETE_PRIMITIVE_PREFIX = "$deleteFromPrimitiveList/"

# mergepatch error texts; the apiserver maps them to 400 / 422 (patch.go interpretStrategicMergePatchError).
_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_SET_ORDER = "invalid patch format of setElementOrder list"


def apply_strategic_merge_patch(
    original: dict[str, Any], patch: dict[str, Any], model: str
) -> dict[str, Any]:
    """The object after applying `patch`; neither argument is mutated."""
    if not isinstance(patch, dict):
        raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
    return _merge_map(original if isinstance(original, dict) else {}, patch, root(model))


def _go_repr(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _go_fmt(value: Any) -> str:
    """A value as Go's `%v` prints decoded JSON (`map[image:x name:nginx]`), for error messages."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_fmt(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_fmt(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _merge_map(original: dict[str, Any], patch: dict[str, Any], ref: TypeRef | None) -> dict[str, Any]:
    patch = dict(patch)
    directive = patch.pop(DIRECTIVE, None)
    if directive == "replace":
        replaced: dict[str, Any] = _strip_directives(patch)
        return replaced
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise internal(f"unknown patch type: {directive} in map: {_go_fmt({DIRECTIVE: directive, **patch})}")
    result = json_copy(original)

    if RETAIN_KEYS in patch:
        _retain_keys(result, patch, patch.pop(RETAIN_KEYS))

    done: set[str] = set()
    for key in [k for k in patch if k.startswith(SET_ORDER_PREFIX)]:
        field = key[len(SET_ORDER_PREFIX) :]
        _set_element_order(result, patch, field, patch[key], field_slot(ref, field))
        done.update((key, field))

    for key, value in patch.items():
        if not key.startswith(DELETE_PRIMITIVE_PREFIX):
            continue
        done.add(key)
        field = key[len(DELETE_PRIMITIVE_PREFIX) :]
        current = result.get(field)
        if isinstance(current, list) and isinstance(value, list):
            result[field] = [item for item in current if item not in value]

    for key, value in patch.items():
        if key in done or key.startswith(SET_ORDER_PREFIX):
            continue
        if value is None:
            result.pop(key, None)
            continue
        slot = field_slot(ref, key)
        current = result.get(key)
        if isinstance(value, dict):
            result[key] = _merge_map(current if isinstance(current, dict) else {}, value, slot.ref)
        elif isinstance(value, list):
            result[key] = _merge_list(current if isinstance(current, list) else [], value, slot)
        else:
            result[key] = json_copy(value)
    return result


def _retain_keys(result: dict[str, Any], patch: dict[str, Any], keys: Any) -> None:
    """`$retainKeys`: drop every original key not listed; the patch may only set listed keys."""
    if not isinstance(keys, list):
        raise bad_request(_BAD_RETAIN_KEYS)
    allowed = set(keys)
    for k, v in patch.items():
        if v is None or k.startswith((SET_ORDER_PREFIX, DELETE_PRIMITIVE_PREFIX)) or k == DIRECTIVE:
            continue
        if k not in allowed:
            raise bad_request(_BAD_RETAIN_KEYS)
    for k in list(result):
        if k not in allowed:
            del result[k]


def _is_merge_list(slot: Slot) -> bool:
    return slot.meta is not None and slot.meta.strategy == "merge"


def _merge_list(original: list[Any], patch: list[Any], slot: Slot) -> list[Any]:
    if not _is_merge_list(slot):
        return json_copy(patch)
    assert slot.meta is not None
    key = slot.meta.merge_key
    if not any(isinstance(item, dict) for item in patch):
        merged = _dedupe(json_copy(original) + json_copy(patch))
        return _order_like_patch(merged, patch, original, "")
    if not key:
        return json_copy(patch)
    items = item_slot(slot)
    result = json_copy(original)
    plain: list[dict[str, Any]] = []
    replace = False
    for item in patch:
        if not isinstance(item, dict):
            raise bad_request(f"unable to merge list item {_go_repr(item)}: not an object")
        directive = item.get(DIRECTIVE)
        if directive is None:
            plain.append(item)
        elif directive == "delete":
            if key not in item:
                raise internal(f"map: {_go_fmt(item)} does not contain declared merge key: {key}")
            result = [o for o in result if not (isinstance(o, dict) and o.get(key) == item[key])]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise internal("merging lists cannot yet be specified in the patch")
        else:
            raise internal(f"unknown patch type: {directive} in map: {_go_fmt(item)}")
    if replace:
        return [_merge_map({}, item, items.ref) for item in plain]
    live = list(result)
    for item in plain:
        if key not in item:
            raise internal(f"map: {_go_fmt(item)} does not contain declared merge key: {key}")
        for i, o in enumerate(result):
            if isinstance(o, dict) and o.get(key) == item[key]:
                result[i] = _merge_map(o, item, items.ref)
                break
        else:
            result.append(_merge_map({}, item, items.ref))
    return _order_like_patch(result, plain, live, key)


def _order_like_patch(merged: list[Any], patch: list[Any], live: list[Any], key: str) -> list[Any]:
    """Items named in the patch take the patch's order; the others keep their live order and are
    interleaved by live position (strategicpatch mergeSlice → normalizeElementOrder)."""
    wanted = [_identity(p, key) for p in patch]
    in_patch = [m for m in merged if _identity(m, key) in wanted]
    server_only = [m for m in merged if _identity(m, key) not in wanted]
    in_patch.sort(key=lambda m: wanted.index(_identity(m, key)))
    return _merge_sorted(server_only, in_patch, [_identity(o, key) for o in live], key)


def _dedupe(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _strip_directives(value: Any) -> Any:
    """A patch value taken verbatim (`$patch: replace`), minus nulls and directive keys."""
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if v is not None and not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value if not (isinstance(v, dict) and DIRECTIVE in v)]
    return json_copy(value)


def _identity(item: Any, key: str) -> Any:
    if key and isinstance(item, dict):
        return _go_repr(item.get(key))
    return _go_repr(item)


def _set_element_order(
    result: dict[str, Any], patch: dict[str, Any], field: str, order: Any, slot: Slot
) -> None:
    """Merge `patch[field]` into `result[field]` and order the outcome as `$setElementOrder/<field>` says.

    Items named in the order list take its order; server-only items keep their relative order and are
    interleaved by their position in the live list (strategicpatch normalizeElementOrder/mergeSortedSlice).
    """
    if not isinstance(order, list):
        raise bad_request(_BAD_SET_ORDER)
    key = slot.meta.merge_key if slot.meta is not None else ""
    original = result.get(field)
    patched = patch.get(field)
    if original is not None and not isinstance(original, list):
        raise bad_request(_BAD_SET_ORDER)
    if patched is not None and not isinstance(patched, list):
        raise bad_request(_BAD_SET_ORDER)
    wanted = [_identity(o, key) for o in order]
    if patched:
        kept = [p for p in patched if not (isinstance(p, dict) and p.get(DIRECTIVE) is not None)]
        named = [_identity(p, key) for p in kept]
        positions = [wanted.index(n) for n in named if n in wanted]
        if len(positions) != len(named) or positions != sorted(positions):
            # strategicpatch validatePatchWithSetOrderList; a plain error, hence 500 upstream.
            raise internal(
                f"The order in patch list:\n{_go_fmt(kept)}\n doesn't match $setElementOrder list:\n{_go_fmt(order)}\n"
            )
    if original is None and patched is None:
        return
    if patched is None:
        merged = json_copy(original or [])
    elif original is None:
        merged = _merge_list([], patched, slot)
    else:
        merged = _merge_list(original, patched, slot)
    in_patch = [m for m in merged if _identity(m, key) in wanted]
    server_only = [m for m in merged if _identity(m, key) not in wanted]
    in_patch.sort(key=lambda m: wanted.index(_identity(m, key)))
    live = [_identity(o, key) for o in (original or [])]
    result[field] = _merge_sorted(server_only, in_patch, live, key)


def _merge_sorted(left: list[Any], right: list[Any], live: list[str], key: str) -> list[Any]:
    """Interleave server-only items (`left`) into the ordered patch items (`right`) by live-list position."""
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li, ri = _identity(left[i], key), _identity(right[j], key)
            if li in live and ri in live and live.index(li) < live.index(ri):
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out
