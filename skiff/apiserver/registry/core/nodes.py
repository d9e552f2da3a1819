"""Node (cluster-scoped): taints, pod CIDRs, allocatable defaulting, the kubectl Table row.

Mirrors `pkg/registry/core/node/strategy.go` (status may be set on create; updates keep status),
`SetDefaults_NodeStatus` (allocatable = capacity), ValidateNode/ValidateNodeUpdate and `printNode`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, labels_of, name_of
from skiff.api.resources import ALL_VERBS, SUB_VERBS, ResourceInfo, Subresource
from skiff.apiserver.registry.core.common import age_col, col, name_col, since
from skiff.apiserver.registry.core.podspec import TAINT_EFFECTS
from skiff.apiserver.registry.strategy import Column, Strategy

ROLE_PREFIX = "node-role.kubernetes.io/"
ROLE_LABEL = "kubernetes.io/role"


def node_roles(node: Obj) -> list[str]:
    """`findNodeRoles`: `node-role.kubernetes.io/<role>` keys and the legacy `kubernetes.io/role` value."""
    roles: set[str] = set()
    for k, val in labels_of(node).items():
        if k.startswith(ROLE_PREFIX):
            role = k[len(ROLE_PREFIX) :]
            if role:
                roles.add(role)
        elif k == ROLE_LABEL and val:
            roles.add(val)
    return sorted(roles)


def node_status_text(node: Obj) -> str:
    """Ready / NotReady / Unknown, plus `,SchedulingDisabled` when cordoned."""
    status = []
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            status = ["Ready" if cond.get("status") == "True" else "NotReady"]
    if not status:
        status = ["Unknown"]
    if (node.get("spec") or {}).get("unschedulable"):
        status.append("SchedulingDisabled")
    return ",".join(status)


def _address(node: Obj, kind: str) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == kind:
            return str(a.get("address") or "")
    return "<none>"


def validate_taints(path: str, taints: Any) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate(taints or []):
        p = f"{path}[{i}]"
        t = t or {}
        key, value, effect = t.get("key") or "", t.get("value") or "", t.get("effect") or ""
        errs += v.check(f"{p}.key", key, v.qualified_name(key))
        msgs = v.label_value(value)
        if msgs:
            errs.append(v.invalid(f"{p}.value", value, ";".join(msgs)))
        if not effect:
            errs.append(v.required(f"{p}.effect"))
        elif effect not in TAINT_EFFECTS:
            errs.append(v.not_supported(f"{p}.effect", effect, TAINT_EFFECTS))
        if (key, effect) in seen:
            errs.append(v.FieldError(v.DUPLICATE, p, "taints must be unique by key and effect pair", t))
            continue
        seen.add((key, effect))
    return errs


class NodeStrategy(Strategy):
    info = ResourceInfo(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        False,
        ("no",),
        (),
        ALL_VERBS,
        (
            Subresource(
                "proxy", "", "v1", "NodeProxyOptions", ("create", "delete", "get", "patch", "update")
            ),
            Subresource("status", "", "v1", "Node", SUB_VERBS),
        ),
    )
    status_subresource = True
    tracks_generation = False

    def defaults(self, obj: Obj) -> None:
        status = obj.get("status")
        if (
            isinstance(status, dict)
            and status.get("allocatable") is None
            and status.get("capacity") is not None
        ):
            status["allocatable"] = dict(status["capacity"])
        spec = obj.get("spec")
        if isinstance(spec, dict) and spec.get("podCIDR") and not spec.get("podCIDRs"):
            spec["podCIDRs"] = [spec["podCIDR"]]

    def prepare_for_create(self, obj: Obj) -> None:
        """Nodes may carry status on create (the agent registers with its capacity and addresses)."""

    def validate(self, obj: Obj) -> list[v.FieldError]:
        spec = obj.get("spec") or {}
        errs = validate_taints("spec.taints", spec.get("taints"))
        cidrs = spec.get("podCIDRs") or []
        for i, cidr in enumerate(cidrs):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except (ValueError, TypeError):
                errs.append(
                    v.invalid(
                        f"spec.podCIDRs[{i}]",
                        cidr,
                        "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                    )
                )
        if len(cidrs) > 2:
            errs.append(
                v.invalid("spec.podCIDRs", cidrs, "may specify no more than one CIDR for each IP family")
            )
        if spec.get("podCIDR") and cidrs and spec["podCIDR"] != cidrs[0]:
            errs.append(
                v.invalid("spec.podCIDR", spec["podCIDR"], "must match the first element of podCIDRs")
            )
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        errs = self.validate(new)
        ns, os_ = new.get("spec") or {}, old.get("spec") or {}
        if os_.get("podCIDRs") and ns.get("podCIDRs") != os_.get("podCIDRs"):
            errs.append(
                v.forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid')
            )
        if os_.get("providerID") and ns.get("providerID") != os_.get("providerID"):
            errs.append(
                v.forbidden(
                    "spec.providerID", 'node updates may not change providerID except from "" to valid'
                )
            )
        return errs

    def columns(self) -> list[Column]:
        return [
            name_col(),
            col("Status", description="The status of the node"),
            col("Roles", description="The roles of the node"),
            age_col(),
            col("Version", "V1NodeSystemInfo", "kubeletVersion"),
            col("Internal-IP", "V1NodeStatus", "addresses", priority=1),
            col("External-IP", "V1NodeStatus", "addresses", priority=1),
            col("OS-Image", "V1NodeSystemInfo", "osImage", priority=1),
            col("Kernel-Version", "V1NodeSystemInfo", "kernelVersion", priority=1),
            col("Container-Runtime", "V1NodeSystemInfo", "containerRuntimeVersion", priority=1),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        info = (obj.get("status") or {}).get("nodeInfo") or {}
        return [
            name_of(obj),
            node_status_text(obj),
            ",".join(node_roles(obj)) or "<none>",
            since((obj.get("metadata") or {}).get("creationTimestamp"), now),
            info.get("kubeletVersion") or "",
            _address(obj, "InternalIP"),
            _address(obj, "ExternalIP"),
            info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>",
        ]

    def fields(self, obj: Obj) -> dict[str, str]:
        return {"spec.unschedulable": "true" if (obj.get("spec") or {}).get("unschedulable") else "false"}
