"""Service: defaults, validation (ports, types, clusterIP, externalName), kept allocations, Table row.

Mirrors `SetDefaults_Service` (pkg/apis/core/v1/defaults.go), ValidateService/ValidateServiceUpdate
(pkg/apis/core/validation/validation.go), the IP-family defaulting and `patchAllocatedValues` of
`pkg/registry/core/service/storage/storage.go`, and `printService`. Allocating cluster IPs and node
ports is not done here (a separate allocator owns it); a clusterIP the user gives is validated.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, name_of
from skiff.api.resources import ALL_VERBS, SUB_VERBS, ResourceInfo, Subresource
from skiff.apiserver.registry.core.common import (
    IP_MSG,
    age_col,
    col,
    format_labels,
    is_ip,
    name_col,
    since,
    validate_ip,
)
from skiff.apiserver.registry.core.podspec import validate_port_num_or_name
from skiff.apiserver.registry.strategy import Column, Strategy

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
PROTOCOLS = ("SCTP", "TCP", "UDP")
NODE_PORT_RANGE = (30000, 32767)
DEFAULT_AFFINITY_TIMEOUT = 10800


def _needs_node_ports(svc_type: Any) -> bool:
    return svc_type in ("NodePort", "LoadBalancer")


def _family(ip: str) -> str:
    return "IPv6" if isinstance(ipaddress.ip_address(ip), ipaddress.IPv6Address) else "IPv4"


def default_service_spec(spec: dict[str, Any]) -> None:
    """`SetDefaults_Service` plus the REST layer's IP-family fields (single-stack IPv4 cluster)."""
    spec.setdefault("type", "ClusterIP")
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "ClientIP" and not spec.get("sessionAffinityConfig"):
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_AFFINITY_TIMEOUT}}
    for port in spec.get("ports") or []:
        if not isinstance(port, dict):
            continue
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    svc_type = spec["type"]
    if _needs_node_ports(svc_type) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if svc_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if svc_type == "ExternalName":
        return
    if spec.get("internalTrafficPolicy") is None:
        spec["internalTrafficPolicy"] = "Cluster"
    cip, cips = spec.get("clusterIP"), spec.get("clusterIPs")
    if cip and not cips:
        spec["clusterIPs"] = [cip]
    elif cips and not cip:
        spec["clusterIP"] = cips[0]
    if spec.get("ipFamilyPolicy") is None:
        headless_no_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
        spec["ipFamilyPolicy"] = "RequireDualStack" if headless_no_selector else "SingleStack"
    if not spec.get("ipFamilies"):
        ips = [ip for ip in spec.get("clusterIPs") or [] if is_ip(ip)]
        spec["ipFamilies"] = [_family(ip) for ip in ips] if ips else ["IPv4"]


def port_string(ports: Any) -> str:
    """`makePortString`: `80/TCP` or `80:30080/TCP`, comma-joined."""
    pieces = []
    for p in ports or []:
        if p.get("nodePort"):
            pieces.append(f"{p.get('port')}:{p['nodePort']}/{p.get('protocol') or 'TCP'}")
        else:
            pieces.append(f"{p.get('port')}/{p.get('protocol') or 'TCP'}")
    return ",".join(pieces)


