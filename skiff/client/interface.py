"""The client contract every component uses: one interface, two implementations.

`InProcessClient` (inside `skiff server`: calls the registries directly, no HTTP, no JSON round trip)
and `HTTPSClient` (agents, `skiff sim-nodes`, remote tools) have exactly the same semantics: the
same objects, the same `ApiError`s (skiff.api.errors) with the same codes and reasons.

Resources are named by `Resource(group, version, plural)`; `namespace` is "" for cluster-scoped
kinds and for lists/watches across all namespaces. Objects are plain dicts and callers must treat
what they get as read-only (the in-process client may hand out cached objects).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Obj = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes")
NAMESPACES = Resource("", "v1", "namespaces")
SERVICES = Resource("", "v1", "services")
ENDPOINTS = Resource("", "v1", "endpoints")
EVENTS = Resource("", "v1", "events")
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts")
PVCS = Resource("", "v1", "persistentvolumeclaims")
DEPLOYMENTS = Resource("apps", "v1", "deployments")
REPLICASETS = Resource("apps", "v1", "replicasets")
STATEFULSETS = Resource("apps", "v1", "statefulsets")
DAEMONSETS = Resource("apps", "v1", "daemonsets")
CONTROLLERREVISIONS = Resource("apps", "v1", "controllerrevisions")
JOBS = Resource("batch", "v1", "jobs")
CRONJOBS = Resource("batch", "v1", "cronjobs")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices")
PDBS = Resource("policy", "v1", "poddisruptionbudgets")


@dataclass
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK | ERROR (ERROR carries a Status object)
    object: Obj


@dataclass
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    resource_version: str = ""
    limit: int = 0
    continue_token: str = ""


@dataclass
class Patch:
    """A patch body and its type: "merge" | "strategic" | "json" | "apply" (apply needs field_manager + force)."""

    type: str
    body: Any
    force: bool = False


@dataclass
class DeleteOptions:
    propagation_policy: str | None = None  # Orphan | Background | Foreground
    grace_period_seconds: int | None = None
    preconditions: dict[str, Any] = field(default_factory=dict)


class Client(Protocol):
    """CRUD, list and watch of any served resource. Failures raise skiff.api.errors.ApiError."""

    async def get(self, res: Resource, namespace: str, name: str) -> Obj: ...

    async def list(self, res: Resource, namespace: str = "", opts: ListOptions | None = None) -> Obj:
        """A `<Kind>List` with `metadata.resourceVersion` (all pages joined when limit is 0)."""

    def watch(self, res: Resource, namespace: str = "", opts: ListOptions | None = None) -> AsyncIterator[WatchEvent]:
        """Events after `opts.resource_version` (bookmarks allowed); ends on server timeout or close."""

    async def create(self, res: Resource, namespace: str, obj: Obj, *, subresource: str = "",
                     name: str = "", field_manager: str = "") -> Obj:
        """POST; with `subresource` ("binding", "eviction") POST to `<name>/<subresource>`."""

    async def update(self, res: Resource, namespace: str, obj: Obj, *, subresource: str = "",
                     field_manager: str = "") -> Obj:
        """PUT (resourceVersion in obj is a precondition); subresource "" | "status" | "scale"."""

    async def patch(self, res: Resource, namespace: str, name: str, patch: Patch, *, subresource: str = "",
                    field_manager: str = "", dry_run: bool = False) -> Obj:
        """`dry_run`: validated and admitted as a write, but nothing is stored (`?dryRun=All`)."""

    async def delete(self, res: Resource, namespace: str, name: str, opts: DeleteOptions | None = None) -> Obj | None:
        """Returns the object when deletion is pending (finalizers, grace period), None when it is gone."""

    async def close(self) -> None: ...


Handler = Callable[[str, Obj | None, Obj | None], None]  # (event type, old, new) — must not block


class Informer(Protocol):
    """A list+watch cache of one resource (relists on 410), with indexes, shared by every controller."""

    def get(self, namespace: str, name: str) -> Obj | None: ...

    def list(self, namespace: str = "") -> Sequence[Obj]: ...

    def by_index(self, index: str, value: str) -> Sequence[Obj]:
        """Objects whose index function returned `value` (built-in indexes: "namespace", "nodeName",
        "owner" (controller ownerReference uid), plus those added with add_index)."""

    def add_index(self, name: str, fn: Callable[[Obj], Sequence[str]]) -> None: ...

    def add_handler(self, handler: Handler) -> None: ...

    @property
    def synced(self) -> bool: ...


class WorkQueue(Protocol):
    """Keys (`namespace/name`) to sync: deduplicated, never processed twice at once, retried with
    rate-limited exponential back-off (upstream workqueue semantics)."""

    def add(self, key: str) -> None: ...

    def add_after(self, key: str, delay: float) -> None: ...

    def add_rate_limited(self, key: str) -> None: ...

    def forget(self, key: str) -> None: ...

    async def get(self) -> str | None:
        """Next key, or None once the queue is shut down."""

    def done(self, key: str) -> None: ...

    def shutdown(self) -> None: ...
