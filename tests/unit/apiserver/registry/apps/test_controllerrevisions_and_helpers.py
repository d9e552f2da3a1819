"""ControllerRevision strategy and the shared workload helpers (Go-style value rendering, selectors)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.apps import STRATEGIES
from skiff.apiserver.registry.apps._workload import (
    format_label_selector,
    format_labels,
    go_label_selector,
    go_string_map,
    int_or_percent_value,
    selector_matches,
)
from skiff.apiserver.registry.apps.controllerrevisions import ControllerRevisionStrategy, controller_name

S = ControllerRevisionStrategy()
NOW = dt.datetime(2026, 1, 1, 0, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("owners", "expected"),
    [
        pytest.param([], "<none>", id="no-owner"),
        pytest.param(
            [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "uid": "1"}],
            "<none>",
            id="not-controller",
        ),
        pytest.param(
            [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "1", "controller": True}],
            "statefulset.apps/db",
            id="group-kind",
        ),
        pytest.param(
            [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "1", "controller": True}],
            "pod/p",
            id="core",
        ),
    ],
)
def test_controller_column(owners: list[Any], expected: str) -> None:
    assert controller_name({"metadata": {"ownerReferences": owners}}) == expected


def test_controllerrevision_row_and_validation() -> None:
    obj = {
        "metadata": {"name": "db-7f", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "revision": 2,
        "data": {"spec": {}},
    }
    assert S.row(obj, NOW) == ["db-7f", "<none>", 2, "60s"]
    assert [c.name for c in S.columns()] == ["Name", "Controller", "Revision", "Age"]
    assert S.validate(obj) == []
    assert [e.text() for e in S.validate({"revision": -1})] == [
        "data: Required value: data is mandatory",
        "revision: Invalid value: -1: must be greater than or equal to 0",
    ]
    changed = dict(obj, data={"spec": {"x": 1}})
    assert [e.text() for e in S.validate_update(changed, obj)] == [
        'data: Invalid value: {"spec":{"x":1}}: field is immutable'
    ]


def test_apps_group_lists_every_kind() -> None:
    assert [s.info.plural for s in STRATEGIES] == [
        "deployments",
        "replicasets",
        "statefulsets",
        "daemonsets",
        "controllerrevisions",
    ]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param(None, "map[string]string(nil)", id="nil"),
        pytest.param({}, "map[string]string{}", id="empty"),
        pytest.param({"b": "2", "a": "1"}, 'map[string]string{"a":"1", "b":"2"}', id="sorted"),
    ],
)
def test_go_string_map(labels: Any, expected: str) -> None:
    assert go_string_map(labels) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(3, 3, id="int"),
        pytest.param("25%", 25, id="percent"),
        pytest.param("0%", 0, id="zero-percent"),
        pytest.param("abc", 0, id="garbage"),
        pytest.param(None, 0, id="none"),
    ],
)
def test_int_or_percent_value(value: Any, expected: int) -> None:
    assert int_or_percent_value(value) == expected


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        pytest.param(None, {"a": "1"}, False, id="null-matches-nothing"),
        pytest.param({}, {"a": "1"}, True, id="empty-matches-all"),
        pytest.param({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True, id="subset"),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
            id="notin",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, {"a": "1"}, None, id="invalid"
        ),
    ],
)
def test_selector_matches(selector: Any, labels: dict[str, str], expected: bool | None) -> None:
    assert selector_matches(selector, labels) is expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param(None, "<none>", id="nil"),
        pytest.param({}, "<none>", id="empty"),
        pytest.param({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2", id="labels"),
        pytest.param({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, "!x", id="not-exists"),
    ],
)
def test_format_label_selector(selector: Any, expected: str) -> None:
    assert format_label_selector(selector) == expected


def test_format_labels() -> None:
    assert format_labels({"z": "1", "a": "2"}) == "a=2,z=1"
    assert format_labels({}) == "<none>"


@pytest.mark.parametrize(
    ("kind", "status", "expected"),
    [
        pytest.param(
            "deployments", {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}, [], id="deploy-ok"
        ),
        pytest.param(
            "deployments",
            {"replicas": 1, "updatedReplicas": 2},
            ["status.updatedReplicas: Invalid value: 2: cannot be greater than status.replicas"],
            id="deploy-updated",
        ),
        pytest.param(
            "deployments",
            {"replicas": 3, "readyReplicas": 1, "availableReplicas": 2},
            ["status.availableReplicas: Invalid value: 2: cannot be greater than readyReplicas"],
            id="deploy-available",
        ),
        pytest.param(
            "replicasets",
            {"replicas": -1},
            ["status.replicas: Invalid value: -1: must be greater than or equal to 0"],
            id="rs-negative",
        ),
        pytest.param(
            "statefulsets",
            {"replicas": 3, "readyReplicas": 1, "availableReplicas": 2},
            ["status.availableReplicas: Invalid value: 2: cannot be greater than status.readyReplicas"],
            id="sts-available",
        ),
        pytest.param(
            "daemonsets",
            {"numberReady": -1},
            ["status.numberReady: Invalid value: -1: must be greater than or equal to 0"],
            id="ds-negative",
        ),
    ],
)
def test_status_update_validation(kind: str, status: dict[str, Any], expected: list[str]) -> None:
    strategy = next(s for s in STRATEGIES if s.info.plural == kind)
    assert [e.text() for e in strategy.validate_status_update({"status": status}, {})] == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param(
            {"matchLabels": {"app": "x"}},
            'v1.LabelSelector{MatchLabels:map[string]string{"app":"x"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}',
            id="labels",
        ),
        pytest.param(
            {
                "matchExpressions": [
                    {"key": "t", "operator": "In", "values": ["a", "b"]},
                    {"key": "u", "operator": "Exists"},
                ]
            },
            "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{"
            'v1.LabelSelectorRequirement{Key:"t", Operator:"In", Values:[]string{"a", "b"}}, '
            'v1.LabelSelectorRequirement{Key:"u", Operator:"Exists", Values:[]string(nil)}}}',
            id="expressions",
        ),
    ],
)
def test_go_label_selector(selector: dict[str, Any], expected: str) -> None:
    assert go_label_selector(selector) == expected
