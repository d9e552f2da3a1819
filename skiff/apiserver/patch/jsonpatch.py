"""RFC 6902 JSON Patch (`application/json-patch+json`), applied with the `jsonpatch` library.

Errors are reported as the apiserver reports them (`apiserver/pkg/endpoints/handlers/patch.go` applyJSPatch):
- a body that does not decode as a list of operations → 400 BadRequest with the decoder's message;
- more than 10000 operations → 413 RequestEntityTooLarge;
- an operation that fails (failed `test`, missing path, bad index, unknown op) → 422 Invalid built by
  `NewGenericServerResponse`: message "the server rejected our request due to an error in our request" and one
  cause of type `UnexpectedServerResponse` carrying the `evanphx/json-patch` (v4) error text.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch as _jp
import jsonpointer as _jptr

from skiff.api.errors import ApiError, bad_request

MAX_JSON_PATCH_OPERATIONS = 10000
_REJECTED = "the server rejected our request due to an error in our request"
_GO_TYPES = {dict: "object", list: "array", str: "string", bool: "bool", int: "number", float: "number"}


def _op_failed(text: str) -> ApiError:
    return ApiError(
        422, "Invalid", _REJECTED, {"causes": [{"reason": "UnexpectedServerResponse", "message": text}]}
    )


def _go_type(value: Any) -> str:
    return _GO_TYPES.get(type(value), "null")


def apply_json_patch(original: dict[str, Any], ops: Any) -> dict[str, Any]:
    """Apply the operations in order to a copy of `original`; all or nothing."""
    if ops is None:
        return copy.deepcopy(original)
    if not isinstance(ops, list):
        raise bad_request(f"json: cannot unmarshal {_go_type(ops)} into Go value of type jsonpatch.Patch")
    for op in ops:
        if not isinstance(op, dict):
            raise bad_request(
                f"json: cannot unmarshal {_go_type(op)} into Go value of type jsonpatch.Operation"
            )
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise ApiError(
            413,
            "RequestEntityTooLarge",
            f"Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}",
        )
    doc: Any = copy.deepcopy(original)
    for op in ops:
        doc = _apply_one(doc, op)
    if not isinstance(doc, dict):
        raise bad_request("error decoding patched object: expected a JSON object")
    return doc


def _apply_one(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    if kind not in ("add", "remove", "replace", "move", "copy", "test"):
        raise _op_failed(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
    path = op.get("path")
    if not isinstance(path, str):
        raise _op_failed(f"{kind} operation failed to decode path: missing value")
    if kind in ("add", "replace", "test") and "value" not in op:
        # evanphx treats a missing value as null for add/replace; `test` compares against null.
        op = {**op, "value": None}
    _precheck(doc, kind, op, path)
    try:
        return _jp.JsonPatch([op]).apply(doc, in_place=True)
    except _jp.JsonPatchTestFailed:
        raise _op_failed(f"testing value {path} failed: test failed") from None
    except (_jp.JsonPatchException, _jptr.JsonPointerException, TypeError, ValueError) as exc:
        raise _op_failed(f"{kind} operation does not apply: {exc}") from None


def _resolve(doc: Any, pointer: str) -> tuple[bool, Any]:
    try:
        return True, _jptr.JsonPointer(pointer).resolve(doc)
    except (_jptr.JsonPointerException, TypeError, ValueError):
        return False, None


def _split(pointer: str) -> tuple[str, str]:
    parent, _, last = pointer.rpartition("/")
    return parent, last.replace("~1", "/").replace("~0", "~")


def _precheck(doc: Any, kind: str, op: dict[str, Any], path: str) -> None:
    """Raise the evanphx v4 wording for a missing parent/key before the library gets to it."""
    if kind in ("move", "copy"):
        src = op.get("from")
        if not isinstance(src, str) or not _resolve(doc, src)[0]:
            raise _op_failed(
                f"{kind} operation does not apply: doc is missing from path: {src}: missing value"
            )
    if path == "":
        return
    parent_ptr, key = _split(path)
    found, parent = _resolve(doc, parent_ptr)
    if not found or not isinstance(parent, dict | list):
        if kind in ("add", "remove"):
            raise _op_failed(f'{kind} operation does not apply: doc is missing path: "{path}": missing value')
        if kind == "test":
            raise _op_failed(f"test operation does not apply: is missing path: {path}: missing value")
        if kind == "replace":
            raise _op_failed(f"replace operation does not apply: doc is missing path: {path}: missing value")
        raise _op_failed(
            f"{kind} operation does not apply: doc is missing destination path: {path}: missing value"
        )
    if isinstance(parent, dict):
        if key in parent:
            return
        if kind == "remove":
            raise _op_failed(
                f"error in remove for path: '{path}': Unable to remove nonexistent key: {key}: missing value"
            )
        if kind == "replace":
            raise _op_failed(f"replace operation does not apply: doc is missing key: {path}: missing value")
        if kind == "test" and op.get("value") is not None:
            raise _op_failed(f"testing value {path} failed: test failed")
        return
    # list parent
    if key == "-" and kind in ("add", "move", "copy"):
        return
    try:
        idx = int(key)
    except ValueError:
        raise _op_failed(
            f"error in {kind} for path: '{path}': strconv.Atoi: parsing \"{key}\": invalid syntax"
        ) from None
    limit = len(parent) + (1 if kind in ("add", "move", "copy") else 0)
    if idx < 0 or idx >= limit:
        raise _op_failed(
            f"error in {kind} for path: '{path}': Unable to access invalid index: {idx}: invalid index referenced"
        )
