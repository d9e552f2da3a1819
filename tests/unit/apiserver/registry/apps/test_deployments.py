"""Deployment strategy: SetDefaults_Deployment, ValidateDeploymentSpec messages, scale, printer row."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.apps.deployments import DeploymentStrategy

NOW = dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.UTC)
S = DeploymentStrategy()


def deployment(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "u1",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
            },
        },
    }
    base["spec"].update(spec)
    return base


def created(obj: dict[str, Any]) -> dict[str, Any]:
    S.prepare_for_create(obj)
    S.defaults(obj)
    return obj


def messages(obj: dict[str, Any]) -> list[str]:
    return [e.text() for e in S.validate(obj)]


def test_defaults_match_upstream() -> None:
    spec = created(deployment())["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["restartPolicy"] == "Always"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"replicas": 3}, 3, id="explicit-replicas-kept"),
        pytest.param({"replicas": None}, 1, id="null-replicas-defaulted"),
        pytest.param({"replicas": 0}, 0, id="zero-kept"),
    ],
)
def test_replicas_default(spec: dict[str, Any], expected: int) -> None:
    assert created(deployment(**spec))["spec"]["replicas"] == expected


def test_recreate_gets_no_rolling_update() -> None:
    spec = created(deployment(strategy={"type": "Recreate"}))["spec"]
    assert spec["strategy"] == {"type": "Recreate"}


def test_create_resets_status() -> None:
    obj = deployment()
    obj["status"] = {"replicas": 5}
    assert created(obj)["status"] == {}


def test_valid_deployment_has_no_errors() -> None:
    assert messages(created(deployment())) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda d: d["spec"]["template"]["metadata"].update(labels={"app": "x"}),
            'spec.template.metadata.labels: Invalid value: map[string]string{"app":"x"}: `selector` does not match template `labels`',
            id="selector-mismatch",
        ),
        pytest.param(
            lambda d: d["spec"].pop("selector"), "spec.selector: Required value", id="selector-required"
        ),
        pytest.param(
            lambda d: d["spec"].update(selector={}),
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
            id="empty-selector",
        ),
        pytest.param(
            lambda d: d["spec"].update(replicas=-1),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            id="negative-replicas",
        ),
        pytest.param(
            lambda d: d["spec"]["strategy"]["rollingUpdate"].update(maxSurge=0, maxUnavailable="0%"),
            'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0',
            id="surge-and-unavailable-zero",
        ),
        pytest.param(
            lambda d: d["spec"]["strategy"]["rollingUpdate"].update(maxSurge="25"),
            'spec.strategy.rollingUpdate.maxSurge: Invalid value: "25": a valid percent string must be a numeric string '
            "followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            id="bad-percent",
        ),
        pytest.param(
            lambda d: d["spec"]["strategy"]["rollingUpdate"].update(maxUnavailable="150%"),
            'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%',
            id="over-100-percent",
        ),
        pytest.param(
            lambda d: d["spec"].update(strategy={"type": "Recreate", "rollingUpdate": {}}),
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
            id="recreate-with-rolling-update",
        ),
        pytest.param(
            lambda d: d["spec"].update(strategy={"type": "Blue"}),
            'spec.strategy: Unsupported value: "Blue": supported values: "Recreate", "RollingUpdate"',
            id="unknown-strategy",
        ),
        pytest.param(
            lambda d: d["spec"].update(revisionHistoryLimit=-2),
            "spec.revisionHistoryLimit: Invalid value: -2: must be greater than or equal to 0",
            id="negative-history",
        ),
        pytest.param(
            lambda d: d["spec"].update(minReadySeconds=700),
            "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
            id="deadline-not-above-min-ready",
        ),
        pytest.param(
            lambda d: d["spec"]["template"]["spec"].update(restartPolicy="Never"),
            'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
            id="restart-policy",
        ),
        pytest.param(
            lambda d: d["spec"]["template"]["spec"].update(activeDeadlineSeconds=5),
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
            id="active-deadline",
        ),
    ],
)
def test_validation_messages(mutate: Any, expected: str) -> None:
    obj = created(deployment())
    mutate(obj)
    assert expected in messages(obj)


def test_selector_is_immutable_on_update() -> None:
    old = created(deployment())
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    texts = [e.text() for e in S.validate_update(new, old)]
    assert texts == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "tier":"x"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable'
    ]


def test_update_keeps_stored_status() -> None:
    old = created(deployment())
    old["status"] = {"replicas": 2}
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 9}
    S.prepare_for_update(new, old)
    assert new["status"] == {"replicas": 2}


def test_scale() -> None:
    obj = created(
        deployment(
            replicas=3,
            selector={
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}],
            },
        )
    )
    obj["status"] = {"replicas": 2}
    assert S.scale_of(obj) == (3, 2, "app=web,tier in (a,b)")
    S.set_replicas(obj, 7)
    assert obj["spec"]["replicas"] == 7


def test_resource_info() -> None:
    info = S.info
    assert (info.group, info.version, info.plural, info.short_names, info.categories) == (
        "apps",
        "v1",
        "deployments",
        ("deploy",),
        ("all",),
    )
    assert {(s.name, s.group, s.version, s.kind) for s in info.subresources} == {
        ("scale", "autoscaling", "v1", "Scale"),
        ("status", "apps", "v1", "Deployment"),
    }


def test_columns_and_row() -> None:
    obj = created(deployment(replicas=3))
    obj["status"] = {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    cols = S.columns()
    assert [c.name for c in cols] == [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    assert [c.priority for c in cols] == [0, 0, 0, 0, 0, 1, 1, 1]
    assert S.row(obj, NOW) == ["web", "2/3", 3, 2, "5m", "nginx", "nginx:1.27", "app=web"]