def external_ip(svc: Obj) -> str:
    """`getServiceExternalIP` (wide): externalIPs, LB ingress IP/hostname, `<pending>` or `<none>`."""
    spec = svc.get("spec") or {}
    ext = list(spec.get("externalIPs") or [])
    svc_type = spec.get("type")
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(ext) if ext else "<none>"
    if svc_type == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        # `loadBalancerStatusStringer`: a sorted set of ingress IPs (or hostnames).
        lb = sorted({i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")})
        if ext:
            return ",".join(lb + ext)
        return ",".join(lb) if lb else "<pending>"
    if svc_type == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def _validate_port(
    path: str, port: Any, require_name: bool, names: set[str], svc_type: Any
) -> list[v.FieldError]:
    if not isinstance(port, dict):
        return [v.type_invalid(path, port, "must be an object")]
    errs: list[v.FieldError] = []
    name = port.get("name")
    if require_name and not name:
        errs.append(v.required(f"{path}.name"))
    elif name:
        errs += v.check(f"{path}.name", name, v.dns1123_label(name))
        if name in names:
            errs.append(v.duplicate(f"{path}.name", name))
        names.add(name)
    errs += v.check(f"{path}.port", port.get("port"), v.port_number(port.get("port")))
    proto = port.get("protocol")
    if not proto:
        errs.append(v.required(f"{path}.protocol"))
    elif proto not in PROTOCOLS:
        errs.append(v.not_supported(f"{path}.protocol", proto, PROTOCOLS))
    errs += validate_port_num_or_name(f"{path}.targetPort", port.get("targetPort"))
    node_port = port.get("nodePort")
    if node_port:
        if not _needs_node_ports(svc_type):
            errs.append(v.forbidden(f"{path}.nodePort", f"may not be used when `type` is '{svc_type}'"))
        elif not isinstance(node_port, int) or not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
            errs.append(
                v.invalid(
                    f"{path}.nodePort",
                    node_port,
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                )
            )
    app = port.get("appProtocol")
    if app is not None:
        errs += v.check(f"{path}.appProtocol", app, v.qualified_name(app))
    return errs


def validate_service_spec(spec: Any) -> list[v.FieldError]:
    """`ValidateService` spec rules."""
    if not isinstance(spec, dict):
        return [v.required("spec")]
    errs: list[v.FieldError] = []
    svc_type = spec.get("type")
    if svc_type not in SERVICE_TYPES:
        errs.append(v.not_supported("spec.type", svc_type, SERVICE_TYPES))
    cip = spec.get("clusterIP") or ""
    cips = list(spec.get("clusterIPs") or [])
    headless = cip == "None"
    ports = spec.get("ports") or []
    if not ports and not headless and svc_type != "ExternalName":
        errs.append(v.required("spec.ports"))
    names: set[str] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        errs += _validate_port(f"spec.ports[{i}]", port, len(ports) > 1, names, svc_type)
        if isinstance(port, dict):
            key = (port.get("port"), port.get("protocol"))
            if key in seen:
                errs.append(v.duplicate(f"spec.ports[{i}]", {"port": key[0], "protocol": key[1]}))
            seen.add(key)
    if svc_type == "ExternalName":
        if cips or (cip and cip != ""):
            errs.append(v.forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            errs.append(v.forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy"):
            errs.append(v.forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = str(spec.get("externalName") or "").removesuffix(".")
        if cname:
            errs += v.check("spec.externalName", cname, v.dns1123_subdomain(cname))
        else:
            errs.append(v.required("spec.externalName"))
    else:
        # `ValidateServiceClusterIPsRelatedFields`.
        if cip and not cips:
            errs.append(v.required("spec.clusterIPs"))
        elif cips and cip and cips[0] != cip:
            errs.append(v.invalid("spec.clusterIPs", cips, "first value must match `clusterIP`"))
        elif cips and not cip:
            errs.append(v.invalid("spec.clusterIPs", cips, "must be empty when `clusterIP` is not specified"))
        bad_ips = False
        for i, ip in enumerate(cips):
            if i == 0 and ip == "None":
                if len(cips) > 1:
                    bad_ips = True
                    errs.append(v.invalid("spec.clusterIPs", cips, "'None' must be the first and only value"))
                continue
            if not is_ip(ip):
                bad_ips = True
                errs.append(v.invalid(f"spec.clusterIPs[{i}]", ip, IP_MSG))
        if not bad_ips and len(cips) == 2 and _family(cips[0]) == _family(cips[1]):
            errs.append(
                v.invalid("spec.clusterIPs", cips, "may specify no more than one IP for each IP family")
            )
        if not bad_ips and not headless:
            for i, (ip, fam) in enumerate(zip(cips, spec.get("ipFamilies") or [], strict=False)):
                if fam in ("IPv4", "IPv6") and _family(ip) != fam:
                    errs.append(
                        v.invalid(
                            f"spec.clusterIPs[{i}]",
                            ip,
                            f"expected an {fam} value as indicated by `ipFamilies[{i}]`",
                        )
                    )
        if len(cips) > 2:
            errs.append(v.invalid("spec.clusterIPs", cips, "may only hold up to 2 values"))
        if headless and _needs_node_ports(svc_type):
            errs.append(
                v.invalid("spec.clusterIPs[0]", cip, f"may not be set to 'None' for {svc_type} services")
            )
    errs += v.labels("spec.selector", spec.get("selector"))
    affinity = spec.get("sessionAffinity")
    if affinity not in ("ClientIP", "None"):
        errs.append(v.not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    elif affinity == "ClientIP":
        timeout = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
        if timeout is not None and (not isinstance(timeout, int) or not 0 < timeout <= 86400):
            errs.append(
                v.invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    timeout,
                    "must be greater than 0 and less than 86400",
                )
            )
    elif spec.get("sessionAffinityConfig") is not None:
        errs.append(
            v.invalid(
                "spec.sessionAffinityConfig",
                spec["sessionAffinityConfig"],
                "must not be set when session affinity is None",
            )
        )
    for i, ip in enumerate(spec.get("externalIPs") or []):
        errs += validate_ip(f"spec.externalIPs[{i}]", ip)
    etp = spec.get("externalTrafficPolicy")
    if etp:
        if not _needs_node_ports(svc_type):
            errs.append(
                v.invalid(
                    "spec.externalTrafficPolicy",
                    etp,
                    "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
                )
            )
        elif etp not in ("Cluster", "Local"):
            errs.append(v.not_supported("spec.externalTrafficPolicy", etp, ("Cluster", "Local")))
    itp = spec.get("internalTrafficPolicy")
    if itp is not None and itp not in ("Cluster", "Local"):
        errs.append(v.not_supported("spec.internalTrafficPolicy", itp, ("Cluster", "Local")))
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in ("PreferDualStack", "RequireDualStack", "SingleStack"):
        errs.append(
            v.not_supported(
                "spec.ipFamilyPolicy", policy, ("PreferDualStack", "RequireDualStack", "SingleStack")
            )
        )
    families = spec.get("ipFamilies") or []
    for i, fam in enumerate(families):
        if fam not in ("IPv4", "IPv6"):
            errs.append(v.not_supported(f"spec.ipFamilies[{i}]", fam, ("IPv4", "IPv6")))
        elif fam in families[:i]:
            errs.append(v.duplicate(f"spec.ipFamilies[{i}]", fam))
    if policy == "SingleStack" and len(families) > 1:
        errs.append(
            v.invalid(
                "spec.ipFamilies",
                families,
                "when spec.ipFamilyPolicy is SingleStack, a maximum of one ipFamily is allowed",
            )
        )
    hc = spec.get("healthCheckNodePort")
    if hc and not (svc_type == "LoadBalancer" and etp == "Local"):
        errs.append(
            v.invalid(
                "spec.healthCheckNodePort",
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            )
        )
    return errs


class ServiceStrategy(Strategy):
    info = ResourceInfo(
        "",
        "v1",
        "Service",
        "services",
        "service",
        True,
        ("svc",),
        ("all",),
        ALL_VERBS,
        (
            Subresource(
                "proxy", "", "v1", "ServiceProxyOptions", ("create", "delete", "get", "patch", "update")
            ),
            Subresource("status", "", "v1", "Service", SUB_VERBS),
        ),
    )
    name_rule = staticmethod(v.dns1035_label)
    status_subresource = True
    tracks_generation = False

    def defaults(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            default_service_spec(spec)

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {"loadBalancer": {}}

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Keep the stored status, and carry allocated values (clusterIP(s), IP families, node ports)
        over to an update that omits them, as upstream's `patchAllocatedValues` does for `kubectl replace`."""
        super().prepare_for_update(new, old)
        ns, os_ = new.get("spec"), old.get("spec")
        if not isinstance(ns, dict) or not isinstance(os_, dict):
            return
        if ns.get("type", "ClusterIP") != "ExternalName" and os_.get("type") != "ExternalName":
            if not ns.get("clusterIP") and not ns.get("clusterIPs") and os_.get("clusterIP"):
                ns["clusterIP"] = os_["clusterIP"]
                if os_.get("clusterIPs"):
                    ns["clusterIPs"] = list(os_["clusterIPs"])
            for key in ("ipFamilies", "ipFamilyPolicy"):
                if ns.get(key) is None and os_.get(key) is not None:
                    ns[key] = os_[key]
        if _needs_node_ports(ns.get("type")) and _needs_node_ports(os_.get("type")):
            allocated = {
                (p.get("port"), p.get("protocol") or "TCP"): p.get("nodePort")
                for p in os_.get("ports") or []
                if isinstance(p, dict) and p.get("nodePort")
            }
            for p in ns.get("ports") or []:
                if isinstance(p, dict) and not p.get("nodePort"):
                    np_ = allocated.get((p.get("port"), p.get("protocol") or "TCP"))
                    if np_:
                        p["nodePort"] = np_
            if (
                not ns.get("healthCheckNodePort")
                and os_.get("healthCheckNodePort")
                and ns.get("externalTrafficPolicy") == "Local"
                and ns.get("type") == "LoadBalancer"
            ):
                ns["healthCheckNodePort"] = os_["healthCheckNodePort"]

    def validate(self, obj: Obj) -> list[v.FieldError]:
        return validate_service_spec(obj.get("spec"))

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        errs = self.validate(new)
        ns, os_ = new.get("spec") or {}, old.get("spec") or {}
        if "ExternalName" not in (ns.get("type"), os_.get("type")):
            new_ips, old_ips = ns.get("clusterIPs") or [], os_.get("clusterIPs") or []
            headless = new_ips == ["None"] and old_ips == ["None"]
            if not headless and old_ips:
                # `validateUpgradeDowngradeClusterIPs`: the primary IP never changes or goes away.
                if not new_ips:
                    errs.append(
                        v.invalid("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset")
                    )
                elif len(new_ips) == len(old_ips):
                    for i, ip in enumerate(old_ips):
                        if ip != new_ips[i]:
                            errs.append(
                                v.invalid(f"spec.clusterIPs[{i}]", new_ips, "may not change once set")
                            )
                elif new_ips[0] != old_ips[0]:
                    errs.append(v.invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
        return errs

    def columns(self) -> list[Column]:
        return [
            name_col(),
            col("Type", "V1ServiceSpec", "type"),
            col("Cluster-IP", "V1ServiceSpec", "clusterIP"),
            col("External-IP", "V1ServiceSpec", "externalIPs"),
            col("Port(s)", "V1ServiceSpec", "ports"),
            age_col(),
            col("Selector", "V1ServiceSpec", "selector", priority=1),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec = obj.get("spec") or {}
        cips = spec.get("clusterIPs") or []
        return [
            name_of(obj),
            spec.get("type") or "",
            cips[0] if cips else "<none>",
            external_ip(obj),
            port_string(spec.get("ports")) or "<none>",
            since((obj.get("metadata") or {}).get("creationTimestamp"), now),
            format_labels(spec.get("selector")),
        ]

    def fields(self, obj: Obj) -> dict[str, str]:
        spec = obj.get("spec") or {}
        return {"spec.clusterIP": spec.get("clusterIP") or "", "spec.type": spec.get("type") or ""}
