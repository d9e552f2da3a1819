"""The admission chain: plugins that read other objects while a write is in flight.

Mirrors upstream `k8s.io/apiserver/pkg/admission`: a request is described by `Attributes`; mutating
plugins (`admit`) may change `attrs.object` in place, validating plugins (`validate`) may only refuse.
The generic store (`registry/generic.py`) runs, for a create or update: the strategy's prepare and
defaults → every mutating plugin → the strategy's validation → every validating plugin → the write. A
plugin refuses by raising `skiff.api.errors.ApiError` (usually `forbidden`, built by `forbidden()` below
so messages read as upstream's `pods "p" is forbidden: ...`).

Plugins see other objects only through `ObjectLookup` (get/list/update_status over the registries), never
the whole control plane. This module must not import `registry.generic` at run time (generic imports it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from skiff.api import errors
from skiff.api.meta import Obj
from skiff.api.resources import ResourceInfo

if TYPE_CHECKING:
    from skiff.apiserver.registry.generic import Registry

CREATE = "CREATE"
UPDATE = "UPDATE"
DELETE = "DELETE"


@dataclass
class Attributes:
    """One write as admission sees it (upstream `admission.Attributes`).

    `object` is the store's private copy: mutating plugins change it in place; `old_object` (updates) is
    read-only. With `dry_run` plugins check everything but change no other object (quota is not charged).
    """

    operation: str  # CREATE | UPDATE | DELETE
    info: ResourceInfo
    namespace: str
    name: str
    object: Obj
    old_object: Obj | None = None
    subresource: str = ""
    dry_run: bool = False

    def is_kind(self, group: str, plural: str) -> bool:
        return self.info.group == group and self.info.plural == plural


def forbidden(attrs: Attributes, reason: str) -> errors.ApiError:
    """403 as upstream's `admission.NewForbidden`: `<resource>[.<group>] "<name>" is forbidden: <reason>`."""
    name = attrs.name or str((attrs.object.get("metadata") or {}).get("generateName") or "Unknown")
    resource = errors.qualified(attrs.info.plural, attrs.info.group)
    return errors.ApiError(
        403,
        "Forbidden",
        f'{resource} "{name}" is forbidden: {reason}',
        {
            "name": name,
            "kind": attrs.info.plural,
            **({"group": attrs.info.group} if attrs.info.group else {}),
        },
    )


def aggregate(messages: Sequence[str]) -> str:
    """Upstream `utilerrors.NewAggregate(...).Error()`: one message as is, several (deduplicated) as `[a, b]`."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


@runtime_checkable
class MutationInterface(Protocol):
    """A plugin that may change the object (upstream `admission.MutationInterface`)."""

    async def admit(self, attrs: Attributes) -> None: ...


@runtime_checkable
class ValidationInterface(Protocol):
    """A plugin that may only refuse (upstream `admission.ValidationInterface`)."""

    async def validate(self, attrs: Attributes) -> None: ...


Plugin = MutationInterface | ValidationInterface


class Chain:
    """Every mutating plugin in order, then every validating plugin in order (upstream `chainAdmissionHandler`).

    A plugin that implements both phases takes part in both, at its place in the list.
    """

    def __init__(self, plugins: Sequence[Plugin]) -> None:
        self.plugins = tuple(plugins)
        self._mutating = [p for p in plugins if isinstance(p, MutationInterface)]
        self._validating = [p for p in plugins if isinstance(p, ValidationInterface)]

    async def admit(self, attrs: Attributes) -> None:
        for p in self._mutating:
            await p.admit(attrs)

    async def validate(self, attrs: Attributes) -> None:
        for p in self._validating:
            await p.validate(attrs)


class ObjectLookup(Protocol):
    """What plugins may read and write besides the request's object."""

    async def get(self, group: str, plural: str, namespace: str, name: str) -> Obj | None:
        """The stored object, or None."""

    async def list(self, group: str, plural: str, namespace: str) -> list[Obj]:
        """Every stored object of a resource in a namespace ("" = all / cluster-scoped), one consistent read."""

    async def update_status(self, group: str, plural: str, obj: Obj) -> Obj:
        """Write `obj`'s status with its metadata.resourceVersion as precondition (409 Conflict when stale)."""


class RegistryLookup:
    """`ObjectLookup` over the control plane's registries by (group, plural) of the storage version.

    The mapping is read at call time, so registries registered after the lookup is built are found too.
    """

    def __init__(self, registries: Mapping[tuple[str, str], Registry]) -> None:
        self._registries = registries

    async def get(self, group: str, plural: str, namespace: str, name: str) -> Obj | None:
        return await self._registries[(group, plural)].try_get(namespace, name)

    async def list(self, group: str, plural: str, namespace: str) -> list[Obj]:
        from skiff.apiserver.registry.generic import ListOptions

        items: list[Obj] = (await self._registries[(group, plural)].list(namespace, ListOptions()))["items"]
        return items

    async def update_status(self, group: str, plural: str, obj: Obj) -> Obj:
        from skiff.apiserver.registry.generic import WriteOptions

        md = obj.get("metadata") or {}
        status = obj.get("status")

        def set_status(live: Obj) -> Obj:
            live["status"] = status
            return live

        return await self._registries[(group, plural)].guaranteed_update(
            str(md.get("namespace") or ""),
            str(md.get("name") or ""),
            set_status,
            WriteOptions(field_manager="kube-apiserver", subresource="status"),
            precondition_rv=str(md.get("resourceVersion") or ""),
        )
