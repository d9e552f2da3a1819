"""JSON merge patch (RFC 7386) as the apiserver applies `application/merge-patch+json`."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.api.errors import ApiError
from skiff.apiserver.patch.merge import apply_merge_patch, merge_patch_value

BASE: dict[str, Any] = {
    "metadata": {"name": "x", "labels": {"a": "1", "b": "2"}},
    "spec": {"replicas": 1, "list": [1, 2, 3], "nested": {"k": "v"}},
}


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        pytest.param(
            {"spec": {"replicas": 3}}, {**BASE, "spec": {**BASE["spec"], "replicas": 3}}, id="set-scalar"
        ),
        pytest.param(
            {"metadata": {"labels": {"a": None, "c": "3"}}},
            {**BASE, "metadata": {"name": "x", "labels": {"b": "2", "c": "3"}}},
            id="null-deletes-key",
        ),
        pytest.param(
            {"spec": {"list": [9]}}, {**BASE, "spec": {**BASE["spec"], "list": [9]}}, id="list-replaced"
        ),
        pytest.param({"spec": None}, {"metadata": BASE["metadata"]}, id="null-deletes-subtree"),
        pytest.param(
            {"spec": {"new": {"a": None, "b": 1}}},
            {**BASE, "spec": {**BASE["spec"], "new": {"b": 1}}},
            id="nulls-pruned-from-new-map",
        ),
        pytest.param(
            {"spec": {"nested": "flat"}},
            {**BASE, "spec": {**BASE["spec"], "nested": "flat"}},
            id="map-to-scalar",
        ),
        pytest.param({}, BASE, id="empty-patch"),
    ],
)
def test_apply_merge_patch(patch: dict[str, Any], expected: dict[str, Any]) -> None:
    assert apply_merge_patch(BASE, patch) == expected


def test_merge_patch_does_not_mutate_inputs() -> None:
    original = {"a": {"b": 1}}
    patch = {"a": {"c": 2}}
    apply_merge_patch(original, patch)
    assert original == {"a": {"b": 1}} and patch == {"a": {"c": 2}}


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        pytest.param({"a": 1}, [1, 2], [1, 2], id="array-replaces-document"),
        pytest.param({"a": 1}, "s", "s", id="string-replaces-document"),
        pytest.param([1], {"a": {"b": None}}, {"a": {}}, id="object-patch-over-array"),
    ],
)
def test_merge_patch_value_rfc7386(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch_value(target, patch) == expected


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        pytest.param(None, "Invalid JSON Patch", id="null-patch"),
        pytest.param([1], "expected a JSON object, got array", id="array-patch"),
    ],
)
def test_apply_merge_patch_rejects_non_objects(patch: Any, message: str) -> None:
    with pytest.raises(ApiError) as err:
        apply_merge_patch(BASE, patch)
    assert err.value.code == 400 and err.value.reason == "BadRequest"
    assert message in err.value.message
