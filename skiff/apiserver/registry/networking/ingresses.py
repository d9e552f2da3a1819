"""networking.k8s.io/v1 Ingress: rules, paths and backends; the Class/Hosts/Address/Ports columns.

Validation mirrors `pkg/apis/networking/validation/validation.go` (ValidateIngressSpec,
validateHTTPIngressRuleValue, validateIngressBackend); printing mirrors `printIngress` in
`pkg/printers/internalversion/printers.go`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, name_of
from skiff.api.resources import ResourceInfo, Subresource
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column, Strategy

_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")
_LB_WIDTH = 16


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def wildcard_dns1123_subdomain(value: str) -> list[str]:
    """Upstream IsWildcardDNS1123Subdomain: `*.` followed by a DNS subdomain."""
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not value.startswith("*.") or v.dns1123_subdomain(value[2:]):
        errs.append(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must "
            "consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character "
            "(e.g. '*.example.com', regex used for validation is "
            "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return errs


def validate_host(field: str, host: str) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    if is_ip(host):
        errs.append(v.invalid(field, host, "must be a DNS name, not an IP address"))
    if "*" in host:
        errs += v.check(field, host, wildcard_dns1123_subdomain(host))
    else:
        errs += v.check(field, host, v.dns1123_subdomain(host))
    return errs


def validate_backend(field: str, backend: Any) -> list[v.FieldError]:
    """One of `service` (name + port name xor number) or `resource` (a typed local object reference)."""
    if not isinstance(backend, dict):
        return [v.invalid(field, "", "resource or service backend is required")]
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        return [v.invalid(field, "", "cannot set both resource and service backends")]
    errs: list[v.FieldError] = []
    if resource is not None:
        rf = f"{field}.resource"
        if not resource.get("kind"):
            errs.append(v.required(f"{rf}.kind"))
        if not resource.get("name"):
            errs.append(v.required(f"{rf}.name"))
        group = resource.get("apiGroup")
        if group is not None and group:
            errs += v.check(f"{rf}.apiGroup", group, v.dns1123_subdomain(group))
        return errs
    if service is None:
        return [v.invalid(field, "", "resource or service backend is required")]
    name = service.get("name") or ""
    if not name:
        errs.append(v.required(f"{field}.service.name"))
    else:
        errs += v.check(f"{field}.service.name", name, v.dns1035_label(name))
    port = service.get("port") or {}
    port_name, port_number = port.get("name") or "", port.get("number") or 0
    if port_name and port_number:
        errs.append(v.invalid(field, "", "cannot set both port name & port number"))
    elif port_name:
        errs += v.check(f"{field}.service.port.name", port_name, v.port_name(port_name))
    elif port_number:
        errs += v.check(f"{field}.service.port.number", port_number, v.port_number(port_number))
    else:
        errs.append(v.required(field, "port name or number is required"))
    return errs


def validate_http_path(field: str, path: Obj) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    p = path.get("path") or ""
    ptype = path.get("pathType")
    if not ptype:
        errs.append(v.required(f"{field}.pathType", "pathType must be specified"))
    elif ptype in ("Exact", "Prefix"):
        if not p.startswith("/"):
            errs.append(v.invalid(f"{field}.path", p, "must be an absolute path"))
        if p:
            for seq in _INVALID_PATH_SEQUENCES:
                if seq in p:
                    errs.append(v.invalid(f"{field}.path", p, f"must not contain '{seq}'"))
            for suffix in _INVALID_PATH_SUFFIXES:
                if p.endswith(suffix):
                    errs.append(v.invalid(f"{field}.path", p, f"cannot end with '{suffix}'"))
    elif ptype == "ImplementationSpecific":
        if p and not p.startswith("/"):
            errs.append(v.invalid(f"{field}.path", p, "must be an absolute path"))
    else:
        errs.append(v.not_supported(f"{field}.pathType", ptype, _PATH_TYPES))
    errs += validate_backend(f"{field}.backend", path.get("backend"))
    return errs


def validate_ingress_spec(spec: Obj) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    rules = spec.get("rules") or []
    if not rules and spec.get("defaultBackend") is None:
        errs.append(v.invalid("spec", None, "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        errs += validate_backend("spec.defaultBackend", spec["defaultBackend"])
    for i, rule in enumerate(rules):
        rf = f"spec.rules[{i}]"
        host = rule.get("host") or ""
        if host:
            errs += validate_host(f"{rf}.host", host)
        http = rule.get("http")
        if http is not None:
            paths = http.get("paths") or []
            if not paths:
                errs.append(v.required(f"{rf}.http.paths"))
            for j, path in enumerate(paths):
                errs += validate_http_path(f"{rf}.http.paths[{j}]", path or {})
    for i, tls in enumerate(spec.get("tls") or []):
        for j, host in enumerate(tls.get("hosts") or []):
            field = f"spec.tls[{i}].hosts[{j}]"
            if "*" in host:
                errs += v.check(field, host, wildcard_dns1123_subdomain(host))
            else:
                errs += v.check(field, host, v.dns1123_subdomain(host))
        secret = tls.get("secretName")
        if secret:
            errs += v.check(f"spec.tls[{i}].secretName", secret, v.dns1123_subdomain(secret))
    cls = spec.get("ingressClassName")
    if cls is not None:
        errs += v.check("spec.ingressClassName", cls, v.dns1123_subdomain(cls))
    return errs


def validate_load_balancer_ingress(field: str, status: Any) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    for i, ing in enumerate(((status or {}).get("loadBalancer") or {}).get("ingress") or []):
        f = f"{field}.loadBalancer.ingress[{i}]"
        ip, hostname = ing.get("ip"), ing.get("hostname")
        if ip and not is_ip(ip):
            errs.append(v.invalid(f"{f}.ip", ip, "must be a valid IP address"))
        if hostname:
            errs += v.check(f"{f}.hostname", hostname, v.dns1123_subdomain(hostname))
            if is_ip(hostname):
                errs.append(v.invalid(f"{f}.hostname", hostname, "must be a DNS name, not an IP address"))
    return errs


def load_balancer_string(status: Any, wide: bool = False) -> str:
    """Upstream ingressLoadBalancerStatusStringer: IPs/hostnames joined by ',' (16 chars unless wide)."""
    result = []
    for ing in ((status or {}).get("loadBalancer") or {}).get("ingress") or []:
        if ing.get("ip"):
            result.append(ing["ip"])
        elif ing.get("hostname"):
            result.append(ing["hostname"])
    text = ",".join(result)
    if not wide and len(text) > _LB_WIDTH:
        text = text[: _LB_WIDTH - 3] + "..."
    return text


def format_hosts(rules: list[Obj]) -> str:
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
        if not more and rule.get("host"):
            hosts.append(rule["host"])
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - 3} more..." if more else text


class IngressStrategy(Strategy):
    info = ResourceInfo(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        "ingress",
        True,
        ("ing",),
        subresources=(Subresource("status", "networking.k8s.io", "v1", "Ingress"),),
    )
    status_subresource = True

    def validate(self, obj: Obj) -> list[v.FieldError]:
        return validate_ingress_spec(obj.get("spec") or {})

    def validate_status_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        return validate_load_balancer_ingress("status", new.get("status"))

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column(
                "Class",
                description="The name of the IngressClass resource that should be used for additional configuration",
            ),
            Column(
                "Hosts",
                description="Hosts that incoming requests are matched against before the ingress rule",
            ),
            Column(
                "Address", description="Address is a list containing ingress points for the load-balancer"
            ),
            Column("Ports", description="Ports of TLS configurations that open"),
            AGE_COLUMN,
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec = obj.get("spec") or {}
        cls = spec.get("ingressClassName")
        return [
            name_of(obj),
            cls if cls is not None else "<none>",
            format_hosts(spec.get("rules") or []),
            load_balancer_string(obj.get("status"), wide=True),  # the server always prints wide
            "80, 443" if spec.get("tls") else "80",
            age(obj, now),
        ]
