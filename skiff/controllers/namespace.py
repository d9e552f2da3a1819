"""Namespace controller: empties a namespace being deleted, then finalizes it.

Mirrors `pkg/controller/namespace` (namespace_controller.go, deletion/namespaced_resources_deleter.go):
for a namespace with a deletionTimestamp and the `kubernetes` finalizer in spec.finalizers, delete every
object of every namespaced resource in it (propagationPolicy Background, as upstream's deleteCollection),
wait until none remains (requeue after half the longest pending pod grace period + 1 s, as upstream's
ResourcesRemainingError estimate), then PUT `/finalize` without `kubernetes`; the API server removes
the namespace once spec.finalizers and metadata.finalizers are empty.

Pure half: `plan_namespace`. The resources to empty are a constructor argument (the API server's
namespaced built-in resources by default); a resource the server does not serve counts as empty.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.client.interface import (
    CONTROLLERREVISIONS,
    CRONJOBS,
    DAEMONSETS,
    DEPLOYMENTS,
    ENDPOINTS,
    ENDPOINTSLICES,
    EVENTS,
    JOBS,
    LEASES,
    NAMESPACES,
    PDBS,
    PODS,
    PVCS,
    REPLICASETS,
    SERVICEACCOUNTS,
    SERVICES,
    STATEFULSETS,
    DeleteOptions,
    Informer,
    Resource,
)
from skiff.controllers.base import Controller, ControllerContext
from skiff.controllers.endpoints import wait_synced

FINALIZER = "kubernetes"
FIELD_MANAGER = "namespace-controller"

NAMESPACED_RESOURCES: tuple[Resource, ...] = (
    # Workloads first so their controllers stop recreating pods (upstream deletes in discovery order;
    # the order only shortens the time to empty, it does not change the outcome).
    DEPLOYMENTS,
    STATEFULSETS,
    DAEMONSETS,
    CRONJOBS,
    JOBS,
    REPLICASETS,
    Resource("", "v1", "replicationcontrollers"),
    Resource("autoscaling", "v2", "horizontalpodautoscalers"),
    PODS,
    SERVICES,
    ENDPOINTS,
    ENDPOINTSLICES,
    CONTROLLERREVISIONS,
    PVCS,
    Resource("", "v1", "configmaps"),
    Resource("", "v1", "secrets"),
    SERVICEACCOUNTS,
    Resource("", "v1", "podtemplates"),
    Resource("", "v1", "limitranges"),
    Resource("", "v1", "resourcequotas"),
    Resource("networking.k8s.io", "v1", "ingresses"),
    Resource("networking.k8s.io", "v1", "networkpolicies"),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings"),
    Resource("rbac.authorization.k8s.io", "v1", "roles"),
    PDBS,
    LEASES,
    EVENTS,
)


@dataclass
class NamespacePlan:
    delete: list[tuple[Resource, str]] = field(default_factory=list)  # objects to DELETE now
    finalize: bool = False  # PUT /finalize without `kubernetes`
    requeue_after: float | None = None  # content remains: look again after this many seconds

    @property
    def idle(self) -> bool:
        return not self.delete and not self.finalize and self.requeue_after is None


def needs_cleanup(ns: Obj | None) -> bool:
    """Being deleted and not finalized by us yet."""
    if ns is None:
        return False
    return bool((ns.get("metadata") or {}).get("deletionTimestamp")) and FINALIZER in (
        (ns.get("spec") or {}).get("finalizers") or []
    )


def plan_namespace(ns: Obj | None, contents: Mapping[Resource, Sequence[Obj]]) -> NamespacePlan:
    """What to do for namespace `ns` given everything still in it (`contents`: resource → objects).

    Objects not yet being deleted are deleted; while anything remains the namespace is looked at again
    (after half the longest remaining pod grace period + 1 s); once nothing remains it is finalized.
    A namespace that is not being deleted, or is already finalized, gets an idle plan."""
    plan = NamespacePlan()
    if not needs_cleanup(ns):
        return plan
    remaining = False
    estimate = 0
    for res, objs in contents.items():
        for obj in objs:
            remaining = True
            md = obj.get("metadata") or {}
            if not md.get("deletionTimestamp"):
                plan.delete.append((res, str(md.get("name", ""))))
                if res == PODS:
                    estimate = max(
                        estimate, int((obj.get("spec") or {}).get("terminationGracePeriodSeconds") or 0)
                    )
            elif res == PODS:
                estimate = max(estimate, int(md.get("deletionGracePeriodSeconds") or 0))
    if remaining:
        plan.requeue_after = estimate / 2 + 1
    else:
        plan.finalize = True
    return plan


def finalized(ns: Obj) -> Obj:
    """A copy of `ns` for PUT /finalize: spec.finalizers without `kubernetes`."""
    new = copy.deepcopy(ns)
    spec = new.setdefault("spec", {})
    spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
    return new


class NamespaceController(Controller):
    """Keys are namespace names."""

    name = "namespace-controller"

    def __init__(self, ctx: ControllerContext, resources: Sequence[Resource] = NAMESPACED_RESOURCES) -> None:
        super().__init__(ctx)
        self.resources = list(resources)
        self.namespaces: Informer = ctx.informers.informer(NAMESPACES)

    def informers(self) -> Sequence[Informer]:
        return (self.namespaces,)

    def setup(self) -> None:
        self.namespaces.add_handler(self._on_namespace)

    def _on_namespace(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None and needs_cleanup(new):
            self.queue.add(str(new["metadata"]["name"]))

    async def run(self) -> None:
        await wait_synced(self.informers())
        for ns in self.namespaces.list():
            if needs_cleanup(ns):
                self.queue.add(str(ns["metadata"]["name"]))
        await super().run()

    async def _contents(self, namespace: str) -> dict[Resource, list[Obj]]:
        out: dict[Resource, list[Obj]] = {}
        for res in self.resources:
            try:
                lst = await self.client.list(res, namespace)
            except ApiError as e:
                if e.code in (404, 405):  # not served here
                    continue
                raise
            if lst.get("items"):
                out[res] = list(lst["items"])
        return out

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get("", key)
        if not needs_cleanup(ns):
            return
        # Read the namespace live: the cached copy may predate the deletion or finalization.
        try:
            ns = await self.client.get(NAMESPACES, "", key)
        except ApiError as e:
            if e.code == 404:
                return
            raise
        plan = plan_namespace(ns, await self._contents(key))
        if plan.delete:
            errors: list[ApiError] = []
            for res, name in plan.delete:
                try:
                    await self.client.delete(res, key, name, DeleteOptions(propagation_policy="Background"))
                except ApiError as e:
                    if e.code not in (404, 405, 409):
                        errors.append(e)
            if errors:
                raise errors[0]
            plan = plan_namespace(ns, await self._contents(key))  # most objects go at once
        if plan.finalize:
            assert ns is not None
            await self.client.update(
                NAMESPACES, "", finalized(ns), subresource="finalize", field_manager=FIELD_MANAGER
            )
        elif plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after)
