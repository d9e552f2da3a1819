"""Service strategy: defaults, validation messages, kept allocations on update, `printService` rows."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.core.services import ServiceStrategy

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
S = ServiceStrategy()


def svc(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "creationTimestamp": "2026-01-01T10:00:00Z"}, "spec": spec}


def defaulted(**spec: Any) -> dict[str, Any]:
    s = svc(**spec)
    S.defaults(s)
    return s


@pytest.mark.parametrize(
    ("spec", "key", "expected"),
    [
        pytest.param({"ports": [{"port": 80}]}, "type", "ClusterIP", id="type"),
        pytest.param({"ports": [{"port": 80}]}, "sessionAffinity", "None", id="affinity"),
        pytest.param(
            {"ports": [{"port": 80}]},
            "ports",
            [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            id="ports",
        ),
        pytest.param(
            {"ports": [{"port": 80, "targetPort": "http"}]},
            "ports",
            [{"port": 80, "protocol": "TCP", "targetPort": "http"}],
            id="named-target",
        ),
        pytest.param({"ports": [{"port": 80}]}, "ipFamilyPolicy", "SingleStack", id="family-policy"),
        pytest.param({"ports": [{"port": 80}]}, "ipFamilies", ["IPv4"], id="families"),
        pytest.param(
            {"ports": [{"port": 80}], "clusterIP": "fd00::10"}, "ipFamilies", ["IPv6"], id="families-from-ip"
        ),
        pytest.param(
            {"ports": [{"port": 80}], "clusterIP": "10.0.0.10"}, "clusterIPs", ["10.0.0.10"], id="clusterips"
        ),
        pytest.param({"clusterIP": "None"}, "ipFamilyPolicy", "RequireDualStack", id="headless-no-selector"),
        pytest.param({"ports": [{"port": 80}]}, "internalTrafficPolicy", "Cluster", id="itp"),
        pytest.param(
            {"type": "NodePort", "ports": [{"port": 80}]},
            "externalTrafficPolicy",
            "Cluster",
            id="etp-nodeport",
        ),
        pytest.param({"ports": [{"port": 80}]}, "externalTrafficPolicy", None, id="etp-clusterip-unset"),
        pytest.param(
            {"type": "LoadBalancer", "ports": [{"port": 80}]},
            "allocateLoadBalancerNodePorts",
            True,
            id="lb-nodeports",
        ),
        pytest.param(
            {"sessionAffinity": "ClientIP", "ports": [{"port": 80}]},
            "sessionAffinityConfig",
            {"clientIP": {"timeoutSeconds": 10800}},
            id="affinity-timeout",
        ),
        pytest.param(
            {"type": "ExternalName", "externalName": "example.com"},
            "ipFamilies",
            None,
            id="externalname-no-families",
        ),
    ],
)
def test_service_defaults(spec: dict[str, Any], key: str, expected: Any) -> None:
    assert defaulted(**spec)["spec"].get(key) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, "spec.ports: Required value", id="ports-required"),
        pytest.param(
            {"type": "Magic", "ports": [{"port": 80}]},
            'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
            id="type",
        ),
        pytest.param(
            {"ports": [{"port": 80}, {"port": 81}]}, "spec.ports[0].name: Required value", id="names-required"
        ),
        pytest.param(
            {"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]},
            'spec.ports[1].name: Duplicate value: "a"',
            id="names-unique",
        ),
        pytest.param(
            {"ports": [{"port": 0}]},
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            id="port-range",
        ),
        pytest.param(
            {"ports": [{"port": 80, "protocol": "ICMP"}]},
            'spec.ports[0].protocol: Unsupported value: "ICMP"',
            id="protocol",
        ),
        pytest.param(
            {"ports": [{"port": 80, "nodePort": 30080}]},
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
            id="nodeport-clusterip",
        ),
        pytest.param(
            {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]},
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
            id="nodeport-range",
        ),
        pytest.param(
            {"type": "ExternalName"}, "spec.externalName: Required value", id="externalname-required"
        ),
        pytest.param(
            {"type": "ExternalName", "externalName": "Bad_Host"},
            'spec.externalName: Invalid value: "Bad_Host"',
            id="externalname-invalid",
        ),
        pytest.param(
            {"ports": [{"port": 80}], "selector": {"app": "bad value"}},
            'spec.selector: Invalid value: "bad value"',
            id="selector",
        ),
        pytest.param(
            {"ports": [{"port": 80}], "clusterIP": "10.0.0.300"},
            'spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
            id="clusterip-invalid",
        ),
        pytest.param(
            {"ports": [{"port": 80}], "clusterIP": "10.0.0.1", "ipFamilies": ["IPv6"]},
            'spec.clusterIPs[0]: Invalid value: "10.0.0.1": expected an IPv6 value as indicated by `ipFamilies[0]`',
            id="family-mismatch",
        ),
        pytest.param(
            {"ports": [{"port": 80}], "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1", "10.0.0.2"]},
            'spec.clusterIPs: Invalid value: ["10.0.0.1","10.0.0.2"]: may specify no more than one IP for each IP family',
            id="two-v4",
        ),
        pytest.param(
            {"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]},
            "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services",
            id="headless-nodeport",
        ),
        pytest.param(
            {
                "ports": [{"port": 80}, {"port": 80, "name": "b"}],
            },
            "spec.ports[1]: Duplicate value",
            id="duplicate-port",
        ),
        pytest.param(
            {"ports": [{"port": 80}], "sessionAffinity": "Sticky"},
            'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"',
            id="affinity",
        ),
        pytest.param(
            {"ports": [{"port": 80}], "externalTrafficPolicy": "Local"},
            "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set when `type` is 'NodePort' or 'LoadBalancer'",
            id="etp-clusterip",
        ),
    ],
)
def test_service_validation(spec: dict[str, Any], expected: str) -> None:
    texts = [e.text() for e in S.validate(defaulted(**spec))]
    assert any(t.startswith(expected) for t in texts), texts


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"ports": [{"port": 80}]}, id="clusterip"),
        pytest.param({"clusterIP": "None", "selector": {"app": "x"}}, id="headless-without-ports"),
        pytest.param({"type": "ExternalName", "externalName": "db.example.com."}, id="externalname"),
        pytest.param({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}, id="nodeport"),
    ],
)
def test_valid_services(spec: dict[str, Any]) -> None:
    assert S.validate(defaulted(**spec)) == []


def test_update_keeps_allocations_and_forbids_ip_change() -> None:
    old = defaulted(type="NodePort", clusterIP="10.0.0.10", ports=[{"port": 80, "nodePort": 30080}])
    new = svc(type="NodePort", ports=[{"port": 80}])
    S.prepare_for_update(new, old)
    S.defaults(new)
    assert new["spec"]["clusterIP"] == "10.0.0.10" and new["spec"]["clusterIPs"] == ["10.0.0.10"]
    assert new["spec"]["ports"][0]["nodePort"] == 30080
    assert S.validate_update(new, old) == []
    changed = copy.deepcopy(new)
    changed["spec"]["clusterIP"] = "10.0.0.11"
    changed["spec"]["clusterIPs"] = ["10.0.0.11"]
    assert [e.text() for e in S.validate_update(changed, old)] == [
        'spec.clusterIPs[0]: Invalid value: ["10.0.0.11"]: may not change once set'
    ]


@pytest.mark.parametrize(
    ("spec", "status", "cells"),
    [
        pytest.param(
            {
                "type": "ClusterIP",
                "clusterIPs": ["10.0.0.1"],
                "ports": [{"port": 80, "protocol": "TCP"}],
                "selector": {"b": "2", "a": "1"},
            },
            {},
            ["ClusterIP", "10.0.0.1", "<none>", "80/TCP", "120m", "a=1,b=2"],
            id="clusterip",
        ),
        pytest.param(
            {
                "type": "NodePort",
                "clusterIPs": ["10.0.0.2"],
                "ports": [
                    {"port": 80, "nodePort": 30080, "protocol": "TCP"},
                    {"port": 53, "protocol": "UDP"},
                ],
            },
            {},
            ["NodePort", "10.0.0.2", "<none>", "80:30080/TCP,53/UDP", "120m", "<none>"],
            id="nodeport",
        ),
        pytest.param(
            {"type": "LoadBalancer", "clusterIPs": ["10.0.0.3"], "ports": [{"port": 443, "protocol": "TCP"}]},
            {},
            ["LoadBalancer", "10.0.0.3", "<pending>", "443/TCP", "120m", "<none>"],
            id="lb-pending",
        ),
        pytest.param(
            {
                "type": "LoadBalancer",
                "clusterIPs": ["10.0.0.3"],
                "ports": [{"port": 443, "protocol": "TCP"}],
                "externalIPs": ["5.6.7.8"],
            },
            {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb.example.com"}]}},
            ["LoadBalancer", "10.0.0.3", "1.2.3.4,lb.example.com,5.6.7.8", "443/TCP", "120m", "<none>"],
            id="lb-ingress",
        ),
        pytest.param(
            {"type": "ExternalName", "externalName": "db.example.com"},
            {},
            ["ExternalName", "<none>", "db.example.com", "<none>", "120m", "<none>"],
            id="externalname",
        ),
        pytest.param(
            {"type": "ClusterIP", "clusterIPs": ["None"], "externalIPs": ["9.9.9.9"]},
            {},
            ["ClusterIP", "None", "9.9.9.9", "<none>", "120m", "<none>"],
            id="headless-external",
        ),
    ],
)
def test_service_row(spec: dict[str, Any], status: dict[str, Any], cells: list[str]) -> None:
    obj = svc(**spec)
    obj["status"] = status
    row = S.row(obj, NOW)
    assert row == ["web", *cells]
    assert len(row) == len(S.columns())


def test_service_columns() -> None:
    assert [(c.name, c.priority) for c in S.columns()] == [
        ("Name", 0),
        ("Type", 0),
        ("Cluster-IP", 0),
        ("External-IP", 0),
        ("Port(s)", 0),
        ("Age", 0),
        ("Selector", 1),
    ]


def test_service_name_rule_is_dns1035() -> None:
    assert S.name_rule("1abc") != [] and S.name_rule("abc-1") == []
