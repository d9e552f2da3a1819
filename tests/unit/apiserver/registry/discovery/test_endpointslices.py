"""EndpointSlice strategy: defaults, validation per address type, immutability, table cells."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.discovery.endpointslices import EndpointSliceStrategy

S = EndpointSliceStrategy()
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def eps(**fields: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-abc", "namespace": "default", "creationTimestamp": "2025-12-31T23:59:30Z"},
        "addressType": "IPv4",
        **fields,
    }


def test_defaults_ports() -> None:
    obj = eps(ports=[{"port": 80}])
    S.defaults(obj)
    assert obj["ports"] == [{"port": 80, "protocol": "TCP", "name": ""}]


@pytest.mark.parametrize(
    ("obj", "want"),
    [
        pytest.param(
            eps(
                endpoints=[{"addresses": ["10.0.0.1"]}],
                ports=[{"name": "http", "port": 80, "protocol": "TCP"}],
            ),
            [],
            id="valid",
        ),
        pytest.param(eps(addressType="FQDN", endpoints=[{"addresses": ["db.example.com"]}]), [], id="fqdn"),
        pytest.param(
            {**eps(), "addressType": None},
            ["addressType: Required value"],
            id="address-type-required",
        ),
        pytest.param(
            eps(addressType="IPv5"),
            ['addressType: Unsupported value: "IPv5": supported values: "IPv4", "IPv6", "FQDN"'],
            id="address-type-unsupported",
        ),
        pytest.param(
            eps(endpoints=[{"addresses": ["fe80::1"]}]),
            ['endpoints[0].addresses[0]: Invalid value: "fe80::1": must be an IPv4 address'],
            id="family-mismatch",
        ),
        pytest.param(
            eps(endpoints=[{"addresses": []}]),
            ["endpoints[0].addresses: Required value: must contain at least 1 address"],
            id="no-addresses",
        ),
        pytest.param(
            eps(
                ports=[
                    {"name": "a", "port": 80, "protocol": "TCP"},
                    {"name": "a", "port": 81, "protocol": "TCP"},
                ]
            ),
            ['ports[1].name: Duplicate value: "a"'],
            id="duplicate-port-name",
        ),
        pytest.param(
            eps(ports=[{"name": "", "port": 0, "protocol": "TCP"}]),
            ["ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"],
            id="port-range",
        ),
    ],
)
def test_validate(obj: dict[str, Any], want: list[str]) -> None:
    assert [e.text() for e in S.validate(obj)] == want


def test_address_type_is_immutable() -> None:
    errs = S.validate_update(eps(addressType="IPv6"), eps())
    assert [e.text() for e in errs] == ['addressType: Invalid value: "IPv6": field is immutable']


@pytest.mark.parametrize(
    ("fields", "ports", "endpoints"),
    [
        pytest.param({}, "<unset>", "<unset>", id="empty"),
        pytest.param({"ports": [{"port": 80}, {"name": "dns"}, {}]}, "80,dns,*", "<unset>", id="port-forms"),
        pytest.param(
            {
                "ports": [{"port": p} for p in (1, 2, 3, 4, 5)],
                "endpoints": [
                    {"addresses": ["10.0.0.1", "10.0.0.2"]},
                    {"addresses": ["10.0.0.3", "10.0.0.4"]},
                ],
            },
            "1,2,3 + 2 more...",
            "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
            id="more",
        ),
    ],
)
def test_row(fields: dict[str, Any], ports: str, endpoints: str) -> None:
    assert [c.name for c in S.columns()] == ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    assert S.row(eps(**fields), NOW) == ["web-abc", "IPv4", ports, endpoints, "30s"]


def test_info() -> None:
    info = S.info
    assert (info.group, info.version, info.kind, info.plural, info.namespaced) == (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        True,
    )
    assert S.tracks_generation, "upstream bumps generation on any non-metadata change"
