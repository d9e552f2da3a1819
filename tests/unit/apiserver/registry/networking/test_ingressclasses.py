"""IngressClass strategy: controller rules (immutable), parameters scope, row."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.networking.ingressclasses import IngressClassStrategy

S = IngressClassStrategy()
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def klass(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "nginx", "creationTimestamp": "2025-12-31T23:00:00Z"}, "spec": spec}


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        pytest.param({"controller": "k8s.io/ingress-nginx"}, [], id="valid"),
        pytest.param({}, ["spec.controller: Required value"], id="controller-required"),
        pytest.param(
            {"controller": "nginx"},
            [
                'spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")'
            ],
            id="controller-needs-domain",
        ),
        pytest.param(
            {"controller": "k8s.io/x", "parameters": {"kind": "Cfg", "name": "c", "scope": "Namespace"}},
            ["spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'"],
            id="namespace-scope-needs-namespace",
        ),
        pytest.param(
            {"controller": "k8s.io/x", "parameters": {"kind": "Cfg", "name": "c", "scope": "Galaxy"}},
            ['spec.parameters.scope: Unsupported value: "Galaxy": supported values: "Cluster", "Namespace"'],
            id="scope-unsupported",
        ),
        pytest.param(
            {"controller": "k8s.io/x", "parameters": {"name": "c", "scope": "Cluster"}},
            ["spec.parameters.kind: Required value"],
            id="kind-required",
        ),
    ],
)
def test_validate(spec: dict[str, Any], want: list[str]) -> None:
    obj = klass(spec)
    S.defaults(obj)
    assert [e.text() for e in S.validate(obj)] == want


def test_defaults_parameters_scope_to_cluster() -> None:
    obj = klass({"controller": "k8s.io/x", "parameters": {"kind": "Cfg", "name": "c"}})
    S.defaults(obj)
    assert obj["spec"]["parameters"]["scope"] == "Cluster"


def test_controller_is_immutable() -> None:
    old, new = klass({"controller": "k8s.io/a"}), klass({"controller": "k8s.io/b"})
    assert [e.text() for e in S.validate_update(new, old)] == [
        'spec.controller: Invalid value: "k8s.io/b": field is immutable'
    ]


@pytest.mark.parametrize(
    ("params", "cell"),
    [
        pytest.param(None, "<none>", id="none"),
        pytest.param({"kind": "Cfg", "name": "c"}, "Cfg/c", id="core-kind"),
        pytest.param(
            {"apiGroup": "k8s.example.com", "kind": "Cfg", "name": "c"}, "Cfg.k8s.example.com/c", id="grouped"
        ),
    ],
)
def test_row(params: dict[str, Any] | None, cell: str) -> None:
    spec: dict[str, Any] = {"controller": "k8s.io/x"}
    if params:
        spec["parameters"] = params
    assert S.row(klass(spec), NOW) == ["nginx", "k8s.io/x", cell, "60m"]
