"""StorageClass strategy: defaults, validation, immutable fields, the `(default)` marker."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.storage.storageclasses import StorageClassStrategy

S = StorageClassStrategy()
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def sc(**fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "fast", "creationTimestamp": "2025-12-31T00:00:00Z"},
        "provisioner": "example.com/disk",
    }
    obj.update(fields)
    return obj


def test_info() -> None:
    assert S.info.short_names == ("sc",) and not S.info.namespaced


def test_defaults() -> None:
    obj = sc()
    S.defaults(obj)
    assert (obj["reclaimPolicy"], obj["volumeBindingMode"]) == ("Delete", "Immediate")
    kept = sc(reclaimPolicy="Retain", volumeBindingMode="WaitForFirstConsumer")
    S.defaults(kept)
    assert (kept["reclaimPolicy"], kept["volumeBindingMode"]) == ("Retain", "WaitForFirstConsumer")


@pytest.mark.parametrize(
    ("obj", "want"),
    [
        pytest.param(sc(), [], id="valid"),
        pytest.param({**sc(), "provisioner": ""}, ["provisioner: Required value"], id="provisioner-required"),
        pytest.param(
            sc(reclaimPolicy="Recycle"),
            ['reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"'],
            id="recycle",
        ),
        pytest.param(
            sc(volumeBindingMode="Later"),
            [
                'volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer"'
            ],
            id="binding-mode",
        ),
        pytest.param(
            sc(allowedTopologies=[{"matchLabelExpressions": [{"key": "zone", "values": []}]}]),
            [
                "allowedTopologies[0].matchLabelExpressions[0].values: Required value: must specify as least one value"
            ],
            id="topology-values",
        ),
    ],
)
def test_validate(obj: dict[str, Any], want: list[str]) -> None:
    S.defaults(obj)
    assert [e.text() for e in S.validate(obj)] == want


@pytest.mark.parametrize(
    ("change", "want"),
    [
        pytest.param(
            {"parameters": {"type": "ssd"}},
            ["parameters: Forbidden: updates to parameters are forbidden."],
            id="parameters",
        ),
        pytest.param(
            {"provisioner": "other.io/disk"},
            ["provisioner: Forbidden: updates to provisioner are forbidden."],
            id="provisioner",
        ),
        pytest.param(
            {"reclaimPolicy": "Retain"},
            ["reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden."],
            id="reclaim",
        ),
        pytest.param(
            {"volumeBindingMode": "WaitForFirstConsumer"},
            ['volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable'],
            id="binding-mode",
        ),
        pytest.param({"allowVolumeExpansion": True}, [], id="expansion-mutable"),
    ],
)
def test_update(change: dict[str, Any], want: list[str]) -> None:
    old = sc()
    S.defaults(old)
    new = copy.deepcopy(old)
    new.update(change)
    assert [e.text() for e in S.validate_update(new, old)] == want


@pytest.mark.parametrize(
    ("annotations", "fields", "want"),
    [
        pytest.param({}, {}, ["fast", "example.com/disk", "Delete", "Immediate", "false", "24h"], id="plain"),
        pytest.param(
            {"storageclass.kubernetes.io/is-default-class": "true"},
            {
                "reclaimPolicy": "Retain",
                "volumeBindingMode": "WaitForFirstConsumer",
                "allowVolumeExpansion": True,
            },
            ["fast (default)", "example.com/disk", "Retain", "WaitForFirstConsumer", "true", "24h"],
            id="default-class",
        ),
        pytest.param(
            {"storageclass.beta.kubernetes.io/is-default-class": "true"},
            {},
            ["fast (default)", "example.com/disk", "Delete", "Immediate", "false", "24h"],
            id="beta-annotation",
        ),
        pytest.param(
            {"storageclass.kubernetes.io/is-default-class": "false"},
            {},
            ["fast", "example.com/disk", "Delete", "Immediate", "false", "24h"],
            id="explicitly-not-default",
        ),
    ],
)
def test_row(annotations: dict[str, str], fields: dict[str, Any], want: list[Any]) -> None:
    obj = sc(**fields)
    obj["metadata"]["annotations"] = annotations
    assert [c.name for c in S.columns()] == [
        "Name",
        "Provisioner",
        "ReclaimPolicy",
        "VolumeBindingMode",
        "AllowVolumeExpansion",
        "Age",
    ]
    assert S.row(obj, NOW) == want
