"""PodDisruptionBudget strategy: ValidatePodDisruptionBudgetSpec messages, status, printer row."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.policy import STRATEGIES
from skiff.apiserver.registry.policy.poddisruptionbudgets import PodDisruptionBudgetStrategy

S = PodDisruptionBudgetStrategy()
NOW = dt.datetime(2026, 1, 1, 0, 0, 5, tzinfo=dt.UTC)


def pdb(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }
    S.prepare_for_create(obj)
    S.defaults(obj)
    return obj


def test_initial_status() -> None:
    assert pdb(minAvailable=1)["status"] == {
        "disruptionsAllowed": 0,
        "currentHealthy": 0,
        "desiredHealthy": 0,
        "expectedPods": 0,
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"minAvailable": 1}, [], id="min-int"),
        pytest.param({"maxUnavailable": "10%"}, [], id="max-percent"),
        pytest.param(
            {"minAvailable": 1, "maxUnavailable": 1},
            [
                'spec: Invalid value: {"selector":{"matchLabels":{"app":"web"}},"minAvailable":1,"maxUnavailable":1}: '
                "minAvailable and maxUnavailable cannot be both set"
            ],
            id="both",
        ),
        pytest.param(
            {"minAvailable": -1},
            ["spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"],
            id="negative",
        ),
        pytest.param(
            {"maxUnavailable": "120%"},
            ['spec.maxUnavailable: Invalid value: "120%": must not be greater than 100%'],
            id="over-100",
        ),
        pytest.param(
            {"minAvailable": "half"},
            [
                'spec.minAvailable: Invalid value: "half": a valid percent string must be a numeric string followed by an '
                "ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
            ],
            id="not-percent",
        ),
        pytest.param(
            {"minAvailable": 1, "unhealthyPodEvictionPolicy": "Never"},
            [
                'spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: "AlwaysAllow", "IfHealthyBudget"'
            ],
            id="eviction-policy",
        ),
    ],
)
def test_validation(spec: dict[str, Any], expected: list[str]) -> None:
    assert [e.text() for e in S.validate(pdb(**spec))] == expected


def test_status_update_rejects_negative_counters() -> None:
    obj = pdb(minAvailable=1)
    new = dict(
        obj, status={"disruptionsAllowed": -1, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
    )
    assert [e.text() for e in S.validate_status_update(new, obj)] == [
        "status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0"
    ]


@pytest.mark.parametrize(
    ("spec", "cells"),
    [
        pytest.param({"minAvailable": 2}, ["2", "N/A"], id="min"),
        pytest.param({"maxUnavailable": "25%"}, ["N/A", "25%"], id="max"),
    ],
)
def test_row(spec: dict[str, Any], cells: list[str]) -> None:
    obj = pdb(**spec)
    obj["status"]["disruptionsAllowed"] = 1
    assert S.row(obj, NOW) == ["web", *cells, 1, "5s"]
    assert [c.name for c in S.columns()] == [
        "Name",
        "Min Available",
        "Max Unavailable",
        "Allowed Disruptions",
        "Age",
    ]


def test_info() -> None:
    assert STRATEGIES[0] is not None and STRATEGIES[0].info.plural == "poddisruptionbudgets"
    assert (S.info.group, S.info.version, S.info.short_names, S.info.categories) == (
        "policy",
        "v1",
        ("pdb",),
        (),
    )
    assert [s.name for s in S.info.subresources] == ["status"]
