"""HPA strategy: v2 defaults, validation, v2 <-> v1 conversion through the upstream annotations, row."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import orjson
import pytest

from skiff.apiserver.registry.autoscaling import STRATEGIES
from skiff.apiserver.registry.autoscaling.horizontalpodautoscalers import (
    METRIC_SPECS_ANNOTATION,
    METRIC_STATUSES_ANNOTATION,
    V1_INFO,
    HorizontalPodAutoscalerStrategy,
    format_hpa_metrics,
)

S = HorizontalPodAutoscalerStrategy()
NOW = dt.datetime(2026, 1, 1, 0, 3, tzinfo=dt.UTC)
CPU80 = {
    "type": "Resource",
    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
}
PODS = {
    "type": "Pods",
    "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "10"}},
}


def hpa(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
        },
    }
    obj["spec"].update(spec)
    S.prepare_for_create(obj)
    S.defaults(obj)
    return obj


def texts(obj: dict[str, Any]) -> list[str]:
    return [e.text() for e in S.validate(obj)]


def test_defaults() -> None:
    obj = hpa()
    assert obj["spec"]["minReplicas"] == 1
    assert obj["spec"]["metrics"] == [CPU80]
    assert obj["status"] == {"desiredReplicas": 0}
    assert "behavior" not in obj["spec"]
    assert texts(obj) == []


def test_behavior_defaults_fill_unset_rules() -> None:
    behavior = hpa(behavior={"scaleDown": {"stabilizationWindowSeconds": 60}})["spec"]["behavior"]
    assert behavior["scaleDown"] == {
        "stabilizationWindowSeconds": 60,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    }
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleUp"]["policies"] == [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"minReplicas": 0},
            "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
            id="min-zero",
        ),
        pytest.param(
            {"maxReplicas": 0}, "spec.maxReplicas: Invalid value: 0: must be greater than 0", id="max-zero"
        ),
        pytest.param(
            {"minReplicas": 6},
            "spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`",
            id="min-over-max",
        ),
        pytest.param(
            {"scaleTargetRef": {"name": "web"}}, "spec.scaleTargetRef.kind: Required value", id="ref-kind"
        ),
        pytest.param(
            {"scaleTargetRef": {"kind": "Deployment", "name": "a/b"}},
            "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'",
            id="ref-name",
        ),
        pytest.param(
            {"metrics": [{"type": "Magic"}]},
            'spec.metrics[0].type: Unsupported value: "Magic": supported values: "ContainerResource", "External", "Object", "Pods", "Resource"',
            id="metric-type",
        ),
        pytest.param(
            {"metrics": [{"type": "Resource"}]},
            "spec.metrics[0].resource: Required value: must populate information for the given metric source",
            id="no-source",
        ),
        pytest.param(
            {
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}
                ]
            },
            "spec.metrics[0].resource.target.averageUtilization: Required value: must set either a target raw value or a target utilization",
            id="no-target",
        ),
        pytest.param(
            {
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 0},
                        },
                    }
                ]
            },
            "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
            id="zero-util",
        ),
        pytest.param(
            {
                "metrics": [
                    {
                        "type": "Pods",
                        "pods": {
                            "metric": {"name": "rps"},
                            "target": {"type": "AverageValue", "averageValue": "0"},
                        },
                    }
                ]
            },
            'spec.metrics[0].pods.target.averageValue: Invalid value: "0": must be positive',
            id="pods-zero",
        ),
        pytest.param(
            {"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}},
            "spec.behavior.scaleUp.policies[0].value: Invalid value: 0: must be greater than zero",
            id="behavior-policy",
        ),
    ],
)
def test_validation(spec: dict[str, Any], expected: str) -> None:
    assert expected in texts(hpa(**spec))


def test_v2_to_v1_cpu_only() -> None:
    obj = hpa(
        metrics=[
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
            }
        ]
    )
    obj["status"] = {
        "currentReplicas": 2,
        "desiredReplicas": 3,
        "currentMetrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": 42, "averageValue": "120m"}},
            }
        ],
    }
    v1 = S.to_version(obj, V1_INFO)
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1,
        "maxReplicas": 5,
        "targetCPUUtilizationPercentage": 50,
    }
    assert v1["status"] == {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 42}
    annotations = v1["metadata"]["annotations"]
    assert METRIC_SPECS_ANNOTATION not in annotations  # the cpu target is expressed natively
    assert orjson.loads(annotations[METRIC_STATUSES_ANNOTATION]) == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "currentAverageUtilization": 42, "currentAverageValue": "120m"},
        }
    ]
    assert obj["apiVersion"] == "autoscaling/v2" and "annotations" not in obj["metadata"]  # input untouched


def test_v2_to_v1_other_metrics_annotation() -> None:
    v1 = S.to_version(hpa(metrics=[CPU80, PODS]), V1_INFO)
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 80
    assert orjson.loads(v1["metadata"]["annotations"][METRIC_SPECS_ANNOTATION]) == [
        {"type": "Pods", "pods": {"metricName": "rps", "targetAverageValue": "10"}}
    ]


@pytest.mark.parametrize(
    "metrics",
    [
        pytest.param([CPU80], id="cpu"),
        pytest.param([CPU80, PODS], id="cpu-and-pods"),
        pytest.param(
            [
                PODS,
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": "queue", "selector": {"matchLabels": {"q": "a"}}},
                        "target": {"type": "Value", "value": "30"},
                    },
                },
            ],
            id="no-cpu",
        ),
        pytest.param(
            [
                {
                    "type": "Object",
                    "object": {
                        "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "s"},
                        "metric": {"name": "hits"},
                        "target": {"type": "AverageValue", "value": "0", "averageValue": "5"},
                    },
                },
                {
                    "type": "ContainerResource",
                    "containerResource": {
                        "name": "memory",
                        "container": "app",
                        "target": {"type": "AverageValue", "averageValue": "100Mi"},
                    },
                },
            ],
            id="object-and-container",
        ),
    ],
)
def test_round_trip_v2_v1_v2(metrics: list[Any]) -> None:
    obj = hpa(metrics=copy.deepcopy(metrics), behavior={"scaleUp": {"selectPolicy": "Min"}})
    obj["metadata"]["annotations"] = {"team": "a"}
    obj["status"] = {
        "desiredReplicas": 2,
        "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"}],
    }
    back = S.from_version(S.to_version(obj, V1_INFO), V1_INFO)
    assert back["apiVersion"] == "autoscaling/v2"
    assert back["spec"]["metrics"] == [m for m in metrics if m is not CPU80] + (
        [CPU80] if CPU80 in metrics else []
    )
    assert back["spec"]["behavior"] == obj["spec"]["behavior"]
    assert back["status"]["conditions"] == obj["status"]["conditions"]
    assert back["metadata"]["annotations"] == {"team": "a"}


def test_behavior_annotation_uses_go_field_names() -> None:
    v1 = S.to_version(hpa(behavior={"scaleDown": {"selectPolicy": "Disabled"}}), V1_INFO)
    behavior = orjson.loads(v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/behavior"])
    assert behavior["ScaleDown"]["SelectPolicy"] == "Disabled"
    assert behavior["ScaleUp"]["Policies"][0] == {"Type": "Pods", "Value": 4, "PeriodSeconds": 15}


@pytest.mark.parametrize(
    ("v1_spec", "metrics"),
    [
        pytest.param({}, [CPU80], id="implicit-80-percent"),
        pytest.param(
            {"targetCPUUtilizationPercentage": 65},
            [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 65}},
                }
            ],
            id="explicit-cpu",
        ),
    ],
)
def test_v1_to_v2(v1_spec: dict[str, Any], metrics: list[Any]) -> None:
    v1 = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4, **v1_spec},
    }
    v2 = S.from_version(v1, V1_INFO)
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"] == {
        "scaleTargetRef": {"kind": "Deployment", "name": "web"},
        "maxReplicas": 4,
        "metrics": metrics,
    }
    assert "annotations" not in v2["metadata"]


def test_v1_status_cpu_becomes_current_metric() -> None:
    v1 = {
        "metadata": {"name": "w"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"}, "maxReplicas": 2},
        "status": {"currentReplicas": 1, "desiredReplicas": 1, "currentCPUUtilizationPercentage": 30},
    }
    v2 = S.from_version(v1, V1_INFO)
    assert v2["status"] == {
        "currentReplicas": 1,
        "desiredReplicas": 1,
        "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 30}}}
        ],
    }


@pytest.mark.parametrize(
    ("specs", "statuses", "cell"),
    [
        pytest.param([], [], "<none>", id="none"),
        pytest.param([CPU80], [], "cpu: <unknown>/80%", id="unknown"),
        pytest.param(
            [CPU80],
            [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "3m"}},
                }
            ],
            "cpu: 12%/80%",
            id="cpu",
        ),
        pytest.param(
            [PODS],
            [{"type": "Pods", "pods": {"metric": {"name": "rps"}, "current": {"averageValue": "7"}}}],
            "7/10",
            id="pods",
        ),
        pytest.param(
            [
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": "q"},
                        "target": {"type": "AverageValue", "averageValue": "30"},
                    },
                }
            ],
            [],
            "<unknown>/30 (avg)",
            id="external-avg",
        ),
        pytest.param(
            [CPU80, PODS, PODS, PODS], [], "cpu: <unknown>/80%, <unknown>/10 + 2 more...", id="more"
        ),
    ],
)
def test_format_hpa_metrics(specs: list[Any], statuses: list[Any], cell: str) -> None:
    assert format_hpa_metrics(specs, statuses) == cell


def test_row_columns_info() -> None:
    obj = hpa()
    obj["status"] = {"currentReplicas": 2, "desiredReplicas": 2}
    assert [c.name for c in S.columns()] == [
        "Name",
        "Reference",
        "Targets",
        "MinPods",
        "MaxPods",
        "Replicas",
        "Age",
    ]
    assert S.row(obj, NOW) == ["web", "Deployment/web", "cpu: <unknown>/80%", "1", 5, 2, "3m"]
    assert (S.info.version, S.other_versions[0].version, S.info.short_names, S.info.categories) == (
        "v2",
        "v1",
        ("hpa",),
        ("all",),
    )
    assert len(STRATEGIES) == 1 and isinstance(STRATEGIES[0], HorizontalPodAutoscalerStrategy)
