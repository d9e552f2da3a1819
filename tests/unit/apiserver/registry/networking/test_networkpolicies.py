"""NetworkPolicy strategy: defaults, peers/ports/policyTypes validation, Pod-Selector column."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.networking.networkpolicies import NetworkPolicyStrategy, validate_label_selector

S = NetworkPolicyStrategy()
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def policy(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "np", "namespace": "default", "creationTimestamp": "2025-12-31T23:59:00Z"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("spec", "types"),
    [
        pytest.param({"podSelector": {}}, ["Ingress"], id="ingress-only-by-default"),
        pytest.param(
            {"podSelector": {}, "egress": [{}]}, ["Ingress", "Egress"], id="egress-rules-add-egress"
        ),
        pytest.param({"podSelector": {}, "policyTypes": ["Egress"]}, ["Egress"], id="explicit-kept"),
    ],
)
def test_default_policy_types(spec: dict[str, Any], types: list[str]) -> None:
    obj = policy(spec)
    S.defaults(obj)
    assert obj["spec"]["policyTypes"] == types


def test_default_port_protocol() -> None:
    obj = policy({"podSelector": {}, "ingress": [{"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}]})
    S.defaults(obj)
    assert [p["protocol"] for p in obj["spec"]["ingress"][0]["ports"]] == ["TCP", "UDP"]


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        pytest.param(
            {
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [
                    {
                        "from": [
                            {"podSelector": {}},
                            {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
                        ],
                        "ports": [{"port": 80, "endPort": 90}, {"port": "http"}],
                    }
                ],
                "egress": [{"to": [{"namespaceSelector": {}}]}],
                "policyTypes": ["Ingress", "Egress"],
            },
            [],
            id="valid",
        ),
        pytest.param(
            {"podSelector": {}, "ingress": [{"from": [{}]}]},
            ["spec.ingress[0].from[0]: Required value: must specify a peer"],
            id="empty-peer",
        ),
        pytest.param(
            {"podSelector": {}, "egress": [{"to": [{"podSelector": {}, "ipBlock": {"cidr": "10.0.0.0/8"}}]}]},
            ["spec.egress[0].to[0]: Forbidden: may not specify both ipBlock and another peer"],
            id="ipblock-and-selector",
        ),
        pytest.param(
            {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0"}}]}]},
            [
                'spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'
            ],
            id="bad-cidr",
        ),
        pytest.param(
            {
                "podSelector": {},
                "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["192.168.0.0/24"]}}]}],
            },
            [
                'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "192.168.0.0/24": must be a strict subset of `cidr`'
            ],
            id="except-outside",
        ),
        pytest.param(
            {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "protocol": "ICMP"}]}]},
            [
                'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"'
            ],
            id="protocol",
        ),
        pytest.param(
            {"podSelector": {}, "ingress": [{"ports": [{"port": 90, "endPort": 80}]}]},
            ["spec.ingress[0].ports[0].endPort: Invalid value: 90: must be greater than or equal to `port`"],
            id="endPort-below-port",
        ),
        pytest.param(
            {"podSelector": {}, "ingress": [{"ports": [{"port": "http", "endPort": 90}]}]},
            [
                "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric"
            ],
            id="endPort-with-named-port",
        ),
        pytest.param(
            {"podSelector": {}, "ingress": [{"ports": [{"endPort": 90}]}]},
            [
                "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is not specified"
            ],
            id="endPort-without-port",
        ),
        pytest.param(
            {"podSelector": {}, "policyTypes": ["Ingress", "Sideways"]},
            ['spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"'],
            id="policy-type",
        ),
        pytest.param(
            {"podSelector": {}, "policyTypes": ["Ingress", "Egress", "Ingress"]},
            ["spec.policyTypes: Forbidden: may not specify more than two policyTypes"],
            id="too-many-policy-types",
        ),
    ],
)
def test_validate(spec: dict[str, Any], want: list[str]) -> None:
    assert [e.text() for e in S.validate(policy(spec))] == want


@pytest.mark.parametrize(
    ("sel", "want"),
    [
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            [
                "sel.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
            ],
            id="in-needs-values",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            [
                "sel.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            ],
            id="exists-forbids-values",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "Near"}]},
            ['sel.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator'],
            id="bad-operator",
        ),
    ],
)
def test_label_selector_validation(sel: dict[str, Any], want: list[str]) -> None:
    assert [e.text() for e in validate_label_selector("sel", sel)] == want


@pytest.mark.parametrize(
    ("selector", "cell"),
    [
        pytest.param({}, "<none>", id="empty"),
        pytest.param({"matchLabels": {"app": "web", "tier": "fe"}}, "app=web,tier=fe", id="labels"),
        pytest.param(
            {"matchExpressions": [{"key": "env", "operator": "In", "values": ["b", "a"]}]},
            "env in (a,b)",
            id="expression",
        ),
    ],
)
def test_row(selector: dict[str, Any], cell: str) -> None:
    assert [c.name for c in S.columns()] == ["Name", "Pod-Selector", "Age"]
    assert S.row(policy({"podSelector": selector}), NOW) == ["np", cell, "60s"]


def test_info() -> None:
    info = S.info
    assert (info.group, info.plural, info.short_names, info.namespaced) == (
        "networking.k8s.io",
        "networkpolicies",
        ("netpol",),
        True,
    )
    assert S.tracks_generation
