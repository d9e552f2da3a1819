"""RFC 7386 JSON merge patch (`application/merge-patch+json`).

Mirrors `evanphx/json-patch` MergePatch as the apiserver uses it (`apiserver/pkg/endpoints/handlers/patch.go`
jsonPatcher): objects merge recursively, `null` deletes a key, anything else (lists included) replaces.
"""

from __future__ import annotations

from typing import Any

from skiff.api.errors import bad_request
from skiff.api.meta import json_copy


def merge_patch_value(target: Any, patch: Any) -> Any:
    """The RFC 7386 MergePatch(target, patch) result; never mutates its arguments."""
    if not isinstance(patch, dict):
        return json_copy(patch)
    # One copy of the target up front, then merge in place: copying at every level is quadratic in depth.
    return _merge_into(json_copy(target) if isinstance(target, dict) else {}, patch)


def _merge_into(result: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            result[key] = _merge_into(current if isinstance(current, dict) else {}, value)
        else:
            result[key] = json_copy(value) if isinstance(value, list) else value
    return result


def apply_merge_patch(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a JSON merge patch to an object.

    A `null` patch is rejected as upstream does (`Invalid JSON Patch`, 400). A non-object patch replaces the
    document per RFC 7386; since an API object must be a JSON object, that result is rejected with 400.
    """
    if patch is None:
        raise bad_request("Invalid JSON Patch")
    result = merge_patch_value(original, patch)
    if not isinstance(result, dict):
        raise bad_request(f"error decoding patched object: expected a JSON object, got {_json_type(result)}")
    return result


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__
