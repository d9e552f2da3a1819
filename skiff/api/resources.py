"""What a served resource is: the facts discovery, routing, storage keys and errors need.

A `ResourceInfo` is one resource in one group/version (`apps/v1 deployments`). Kinds served in several
versions (HPA in autoscaling/v1 and v2) have one ResourceInfo per version sharing one storage key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUB_VERBS: tuple[str, ...] = ("get", "patch", "update")


@dataclass(frozen=True)
class Subresource:
    name: str  # "status", "scale", "eviction", "binding", "log", ...
    group: str
    version: str
    kind: str
    verbs: tuple[str, ...] = SUB_VERBS


@dataclass(frozen=True)
class ResourceInfo:
    group: str  # "" for core
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = field(default=())
    # Resource whose storage this version shares, when it differs ("events" in events.k8s.io → core events).
    storage_group: str | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    def key_prefix(self, namespace: str | None = None) -> str:
        """Storage prefix `/registry/<group>/<resource>/[<ns>/]`; core kinds use group `core`."""
        group = self.storage_group if self.storage_group is not None else self.group
        base = f"/registry/{group or 'core'}/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def key(self, namespace: str | None, name: str) -> str:
        return f"{self.key_prefix(namespace)}{name}" if self.namespaced else f"{self.key_prefix()}{name}"

    def subresource(self, name: str) -> Subresource | None:
        for s in self.subresources:
            if s.name == name:
                return s
        return None

    def status_sub(self) -> Subresource:
        return Subresource("status", self.group, self.version, self.kind)
