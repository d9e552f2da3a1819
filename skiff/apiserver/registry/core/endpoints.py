"""Endpoints: subset validation and the ENDPOINTS column (`formatEndpoints` in upstream printers.go).

Endpoints allow create-on-update, as upstream's endpoints strategy does (AllowCreateOnUpdate true).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, name_of
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.core.common import age_col, col, name_col, since, validate_ip
from skiff.apiserver.registry.strategy import Column, Strategy

PROTOCOLS = ("SCTP", "TCP", "UDP")


def _host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(ep: Obj, max_shown: int = 3) -> str:
    """Up to three `ip:port` pairs, then `+ N more...`; `<none>` when empty."""
    subsets = ep.get("subsets") or []
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    more = False
    for ss in subsets:
        addrs = ss.get("addresses") or []
        ports = ss.get("ports") or []
        if not ports:
            count += len(addrs)
            for a in addrs:
                if len(shown) == max_shown:
                    more = True
                    break
                shown.append(str(a.get("ip") or ""))
            continue
        for port in ports:
            count += len(addrs)
            for a in addrs:
                if len(shown) == max_shown:
                    more = True
                    break
                shown.append(_host_port(str(a.get("ip") or ""), port.get("port")))
    text = ",".join(shown)
    if more:
        return f"{text} + {count - max_shown} more..."
    return text or "<none>"


def validate_subsets(subsets: Any) -> list[v.FieldError]:
    """`validateEndpointSubsets`: valid addresses, named ports when several, port numbers, protocols."""
    errs: list[v.FieldError] = []
    for i, ss in enumerate(subsets or []):
        p = f"subsets[{i}]"
        for kind in ("addresses", "notReadyAddresses"):
            for j, addr in enumerate((ss or {}).get(kind) or []):
                errs += validate_ip(f"{p}.{kind}[{j}].ip", (addr or {}).get("ip"))
                host = (addr or {}).get("hostname")
                if host:
                    errs += v.check(f"{p}.{kind}[{j}].hostname", host, v.dns1123_label(host))
        ports = (ss or {}).get("ports") or []
        for j, port in enumerate(ports):
            pp = f"{p}.ports[{j}]"
            name = (port or {}).get("name")
            if len(ports) > 1 and not name:
                errs.append(v.required(f"{pp}.name"))
            elif name:
                errs += v.check(f"{pp}.name", name, v.dns1123_label(name))
            errs += v.check(f"{pp}.port", (port or {}).get("port"), v.port_number((port or {}).get("port")))
            proto = (port or {}).get("protocol")
            if not proto:
                errs.append(v.required(f"{pp}.protocol"))
            elif proto not in PROTOCOLS:
                errs.append(v.not_supported(f"{pp}.protocol", proto, PROTOCOLS))
    return errs


class EndpointsStrategy(Strategy):
    info = ResourceInfo("", "v1", "Endpoints", "endpoints", "endpoints", True, ("ep",))
    allow_create_on_update = True
    tracks_generation = False

    def defaults(self, obj: Obj) -> None:
        for ss in obj.get("subsets") or []:
            for port in (ss or {}).get("ports") or []:
                if isinstance(port, dict) and not port.get("protocol"):
                    port["protocol"] = "TCP"

    def validate(self, obj: Obj) -> list[v.FieldError]:
        return validate_subsets(obj.get("subsets"))

    def columns(self) -> list[Column]:
        return [name_col(), col("Endpoints", "V1Endpoints", "subsets"), age_col()]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return [
            name_of(obj),
            format_endpoints(obj),
            since((obj.get("metadata") or {}).get("creationTimestamp"), now),
        ]
