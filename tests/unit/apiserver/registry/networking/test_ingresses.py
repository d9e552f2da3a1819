"""Ingress strategy: upstream validation messages for rules/paths/backends, and the table row."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.networking.ingresses import IngressStrategy, load_balancer_string

S = IngressStrategy()
NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
SVC = {"service": {"name": "web", "port": {"number": 80}}}


def ingress(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "ing", "namespace": "default", "creationTimestamp": "2026-01-01T11:59:00Z"},
        "spec": spec,
    }
    if status is not None:
        obj["status"] = status
    return obj


def rule(path: dict[str, Any], host: str = "example.com") -> dict[str, Any]:
    return {"host": host, "http": {"paths": [path]}}


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        pytest.param({"defaultBackend": SVC}, [], id="default-backend-only"),
        pytest.param(
            {"rules": [rule({"path": "/", "pathType": "Prefix", "backend": SVC})]}, [], id="prefix-rule"
        ),
        pytest.param(
            {"rules": [rule({"path": "/a", "pathType": "Exact", "backend": SVC}, host="*.example.com")]},
            [],
            id="wildcard-host",
        ),
        pytest.param(
            {},
            ["spec: Invalid value: null: either `defaultBackend` or `rules` must be specified"],
            id="empty-spec",
        ),
        pytest.param(
            {"rules": [rule({"path": "/", "backend": SVC})]},
            ["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"],
            id="pathType-required",
        ),
        pytest.param(
            {"rules": [rule({"path": "/", "pathType": "Regex", "backend": SVC})]},
            [
                'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"'
            ],
            id="pathType-unsupported",
        ),
        pytest.param(
            {"rules": [rule({"path": "api", "pathType": "Prefix", "backend": SVC})]},
            ['spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path'],
            id="relative-path",
        ),
        pytest.param(
            {"rules": [rule({"path": "/a//b", "pathType": "Exact", "backend": SVC})]},
            ["spec.rules[0].http.paths[0].path: Invalid value: \"/a//b\": must not contain '//'"],
            id="double-slash",
        ),
        pytest.param(
            {"rules": [rule({"path": "/a/..", "pathType": "Prefix", "backend": SVC})]},
            ["spec.rules[0].http.paths[0].path: Invalid value: \"/a/..\": cannot end with '/..'"],
            id="dot-dot-suffix",
        ),
        pytest.param(
            {"rules": [rule({"path": "x", "pathType": "ImplementationSpecific", "backend": SVC})]},
            ['spec.rules[0].http.paths[0].path: Invalid value: "x": must be an absolute path'],
            id="impl-specific-relative",
        ),
        pytest.param(
            {"rules": [{"host": "example.com", "http": {"paths": []}}]},
            ["spec.rules[0].http.paths: Required value"],
            id="no-paths",
        ),
        pytest.param(
            {"rules": [rule({"path": "/", "pathType": "Prefix", "backend": SVC}, host="10.0.0.1")]},
            ['spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address'],
            id="ip-host",
        ),
        pytest.param(
            {
                "defaultBackend": {
                    "service": {"name": "web", "port": {"number": 80}},
                    "resource": {"kind": "Bucket", "name": "b"},
                }
            },
            ['spec.defaultBackend: Invalid value: "": cannot set both resource and service backends'],
            id="both-backends",
        ),
        pytest.param(
            {"defaultBackend": {}},
            ['spec.defaultBackend: Invalid value: "": resource or service backend is required'],
            id="no-backend",
        ),
        pytest.param(
            {"defaultBackend": {"service": {"name": "web", "port": {}}}},
            ["spec.defaultBackend: Required value: port name or number is required"],
            id="no-port",
        ),
        pytest.param(
            {"defaultBackend": {"service": {"name": "web", "port": {"name": "http", "number": 80}}}},
            ['spec.defaultBackend: Invalid value: "": cannot set both port name & port number'],
            id="port-name-and-number",
        ),
        pytest.param(
            {"defaultBackend": {"service": {"name": "web", "port": {"number": 70000}}}},
            [
                "spec.defaultBackend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive"
            ],
            id="port-range",
        ),
        pytest.param(
            {"defaultBackend": {"service": {"port": {"number": 80}}}},
            ["spec.defaultBackend.service.name: Required value"],
            id="service-name-required",
        ),
        pytest.param(
            {"defaultBackend": {"resource": {"kind": "Bucket"}}},
            ["spec.defaultBackend.resource.name: Required value"],
            id="resource-name-required",
        ),
        pytest.param(
            {"defaultBackend": SVC, "ingressClassName": "Nginx"},
            [
                'spec.ingressClassName: Invalid value: "Nginx": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                "'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ],
            id="class-name",
        ),
    ],
)
def test_validate(spec: dict[str, Any], want: list[str]) -> None:
    assert [e.text() for e in S.validate(ingress(spec))] == want


def test_info() -> None:
    assert S.info.short_names == ("ing",)
    assert S.status_subresource
    assert S.info.subresource("status") is not None


def test_status_update_validates_load_balancer() -> None:
    new = ingress({"defaultBackend": SVC}, {"loadBalancer": {"ingress": [{"ip": "not-an-ip"}]}})
    assert [e.field for e in S.validate_status_update(new, ingress({}))] == [
        "status.loadBalancer.ingress[0].ip"
    ]


@pytest.mark.parametrize(
    ("spec", "status", "want"),
    [
        pytest.param(
            {"defaultBackend": SVC}, None, ["ing", "<none>", "*", "", "80", "60s"], id="default-backend"
        ),
        pytest.param(
            {
                "ingressClassName": "nginx",
                "tls": [{"hosts": ["a.com"]}],
                "rules": [{"host": "a.com"}, {"host": "b.com"}],
            },
            {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}},
            ["ing", "nginx", "a.com,b.com", "10.0.0.1", "80, 443", "60s"],
            id="class-hosts-tls-address",
        ),
        pytest.param(
            {"rules": [{"host": f"h{i}.com"} for i in range(5)]},
            {"loadBalancer": {"ingress": [{"ip": "192.168.100.101"}, {"hostname": "lb.example.com"}]}},
            [
                "ing",
                "<none>",
                "h0.com,h1.com,h2.com + 2 more...",
                "192.168.100.101,lb.example.com",
                "80",
                "60s",
            ],
            id="more-hosts-and-full-address",
        ),
    ],
)
def test_row(spec: dict[str, Any], status: dict[str, Any] | None, want: list[Any]) -> None:
    assert [c.name for c in S.columns()] == ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    assert S.row(ingress(spec, status), NOW) == want


def test_load_balancer_string_truncates_when_not_wide() -> None:
    status = {"loadBalancer": {"ingress": [{"ip": "192.168.100.101"}, {"hostname": "lb.example.com"}]}}
    assert load_balancer_string(status) == "192.168.100.1..."
    assert load_balancer_string(status, wide=True) == "192.168.100.101,lb.example.com"
