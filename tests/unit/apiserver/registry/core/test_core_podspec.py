"""Pod spec defaults and validation messages (upstream SetDefaults_PodSpec / ValidatePodSpec)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from skiff.apiserver.registry.core.podspec import (
    default_pod_spec,
    image_tag,
    validate_pod_spec,
    validate_pod_template,
)


def base_spec() -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.27"}]}
    default_pod_spec(spec)
    return spec


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        pytest.param("nginx", "latest", id="untagged"),
        pytest.param("nginx:1.27", "1.27", id="tagged"),
        pytest.param("registry:5000/team/app", "latest", id="registry-port-untagged"),
        pytest.param("registry:5000/team/app:v2", "v2", id="registry-port-tagged"),
        pytest.param("nginx@sha256:abc", "", id="digest-only"),
    ],
)
def test_image_tag(image: str, tag: str) -> None:
    assert image_tag(image) == tag


@pytest.mark.parametrize(
    ("spec", "path", "expected"),
    [
        pytest.param(
            {"containers": [{"name": "a", "image": "x"}]}, ("restartPolicy",), "Always", id="restartPolicy"
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x"}]}, ("dnsPolicy",), "ClusterFirst", id="dnsPolicy"
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x"}]},
            ("schedulerName",),
            "default-scheduler",
            id="scheduler",
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x"}]}, ("terminationGracePeriodSeconds",), 30, id="grace"
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x"}]}, ("securityContext",), {}, id="securityContext"
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x"}]},
            ("containers", 0, "imagePullPolicy"),
            "Always",
            id="pull-untagged",
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x:latest"}]},
            ("containers", 0, "imagePullPolicy"),
            "Always",
            id="pull-latest",
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x:1"}]},
            ("containers", 0, "imagePullPolicy"),
            "IfNotPresent",
            id="pull-tagged",
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x:1", "imagePullPolicy": "Never"}]},
            ("containers", 0, "imagePullPolicy"),
            "Never",
            id="pull-kept",
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x"}]},
            ("containers", 0, "terminationMessagePath"),
            "/dev/termination-log",
            id="tm-path",
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x"}]},
            ("containers", 0, "terminationMessagePolicy"),
            "File",
            id="tm-policy",
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80}]}]},
            ("containers", 0, "ports", 0, "protocol"),
            "TCP",
            id="port-protocol",
        ),
        pytest.param(
            {
                "hostNetwork": True,
                "containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80}]}],
            },
            ("containers", 0, "ports", 0, "hostPort"),
            80,
            id="hostnetwork-hostport",
        ),
        pytest.param(
            {"initContainers": [{"name": "i", "image": "x:1"}], "containers": []},
            ("initContainers", 0, "imagePullPolicy"),
            "IfNotPresent",
            id="init-container",
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x", "livenessProbe": {"httpGet": {"port": 80}}}]},
            ("containers", 0, "livenessProbe"),
            {
                "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                "timeoutSeconds": 1,
                "periodSeconds": 10,
                "successThreshold": 1,
                "failureThreshold": 3,
            },
            id="probe",
        ),
        pytest.param(
            {"containers": [], "volumes": [{"name": "v"}]},
            ("volumes", 0),
            {"name": "v", "emptyDir": {}},
            id="volume-emptydir",
        ),
        pytest.param(
            {"containers": [], "volumes": [{"name": "v", "configMap": {"name": "c"}}]},
            ("volumes", 0, "configMap", "defaultMode"),
            420,
            id="configmap-mode",
        ),
        pytest.param(
            {"containers": [], "volumes": [{"name": "v", "secret": {"secretName": "s"}}]},
            ("volumes", 0, "secret", "defaultMode"),
            420,
            id="secret-mode",
        ),
        pytest.param(
            {
                "containers": [],
                "volumes": [
                    {"name": "v", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}
                ],
            },
            ("volumes", 0, "projected", "sources", 0, "serviceAccountToken", "expirationSeconds"),
            3600,
            id="projected-token",
        ),
        pytest.param(
            {
                "containers": [
                    {
                        "name": "a",
                        "image": "x",
                        "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    }
                ]
            },
            ("containers", 0, "env", 0, "valueFrom", "fieldRef", "apiVersion"),
            "v1",
            id="fieldref-apiversion",
        ),
        pytest.param(
            {"serviceAccount": "robot", "containers": []},
            ("serviceAccountName",),
            "robot",
            id="deprecated-sa-alias",
        ),
    ],
)
def test_default_pod_spec(spec: dict[str, Any], path: tuple[Any, ...], expected: Any) -> None:
    default_pod_spec(spec)
    got: Any = spec
    for p in path:
        got = got[p]
    assert got == expected


def test_default_pod_spec_is_idempotent() -> None:
    spec = base_spec()
    again = copy.deepcopy(spec)
    default_pod_spec(again)
    assert again == spec


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(spec: dict[str, Any]) -> None:
        parts: list[Any] = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = spec
        for p in parts[:-1]:
            target = target[p]
        target[parts[-1]] = value

    return mutate


C0 = "spec.containers[0]"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(_set("containers", []), "spec.containers: Required value", id="containers-required"),
        pytest.param(_set("containers.0.image", ""), f"{C0}.image: Required value", id="image-required"),
        pytest.param(
            _set("containers.0.name", "Bad_Name"),
            f'{C0}.name: Invalid value: "Bad_Name": a lowercase RFC 1123 label',
            id="container-name",
        ),
        pytest.param(
            _set(
                "initContainers",
                [
                    {
                        "name": "app",
                        "image": "x",
                        "imagePullPolicy": "Always",
                        "terminationMessagePolicy": "File",
                    }
                ],
            ),
            'spec.initContainers[0].name: Duplicate value: "app"',
            id="duplicate-across-init",
        ),
        pytest.param(
            _set("containers.0.ports", [{"containerPort": 70000, "protocol": "TCP"}]),
            f"{C0}.ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            id="port-range",
        ),
        pytest.param(
            _set("containers.0.ports", [{"protocol": "TCP"}]),
            f"{C0}.ports[0].containerPort: Required value",
            id="port-required",
        ),
        pytest.param(
            _set("containers.0.ports", [{"containerPort": 80, "protocol": "HTTP"}]),
            f'{C0}.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
            id="port-protocol",
        ),
        pytest.param(
            _set(
                "containers.0.ports",
                [
                    {"name": "web", "containerPort": 80, "protocol": "TCP"},
                    {"name": "web", "containerPort": 81, "protocol": "TCP"},
                ],
            ),
            f'{C0}.ports[1].name: Duplicate value: "web"',
            id="port-name-dup",
        ),
        pytest.param(
            _set("containers.0.ports", [{"name": "1234", "containerPort": 80, "protocol": "TCP"}]),
            f'{C0}.ports[0].name: Invalid value: "1234": must contain at least one letter (a-z)',
            id="port-name-letter",
        ),
        pytest.param(
            _set("containers.0.env", [{"name": "1X"}]),
            f'{C0}.env[0].name: Invalid value: "1X": a valid environment variable name',
            id="env-name",
        ),
        pytest.param(
            _set("containers.0.env", [{"name": "X", "valueFrom": {}}]),
            f'{C0}.env[0].valueFrom: Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`',
            id="valuefrom-none",
        ),
        pytest.param(
            _set(
                "containers.0.env",
                [
                    {
                        "name": "X",
                        "valueFrom": {
                            "configMapKeyRef": {"name": "c", "key": "k"},
                            "secretKeyRef": {"name": "s", "key": "k"},
                        },
                    }
                ],
            ),
            f'{C0}.env[0].valueFrom: Invalid value: "": may not have more than one field specified at a time',
            id="valuefrom-two",
        ),
        pytest.param(
            _set(
                "containers.0.env",
                [{"name": "X", "value": "v", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            ),
            f'{C0}.env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty',
            id="valuefrom-and-value",
        ),
        pytest.param(
            _set("containers.0.env", [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s"}}}]),
            f"{C0}.env[0].valueFrom.secretKeyRef.key: Required value",
            id="secretkeyref-key",
        ),
        pytest.param(
            _set("containers.0.envFrom", [{}]),
            f'{C0}.envFrom: Invalid value: "": must specify one of: `configMapRef` or `secretRef`',
            id="envfrom-none",
        ),
        pytest.param(
            _set("containers.0.resources", {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
            f'{C0}.resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1',
            id="requests-over-limits",
        ),
        pytest.param(
            _set("containers.0.resources", {"requests": {"memory": "-1Mi"}}),
            f'{C0}.resources.requests[memory]: Invalid value: "-1Mi": must be greater than or equal to 0',
            id="negative-quantity",
        ),
        pytest.param(
            _set("containers.0.resources", {"limits": {"cpu": "lots"}}),
            f'{C0}.resources.limits[cpu]: Invalid value: "lots": quantities must match the regular expression',
            id="bad-quantity",
        ),
        pytest.param(
            _set("containers.0.resources", {"limits": {"gpu": "1"}}),
            f'{C0}.resources.limits[gpu]: Invalid value: "gpu": must be a standard resource for containers',
            id="unknown-resource",
        ),
        pytest.param(
            _set("containers.0.resources", {"requests": {"example.com/dongle": "1"}}),
            f"{C0}.resources.limits: Required value: Limit must be set for non overcommitable resources",
            id="extended-needs-limit",
        ),
        pytest.param(
            _set("containers.0.livenessProbe", {"periodSeconds": 10}),
            f"{C0}.livenessProbe: Required value: must specify a handler type",
            id="probe-no-handler",
        ),
        pytest.param(
            _set("containers.0.readinessProbe", {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}),
            f"{C0}.readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
            id="probe-two-handlers",
        ),
        pytest.param(
            _set("containers.0.livenessProbe", {"exec": {"command": ["true"]}, "successThreshold": 2}),
            f"{C0}.livenessProbe.successThreshold: Invalid value: 2: must be 1",
            id="liveness-success",
        ),
        pytest.param(
            _set("containers.0.readinessProbe", {"exec": {"command": ["true"]}, "timeoutSeconds": -1}),
            f"{C0}.readinessProbe.timeoutSeconds: Invalid value: -1: must be greater than or equal to 0",
            id="probe-negative",
        ),
        pytest.param(
            _set("containers.0.readinessProbe", {"httpGet": {"path": "/", "port": 0, "scheme": "HTTP"}}),
            f"{C0}.readinessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
            id="httpget-port",
        ),
        pytest.param(
            _set("volumes", [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]),
            'spec.volumes[1].name: Duplicate value: "a"',
            id="volume-dup",
        ),
        pytest.param(
            _set("volumes", [{"name": "a", "emptyDir": {}, "hostPath": {"path": "/x"}}]),
            "spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type",
            id="volume-two-sources",
        ),
        pytest.param(
            _set("volumes", [{"name": "a"}]),
            "spec.volumes[0]: Required value: must specify a volume type",
            id="volume-no-source",
        ),
        pytest.param(
            _set("volumes", [{"name": "a", "configMap": {}}]),
            "spec.volumes[0].configMap.name: Required value",
            id="configmap-name",
        ),
        pytest.param(
            _set("containers.0.volumeMounts", [{"name": "missing", "mountPath": "/x"}]),
            f'{C0}.volumeMounts[0].name: Not found: "missing"',
            id="mount-unknown-volume",
        ),
        pytest.param(
            _set("containers.0.volumeMounts", [{"name": "missing"}]),
            f"{C0}.volumeMounts[0].mountPath: Required value",
            id="mount-path-required",
        ),
        pytest.param(
            _set("restartPolicy", "Sometimes"),
            'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
            id="restart-policy",
        ),
        pytest.param(
            _set("dnsPolicy", "Google"),
            'spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"',
            id="dns-policy",
        ),
        pytest.param(
            _set("dnsPolicy", "None"),
            "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None",
            id="dns-none-config",
        ),
        pytest.param(
            _set("nodeSelector", {"disk": "ssd!"}),
            'spec.nodeSelector: Invalid value: "ssd!": a valid label must be',
            id="node-selector",
        ),
        pytest.param(
            _set("tolerations", [{"key": "k", "operator": "Maybe"}]),
            'spec.tolerations[0].operator: Unsupported value: "Maybe": supported values: "Equal", "Exists"',
            id="toleration-op",
        ),
        pytest.param(
            _set("tolerations", [{"operator": "Equal", "value": "v"}]),
            'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty',
            id="toleration-empty-key",
        ),
        pytest.param(
            _set(
                "tolerations",
                [{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}],
            ),
            "spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
            id="toleration-seconds",
        ),
        pytest.param(
            _set("tolerations", [{"key": "k", "operator": "Exists", "effect": "Sometimes"}]),
            'spec.tolerations[0].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
            id="toleration-effect",
        ),
        pytest.param(
            _set(
                "affinity",
                {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}
                    }
                },
            ),
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term",
            id="affinity-terms",
        ),
        pytest.param(
            _set(
                "affinity",
                {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "In"}]}]
                        }
                    }
                },
            ),
            "nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            id="affinity-in-values",
        ),
        pytest.param(
            _set(
                "affinity",
                {
                    "podAntiAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [
                            {"labelSelector": {"matchLabels": {"a": "b"}}}
                        ]
                    }
                },
            ),
            "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty",
            id="anti-affinity-topology",
        ),
        pytest.param(
            _set(
                "affinity",
                {
                    "podAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {"weight": 0, "podAffinityTerm": {"topologyKey": "zone"}}
                        ]
                    }
                },
            ),
            "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100",
            id="affinity-weight",
        ),
        pytest.param(
            _set("activeDeadlineSeconds", 0),
            "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
            id="deadline",
        ),
        pytest.param(
            _set("serviceAccountName", "Robot"),
            'spec.serviceAccountName: Invalid value: "Robot": a lowercase RFC 1123 subdomain',
            id="sa-name",
        ),
    ],
)
def test_validate_pod_spec_messages(mutate: Callable[[dict[str, Any]], None], expected: str) -> None:
    spec = base_spec()
    mutate(spec)
    texts = [e.text() for e in validate_pod_spec(spec, "spec")]
    assert any(t.startswith(expected) or expected in t for t in texts), texts


def test_valid_spec_has_no_errors() -> None:
    spec = base_spec()
    spec["volumes"] = [{"name": "data", "emptyDir": {}}]
    spec["containers"][0].update(
        ports=[{"name": "http", "containerPort": 80, "protocol": "TCP"}],
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
        resources={"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        env=[{"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
    )
    assert validate_pod_spec(spec, "spec") == []


def test_template_paths_are_prefixed() -> None:
    template: dict[str, Any] = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}}
    default_pod_spec(template["spec"])
    texts = [e.text() for e in validate_pod_template(template, "spec.template")]
    assert "spec.template.spec.containers[0].image: Required value" in texts
