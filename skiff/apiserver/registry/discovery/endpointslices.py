"""discovery.k8s.io/v1 EndpointSlice: address type (immutable), endpoints, ports; its table columns.

Mirrors ValidateEndpointSlice(Create/Update) in `pkg/apis/discovery/validation`, SetDefaults_EndpointPort
(TCP, empty name) and `printEndpointSlice` (AddressType, Ports, Endpoints).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, name_of
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.custom import TOO_MANY
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column, Strategy

ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
_PROTOCOLS = ("TCP", "UDP", "SCTP")
MAX_ENDPOINTS = 1000
MAX_PORTS = 100
MAX_ADDRESSES = 100
MAX_TOPOLOGY = 16  # deprecatedTopology entries (upstream maxTopologyLabels)


def validate_address(field: str, address: Any, address_type: str) -> list[v.FieldError]:
    if not isinstance(address, str):
        return [v.type_invalid(field, address, "must be a string")]
    if address_type == "FQDN":
        return v.check(field, address, v.dns1123_subdomain(address))
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return [v.invalid(field, address, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    if address_type == "IPv4" and ip.version != 4:
        return [v.invalid(field, address, "must be an IPv4 address")]
    if address_type == "IPv6" and ip.version != 6:
        return [v.invalid(field, address, "must be an IPv6 address")]
    return []


def validate_endpoint_slice(obj: Obj) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    address_type = obj.get("addressType")
    if not address_type:
        errs.append(v.required("addressType"))
    elif address_type not in ADDRESS_TYPES:
        errs.append(v.not_supported("addressType", address_type, ADDRESS_TYPES))
    endpoints = obj.get("endpoints") or []
    if len(endpoints) > MAX_ENDPOINTS:
        errs.append(
            v.FieldError(TOO_MANY, "endpoints", f"must have at most {MAX_ENDPOINTS} items", len(endpoints))
        )
    for i, ep in enumerate(endpoints):
        f = f"endpoints[{i}]"
        addresses = ep.get("addresses") or []
        if not addresses:
            errs.append(v.required(f"{f}.addresses", "must contain at least 1 address"))
        elif len(addresses) > MAX_ADDRESSES:
            errs.append(
                v.FieldError(
                    TOO_MANY,
                    f"{f}.addresses",
                    f"must have at most {MAX_ADDRESSES} items",
                    len(addresses),
                )
            )
        if address_type in ADDRESS_TYPES:
            for j, addr in enumerate(addresses):
                errs += validate_address(f"{f}.addresses[{j}]", addr, str(address_type))
        hostname = ep.get("hostname")
        if hostname is not None:
            errs += v.check(f"{f}.hostname", hostname, v.dns1123_label(hostname))
        node = ep.get("nodeName")
        if node is not None:
            errs += v.check(f"{f}.nodeName", node, v.dns1123_subdomain(node))
        topo = ep.get("deprecatedTopology") or {}
        if len(topo) > MAX_TOPOLOGY:
            errs.append(
                v.FieldError(
                    TOO_MANY,
                    f"{f}.deprecatedTopology",
                    f"must have at most {MAX_TOPOLOGY} items",
                    len(topo),
                )
            )
        errs += v.labels(f"{f}.deprecatedTopology", topo or None)
        target = ep.get("targetRef")
        if target is not None and not isinstance(target, dict):
            errs.append(v.type_invalid(f"{f}.targetRef", target, "must be an object reference"))
    ports = obj.get("ports") or []
    if len(ports) > MAX_PORTS:
        errs.append(v.FieldError(TOO_MANY, "ports", f"must have at most {MAX_PORTS} items", len(ports)))
    seen: set[str] = set()
    for i, port in enumerate(ports):
        f = f"ports[{i}]"
        name = port.get("name") or ""
        if name:
            errs += v.check(f"{f}.name", name, v.dns1123_label(name))
        if name in seen:
            errs.append(v.duplicate(f"{f}.name", name))
        seen.add(name)
        proto = port.get("protocol")
        if proto is None:
            errs.append(v.required(f"{f}.protocol"))
        elif proto not in _PROTOCOLS:
            errs.append(v.not_supported(f"{f}.protocol", proto, _PROTOCOLS))
        number = port.get("port")
        if number is not None:
            errs += v.check(f"{f}.port", number, v.port_number(number))
        app = port.get("appProtocol")
        if app:
            errs += v.check(f"{f}.appProtocol", app, v.qualified_name(app))
    return errs


def _list_with_more(items: list[str], more: bool, count: int, limit: int) -> str:
    text = ",".join(items)
    if more:
        return f"{text} + {count - limit} more..."
    return text or "<unset>"


def format_ports(ports: list[Obj]) -> str:
    shown: list[str] = []
    more = False
    for port in ports:
        if len(shown) < 3:
            if port.get("port") is not None:
                shown.append(str(port["port"]))
            elif port.get("name") is not None:
                shown.append(str(port["name"]))
            else:
                shown.append("*")
        else:
            more = True
    return _list_with_more(shown, more, len(ports), 3)


def format_endpoints(endpoints: list[Obj]) -> str:
    shown: list[str] = []
    more = False
    count = 0
    for ep in endpoints:
        for addr in ep.get("addresses") or []:
            if len(shown) < 3:
                shown.append(str(addr))
            else:
                more = True
            count += 1
    return _list_with_more(shown, more, count, 3)


class EndpointSliceStrategy(Strategy):
    info = ResourceInfo("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", True)
    # No spec field, but upstream bumps generation on any non-metadata change, which is what the
    # generic store compares when tracks_generation is set.
    tracks_generation = True

    def defaults(self, obj: Obj) -> None:
        for port in obj.get("ports") or []:
            if isinstance(port, dict):
                if port.get("protocol") is None:
                    port["protocol"] = "TCP"
                if port.get("name") is None:
                    port["name"] = ""

    def validate(self, obj: Obj) -> list[v.FieldError]:
        return validate_endpoint_slice(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        errs = self.validate(new)
        if new.get("addressType") != old.get("addressType"):
            errs.append(v.invalid("addressType", new.get("addressType"), "field is immutable"))
        return errs

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column(
                "AddressType",
                description="addressType specifies the type of address carried by this EndpointSlice.",
            ),
            Column(
                "Ports",
                description="ports specifies the list of network ports exposed by each endpoint in this slice.",
            ),
            Column("Endpoints", description="endpoints is a list of unique endpoints in this slice."),
            AGE_COLUMN,
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return [
            name_of(obj),
            obj.get("addressType", ""),
            format_ports(obj.get("ports") or []),
            format_endpoints(obj.get("endpoints") or []),
            age(obj, now),
        ]
