"""ResourceQuota controller: `status.hard = spec.hard` and `status.used` recomputed from what exists.

Mirrors `pkg/controller/resourcequota/resource_quota_controller.go` (syncResourceQuota) and its quota
monitor: keys are namespaces; a namespace is synced when a quota is added, deleted or its spec.hard
changes, when an object its quotas count is deleted or stops using quota (a pod ends, a service changes
type, a claim's storage changes: "replenishment"), and on a periodic full resync. Like upstream it does
*not* recount on creates or on the status writes of admission: admission has charged those already, and a
recount from a cache that has not seen the new object yet would hand the charge back. Usage is computed by the same evaluators ResourceQuota admission uses
(`skiff.api.quota`), over the shared informer caches; admission charges usage ahead of the controller, and
the controller's recount is the truth that corrects any over-charge (e.g. a create that failed after it was
charged). Informers for counted resources are started on first need; a resource the server does not serve
counts as zero, as upstream's discovery-driven monitors would have none of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Sequence

from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.api.quota import (
    ResourceList,
    calculate_usage,
    equal,
    parse_list,
    pod_counts_for_quota,
    quota_status,
    tracked_resources,
)
from skiff.client.interface import Informer, ListOptions, Resource
from skiff.controllers.base import Controller, ControllerContext

RESOURCEQUOTAS = Resource("", "v1", "resourcequotas")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
FIELD_MANAGER = "resourcequota-controller"
# Upstream kube-controller-manager --resource-quota-sync-period.
RESYNC_PERIOD = 300.0
# Served versions of the built-in groups whose objects `count/<resource>.<group>` may count.
GROUP_VERSIONS = {
    "": "v1",
    "apps": "v1",
    "batch": "v1",
    "autoscaling": "v2",
    "policy": "v1",
    "networking.k8s.io": "v1",
    "discovery.k8s.io": "v1",
    "coordination.k8s.io": "v1",
    "rbac.authorization.k8s.io": "v1",
    "storage.k8s.io": "v1",
    "scheduling.k8s.io": "v1",
    "events.k8s.io": "v1",
}


def quota_needs_sync(type_: str, old: Obj | None, new: Obj | None) -> bool:
    """Upstream's quota handlers: every add and delete; an update only when spec.hard changed or the quota was
    never synced (status writes, admission's charges included, are this system's own bookkeeping)."""
    if type_ != "MODIFIED" or old is None or new is None:
        return True
    status = new.get("status") or {}
    if "hard" not in status or "used" not in status:
        return True
    old_hard = parse_list((old.get("spec") or {}).get("hard"))
    return not equal(old_hard, parse_list((new.get("spec") or {}).get("hard")))


def releases_usage(plural: str, type_: str, old: Obj | None, new: Obj | None) -> bool:
    """Upstream's replenishment filter (resource_quota_monitor.go): deletes always; updates of pods that stop
    counting (terminal), services whose quota-relevant type changes, claims whose storage changes."""
    if type_ == "DELETED":
        return True
    if type_ != "MODIFIED" or old is None or new is None:
        return False
    if plural == "pods":
        return pod_counts_for_quota(old) and not pod_counts_for_quota(new)
    if plural == "services":
        return (old.get("spec") or {}).get("type") != (new.get("spec") or {}).get("type")
    if plural == "persistentvolumeclaims":
        return not equal(_claim_storage(old), _claim_storage(new))
    return False


def _claim_storage(pvc: Obj) -> ResourceList:
    return parse_list(
        {
            "requested": (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get(
                "storage", "0"
            ),
            "allocated": ((pvc.get("status") or {}).get("allocatedResources") or {}).get("storage", "0"),
        }
    )


class NotSynced(Exception):
    """A counted resource's cache is still filling: the namespace is retried with back-off."""


class ResourceQuotaController(Controller):
    """Keys are namespace names."""

    name = "resourcequota-controller"

    def __init__(self, ctx: ControllerContext, resync_period: float = RESYNC_PERIOD) -> None:
        super().__init__(ctx)
        self.resync_period = resync_period
        self.quotas: Informer = ctx.informers.informer(RESOURCEQUOTAS)
        self._counted: dict[tuple[str, str], Informer] = {}

    def informers(self) -> Sequence[Informer]:
        return (self.quotas,)

    def setup(self) -> None:
        self.quotas.add_handler(self._on_quota)

    def _on_quota(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        if quota_needs_sync(type_, old, new):
            obj = new if new is not None else old
            self.queue.add(str(((obj or {}).get("metadata") or {}).get("namespace") or ""))

    def _on_counted(self, plural: str, type_: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        ns = str(((obj or {}).get("metadata") or {}).get("namespace") or "")
        # Only namespaces that have quotas have anything to recount.
        if ns and releases_usage(plural, type_, old, new) and self.quotas.list(ns):
            self.queue.add(ns)

    async def _resource(self, group: str, plural: str) -> Resource | None:
        """The served resource behind (group, plural), or None when the server serves no such resource."""
        version = GROUP_VERSIONS.get(group)
        if version is None:
            try:
                crd = await self.client.get(CRDS, "", f"{plural}.{group}")
            except ApiError as e:
                if e.code == 404:
                    return None
                raise
            versions = (crd.get("spec") or {}).get("versions") or []
            version = next((str(v.get("name")) for v in versions if v.get("storage")), None)
            if version is None:
                return None
        res = Resource(group, version, plural)
        try:
            await self.client.list(res, "", ListOptions(limit=1))
        except ApiError as e:
            if e.code == 404:
                return None
            raise
        return res

    async def _informer(self, group: str, plural: str) -> Informer | None:
        inf = self._counted.get((group, plural))
        if inf is None:
            res = await self._resource(group, plural)
            if res is None:
                return None
            inf = self.ctx.informers.informer(res)
            inf.add_handler(lambda t, o, n: self._on_counted(plural, t, o, n))
            self._counted[(group, plural)] = inf
        if not inf.synced:
            raise NotSynced(f"{plural}.{group} cache not synced yet")
        return inf

    async def run(self) -> None:
        while not self.quotas.synced:
            await asyncio.sleep(0.05)
        resync = asyncio.create_task(self._resync())
        try:
            self._enqueue_all()
            await super().run()
        finally:
            resync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await resync

    def _enqueue_all(self) -> None:
        for ns in {str((q.get("metadata") or {}).get("namespace") or "") for q in self.quotas.list()}:
            self.queue.add(ns)

    async def _resync(self) -> None:
        """Upstream's full resync: recount every quota now and then, whatever events were seen."""
        while True:
            await asyncio.sleep(self.resync_period)
            self._enqueue_all()

    async def sync(self, key: str) -> None:
        quotas = self.quotas.list(key)
        if not quotas:
            return
        objects: dict[tuple[str, str], Sequence[Obj]] = {}
        for quota in quotas:
            for group, plural in tracked_resources(((quota.get("spec") or {}).get("hard") or {}).keys()):
                if (group, plural) not in objects:
                    inf = await self._informer(group, plural)
                    objects[(group, plural)] = inf.list(key) if inf is not None else []
        now = dt.datetime.now(dt.UTC)
        for quota in quotas:
            usage = calculate_usage(quota, lambda g, p: objects.get((g, p), []), now)
            status = quota_status(quota, usage or {})
            if status is None:
                continue
            try:
                await self.client.update(
                    RESOURCEQUOTAS,
                    key,
                    {**quota, "status": status},
                    subresource="status",
                    field_manager=FIELD_MANAGER,
                )
            except ApiError as e:
                if e.code != 404:  # gone meanwhile: nothing to update
                    raise
