"""networking.k8s.io/v1 NetworkPolicy: peers, ports, policyTypes; the Pod-Selector column.

Mirrors ValidateNetworkPolicySpec / ValidateNetworkPolicyPeer / ValidateNetworkPolicyPort / ValidateIPBlock
in `pkg/apis/networking/validation`, SetDefaults_NetworkPolicy (policyTypes, TCP) and `printNetworkPolicy`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, name_of
from skiff.api.resources import ResourceInfo
from skiff.api.selectors import SelectorError, selector_to_string
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column, Strategy

_PROTOCOLS = ("TCP", "UDP", "SCTP")
_POLICY_TYPES = ("Ingress", "Egress")
_CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


validate_label_selector = v.label_selector  # one implementation, in skiff.api.validation


def format_label_selector(sel: Any) -> str:
    """metav1.FormatLabelSelector: the selector string, `<none>` when empty, `<error>` when invalid."""
    try:
        text = selector_to_string(sel or {})
    except (SelectorError, KeyError, TypeError):
        return "<error>"
    return text or "<none>"


def _parse_cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def validate_ip_block(field: str, block: Obj) -> list[v.FieldError]:
    cidr = block.get("cidr") or ""
    if not cidr:
        return [v.required(f"{field}.cidr")]
    net = _parse_cidr(cidr)
    if net is None or "/" not in cidr:
        return [v.invalid(f"{field}.cidr", cidr, _CIDR_MSG)]
    errs: list[v.FieldError] = []
    for i, exc in enumerate(block.get("except") or []):
        f = f"{field}.except[{i}]"
        sub = _parse_cidr(exc)
        if sub is None or "/" not in exc:
            errs.append(v.invalid(f, exc, _CIDR_MSG))
            continue
        if sub.version != net.version or not sub.subnet_of(net) or sub.prefixlen <= net.prefixlen:  # type: ignore[arg-type]
            errs.append(v.invalid(f, exc, "must be a strict subset of `cidr`"))
    return errs


def validate_peer(field: str, peer: Obj) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    count = 0
    if peer.get("podSelector") is not None:
        count += 1
        errs += validate_label_selector(f"{field}.podSelector", peer["podSelector"])
    if peer.get("namespaceSelector") is not None:
        count += 1
        errs += validate_label_selector(f"{field}.namespaceSelector", peer["namespaceSelector"])
    if peer.get("ipBlock") is not None:
        count += 1
        errs += validate_ip_block(f"{field}.ipBlock", peer["ipBlock"])
    if count == 0:
        errs.append(v.required(field, "must specify a peer"))
    elif count > 1 and peer.get("ipBlock") is not None:
        errs.append(v.forbidden(field, "may not specify both ipBlock and another peer"))
    return errs


def validate_port(field: str, port: Obj) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    proto = port.get("protocol")
    if proto is not None and proto not in _PROTOCOLS:
        errs.append(v.not_supported(f"{field}.protocol", proto, _PROTOCOLS))
    number = port.get("port")
    end = port.get("endPort")
    if number is None:
        if end is not None:
            errs.append(
                v.invalid(f"{field}.endPort", end, "may not be specified when `port` is not specified")
            )
    elif isinstance(number, int) and not isinstance(number, bool):
        errs += v.check(f"{field}.port", number, v.port_number(number))
        if end is not None:
            if isinstance(end, int) and end < number:
                errs.append(v.invalid(f"{field}.endPort", number, "must be greater than or equal to `port`"))
            errs += v.check(f"{field}.endPort", end, v.port_number(end))
    else:
        if end is not None:
            errs.append(v.invalid(f"{field}.endPort", end, "may not be specified when `port` is non-numeric"))
        errs += v.check(f"{field}.port", number, v.port_name(str(number)))
    return errs


def validate_network_policy_spec(spec: Obj) -> list[v.FieldError]:
    errs = validate_label_selector("spec.podSelector", spec.get("podSelector"))
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            rf = f"spec.{direction}[{i}]"
            for j, port in enumerate(rule.get("ports") or []):
                errs += validate_port(f"{rf}.ports[{j}]", port or {})
            for j, peer in enumerate(rule.get(peers_key) or []):
                errs += validate_peer(f"{rf}.{peers_key}[{j}]", peer or {})
    types = spec.get("policyTypes") or []
    for i, t in enumerate(types):
        if t not in _POLICY_TYPES:
            errs.append(v.not_supported(f"spec.policyTypes[{i}]", t, _POLICY_TYPES))
    if len(types) > 2:
        errs.append(v.forbidden("spec.policyTypes", "may not specify more than two policyTypes"))
    return errs


class NetworkPolicyStrategy(Strategy):
    info = ResourceInfo(
        "networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", True, ("netpol",)
    )

    def defaults(self, obj: Obj) -> None:
        """SetDefaults_NetworkPolicy: ports default to TCP; policyTypes from the rules present."""
        spec = obj.setdefault("spec", {})
        for direction in ("ingress", "egress"):
            for rule in spec.get(direction) or []:
                for port in rule.get("ports") or []:
                    if isinstance(port, dict) and port.get("protocol") is None:
                        port["protocol"] = "TCP"
        if not spec.get("policyTypes"):
            types = ["Ingress"]
            if spec.get("egress"):
                types.append("Egress")
            spec["policyTypes"] = types

    def validate(self, obj: Obj) -> list[v.FieldError]:
        return validate_network_policy_spec(obj.get("spec") or {})

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column(
                "Pod-Selector",
                description="podSelector selects the pods to which this NetworkPolicy object applies.",
            ),
            AGE_COLUMN,
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return [
            name_of(obj),
            format_label_selector((obj.get("spec") or {}).get("podSelector")),
            age(obj, now),
        ]
