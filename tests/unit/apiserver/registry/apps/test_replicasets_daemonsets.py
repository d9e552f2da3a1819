"""ReplicaSet and DaemonSet strategies: defaults, upstream validation messages, rows, fields."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.apps.daemonsets import DaemonSetStrategy
from skiff.apiserver.registry.apps.replicasets import ReplicaSetStrategy

NOW = dt.datetime(2026, 1, 1, 0, 0, 30, tzinfo=dt.UTC)
RS = ReplicaSetStrategy()
DS = DaemonSetStrategy()


def workload(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "w", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "selector": {"matchLabels": {"app": "w"}},
            "template": {
                "metadata": {"labels": {"app": "w"}},
                "spec": {
                    "containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "redis:7"}]
                },
            },
        },
    }
    obj["spec"].update(spec)
    return obj


def created(strategy: Any, obj: dict[str, Any]) -> dict[str, Any]:
    strategy.prepare_for_create(obj)
    strategy.defaults(obj)
    return obj


def test_replicaset_defaults_and_status() -> None:
    obj = created(RS, workload())
    assert obj["spec"]["replicas"] == 1
    assert obj["status"] == {"replicas": 0}
    assert RS.validate(obj) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda o: o["spec"].update(selector={"matchLabels": {}}),
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
            id="empty",
        ),
        pytest.param(
            lambda o: o["spec"].update(minReadySeconds=-1),
            "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0",
            id="min-ready",
        ),
        pytest.param(
            lambda o: o["spec"]["selector"].update(matchExpressions=[{"key": "x", "operator": "In"}]),
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            id="in-without-values",
        ),
        pytest.param(
            lambda o: o["spec"]["selector"].update(matchExpressions=[{"key": "x", "operator": "Near"}]),
            'spec.selector.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator',
            id="bad-operator",
        ),
    ],
)
def test_replicaset_validation(mutate: Any, expected: str) -> None:
    obj = created(RS, workload())
    mutate(obj)
    assert expected in [e.text() for e in RS.validate(obj)]


def test_replicaset_row_fields_scale() -> None:
    obj = created(RS, workload(replicas=3))
    obj["status"] = {"replicas": 2, "readyReplicas": 1}
    assert [c.name for c in RS.columns()] == [
        "Name",
        "Desired",
        "Current",
        "Ready",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    assert RS.row(obj, NOW) == ["w", 3, 2, 1, "30s", "a,b", "busybox,redis:7", "app=w"]
    assert RS.fields(obj) == {"status.replicas": "2"}
    assert RS.scale_of(obj) == (3, 2, "app=w")
    assert RS.info.short_names == ("rs",)


def test_replicaset_selector_immutable() -> None:
    old = created(RS, workload())
    new = copy.deepcopy(old)
    new["spec"]["selector"]["matchLabels"] = {}
    assert any(e.text().endswith("field is immutable") for e in RS.validate_update(new, old))


def test_daemonset_defaults() -> None:
    obj = created(DS, workload())
    assert obj["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert obj["spec"]["revisionHistoryLimit"] == 10
    assert obj["status"] == {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    }
    assert DS.validate(obj) == []
    assert DS.scale_subresource is False and DS.status_subresource is True


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        pytest.param(
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0",
            id="both-zero",
        ),
        pytest.param(
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "10%"}},
            'spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: "10%": may not be set when maxUnavailable is non-zero',
            id="both-set",
        ),
        pytest.param(
            {"type": "Sometimes"},
            'spec.updateStrategy: Unsupported value: "Sometimes": supported values: "RollingUpdate", "OnDelete"',
            id="unknown-type",
        ),
        pytest.param(
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "101%", "maxSurge": 0}},
            'spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: "101%": must not be greater than 100%',
            id="over-100",
        ),
    ],
)
def test_daemonset_update_strategy(strategy: dict[str, Any], expected: str) -> None:
    obj = created(DS, workload())
    obj["spec"]["updateStrategy"] = strategy
    assert expected in [e.text() for e in DS.validate(obj)]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda o: o["spec"].update(selector={}),
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for daemonset",
            id="empty-selector",
        ),
        pytest.param(
            lambda o: o["spec"].pop("selector"),
            'spec.template.metadata.labels: Invalid value: map[string]string{"app":"w"}: `selector` does not match template `labels`',
            id="null-selector-matches-nothing",
        ),
        pytest.param(
            lambda o: o["spec"]["template"]["spec"].update(activeDeadlineSeconds=3),
            "spec.template.spec.activeDeadlineSeconds: Invalid value: 3: activeDeadlineSeconds must be nil for daemon set pods",
            id="active-deadline",
        ),
    ],
)
def test_daemonset_validation(mutate: Any, expected: str) -> None:
    obj = created(DS, workload())
    mutate(obj)
    assert expected in [e.text() for e in DS.validate(obj)]


@pytest.mark.parametrize(
    ("node_selector", "cell"),
    [
        pytest.param(None, "<none>", id="none"),
        pytest.param({"zone": "b", "disk": "ssd"}, "disk=ssd,zone=b", id="sorted"),
    ],
)
def test_daemonset_row(node_selector: Any, cell: str) -> None:
    obj = created(DS, workload())
    if node_selector:
        obj["spec"]["template"]["spec"]["nodeSelector"] = node_selector
    obj["status"] = {
        "desiredNumberScheduled": 3,
        "currentNumberScheduled": 3,
        "numberReady": 2,
        "updatedNumberScheduled": 3,
        "numberAvailable": 2,
    }
    assert DS.row(obj, NOW) == ["w", 3, 3, 2, 3, 2, cell, "30s", "a,b", "busybox,redis:7", "app=w"]
    assert [c.name for c in DS.columns()][:8] == [
        "Name",
        "Desired",
        "Current",
        "Ready",
        "Up-to-date",
        "Available",
        "Node Selector",
        "Age",
    ]
