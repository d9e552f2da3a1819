"""Discovery documents: aggregated v2 (`apidiscovery.k8s.io/v2`) and the legacy lists (api-compat.md §1).

Built once from the served resources and rebuilt when the set changes (CRDs); handlers only pick the
cached bytes. `responseKind` is on every resource and subresource, or client-go drops the entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from skiff.api.resources import ResourceInfo

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

# Upstream's group order in /apis (built-ins first, then custom groups alphabetically).
GROUP_ORDER = [
    "apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "autoscaling", "batch",
    "networking.k8s.io", "policy", "rbac.authorization.k8s.io", "storage.k8s.io", "apiextensions.k8s.io",
    "scheduling.k8s.io", "coordination.k8s.io", "discovery.k8s.io", "metrics.k8s.io",
]
# Preferred version first.
VERSION_ORDER = {"autoscaling": ["v2", "v1"]}


def aggregated_kind(accept: str) -> str | None:
    """The aggregated discovery media type the client asked for, if any (first acceptable wins)."""
    for part in accept.split(","):
        p = part.replace(" ", "")
        if "as=APIGroupDiscoveryList" in p and "g=apidiscovery.k8s.io" in p:
            if "v=v2beta1" in p:
                return AGGREGATED_V2BETA1
            if "v=v2" in p:
                return AGGREGATED_V2
        elif p.startswith("application/json") or p.startswith("*/*"):
            return None
    return None


@dataclass
class DiscoveryDocs:
    api_versions: bytes  # /api (legacy APIVersions)
    api_groups: bytes  # /apis (legacy APIGroupList)
    groups: dict[str, bytes]  # /apis/<group> (legacy APIGroup)
    resource_lists: dict[str, bytes]  # "v1" / "<group>/<version>" → APIResourceList
    aggregated_core: dict[str, bytes]  # media type → /api aggregated
    aggregated_apis: dict[str, bytes]  # media type → /apis aggregated


def _version_key(group: str, version: str) -> tuple[int, str]:
    order = VERSION_ORDER.get(group)
    if order and version in order:
        return (order.index(version), version)
    return (0 if version == "v1" else 1, version)


def _group_key(group: str) -> tuple[int, str]:
    return (GROUP_ORDER.index(group), group) if group in GROUP_ORDER else (len(GROUP_ORDER), group)


def build(resources: Iterable[ResourceInfo]) -> DiscoveryDocs:
    by_gv: dict[tuple[str, str], list[ResourceInfo]] = {}
    for r in resources:
        by_gv.setdefault((r.group, r.version), []).append(r)
    groups: dict[str, list[str]] = {}
    for g, ver in by_gv:
        groups.setdefault(g, []).append(ver)
    for g in groups:
        groups[g].sort(key=lambda ver, g=g: _version_key(g, ver))  # type: ignore[misc]

    def legacy_resources(rs: list[ResourceInfo]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for r in sorted(rs, key=lambda r: r.plural):
            entry: dict[str, Any] = {
                "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                "verbs": list(r.verbs),
            }
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            if r.categories:
                entry["categories"] = list(r.categories)
            out.append(entry)
            for s in r.subresources:
                sub: dict[str, Any] = {"name": f"{r.plural}/{s.name}", "singularName": "", "namespaced": r.namespaced,
                                       "kind": s.kind, "verbs": list(s.verbs)}
                if (s.group, s.version) != (r.group, r.version):
                    sub["group"] = s.group
                    sub["version"] = s.version
                out.append(sub)
        return out

    def agg_resources(rs: list[ResourceInfo]) -> list[dict[str, Any]]:
        out = []
        for r in sorted(rs, key=lambda r: r.plural):
            entry: dict[str, Any] = {
                "resource": r.plural,
                "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                "scope": "Namespaced" if r.namespaced else "Cluster",
                "singularResource": r.singular,
                "verbs": list(r.verbs),
            }
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            if r.categories:
                entry["categories"] = list(r.categories)
            if r.subresources:
                entry["subresources"] = [
                    {"subresource": s.name, "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                     "verbs": list(s.verbs)}
                    for s in sorted(r.subresources, key=lambda s: s.name)
                ]
            out.append(entry)
        return out

    resource_lists: dict[str, bytes] = {}
    for (g, ver), rs in by_gv.items():
        gv = f"{g}/{ver}" if g else ver
        resource_lists[gv] = orjson.dumps(
            {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": legacy_resources(rs)}
        )

    def group_doc(g: str) -> dict[str, Any]:
        vers = [{"groupVersion": f"{g}/{ver}", "version": ver} for ver in groups[g]]
        return {"name": g, "versions": vers, "preferredVersion": vers[0]}

    named = sorted((g for g in groups if g), key=_group_key)
    api_groups = {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group_doc(g) for g in named]}
    group_docs = {g: orjson.dumps({"kind": "APIGroup", "apiVersion": "v1", **group_doc(g)}) for g in named}
    api_versions = {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}

    def agg(names: list[str], api_version: str) -> bytes:
        items = []
        for g in names:
            items.append({
                "metadata": {"name": g, "creationTimestamp": None},
                "versions": [
                    {"version": ver, "resources": agg_resources(by_gv[(g, ver)]), "freshness": "Current"}
                    for ver in groups[g]
                ],
            })
        return orjson.dumps({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items})

    aggregated_core = {
        AGGREGATED_V2: agg([""], "apidiscovery.k8s.io/v2"),
        AGGREGATED_V2BETA1: agg([""], "apidiscovery.k8s.io/v2beta1"),
    }
    aggregated_apis = {
        AGGREGATED_V2: agg(named, "apidiscovery.k8s.io/v2"),
        AGGREGATED_V2BETA1: agg(named, "apidiscovery.k8s.io/v2beta1"),
    }
    return DiscoveryDocs(orjson.dumps(api_versions), orjson.dumps(api_groups), group_docs, resource_lists,
                         aggregated_core, aggregated_apis)
