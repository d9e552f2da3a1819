"""RFC 6902 JSON Patch with upstream apiserver error reporting."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.api.errors import ApiError
from skiff.apiserver.patch.jsonpatch import apply_json_patch

DOC: dict[str, Any] = {
    "metadata": {"name": "web", "annotations": {"a": "1"}},
    "spec": {"replicas": 1, "items": ["x", "y"]},
}


@pytest.mark.parametrize(
    ("ops", "path", "expected"),
    [
        pytest.param(
            [{"op": "replace", "path": "/spec/replicas", "value": 3}], ("spec", "replicas"), 3, id="replace"
        ),
        pytest.param(
            [{"op": "add", "path": "/spec/items/-", "value": "z"}],
            ("spec", "items"),
            ["x", "y", "z"],
            id="append",
        ),
        pytest.param(
            [{"op": "add", "path": "/spec/items/0", "value": "w"}],
            ("spec", "items"),
            ["w", "x", "y"],
            id="insert",
        ),
        pytest.param(
            [{"op": "remove", "path": "/spec/items/0"}], ("spec", "items"), ["y"], id="remove-index"
        ),
        pytest.param(
            [{"op": "add", "path": "/metadata/annotations/kubernetes.io~1change-cause", "value": "c"}],
            ("metadata", "annotations"),
            {"a": "1", "kubernetes.io/change-cause": "c"},
            id="escaped-key",
        ),
        pytest.param(
            [
                {"op": "test", "path": "/spec/replicas", "value": 1},
                {"op": "replace", "path": "/spec/replicas", "value": 2},
            ],
            ("spec", "replicas"),
            2,
            id="test-then-replace",
        ),
        pytest.param(
            [{"op": "move", "from": "/spec/replicas", "path": "/spec/r"}],
            ("spec",),
            {"items": ["x", "y"], "r": 1},
            id="move",
        ),
        pytest.param(
            [{"op": "copy", "from": "/spec/replicas", "path": "/spec/r"}], ("spec", "r"), 1, id="copy"
        ),
        pytest.param(None, ("spec", "replicas"), 1, id="null-body-no-ops"),
    ],
)
def test_apply_json_patch(ops: Any, path: tuple[str, ...], expected: Any) -> None:
    out: Any = apply_json_patch(DOC, ops)
    for p in path:
        out = out[p]
    assert out == expected
    assert DOC["spec"]["replicas"] == 1, "input must not be mutated"


@pytest.mark.parametrize(
    ("ops", "cause"),
    [
        pytest.param(
            [{"op": "test", "path": "/spec/replicas", "value": 2}],
            "testing value /spec/replicas failed: test failed",
            id="test-failed",
        ),
        pytest.param(
            [{"op": "test", "path": "/spec/nope", "value": 2}],
            "testing value /spec/nope failed: test failed",
            id="test-missing-key",
        ),
        pytest.param(
            [{"op": "remove", "path": "/spec/nope"}],
            "error in remove for path: '/spec/nope': Unable to remove nonexistent key: nope: missing value",
            id="remove-missing-key",
        ),
        pytest.param(
            [{"op": "replace", "path": "/spec/nope", "value": 1}],
            "replace operation does not apply: doc is missing key: /spec/nope: missing value",
            id="replace-missing-key",
        ),
        pytest.param(
            [{"op": "add", "path": "/status/x", "value": 1}],
            'add operation does not apply: doc is missing path: "/status/x": missing value',
            id="add-missing-parent",
        ),
        pytest.param(
            [{"op": "remove", "path": "/spec/items/5"}],
            "error in remove for path: '/spec/items/5': Unable to access invalid index: 5: invalid index referenced",
            id="bad-index",
        ),
        pytest.param([{"op": "frob", "path": "/spec"}], "Unexpected kind: frob", id="unknown-op"),
        pytest.param([{"path": "/spec"}], "Unexpected kind: unknown", id="missing-op"),
        pytest.param(
            [{"op": "move", "from": "/nope", "path": "/spec/x"}],
            "move operation does not apply: doc is missing from path: /nope: missing value",
            id="move-missing-from",
        ),
    ],
)
def test_failed_operation_is_422_with_cause(ops: list[dict[str, Any]], cause: str) -> None:
    with pytest.raises(ApiError) as err:
        apply_json_patch(DOC, ops)
    e = err.value
    assert (e.code, e.reason) == (422, "Invalid")
    assert e.message == "the server rejected our request due to an error in our request"
    assert e.details == {"causes": [{"reason": "UnexpectedServerResponse", "message": cause}]}


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        pytest.param(
            {"op": "add"},
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
            id="object-body",
        ),
        pytest.param(
            "x", "json: cannot unmarshal string into Go value of type jsonpatch.Patch", id="string-body"
        ),
        pytest.param(
            [1], "json: cannot unmarshal number into Go value of type jsonpatch.Operation", id="non-object-op"
        ),
    ],
)
def test_malformed_body_is_400(ops: Any, message: str) -> None:
    with pytest.raises(ApiError) as err:
        apply_json_patch(DOC, ops)
    assert (err.value.code, err.value.reason, err.value.message) == (400, "BadRequest", message)


def test_too_many_operations_is_413() -> None:
    ops = [{"op": "test", "path": "/spec/replicas", "value": 1}] * 10001
    with pytest.raises(ApiError) as err:
        apply_json_patch(DOC, ops)
    assert err.value.code == 413 and err.value.reason == "RequestEntityTooLarge"
    assert "got 10001" in err.value.message


def test_failure_is_all_or_nothing() -> None:
    doc = {"spec": {"a": 1}}
    with pytest.raises(ApiError):
        apply_json_patch(
            doc, [{"op": "replace", "path": "/spec/a", "value": 2}, {"op": "remove", "path": "/x"}]
        )
    assert doc == {"spec": {"a": 1}}
